"""The `ceph` relation on a real Ceph 16.2 (one monitor, one OSD on loopback) and real LXD.

ceph-mon's part is played by the test with a real Ceph cluster
(`tests.harness.ceph.CephCluster`): it issues the key `client.lxd` gets, and
answers the charm's broker request by creating the RBD pool as ceph-mon's
broker does. The charm's own files must then reach Ceph (`ceph -s` with
them), and LXD, configured by the charm, creates its `remote` pool on it.

How far this goes on this machine: up to the pool. Creating a volume in it
makes LXD map an RBD image through the kernel, and this sandbox's kernel has
no `rbd` module; `test_a_volume_needs_the_rbd_kernel_module` records LXD's
exact words (docs/interfaces/ceph-client.md quotes them).

Debian's LXD is not the snap: it reads Ceph's files where `CEPH_CONF`
points, which the test sets to the charm's ceph.conf before the daemon
starts (the snap, with ceph.builtin=true, reads the same directory).
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from ops import testing

from lxd_charm.cluster_join import Refusal, refusal
from lxd_common.errors import LxdApiError
from lxd_common.lxd import LxdClient, StoragePools
from tests.harness.agent_context import CharmContext
from tests.harness.ceph import CephCluster, missing_tools
from tests.harness.clusters import form_cluster
from tests.harness.databags import local_unit_data
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_on

logger = logging.getLogger(__name__)
CEPH_DIR = Path("var/snap/lxd/common/ceph")
RBD_MAP_REFUSAL = "rbd: failed to load rbd kernel module"


@pytest.fixture(scope="module")
def ceph_cluster() -> Iterator[CephCluster]:
    problem = missing_tools()
    if problem:
        pytest.fail(problem)
    cluster = CephCluster()
    try:
        cluster.start()
        logger.warning("Ceph bootstrap took %.1f s", cluster.bootstrap_seconds)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    return tmp_path / "machine"


@pytest.fixture
def ceph_daemon(lxd_pool: DaemonPool, machine: Path, monkeypatch: pytest.MonkeyPatch) -> LxdDaemon:
    """A daemon that reads Ceph's client files where the charm writes them."""
    monkeypatch.setenv("CEPH_CONF", str(machine / CEPH_DIR / "ceph.conf"))
    return lxd_pool.start(1)[0]


def mon_bag(ceph: CephCluster, key: str, **extra: str) -> dict[str, str]:
    return {"auth": "cephx", "key": key, "ceph-public-address": ceph.host, **extra}


def relation(bag: dict[str, str], local: dict[str, str] | None = None) -> testing.Relation:
    return testing.Relation(
        "ceph",
        remote_app_name="ceph-mon",
        id=5,
        remote_units_data={0: bag},
        local_unit_data=local or {},
    )


