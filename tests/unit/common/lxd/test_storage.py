"""Unit tests for lxd_common.lxd._storage: find, create (two-step in a cluster), delete.

Answers are LXD 5.0.2's, captured from real daemons: a Ceph pool on a real
Ceph 16.2 (single OSD), a dir pool holding a custom volume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from lxd_common.errors import LxdApiError, StoragePoolInUseError
from lxd_common.lxd import StoragePool, StoragePools

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import FakeLxd, Replies

POOLS = "/1.0/storage-pools"
CEPH_POOL: dict[str, Any] = {
    "config": {
        "ceph.cluster_name": "ceph",
        "ceph.osd.pg_num": "8",
        "ceph.osd.pool_name": "lxd",
        "ceph.user.name": "lxd",
        "source": "lxd",
        "volatile.initial_source": "lxd",
        "volatile.pool.pristine": "true",
    },
    "description": "",
    "name": "remote",
    "driver": "ceph",
    "used_by": None,
    "status": "Created",
    "locations": ["none"],
}
DIR_POOL: dict[str, Any] = {
    "config": {"source": "/var/lib/lxd/storage-pools/p1"},
    "description": "",
    "name": "p1",
    "driver": "dir",
    "used_by": ["/1.0/storage-pools/p1/volumes/custom/data"],
    "status": "Created",
    "locations": ["none"],
}


def pending(name: str, *members: str) -> dict[str, Any]:
    return {**CEPH_POOL, "name": name, "status": "Pending", "config": {}, "locations": [*members]}


def test_a_pool_as_lxd_reports_it(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/remote", reply.sync(CEPH_POOL))
    pool = StoragePools(lxd).get("remote")
    assert pool == StoragePool("remote", "ceph", "Created", CEPH_POOL["config"], [], ["none"])
    assert pool is not None and pool.created


def test_no_such_pool_is_none(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/nope", reply.error(404, "Storage pool not found"))
    assert StoragePools(lxd).get("nope") is None


def test_other_refusals_raise_with_lxds_words(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/x", reply.error(500, "database is locked"))
    with pytest.raises(LxdApiError, match="database is locked"):
        StoragePools(lxd).get("x")


def test_all_pools(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", POOLS, reply.sync([DIR_POOL, CEPH_POOL]))
    assert [p.name for p in StoragePools(lxd).all()] == ["p1", "remote"]
    assert lxd.requests("GET", POOLS)[0].params == {"recursion": "1"}


def test_volumes_by_type_and_name(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on(
        "GET",
        f"{POOLS}/p1/volumes",
        reply.sync(
            ["/1.0/storage-pools/p1/volumes/custom/data", f"{POOLS}/p1/volumes/container/c1"]
        ),
    )
    assert StoragePools(lxd).volumes("p1") == ["container/c1", "custom/data"]


def test_standalone_create_is_one_global_post(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on(
        "GET", f"{POOLS}/remote", reply.error(404, "Storage pool not found"), reply.sync(CEPH_POOL)
    )
    lxd.on("POST", POOLS, reply.sync())
    pool = StoragePools(lxd).create("remote", "ceph", {"source": "lxd", "ceph.user.name": "lxd"})
    assert pool.created
    (post,) = lxd.requests("POST", POOLS)
    assert post.params is None
    assert post.json == {
        "name": "remote",
        "driver": "ceph",
        "config": {"source": "lxd", "ceph.user.name": "lxd"},
    }


def test_cluster_create_defines_each_member_then_creates_globally(
    lxd: FakeLxd, reply: Replies
) -> None:
    lxd.on(
        "GET",
        f"{POOLS}/remote",
        reply.error(404, "Storage pool not found"),
        reply.sync(CEPH_POOL),
    )
    lxd.on("POST", POOLS, reply.sync())
    StoragePools(lxd).create(
        "remote", "ceph", {"source": "lxd", "ceph.user.name": "lxd"}, members=["m1", "m2"]
    )
    posts = lxd.requests("POST", POOLS)
    assert [p.params for p in posts] == [{"target": "m1"}, {"target": "m2"}, None]
    # LXD 5.0.2: 'Config key "source" is cluster member specific', even for Ceph.
    assert posts[0].json == {"name": "remote", "driver": "ceph", "config": {"source": "lxd"}}
    assert posts[2].json["config"] == {"ceph.user.name": "lxd"}


def test_an_interrupted_create_finishes_without_redefining_members(
    lxd: FakeLxd, reply: Replies
) -> None:
    lxd.on("GET", f"{POOLS}/remote", reply.sync(pending("remote", "m1")), reply.sync(CEPH_POOL))
    lxd.on("POST", POOLS, reply.sync())
    StoragePools(lxd).create("remote", "ceph", {"source": "lxd"}, members=["m1", "m2"])
    assert [p.params for p in lxd.requests("POST", POOLS)] == [{"target": "m2"}, None]


def test_an_existing_pool_is_left_alone(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/remote", reply.sync(CEPH_POOL))
    assert StoragePools(lxd).create("remote", "ceph", {"source": "lxd"}, members=["m1"]).created
    assert lxd.requests("POST") == []


def test_a_refused_member_definition_stops_before_the_global_create(
    lxd: FakeLxd, reply: Replies
) -> None:
    lxd.on("GET", f"{POOLS}/remote", reply.error(404, "Storage pool not found"))
    lxd.on("POST", POOLS, reply.error(404, "Cluster member not found"))
    with pytest.raises(LxdApiError, match="Cluster member not found"):
        StoragePools(lxd).create("remote", "ceph", {}, members=["m9"])
    assert len(lxd.requests("POST", POOLS)) == 1


def test_delete_refuses_a_pool_with_volumes_and_changes_nothing(
    lxd: FakeLxd, reply: Replies
) -> None:
    lxd.on("GET", f"{POOLS}/p1", reply.sync(DIR_POOL))
    lxd.on("GET", f"{POOLS}/p1/volumes", reply.sync(["/1.0/storage-pools/p1/volumes/custom/data"]))
    with pytest.raises(StoragePoolInUseError) as caught:
        StoragePools(lxd).delete("p1")
    assert caught.value.volumes == ["custom/data"]
    assert str(caught.value) == (
        "storage pool 'p1' still holds 1 volume(s) (custom/data); move or delete them first"
    )
    assert lxd.requests("DELETE") == []


def test_delete_keeping_the_osd_pool_unsets_pristine_first(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/remote", reply.sync(CEPH_POOL))
    lxd.on("GET", f"{POOLS}/remote/volumes", reply.sync([]))
    lxd.on("PATCH", f"{POOLS}/remote", reply.sync())
    lxd.on("DELETE", f"{POOLS}/remote", reply.sync())
    assert StoragePools(lxd).delete("remote", keep_backing=True)
    (patch,) = lxd.requests("PATCH")
    assert patch.json == {"config": {"volatile.pool.pristine": "false"}}
    assert [c.method for c in lxd.calls][-2:] == ["PATCH", "DELETE"]


def test_delete_without_keep_leaves_pristine_alone(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/remote", reply.sync(CEPH_POOL))
    lxd.on("GET", f"{POOLS}/remote/volumes", reply.sync(None))
    lxd.on("DELETE", f"{POOLS}/remote", reply.sync())
    assert StoragePools(lxd).delete("remote")
    assert lxd.requests("PATCH") == []


def test_delete_of_no_pool_is_false(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/gone", reply.error(404, "Storage pool not found"))
    assert StoragePools(lxd).delete("gone") is False


def test_lxds_refusal_to_delete_is_raised(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/p1", reply.sync({**DIR_POOL, "used_by": ["/1.0/profiles/default"]}))
    lxd.on("GET", f"{POOLS}/p1/volumes", reply.sync([]))
    lxd.on("DELETE", f"{POOLS}/p1", reply.error(400, "The storage pool is currently in use"))
    with pytest.raises(LxdApiError, match="The storage pool is currently in use") as caught:
        StoragePools(lxd).delete("p1")
    assert caught.value.status == 400
