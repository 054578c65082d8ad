"""The fan network at a cluster's bootstrap, and its plain-bridge fallback; Ceph in a cluster.

LXD's refusal of the fan bridge is the one a real LXD 5.0.2 gave on Debian's
kernel (tests/functional/test_fan.py gets it again, for real); the fan's own
preseed is what `lxd init` builds for a cluster (bridge.mode=fan on the /16
of the fan space's address).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_charm.fan import NOTE, plain_bridge_note
from lxd_charm.initialise import fan_refused, fan_underlay
from lxd_common.errors import LxdApiError
from tests.harness.databags import local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeLxd
from tests.harness.fake_storage import FakeStoragePools
from tests.harness.juju_sim import Sim, SimUnit

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
FAN_REFUSAL = (
    'Failed to create local member network "lxdfan0" in project "default": Failed to run: '
    "ip link set dev lxdfan0-mtu mtu 1350: exit status 1 "
    '(Cannot find device "lxdfan0-mtu")'
)
"""LXD 5.0.2's words on Debian 12's kernel (no fan support), captured with `lxd init --preseed`."""
KEY = "AQBKjA5rHe5WEBAALWvAS4Nfhz5Ye27XGJmpmg=="


def network(name: str, ip: str) -> testing.Network:
    return testing.Network(name, [testing.BindAddress([testing.Address(ip)])])


NO_NETWORK: dict[str, Any] = {"lxd-init-network": False}


def bootstrap_state(*, fan_ip: str | None = "10.20.30.40", **config: Any) -> testing.State:
    networks = {network("cluster", "10.0.0.1")}
    if fan_ip:
        networks.add(network("fan", fan_ip))
    return testing.State(
        leader=True,
        config={"mode": "cluster", **config},
        relations={testing.PeerRelation("cluster", id=1)},
        networks=networks,
        resources=EMPTY,
    )


def preseed_networks(host: FakeHost) -> list[dict[str, Any]]:
    return [n for p in host.fake_lxd.preseeds for n in p.get("networks") or []]


def test_the_bootstrapping_leader_builds_a_fan_bridge_on_the_fan_space(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    out = ctx.run(ctx.on.install(), bootstrap_state())
    (preseed,) = host.fake_lxd.preseeds
    assert preseed["networks"] == [
        {
            "name": "lxdfan0",
            "type": "bridge",
            "config": {"bridge.mode": "fan", "fan.underlay_subnet": "10.20.0.0/16"},
        }
    ]
    eth0 = preseed["profiles"][0]["devices"]["eth0"]
    assert eth0 == {"type": "nic", "name": "eth0", "network": "lxdfan0"}
    assert preseed["cluster"]["enabled"] is True
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "no fan" not in out.unit_status.message


def test_a_kernel_without_fan_gets_a_plain_bridge_said_in_status_and_log(
    ctx: testing.Context[Any],
    host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_apply = host.fake_lxd.apply_preseed

    def no_fan(preseed: Any) -> None:
        modes = [n.get("config", {}).get("bridge.mode") for n in preseed.get("networks") or []]
        if "fan" in modes:
            raise LxdApiError(f"LXD refused the preseed: {FAN_REFUSAL}")
        real_apply(preseed)

    monkeypatch.setattr(host.fake_lxd, "apply_preseed", no_fan)
    out = ctx.run(ctx.on.install(), bootstrap_state())
    (preseed,) = host.fake_lxd.preseeds
    assert preseed["networks"][0]["name"] == "lxdbr0"
    assert "bridge.mode" not in preseed["networks"][0]["config"]
    assert preseed["cluster"]["enabled"] is True
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.endswith(
        "; fan unavailable: plain bridge, instances on different members "
        "cannot reach each other (relate OVN)"
    )
    assert "LXD cannot build the fan bridge" in caplog.text
    assert 'Cannot find device "lxdfan0-mtu"' in caplog.text
    later = ctx.run(ctx.on.config_changed(), out)
    assert later.unit_status == out.unit_status  # read from LXD again, the same


def test_another_refusal_is_not_taken_for_the_fans(
    ctx: testing.Context[Any], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.fake_lxd.refuse_preseed = 'Failed to create storage pool "default": no space'
    out = ctx.run(ctx.on.install(), bootstrap_state())
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "no space" in out.unit_status.message
    assert host.fake_lxd.preseeds == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (bootstrap_state(fan_ip="2001:db8::5"), "lxdbr0"),  # the fan overlays IPv4 only
        (bootstrap_state(**NO_NETWORK), None),  # no network asked for
        (
            bootstrap_state(**{"lxd-preseed": "networks:\n- name: mine\n  type: bridge\n"}),
            "mine",
        ),
    ],
)
def test_no_fan_without_an_ipv4_fan_address_or_a_network_or_with_a_preseed(
    ctx: testing.Context[Any], host: FakeHost, state: testing.State, expected: str | None
) -> None:
    ctx.run(ctx.on.install(), state)
    names = [n["name"] for n in preseed_networks(host)]
    assert names == ([expected] if expected else [])
    assert all("bridge.mode" not in (n.get("config") or {}) for n in preseed_networks(host))


def test_standalone_units_never_build_a_fan(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = testing.State(networks={network("fan", "10.20.30.40")}, resources=EMPTY)
    ctx.run(ctx.on.install(), state)
    assert [n["name"] for n in preseed_networks(host)] == ["lxdbr0"]


@pytest.mark.parametrize(
    ("address", "underlay"),
    [
        ("10.20.30.40", "10.20.0.0/16"),
        ("192.0.2.2", "192.0.0.0/16"),
        ("2001:db8::1", None),
        ("", None),
        (None, None),
        ("not-an-ip", None),
    ],
)
def test_fan_underlay_is_the_16_of_the_address(address: str | None, underlay: str | None) -> None:
    assert fan_underlay(address) == underlay


def test_fan_refused_recognises_lxds_words_only() -> None:
    assert fan_refused(f"LXD refused the preseed: {FAN_REFUSAL}")
    assert not fan_refused('Failed to create storage pool "default": no space')


# --- Ceph in a cluster: the leader makes the pool cluster-wide -------------------------


def test_in_a_cluster_the_leader_defines_the_pool_on_each_member_then_creates_it(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    pools = FakeStoragePools()
    host.fake_lxd.storage = pools
    config: dict[str, Any] = {
        "snap-config-ceph-builtin": True,
        "ceph-create-pool": True,
        "lxd-init-network": False,
    }
    state = ctx.run(ctx.on.install(), bootstrap_state(**config))
    mon = {"auth": "cephx", "key": KEY, "ceph-public-address": "10.0.0.11"}
    rel = testing.Relation("ceph", remote_app_name="ceph-mon", id=9, remote_units_data={0: mon})
    state = replace(state, relations=frozenset({*state.relations, rel}))
    first = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    request = json.loads(local_unit_data(first.get_relation(9))["broker_req"])
    reply = {"exit-code": 0, "request-id": request["request-id"]}
    rel = replace(
        rel,
        remote_units_data={0: {**mon, "broker-rsp-lxd-0": json.dumps(reply)}},
        local_unit_data=first.get_relation(9).local_unit_data,
    )
    others = {r for r in first.relations if r.endpoint != "ceph"}
    out = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=0),
        replace(first, relations=frozenset({*others, rel})),
    )
    member = host.fake_lxd.cluster.server_name
    assert pools.calls == [("define", "lxd", member), ("create", "lxd", "")]
    assert pools.pools["lxd"].created
    assert isinstance(out.unit_status, testing.ActiveStatus)


def test_a_unit_waiting_to_join_already_has_cephs_files_and_asks_for_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """A joiner's LXD needs the files to join a cluster with a Ceph pool (captured refusal:
    'Failed to create storage pool "shared": Placeholder volume does not exist')."""
    pools = FakeStoragePools()
    host.fake_lxd.storage = pools
    mon = {"auth": "cephx", "key": KEY, "ceph-public-address": "10.0.0.11"}
    rel = testing.Relation("ceph", remote_app_name="ceph-mon", id=9, remote_units_data={0: mon})
    config: dict[str, Any] = {"snap-config-ceph-builtin": True, "ceph-create-pool": True}
    state = replace(bootstrap_state(**config), leader=False)
    state = replace(state, relations=frozenset({*state.relations, rel}))
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    assert isinstance(out.unit_status, testing.WaitingStatus)  # for its join token
    keyring = host.root / "var/snap/lxd/common/ceph/ceph.client.lxd.keyring"
    assert keyring.read_text() == f"[client.lxd]\n\tkey = {KEY}\n"
    assert "broker_req" not in local_unit_data(out.get_relation(9))  # the leader asks
    assert pools.calls == []


# --- every member says it: read from LXD, not remembered by one unit -----------


@dataclass
class Machine:
    hostname: str
    ip: str
    lxd: FakeLxd = field(default_factory=FakeLxd)


@pytest.fixture
def no_fan_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every machine's LXD refuses the fan bridge, in LXD 5.0.2's words."""
    real_apply = FakeLxd.apply_preseed

    def apply(self: FakeLxd, preseed: Any) -> None:
        modes = [n.get("config", {}).get("bridge.mode") for n in preseed.get("networks") or []]
        if "fan" in modes:
            raise LxdApiError(f"LXD refused the preseed: {FAN_REFUSAL}")
        real_apply(self, preseed)

    monkeypatch.setattr(FakeLxd, "apply_preseed", apply)


