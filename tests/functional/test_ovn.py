"""`ovsdb-cms` and `certificates` against real OVN: ovsdb-server over SSL, and LXD using it.

ops.testing plays Juju, the certificate authority (a test CA answering the
charm's CSR, or sending the OVN charms' legacy shared client pair) and
ovn-central (its units' `bound-address`). Everything else is real: the
charm's files and keys, LXD's `network.ovn.northbound_connection`, the
northbound and southbound databases served by Debian's `ovsdb-server`, and
LXD creating an OVN network in them. The chassis side stops short of
packets: this kernel has no openvswitch module (see tests/harness/ovn.py).
"""

from __future__ import annotations

import importlib
import json
import logging
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm.ovn import SNAP_OVN_DIR
from tests.harness.agent_context import CharmContext
from tests.harness.clusters import form_cluster
from tests.harness.databags import get_relation, local_unit_data
from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_in_process, lxd_charm_on
from tests.harness.ovn import (
    Chassis,
    OvnCa,
    OvnCentral,
    OvnDaemonPool,
    create_ovn_network,
    legacy_answer,
    lxc,
    missing_tools,
    uplink_bridge,
    v4_answer,
)

CERTS_ID = 5
CMS_ID = 6


@dataclass
class Ovn:
    """One test's OVN: the CA, the central databases, the chassis and LXD."""

    ca: OvnCa
    central: OvnCentral
    chassis: Chassis
    daemon: LxdDaemon
    etc_ovn: Path
    ctx: CharmContext


@pytest.fixture
def ovn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ovn]:
    problem = missing_tools()
    if problem:
        pytest.fail(problem)
    etc_ovn = tmp_path / "machine" / SNAP_OVN_DIR
    chassis_dir = tmp_path / "chassis"
    pool = OvnDaemonPool(etc_ovn=etc_ovn, ovs_run=chassis_dir / "run")
    central = chassis = None
    try:
        (daemon,) = pool.start(1)
        ca = OvnCa()
        central = OvnCentral(daemon.host, ca, tmp_path / "central").start()
        chassis = Chassis(central, chassis_dir).start()
        ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)
        yield Ovn(ca, central, chassis, daemon, etc_ovn, ctx)
    finally:
        pool.cleanup()
        if chassis is not None:
            chassis.stop()
        if central is not None:
            central.stop()


def cms_relation(*addresses: str) -> testing.Relation:
    return testing.Relation(
        "ovsdb-cms",
        remote_app_name="ovn-central",
        id=CMS_ID,
        remote_units_data={
            i: {"bound-address": json.dumps(address)} for i, address in enumerate(addresses)
        },
    )


def certs_relation(**kwargs: Any) -> testing.Relation:
    return testing.Relation(
        "certificates",
        remote_app_name="vault",
        id=CERTS_ID,
        remote_units_data=kwargs.pop("remote_units_data", {0: {}}),
        **kwargs,
    )


def installed(ovn: Ovn, *relations: testing.Relation) -> testing.State:
    address = testing.Address(ovn.daemon.host)
    state = testing.State(
        config={"lxd-init-network": False},
        networks={testing.Network("ovsdb-cms", [testing.BindAddress([address])])},
        relations=set(relations),
        resources=frozenset(EMPTY_RESOURCES),
    )
    return ovn.ctx.run(ovn.ctx.on.install(), state)


def changed(ovn: Ovn, state: testing.State, relation: testing.RelationBase) -> testing.State:
    others = {r for r in state.relations if r.id != relation.id}
    state = replace(state, relations=frozenset({*others, relation}))
    return ovn.ctx.run(ovn.ctx.on.relation_changed(relation, remote_unit=0), state)


def issued_v4(ovn: Ovn) -> testing.State:
    """Install, relate the CA, answer the charm's CSR: the unit holds a signed certificate."""
    state = installed(ovn, certs_relation())
    state = changed(ovn, state, state.get_relation(CERTS_ID))
    sent = dict(local_unit_data(state.get_relation(CERTS_ID)))
    assert "certificate_signing_requests" in sent, sent
    assert state.unit_status == testing.WaitingStatus(
        "waiting for a client certificate from vault"
    )
    answered = replace(get_relation(state, CERTS_ID), remote_app_data=v4_answer(ovn.ca, sent))
    return changed(ovn, state, answered)


