"""`lxd_charm.ceph_relation.CephRelation` driven directly, each decision at its edge.

test_ceph.py runs whole hooks; these build the relation inside one hook
(as its cluster-member test does) with the memory and options each case
needs, and assert the whole outcome: the problem returned, the files with
their modes, what LXD was asked, and the log lines an operator reads.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
from ops import testing

from lxd_charm import ceph, ceph_relation
from lxd_charm.ceph_relation import CephRelation
from lxd_charm.config import LxdConfig
from lxd_charm.machine import Machine
from lxd_charm.memory import Memory
from lxd_charm.outcomes import BlockedError, WaitingError
from lxd_common.errors import LxdApiError
from lxd_common.lxd import StoragePool
from tests.harness.fake_host import FakeHost
from tests.harness.fake_storage import FakeStoragePools

KEY = "AQBKjA5rHe5WEBAALWvAS4Nfhz5Ye27XGJmpmg=="
"""A key `ceph auth get-or-create-key` issued (Ceph 16.2)."""
EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
CEPH_DIR = Path("var/snap/lxd/common/ceph")


def mon(**extra: str) -> dict[str, str]:
    bag = {"auth": "cephx", "key": KEY, "ceph-public-address": "10.0.0.11", **extra}
    return {k: v for k, v in bag.items() if v}


def ceph_rel(*units: dict[str, str], local: dict[str, str] | None = None) -> testing.Relation:
    return testing.Relation(
        "ceph",
        remote_app_name="ceph-mon",
        id=9,
        remote_units_data=dict(enumerate(units)),
        local_unit_data=local or {},
    )


class Pools(FakeStoragePools):
    """The fake, with LXD refusing deletes for a reason other than volumes, and every create asked.

    Real LXD refuses to create a pool that exists; the fake quietly returns it,
    so what the charm asks is recorded here.
    """

    refuse_delete: str = ""
    asked: tuple[str, ...] = ()

    def create(self, name: str, driver: str, config: Any, *, members: Any = ()) -> StoragePool:
        self.asked = (*self.asked, name)
        return super().create(name, driver, config, members=members)

    def delete(self, name: str, *, keep_backing: bool = False) -> bool:
        if self.refuse_delete:
            raise LxdApiError(self.refuse_delete)
        return super().delete(name, keep_backing=keep_backing)


@pytest.fixture
def pools(host: FakeHost) -> Pools:
    fake = Pools()
    host.fake_lxd.storage = fake
    return fake


@contextmanager
def relation(
    ctx: testing.Context[Any],
    host: FakeHost,
    rel: testing.Relation | None = None,
    *,
    initialised: bool = True,
    clustered: bool = False,
    **config: Any,
) -> Iterator[CephRelation]:
    """A CephRelation of the leader inside one hook (the hook itself runs when the block ends)."""
    state = testing.State(
        leader=True,
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations=frozenset({rel}) if rel else frozenset(),
    )
    mode: Literal["standalone", "cluster"] = "cluster" if clustered else "standalone"
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(
            host, Memory(initialised=initialised), LxdConfig(mode=mode, **config), environ={}
        )
        yield CephRelation(manager.charm, machine, clustered=clustered)


def files(host: FakeHost) -> tuple[Path, Path]:
    directory = host.root / CEPH_DIR
    return directory / "ceph.conf", directory / "ceph.client.lxd.keyring"


def plant(host: FakeHost, *, conf: bool = True, keyring: bool = True) -> None:
    conf_path, keyring_path = files(host)
    conf_path.parent.mkdir(parents=True, exist_ok=True)
    if conf:
        conf_path.write_text("[global]\nmon host = 10.0.0.11\n")
    if keyring:
        keyring_path.write_text(f"[client.lxd]\n\tkey = {KEY}\n")


def answered(local: dict[str, str] | None = None) -> testing.Relation:
    """ceph-mon made the pool this unit asked for."""
    request = ceph.broker_request([ceph.pool_op("lxd", 3)], None)
    rid = json.loads(request)["request-id"]
    rsp = json.dumps({"exit-code": 0, "request-id": rid})
    return ceph_rel(
        mon(**{"broker-rsp-lxd-0": rsp}), local={"broker_req": request, **(local or {})}
    )


# --- what write_files and serve return --------------------------------------------


def test_write_files_returns_the_problem_it_found(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    with relation(ctx, host, ceph_rel(mon(key=""))) as ceph_relation_:
        problem = ceph_relation_.write_files()
    assert isinstance(problem, WaitingError)
    assert str(problem) == "waiting for ceph-mon to send this application's key and monitors"


def test_serve_checks_the_snaps_option_before_asking_for_a_pool(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    with relation(
        ctx, host, ceph_rel(mon()), snap_config_ceph_builtin=False, ceph_create_pool=True
    ) as rel:
        problem = rel.serve()
        asked = dict(rel._relation().data[rel._unit])  # type: ignore[union-attr]
    assert isinstance(problem, BlockedError)
    assert str(problem) == (
        "the ceph relation needs the snap's own Ceph configuration: "
        "juju config lxd snap-config-ceph-builtin=true"
    )
    assert "broker_req" not in asked


def test_serve_asks_for_no_pool_before_ceph_mon_sent_the_key(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    with relation(ctx, host, ceph_rel(mon(key="")), ceph_create_pool=True) as rel:
        problem = rel.serve()
        asked = dict(rel._relation().data[rel._unit])  # type: ignore[union-attr]
    assert isinstance(problem, WaitingError)
    assert str(problem) == "waiting for ceph-mon to send this application's key and monitors"
    assert "broker_req" not in asked


def test_before_lxd_is_initialised_no_lxd_pool_is_made(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    with relation(ctx, host, answered(), initialised=False, ceph_create_pool=True) as rel:
        assert rel.serve() is None
        assert pools.calls == []


# --- the LXD pool ----------------------------------------------------------------------


def test_a_pending_ceph_pool_of_that_name_is_created(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    pools.pools["lxd"] = StoragePool("lxd", "ceph", "Pending", {}, [], ["lxd0"])
    with relation(ctx, host, answered(), ceph_create_pool=True) as rel:
        assert rel.serve() is None
        assert pools.calls == [("create", "lxd", "")]
        assert pools.pools["lxd"].created


def test_a_created_ceph_pool_of_that_name_is_left_as_it_is(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    pools.pools["lxd"] = StoragePool("lxd", "ceph", "Created", {"source": "lxd"})
    with relation(ctx, host, answered(), ceph_create_pool=True) as rel:
        assert rel.serve() is None
        assert pools.calls == []
        assert pools.asked == ()


def test_a_cluster_leader_defines_the_pool_on_every_member_first(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    host.fake_lxd.cluster.enable("lxd0", "10.0.0.1:8443")
    members = [m.name for m in host.fake_lxd.cluster.members()]
    assert members
    with relation(ctx, host, answered(), clustered=True, ceph_create_pool=True) as rel:
        assert rel.serve() is None
        assert pools.calls == [*(("define", "lxd", m) for m in members), ("create", "lxd", "")]


# --- after a break ---------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["cephfs", "cephobject", "ceph"])
def test_any_ceph_driver_keeps_the_files_naming_the_pool(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools, driver: str
) -> None:
    plant(host)
    pools.pools["shared"] = StoragePool("shared", driver, "Created", {})
    with relation(ctx, host) as rel:
        problem = rel.serve()
        assert all(path.exists() for path in files(host))
    assert isinstance(problem, BlockedError)
    assert str(problem) == (
        "storage pool shared still uses Ceph without the ceph relation: "
        "delete it (lxc storage delete shared) or relate ceph again"
    )


def test_without_files_a_break_leaves_lxd_alone(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    pools.pools["shared"] = StoragePool("shared", "cephfs", "Created", {})
    with relation(ctx, host) as rel:
        assert rel.serve() is None
    assert pools.calls == []


@pytest.mark.parametrize(("conf", "keyring"), [(True, False), (False, True)])
def test_one_file_left_is_removed_too(
    ctx: testing.Context[Any],
    host: FakeHost,
    pools: Pools,
    conf: bool,
    keyring: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plant(host, conf=conf, keyring=keyring)
    name = "ceph.conf" if conf else "ceph.client.lxd.keyring"
    with (
        caplog.at_level(logging.INFO, logger="lxd_charm.ceph_relation"),
        relation(ctx, host) as rel,
    ):
        assert rel.serve() is None
        assert not any(path.exists() for path in files(host))
        logged = [r.getMessage() for r in caplog.records if r.name == "lxd_charm.ceph_relation"]
    assert logged == [f"ceph relation gone: removed {name}"]


def test_before_lxd_is_initialised_a_break_removes_the_files_without_asking_lxd(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools, caplog: pytest.LogCaptureFixture
) -> None:
    plant(host)
    pools.pools["shared"] = StoragePool("shared", "ceph", "Created", {})
    with (
        caplog.at_level(logging.INFO, logger="lxd_charm.ceph_relation"),
        relation(ctx, host, initialised=False) as rel,
    ):
        assert rel.serve() is None
        assert not any(path.exists() for path in files(host))
        logged = [r.getMessage() for r in caplog.records if r.name == "lxd_charm.ceph_relation"]
    assert logged == ["ceph relation gone: removed ceph.conf, ceph.client.lxd.keyring"]


def test_lxd_refusing_to_delete_our_pool_blocks_with_its_words(
    ctx: testing.Context[Any], host: FakeHost, pools: Pools
) -> None:
    plant(host)
    pools.pools["lxd"] = StoragePool("lxd", "ceph", "Created", {"ceph.user.name": "lxd"})
    pools.refuse_delete = "Failed to delete: the daemon is shutting down"
    with relation(ctx, host) as rel:
        problem = rel.serve()
        assert all(path.exists() for path in files(host))
    assert isinstance(problem, BlockedError)
    assert str(problem) == (
        "cannot delete the storage pool lxd: Failed to delete: the daemon is shutting down"
    )


# --- the files -------------------------------------------------------------------------


def test_files_have_their_modes_and_are_not_rewritten_unchanged(
    ctx: testing.Context[Any], host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    conf_path, keyring_path = files(host)
    with (
        caplog.at_level(logging.INFO, logger="lxd_charm.ceph_relation"),
        relation(ctx, host, ceph_rel(mon())) as rel,
    ):
        assert rel.write_files() is None
        assert stat.S_IMODE(conf_path.stat().st_mode) == 0o644
        assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
        inodes = (conf_path.stat().st_ino, keyring_path.stat().st_ino)
        first = [r.getMessage() for r in caplog.records if r.name == "lxd_charm.ceph_relation"]
        caplog.clear()
        assert rel.write_files() is None
        assert (conf_path.stat().st_ino, keyring_path.stat().st_ino) == inodes
        again = [r.getMessage() for r in caplog.records if r.name == "lxd_charm.ceph_relation"]
    assert first == ["ceph.conf written: monitors 10.0.0.11"]
    assert again == []


def test_a_keyring_made_readable_is_rewritten_private(
    ctx: testing.Context[Any], host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    conf_path, keyring_path = files(host)
    with (
        caplog.at_level(logging.INFO, logger="lxd_charm.ceph_relation"),
        relation(ctx, host, ceph_rel(mon())) as rel,
    ):
        assert rel.write_files() is None
        keyring_path.chmod(0o644)
        inode = conf_path.stat().st_ino
        caplog.clear()
        assert rel.write_files() is None
        assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
        assert conf_path.stat().st_ino == inode
        logged = [r.getMessage() for r in caplog.records if r.name == "lxd_charm.ceph_relation"]
    assert logged == ["ceph keyring for client.lxd written"]


def test_replace_returns_whether_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert ceph_relation._replace(path, "a", 0o640) is True
    assert ceph_relation._replace(path, "a", 0o640) is False
    assert ceph_relation._replace(path, "a", 0o600) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ceph_relation._replace(path, "b", 0o600) is True
    assert path.read_text() == "b"


def test_a_failed_replace_raises_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "ceph.conf"
    with pytest.raises(UnicodeEncodeError):
        ceph_relation._replace(target, "mon host = \udc80", 0o644)  # fails while writing
    assert list(tmp_path.iterdir()) == []