@pytest.fixture
def sim(charm_module: ModuleType, host: FakeHost, no_fan_kernel: None) -> Sim:
    state_root = host.state_dir

    def on_its_machine(unit: SimUnit) -> None:
        machine: Machine = unit.machine
        host.fake_lxd, host.hostname = machine.lxd, machine.hostname
        host.state_dir = state_root / f"unit-{unit.number}"

    def bindings(unit: SimUnit) -> list[testing.Network]:
        return [network("cluster", unit.machine.ip), network("fan", unit.machine.ip)]

    return Sim(
        charm_module.LxdCharm,
        app="lxd",
        peer="cluster",
        config={"mode": "cluster"},
        before_hook=on_its_machine,
        networks=bindings,
        resources=EMPTY,
        peers_read_app_secrets=False,
    )


def two_members(sim: Sim) -> tuple[Machine, Machine]:
    first, second = Machine("node-a", "10.20.0.1"), Machine("node-b", "10.20.0.2")
    sim.place_unit(None, machine=first)
    sim.run_hook("lxd/0", "install")
    sim.place_unit({"version": "1.1", "hostname": "node-b"}, machine=second)
    sim.run_hook("lxd/0", "relation_changed", "lxd/1")  # the token
    sim.run_hook("lxd/1", "relation_changed", "lxd/0")  # the join
    sim.run_hook("lxd/0", "relation_changed", "lxd/1")  # confirmed
    assert sorted(m.name for m in first.lxd.cluster.members()) == ["node-a", "node-b"]
    return first, second