def nb_connection(ovn: Ovn) -> str:
    return str(ovn.daemon.client().server_config().get("network.ovn.northbound_connection", ""))


def uplink(ovn: Ovn, bridge: str) -> None:
    result = lxc(
        ovn.daemon,
        "network",
        "create",
        "upl",
        "--type=physical",
        f"parent={bridge}",
        "ipv4.gateway=10.230.0.1/24",
        "ipv4.ovn.ranges=10.230.0.200-10.230.0.220",
        "ipv4.routes=10.231.0.0/16",
    )
    assert result.returncode == 0, result.stderr


def test_lxd_creates_an_ovn_network_with_the_certificate_the_charm_got_for_its_csr(
    ovn: Ovn,
) -> None:
    state = issued_v4(ovn)
    key = ovn.etc_ovn / "key_host"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (ovn.etc_ovn / "ovn-central.crt").read_text().startswith("-----BEGIN CERTIFICATE")
    # Without ovsdb-cms nothing points LXD at OVN yet.
    assert nb_connection(ovn) == ""

    state = changed(ovn, state, cms_relation(ovn.daemon.host))

    assert nb_connection(ovn) == f"ssl:{ovn.daemon.host}:6641"
    assert state.unit_status == testing.ActiveStatus(
        "standalone; no network listener; ovn northbound reachable (1/1)"
    )
    sent = local_unit_data(state.get_relation(CMS_ID))
    assert sent["cms-client-bound-address"] == ovn.daemon.host
    with uplink_bridge() as bridge:
        uplink(ovn, bridge)
        result = create_ovn_network(ovn.daemon, "upl", "ovn0", 1)
        assert result.returncode == 0, result.stderr
        # LXD wrote its logical router into the real northbound database over SSL.
        routers = ovn.central.nbctl("--bare", "--columns=name", "list", "Logical_Router")
        assert any(name.endswith("-lr") for name in routers.split()), routers
        shown = lxc(ovn.daemon, "network", "show", "ovn0")
        assert "status: Created" in shown.stdout, shown.stdout
        assert lxc(ovn.daemon, "network", "delete", "ovn0").returncode == 0
        assert lxc(ovn.daemon, "network", "delete", "upl").returncode == 0


def test_a_certificate_from_another_ca_is_refused_and_lxd_says_so_too(ovn: Ovn) -> None:
    other = OvnCa("another-ca")
    cert, key = other.issue("lxd-0")
    # The CA says it is ovn-central's, but signed our certificate with another.
    legacy = legacy_answer(ovn.ca, cert, key)
    legacy["ca"] = ovn.ca.pem
    state = installed(ovn, certs_relation(remote_units_data={0: legacy}))
    state = changed(ovn, state, cms_relation(ovn.daemon.host))

    assert state.unit_status.name == "blocked"
    assert "refused the client certificate from vault/0" in state.unit_status.message
    # The charm checked the pair itself: only the signer is wrong.
    assert (ovn.etc_ovn / "cert_host").read_text() == cert
    with uplink_bridge() as bridge:
        uplink(ovn, bridge)
        result = create_ovn_network(ovn.daemon, "upl", "ovn1", 2)
    assert result.returncode != 0
    # LXD's own words (captured): "... ovn-nbctl: ssl:<addr>:6641: database connection
    # failed (Broken pipe)"
    assert f"ssl:{ovn.daemon.host}:6641: database connection failed" in result.stderr


