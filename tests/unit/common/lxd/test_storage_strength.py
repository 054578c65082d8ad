"""`lxd_common.lxd._storage`, one wrong answer each: member keys, odd answers, refusals whole.

Written for the mutants test_storage.py let through (docs/mutation.md): each
key LXD takes per member only, a record without its optional fields, volume
URLs of another project, and the answers pylxd lets through (an HTTP 200 that
is not JSON, which only `check` refuses) after each write: a member's pending
definition, the global create, the pristine flag and the delete.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from lxd_common.errors import LxdApiError
from lxd_common.lxd import StoragePool, StoragePools

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import FakeLxd, Replies

POOLS = "/1.0/storage-pools"
PROXY_PAGE = b"<html>proxy login</html>"


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


def created(name: str, driver: str = "zfs") -> dict[str, object]:
    return {"name": name, "driver": driver, "status": "Created", "locations": ["m1", "m2"]}


# --- what a pool is ------------------------------------------------------------------


def test_a_record_without_its_optional_fields_reads_as_the_defaults() -> None:
    bare = {"name": "p", "driver": None, "status": None, "config": None, "used_by": None}
    assert StoragePool.from_api(bare) == StoragePool("p", "")
    assert StoragePool.from_api({"name": "p"}) == StoragePool("p", "", "", {}, [], [])
    assert StoragePool("p", "") == StoragePool("p", "", "", {}, [], [])
    assert not StoragePool("p", "").created


def test_what_uses_a_pool_is_kept(lxd: FakeLxd, reply: Replies) -> None:
    used = ["/1.0/profiles/default", "/1.0/storage-pools/p1/volumes/custom/data"]
    lxd.on("GET", f"{POOLS}/p1", reply.sync({**created("p1", "dir"), "used_by": used}))
    pool = StoragePools(lxd).get("p1")
    assert pool is not None
    assert pool.used_by == used


def test_volumes_of_a_pool_drop_the_project_parameter(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on(
        "GET",
        f"{POOLS}/p1/volumes",
        reply.sync(
            [
                f"{POOLS}/p1/volumes/custom/data?project=tenant",
                f"{POOLS}/p1/volumes/container/c1",
            ]
        ),
    )
    assert StoragePools(lxd).volumes("p1") == ["container/c1", "custom/data"]


def test_a_refused_listing_says_so_whole(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", POOLS, reply.raw(200, PROXY_PAGE, "text/html"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD sent a non-JSON answer while listing storage pools")
    ):
        StoragePools(lxd).all()


# --- creating ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["source", "size", "zfs.pool_name", "lvm.thinpool_name", "lvm.vg_name"]
)
def test_each_member_specific_key_goes_to_the_members_only(
    lxd: FakeLxd, reply: Replies, key: str
) -> None:
    # LXD 5.0.2 refuses them in the global create: 'Config key "source" is cluster
    # member specific' (and so for size, zfs.pool_name, lvm.thinpool_name, lvm.vg_name).
    lxd.on(
        "GET", f"{POOLS}/p", reply.error(404, "Storage pool not found"), reply.sync(created("p"))
    )
    lxd.on("POST", POOLS, reply.sync())
    StoragePools(lxd).create("p", "zfs", {key: "v", "volume.size": "5GiB"}, members=["m1"])
    member, whole = lxd.requests("POST", POOLS)
    assert member.json == {"name": "p", "driver": "zfs", "config": {key: "v"}}
    assert whole.json == {"name": "p", "driver": "zfs", "config": {"volume.size": "5GiB"}}


def test_a_non_json_answer_to_a_members_definition_stops_the_create(
    lxd: FakeLxd, reply: Replies
) -> None:
    lxd.on("GET", f"{POOLS}/p", reply.error(404, "Storage pool not found"))
    lxd.on("POST", POOLS, reply.raw(200, PROXY_PAGE, "text/html"))
    with pytest.raises(
        LxdApiError,
        match=exactly("LXD sent a non-JSON answer while defining storage pool 'p' on member 'm1'"),
    ):
        StoragePools(lxd).create("p", "zfs", {"source": "tank"}, members=["m1", "m2"])
    assert len(lxd.requests("POST", POOLS)) == 1


def test_a_non_json_answer_to_the_global_create_is_refused(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", f"{POOLS}/p", reply.error(404, "Storage pool not found"))
    lxd.on("POST", POOLS, reply.raw(200, PROXY_PAGE, "text/html"))
    with pytest.raises(
        LxdApiError,
        match=exactly("LXD sent a non-JSON answer while creating storage pool 'p' (dir)"),
    ):
        StoragePools(lxd).create("p", "dir", {})
    assert len(lxd.requests("GET", f"{POOLS}/p")) == 1  # the pool is not read back


def test_a_pool_gone_right_after_its_creation_is_refused(lxd: FakeLxd, reply: Replies) -> None:
    # Another client deleted it between LXD's answer and the read that follows.
    gone = reply.error(404, "Storage pool not found")
    lxd.on("GET", f"{POOLS}/p", gone, reply.error(404, "Storage pool not found"))
    lxd.on("POST", POOLS, reply.sync())
    with pytest.raises(
        LxdApiError, match=exactly("storage pool 'p' vanished right after its creation")
    ):
        StoragePools(lxd).create("p", "dir", {})


# --- deleting ------------------------------------------------------------------------


def _deletable(lxd: FakeLxd, reply: Replies) -> None:
    pool = {**created("remote", "ceph"), "config": {"volatile.pool.pristine": "true"}}
    lxd.on("GET", f"{POOLS}/remote", reply.sync(pool))
    lxd.on("GET", f"{POOLS}/remote/volumes", reply.sync([]))


def test_a_non_json_answer_to_keeping_the_osd_pool_stops_before_the_delete(
    lxd: FakeLxd, reply: Replies
) -> None:
    _deletable(lxd, reply)
    lxd.on("PATCH", f"{POOLS}/remote", reply.raw(200, PROXY_PAGE, "text/html"))
    lxd.on("DELETE", f"{POOLS}/remote", reply.sync())
    with pytest.raises(
        LxdApiError,
        match=exactly("LXD sent a non-JSON answer while keeping the storage behind pool 'remote'"),
    ):
        StoragePools(lxd).delete("remote", keep_backing=True)
    assert lxd.requests("DELETE") == []


def test_a_non_json_answer_to_the_delete_is_refused(lxd: FakeLxd, reply: Replies) -> None:
    _deletable(lxd, reply)
    lxd.on("DELETE", f"{POOLS}/remote", reply.raw(200, PROXY_PAGE, "text/html"))
    with pytest.raises(
        LxdApiError,
        match=exactly("LXD sent a non-JSON answer while deleting storage pool 'remote'"),
    ):
        StoragePools(lxd).delete("remote")