def test_a_member_that_joined_a_plain_bridge_cluster_says_so_too(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    two_members(sim)
    leader = sim.units["lxd/0"].state.unit_status
    assert leader.name == "active" and leader.message.endswith(NOTE), leader.message
    caplog.clear()
    member = sim.run_hook("lxd/1", "config_changed").unit_status
    assert member.name == "active" and member.message.endswith(NOTE), member.message
    assert "fan: lxdbr0 is a plain bridge (no fan)" in caplog.text


def test_a_new_leader_says_so_and_update_status_keeps_it(sim: Sim) -> None:
    two_members(sim)
    sim.set_leader("lxd/1")
    out = sim.run_hook("lxd/1", "config_changed")
    assert out.unit_status.message.endswith(NOTE), out.unit_status.message
    later = sim.run_hook("lxd/1", "update_status")
    assert later.unit_status == out.unit_status


def test_a_cluster_on_a_fan_bridge_has_no_note(
    charm_module: ModuleType, host: FakeHost, ctx: testing.Context[Any]
) -> None:
    out = ctx.run(ctx.on.install(), bootstrap_state())
    assert "lxdfan0" in host.fake_lxd.managed_networks()
    assert not out.unit_status.message.endswith(NOTE)


@pytest.mark.parametrize(
    ("networks", "bridge", "note"),
    [
        ({"lxdbr0": {"ipv4.address": "10.1.2.1/24"}}, "lxdbr0", NOTE),
        ({"lxdbr0": {"bridge.mode": "standard"}}, "lxdbr0", NOTE),
        ({"lxdbr0": {"bridge.mode": "fan"}}, "lxdbr0", ""),
        ({"lxdbr0": {}, "lxdfan0": {"bridge.mode": "fan"}}, "lxdbr0", ""),
        ({"other": {}}, "lxdbr0", ""),  # the charm's bridge is not there (deleted by hand)
        ({"lxdbr0": {}}, "", ""),  # the charm built no network
    ],
)
def test_the_note_is_read_from_lxds_networks(
    networks: dict[str, dict[str, str]], bridge: str, note: str
) -> None:
    assert plain_bridge_note(networks, bridge) == note