def test_central_unreachable_waits_and_lxd_cannot_connect(ovn: Ovn) -> None:
    cert, key = ovn.ca.issue("lxd-0")
    state = installed(ovn, certs_relation(remote_units_data={0: legacy_answer(ovn.ca, cert, key)}))
    state = changed(ovn, state, cms_relation(ovn.daemon.host))
    assert state.unit_status == testing.ActiveStatus(
        "standalone; no network listener; ovn northbound reachable (1/1)"
    )

    ovn.central.stop_db("nb")
    state = ovn.ctx.run(ovn.ctx.on.config_changed(), state)

    assert state.unit_status.name == "waiting"
    assert state.unit_status.message == (
        f"ovn: central unreachable: ovn-central/0 at {ovn.daemon.host}:6641: Connection refused"
    )
    with uplink_bridge() as bridge:
        uplink(ovn, bridge)
        result = create_ovn_network(ovn.daemon, "upl", "ovn2", 3)
    assert result.returncode != 0
    assert "database connection failed (Connection refused)" in result.stderr

    ovn.central.start_db("nb")
    state = ovn.ctx.run(ovn.ctx.on.config_changed(), state)
    assert state.unit_status.name == "active"


def test_rotation_replaces_the_files_and_a_broken_relation_removes_them(ovn: Ovn) -> None:
    state = issued_v4(ovn)
    state = changed(ovn, state, cms_relation(ovn.daemon.host))
    first = (ovn.etc_ovn / "cert_host").read_text()

    # The CA renews: it answers the same CSR with a new certificate.
    certs = get_relation(state, CERTS_ID)
    renewed = replace(certs, remote_app_data=v4_answer(ovn.ca, dict(local_unit_data(certs))))
    state = changed(ovn, state, renewed)
    second = (ovn.etc_ovn / "cert_host").read_text()
    assert second != first
    assert state.unit_status.name == "active", state.unit_status
    # LXD reads the files each time it talks to OVN: the renewed pair works at once.
    with uplink_bridge() as bridge:
        uplink(ovn, bridge)
        result = create_ovn_network(ovn.daemon, "upl", "ovn4", 5)
        assert result.returncode == 0, result.stderr
        assert lxc(ovn.daemon, "network", "delete", "ovn4").returncode == 0
        assert lxc(ovn.daemon, "network", "delete", "upl").returncode == 0

    state = replace(state, relations=frozenset({state.get_relation(CMS_ID), certs}))
    assert [s.owner for s in state.secrets if "private-key" in (s.label or "")] == ["unit"]
    state = ovn.ctx.run(ovn.ctx.on.relation_broken(state.get_relation(CERTS_ID)), state)
    assert not (ovn.etc_ovn / "cert_host").exists()
    assert not (ovn.etc_ovn / "key_host").exists()
    # The library's private key secret goes with the relation.
    assert [s for s in state.secrets if "private-key" in (s.label or "")] == []
    assert state.unit_status == testing.BlockedStatus(
        "ovsdb-cms needs the certificates relation: juju integrate lxd:certificates vault "
        "(the certificate authority ovn-central uses)"
    )

    broken = ovn.ctx.run(
        ovn.ctx.on.relation_broken(state.get_relation(CMS_ID)),
        replace(state, relations=frozenset({state.get_relation(CMS_ID)})),
    )
    assert nb_connection(ovn) == ""
    assert broken.unit_status.name == "active"


def test_a_ca_that_did_not_sign_the_central_certificate_is_named(ovn: Ovn) -> None:
    other = OvnCa("another-ca")
    cert, key = other.issue("lxd-0")
    state = installed(ovn, certs_relation(remote_units_data={0: legacy_answer(other, cert, key)}))
    state = changed(ovn, state, cms_relation(ovn.daemon.host))

    assert state.unit_status.name == "blocked"
    assert state.unit_status.message.startswith(
        f"ovn: the certificate of ovn-central/0 at {ovn.daemon.host}:6641 is not signed by "
        "the CA from vault/0 (self-signed certificate in certificate chain)"
    ), state.unit_status.message
    with uplink_bridge() as bridge:
        uplink(ovn, bridge)
        result = create_ovn_network(ovn.daemon, "upl", "ovn3", 4)
    assert result.returncode != 0
    # LXD's words (captured): "SSL_connect: error:0A000086:SSL routines::certificate
    # verify failed ... ssl:<addr>:6641: database connection failed (Protocol error)"
    assert "certificate verify failed" in result.stderr
    assert f"ssl:{ovn.daemon.host}:6641: database connection failed" in result.stderr


