"""Switching from Canonical's `lxd` charm: its endpoints, its stored state, its LXD.

Canonical's endpoint list and stored-state keys below are test data,
written down from its charm-lxd (charmcraft.yaml and the charm's
`_stored.set_default`); none of its code is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops import testing

from lxd_charm.adopt import adoption, members_of, plain_tokens
from lxd_charm.memory import Memory, from_canonical
from lxd_charm.outcomes import BlockedError
from lxd_common.lxd import ExistingSetup
from scripts.packing.projects import REPO
from tests.harness.databags import local_app_data
from tests.harness.fake_host import FakeHost
from tests.harness.fake_snapd import FakeSnapd

#: Canonical's charm's endpoints: name -> (role, interface).
CANONICAL_ENDPOINTS: dict[str, tuple[str, str]] = {
    "cluster": ("peers", "lxd-cluster"),
    "bgp": ("provides", "lxd-bgp"),
    "dns": ("provides", "lxd-dns"),
    "grafana-dashboard": ("provides", "grafana-dashboard"),
    "grafana-dashboard-k8s": ("provides", "grafana_dashboard"),
    "https": ("provides", "lxd-https"),
    "metrics": ("provides", "lxd-metrics"),
    "prometheus-manual": ("provides", "prometheus-manual"),
    "metrics-endpoint": ("provides", "prometheus_scrape"),
    "ceph": ("requires", "ceph-client"),
    "certificates": ("requires", "tls-certificates"),
    "logging": ("requires", "loki_push_api"),
    "ovsdb-cms": ("requires", "ovsdb-cms"),
}
CANONICAL_EXTRA_BINDINGS = ("fan",)

#: Canonical's stored state after it initialised a standalone LXD (its `config`
#: holds the options it applied).
CANONICAL_STORED = {
    "addresses": {},
    "config": {"mode": "standalone", "snap-channel": "auto", "lxd-listen-https": False},
    "inside_container": False,
    "lxd_binary_path": "",
    "lxd_clustered": False,
    "lxd_initialized": True,
    "lxd_snap_path": "",
    "ovn_certificates_present": False,
    "reboot_required": "false",
}

OURS: dict[str, Any] = yaml.safe_load((REPO / "charms/lxd/charmcraft.yaml").read_text())
EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)


# --- endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CANONICAL_ENDPOINTS))
def test_every_canonical_endpoint_exists_here_with_the_same_interface(name: str) -> None:
    role, interface = CANONICAL_ENDPOINTS[name]
    ours = OURS.get(role) or {}
    assert name in ours, f"{name} is not a {role} endpoint here"
    assert ours[name]["interface"] == interface


def test_canonicals_extra_bindings_are_bindings_here() -> None:
    for name in CANONICAL_EXTRA_BINDINGS:
        assert name in (OURS.get("extra-bindings") or {})


def test_the_listener_endpoints_still_bind_their_listeners(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    # bgp/dns/metrics were extra-bindings: as endpoints, get_binding still finds them.
    networks = {
        testing.Network(name, [testing.BindAddress([testing.Address(address)])])
        for name, address in (("bgp", "10.1.0.5"), ("dns", "10.2.0.5"), ("metrics", "10.3.0.5"))
    }
    config = {"lxd-listen-bgp": True, "lxd-listen-dns": True, "lxd-listen-metrics": True}
    state = testing.State(config=config, networks=networks, resources=EMPTY_RESOURCES)
    out = ctx.run(ctx.on.install(), state)
    assert host.fake_lxd.config["core.bgp_address"] == "10.1.0.5:179"
    assert host.fake_lxd.config["core.dns_address"] == "10.2.0.5:53"
    assert host.fake_lxd.config["core.metrics_address"] == "10.3.0.5:8444"
    assert out.unit_status.name == "active"


# --- Canonical's stored state --------------------------------------------------------


def canonical_state(content: dict[str, Any], **kwargs: Any) -> testing.State:
    stored = testing.StoredState(name="_stored", owner_path="LxdCharm", content=content)
    return testing.State(stored_states={stored}, resources=EMPTY_RESOURCES, **kwargs)


def test_a_refresh_from_canonicals_charm_initialises_nothing(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    snapd.seed("lxd", "5.21/stable")
    # What Canonical's charm applied from its defaults (ours are the same now).
    snapd.config["lxd"].update(
        {"ceph.builtin": "true", "ovn.builtin": "true", "ui.enable": "false"}
    )
    host.fake_lxd.set_up_by_hand = ExistingSetup(storage_pools=("default",), networks=("lxdbr0",))
    out = ctx.run(ctx.on.upgrade_charm(), canonical_state(CANONICAL_STORED))
    assert host.fake_lxd.preseeds == []
    assert snapd.calls == [], "auto on an installed snap: no refresh; same snap config"
    assert out.unit_status.name == "active"
    memory = out.get_stored_state("_stored", owner_path="LxdCharm").content["memory"]
    assert memory["initialised"] is True
    assert memory["init_options"] == {"mode": "standalone", "lxd-preseed": ""}


def test_after_a_refresh_a_mode_change_is_refused_as_usual(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    snapd.seed("lxd", "5.21/stable")
    out = ctx.run(
        ctx.on.upgrade_charm(), canonical_state(CANONICAL_STORED, config={"mode": "cluster"})
    )
    assert out.unit_status.name == "blocked"
    assert "mode" in out.unit_status.message
    assert host.fake_lxd.preseeds == []


def test_canonical_state_that_never_initialised_is_no_memory() -> None:
    assert from_canonical({**CANONICAL_STORED, "lxd_initialized": False}, {}) == Memory()


def test_canonical_state_without_a_recorded_option_takes_the_current_one() -> None:
    memory = from_canonical({"lxd_initialized": True, "config": {}}, {"lxd-preseed": "x: 1"})
    assert memory.init_options == {"mode": "standalone", "lxd-preseed": "x: 1"}
    assert memory.initialised


def test_memory_without_the_adopted_field_loads() -> None:
    assert Memory.from_dict({"initialised": True}).adopted == ""


# --- adopting an LXD someone else initialised -------------------------------------------


def test_a_hand_initialised_lxd_is_adopted_and_said_so(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    host.fake_lxd.set_up_by_hand = ExistingSetup(storage_pools=("tank",), profiles=("default",))
    out = ctx.run(ctx.on.install(), testing.State(resources=EMPTY_RESOURCES))
    assert host.fake_lxd.preseeds == []
    said = "adopted the existing LXD: storage pools tank; profiles with devices default"
    assert testing.MaintenanceStatus(said) in ctx.unit_status_history
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")
    memory = out.get_stored_state("_stored", owner_path="LxdCharm").content["memory"]
    assert memory["adopted"] == "storage pools tank; profiles with devices default"


def test_a_fresh_lxd_is_initialised_as_before(ctx: testing.Context[Any], host: FakeHost) -> None:
    ctx.run(ctx.on.install(), testing.State(resources=EMPTY_RESOURCES))
    assert len(host.fake_lxd.preseeds) == 1
    assert not any(
        isinstance(s, testing.MaintenanceStatus) and "adopted" in s.message
        for s in ctx.unit_status_history
    )


@pytest.mark.parametrize(
    ("found", "mode", "members", "adopt"),
    [
        (ExistingSetup(), "standalone", {}, False),
        (ExistingSetup(), "cluster", {}, False),
        (ExistingSetup(networks=("lxdbr0",)), "standalone", {}, True),
        (ExistingSetup(cluster_member="m1"), "cluster", {"lxd/0": "m1", "lxd/1": "m2"}, True),
        # another cluster, or a join the protocol made: the protocol judges
        (ExistingSetup(cluster_member="m9"), "cluster", {"lxd/0": "m1"}, False),
        (ExistingSetup(cluster_member="m1"), "cluster", {}, False),
        # a half-done join leaves pools on a non-member: the protocol clears it
        (ExistingSetup(storage_pools=("default",)), "cluster", {}, False),
    ],
)
def test_adoption_decisions(
    found: ExistingSetup, mode: str, members: dict[str, str], adopt: bool
) -> None:
    assert adoption(found, mode, members) is adopt


def test_standalone_on_a_cluster_member_blocks_saying_what_to_do() -> None:
    with pytest.raises(BlockedError, match=r"set mode=cluster .*\(lxc cluster remove m1"):
        adoption(ExistingSetup(cluster_member="m1"), "standalone", {})


def test_members_are_read_in_canonicals_form() -> None:
    bag = {"members": json.dumps({"lxd/0": "juju-1-0", "lxd/1": "juju-1-1"})}
    assert members_of(bag) == {"lxd/0": "juju-1-0", "lxd/1": "juju-1-1"}
    assert members_of({}) == {} and members_of({"members": "not json"}) == {}


# --- a cluster in Canonical's data shape -------------------------------------------------


def test_the_leader_removes_a_plain_join_token_and_reads_members(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    snapd.seed("lxd", "5.21/stable")
    host.fake_lxd.cluster.enable(host.hostname, "10.0.0.1:8443")
    plain = "eyJzZXJ2ZXJfbmFtZSI6Imp1anUtYiJ9"  # Canonical's: the base64 token itself
    peer = testing.PeerRelation(
        "cluster",
        local_app_data={
            "version": "1.0",
            "members": json.dumps({"lxd/0": host.hostname}),
            "lxd/1": plain,
        },
        peers_data={1: {"version": "1.0", "hostname": "juju-b"}},
    )
    cluster_net = testing.Network("cluster", [testing.BindAddress([testing.Address("10.0.0.1")])])
    stored = {**CANONICAL_STORED, "lxd_clustered": True, "config": {"mode": "cluster"}}
    state = canonical_state(
        stored, config={"mode": "cluster"}, leader=True, relations={peer}, networks={cluster_net}
    )
    out = ctx.run(ctx.on.upgrade_charm(), state)
    data = local_app_data(out.get_relation(peer.id))
    assert "lxd/1" not in data, "no join token in plain peer data, nor any other value"
    assert json.loads(data["members"])["lxd/0"] == host.hostname
    assert host.fake_lxd.preseeds == []
    assert any("removed the plain join token for lxd/1" in log.message for log in ctx.juju_log)


def test_plain_tokens_are_told_from_secret_ids() -> None:
    bag = {"lxd/1": "eyJ0b2tlbiI6MX0=", "lxd/2": "secret:abc", "lxd/3": "", "members": "{}"}
    assert plain_tokens(bag) == ["lxd/1"]