def changed(ctx: CharmContext, state: testing.State, rel: testing.Relation) -> testing.State:
    state = replace(state, relations=frozenset({rel}))
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def as_client(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ceph CLI as `client.lxd`, with nothing but the charm's two files."""
    return subprocess.run(
        ["ceph", "--id", "lxd", "-c", str(conf), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def broker(ceph: CephCluster, state: testing.State, rel: testing.Relation) -> testing.Relation:
    """ceph-mon's broker: do what the charm asked, answer under its unit's key."""
    request = json.loads(local_unit_data(state.get_relation(rel.id))["broker_req"])
    for op in request["ops"]:
        assert op["op"] == "create-pool"
        ceph.create_pool(op["name"])
    reply = {"exit-code": 0, "request-id": request["request-id"]}
    bag = {**rel.remote_units_data[0], "broker-rsp-lxd-0": json.dumps(reply)}
    return replace(
        rel,
        remote_units_data={0: bag},
        local_unit_data=state.get_relation(rel.id).local_unit_data,
    )


CONFIG: dict[str, str | int | bool] = {
    "lxd-init-network": False,
    "snap-config-ceph-builtin": True,
    "ceph-create-pool": True,
    "ceph-rbd-pool": "lxd",
    "ceph-rbd-replicas": 1,
}


def test_files_reach_ceph_and_lxd_gets_a_remote_pool_removed_with_the_relation(
    ceph_cluster: CephCluster,
    ceph_daemon: LxdDaemon,
    machine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = lxd_charm_on(ceph_daemon, tmp_path, monkeypatch)
    key = ceph_cluster.issue_key("lxd")
    state = ctx.run(ctx.on.install(), testing.State(config=CONFIG, resources=EMPTY_RESOURCES))

    rel = relation(mon_bag(ceph_cluster, key))
    state = changed(ctx, state, rel)
    conf = machine / CEPH_DIR / "ceph.conf"
    keyring = machine / CEPH_DIR / "ceph.client.lxd.keyring"
    assert keyring.stat().st_mode & 0o777 == 0o600
    status = as_client(conf, "-s", "--format", "json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["fsid"] == ceph_cluster.fsid
    assert report["quorum_names"] == ["a"]
    assert state.unit_status == testing.WaitingStatus(
        "waiting for ceph-mon to create the RBD pool lxd"
    )

    started = time.monotonic()
    rel = broker(ceph_cluster, state, rel)
    state = changed(ctx, state, rel)
    logger.warning("pool on Ceph and in LXD: %.1f s", time.monotonic() - started)
    assert state.unit_status.name == "active", state.unit_status.message
    lxd = ceph_daemon.client()
    pool = lxd.storage.get("lxd")
    assert pool is not None and pool.created and pool.driver == "ceph"
    assert pool.config["ceph.user.name"] == "lxd"
    assert pool.config["ceph.osd.pool_name"] == "lxd"
    # LXD marks the OSD pool as in use with an image of its own, as client.lxd.
    images = subprocess.run(
        ["rbd", "--id", "lxd", "-c", str(conf), "-p", "lxd", "ls"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert images.stdout.split() == ["lxd_lxd"]

    state = ctx.run(ctx.on.relation_broken(rel), state)
    assert state.unit_status.name == "active", state.unit_status.message
    assert lxd.storage.get("lxd") is None
    assert "lxd" in ceph_cluster.admin("osd", "pool", "ls").split()  # ceph-mon's pool stays
    assert not conf.exists()
    assert not keyring.exists()


def test_a_volume_needs_the_rbd_kernel_module(
    ceph_cluster: CephCluster, ceph_daemon: LxdDaemon, machine: Path
) -> None:
    """Where this machine stops: LXD maps RBD images with the kernel's rbd driver."""
    key = ceph_cluster.issue_key("lxd")
    ceph_cluster.create_pool("vols")
    directory = machine / CEPH_DIR
    directory.mkdir(parents=True)
    (directory / "ceph.conf").write_text(
        f"[global]\nmon host = {ceph_cluster.host}\nkeyring = {directory}/$cluster.$name.keyring\n"
    )
    (directory / "ceph.client.lxd.keyring").write_text(f"[client.lxd]\n\tkey = {key}\n")
    lxd = ceph_daemon.client()
    lxd.storage.create("vols", "ceph", {"source": "vols", "ceph.user.name": "lxd"})
    result = ceph_daemon.lxc(
        "storage", "volume", "create", "vols", "v1", "size=64MiB", check=False
    )
    if result.returncode == 0:  # a kernel with rbd: this machine goes further
        assert lxd.storage.volumes("vols") == ["custom/v1"]
        return
    assert "rbd --id lxd --cluster ceph --pool vols map custom_default_v1" in result.stderr
    assert RBD_MAP_REFUSAL in result.stderr, result.stderr
    assert not Path("/sys/bus/rbd").exists()
    assert lxd.storage.volumes("vols") == []


def test_cluster_wide_pool_pending_on_each_member_then_created(
    ceph_cluster: CephCluster,
    lxd_pool: DaemonPool,
    machine: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LXD's two steps for a pool in a cluster, as `StoragePools.create` takes them."""
    key = ceph_cluster.issue_key("lxd")
    ceph_cluster.create_pool("shared")
    directory = machine / CEPH_DIR
    directory.mkdir(parents=True)
    conf = directory / "ceph.conf"
    conf.write_text(
        f"[global]\nmon host = {ceph_cluster.host}\nkeyring = {directory}/$cluster.$name.keyring\n"
    )
    (directory / "ceph.client.lxd.keyring").write_text(f"[client.lxd]\n\tkey = {key}\n")
    monkeypatch.setenv("CEPH_CONF", str(conf))
    daemons = lxd_pool.start(3)
    form_cluster(daemons[:2])
    lxd: LxdClient = daemons[0].client()
    at_bootstrap = lxd.cluster.member_config()  # what the charm's peer protocol hands joiners
    pools = StoragePools(lxd.pylxd)
    members = [m.name for m in lxd.cluster.members()]
    created = pools.create(
        "shared", "ceph", {"source": "shared", "ceph.user.name": "lxd"}, members=members
    )
    assert created.created
    assert sorted(created.locations) == sorted(members)
    other = daemons[1].client().storage.get("shared")
    assert other is not None and other.created
    # LXD now lists the pool's `source` among a joiner's keys, without a value...
    per_member = [c for c in lxd.cluster.member_config() if c["name"] == "shared"]
    assert per_member == [
        {"entity": "storage-pool", "name": "shared", "key": "source", "value": ""}
    ]
    # ...yet a member joining with the member_config of before the pool gets it too.
    joiner = daemons[2]
    token = lxd.cluster.add_join_token(joiner.name)
    joiner.client().join_cluster(joiner.name, joiner.address, token.token, at_bootstrap)
    joined = joiner.client().storage.get("shared")
    assert joined is not None and joined.created
    assert joiner.name in joined.locations
    # A member whose LXD cannot read Ceph's files cannot join at all: the charm
    # writes them before its cluster steps (`CephRelation.write_files`).
    monkeypatch.setenv("CEPH_CONF", str(directory / "absent.conf"))
    (blind,) = lxd_pool.start(1)
    token = lxd.cluster.add_join_token(blind.name)
    with pytest.raises(LxdApiError) as refused:
        blind.client().join_cluster(blind.name, blind.address, token.token, at_bootstrap)
    said = str(refused.value)
    logger.warning("a joiner that cannot see the pool: %s", said)
    assert 'Failed to create storage pool "shared": Placeholder volume does not exist' in said
    # The charm waits on this refusal (bounded), because it passes: once this
    # member's LXD sees the pool, the same join with a new token succeeds, with
    # nothing left over from the refused one.
    assert refusal(refused.value) is Refusal.PENDING
    (directory / "absent.conf").write_text(conf.read_text())
    token = lxd.cluster.add_join_token(blind.name)
    blind.client().join_cluster(blind.name, blind.address, token.token, at_bootstrap)
    rejoined = blind.client().storage.get("shared")
    assert rejoined is not None and rejoined.created
    assert blind.name in rejoined.locations
    assert pools.delete("shared", keep_backing=True)
    assert "shared" in ceph_cluster.admin("osd", "pool", "ls").split()