def test_update_status_on_a_healthy_unit_follows_central_going_and_coming_back(
    ovn: Ovn,
) -> None:
    """update-status probes the real database (no LXD call): the status stays true."""
    cert, key = ovn.ca.issue("lxd-0")
    state = installed(ovn, certs_relation(remote_units_data={0: legacy_answer(ovn.ca, cert, key)}))
    state = changed(ovn, state, cms_relation(ovn.daemon.host))
    reachable = testing.ActiveStatus(
        "standalone; no network listener; ovn northbound reachable (1/1)"
    )
    assert state.unit_status == reachable
    assert ovn.ctx.run(ovn.ctx.on.update_status(), state).unit_status == reachable

    ovn.central.stop_db("nb")
    started = time.monotonic()
    state = ovn.ctx.run(ovn.ctx.on.update_status(), state)
    logging.getLogger(__name__).warning(
        "update-status with central down: %.2f s", time.monotonic() - started
    )
    assert state.unit_status == testing.WaitingStatus(
        f"ovn: central unreachable: ovn-central/0 at {ovn.daemon.host}:6641: Connection refused"
    )

    ovn.central.start_db("nb")
    state = ovn.ctx.run(ovn.ctx.on.update_status(), state)
    assert state.unit_status == reachable


@pytest.fixture
def two_members(tmp_path: Path) -> Iterator[tuple[LxdDaemon, LxdDaemon, OvnCa, OvnCentral]]:
    """A real 2-member LXD cluster (formed by hand) and a real OVN central on its loopback."""
    problem = missing_tools()
    if problem:
        pytest.fail(problem)
    pool = OvnDaemonPool(etc_ovn=tmp_path / "machine" / SNAP_OVN_DIR, ovs_run=tmp_path / "run")
    central = None
    try:
        first, second = pool.start(2)
        form_cluster([first, second])
        ca = OvnCa()
        central = OvnCentral(first.host, ca, tmp_path / "central").start()
        yield first, second, ca, central
    finally:
        pool.cleanup()
        if central is not None:
            central.stop()


def serve_as_leader(
    daemon: LxdDaemon,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    relations: set[testing.RelationBase],
    app_bag: dict[str, str],
) -> dict[str, str]:
    """One cluster member's OVN step as the leader, on its own daemon; the peer app bag after."""
    from lxd_charm.config import LxdConfig
    from lxd_charm.machine import Machine
    from lxd_charm.memory import Memory
    from lxd_charm.ovn_relation import OvnRelation

    ctx = lxd_charm_in_process(daemon, root, monkeypatch)  # drives OvnRelation itself
    host = importlib.import_module("lxd_charm.host").make_host()
    peer = testing.PeerRelation("cluster", id=9, local_app_data=app_bag)
    address = testing.Address(daemon.host)
    state = testing.State(
        leader=True,
        config={"mode": "cluster", "lxd-init-network": False},
        networks={testing.Network("ovsdb-cms", [testing.BindAddress([address])])},
        relations={peer, *relations},
        resources=frozenset(EMPTY_RESOURCES),
    )
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(mode="cluster"), environ={})
        report = OvnRelation(manager.charm, machine, None).serve()
        assert report.problem is None, report.problem
        relation = manager.charm.model.get_relation("cluster", 9)
        assert relation is not None
        return dict(relation.data[manager.charm.app])


def test_a_new_leader_unsets_the_northbound_connection_the_old_leader_set(
    two_members: tuple[LxdDaemon, LxdDaemon, OvnCa, OvnCentral],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LXD's OVN keys are cluster-wide: set through one member, undone through the other."""
    first, second, ca, _ = two_members
    cert, key = ca.issue("lxd-0")
    certs = certs_relation(remote_units_data={0: legacy_answer(ca, cert, key)})
    bag = serve_as_leader(
        first, tmp_path / "a", monkeypatch, {certs, cms_relation(first.host)}, {}
    )
    key_name = "network.ovn.northbound_connection"
    assert second.client().server_config()[key_name] == f"ssl:{first.host}:6641"

    # Leadership moved to the second unit, which never set it; then ovsdb-cms goes.
    serve_as_leader(second, tmp_path / "b", monkeypatch, {certs}, bag)
    assert key_name not in first.client().server_config()
    assert key_name not in second.client().server_config()
