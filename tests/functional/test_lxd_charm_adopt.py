"""Adopting an LXD someone else initialised, on a real daemon.

The daemon is set up by hand first (a storage pool, devices on the default
profile: what `lxd init`, cloud-init or MAAS leave), then the charm is
installed on it with its default options. It must take LXD as it is:
create nothing, apply no preseed, record it as initialised, and refuse a
later `lxd-preseed` as for an LXD it initialised itself.

Then a 3-member cluster in the data shape Canonical's charm leaves (its
stored state, the `members` map, join tokens in plain application data) is
refreshed to this charm (upgrade-charm on every unit): nothing is
initialised again, the members stay, the plain tokens go, and `add-unit`
and `remove-unit` then work through this charm's protocol.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_common.lxd import ExistingSetup
from tests.harness.clusters import initial_preseed
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, LxdUnits, lxd_charm_on


def stored_memory(state: testing.State) -> dict[str, Any]:
    return dict(state.get_stored_state("_stored", owner_path="LxdCharm").content["memory"])


def initialise_by_hand(daemon: LxdDaemon) -> None:
    """What an operator does with `lxc` before Juju sees the machine (no network:
    bridges are host-wide, and other daemons run on this machine)."""
    api = daemon.client().pylxd
    api.storage_pools.create({"name": "tank", "driver": "dir"})
    profile = api.profiles.get("default")
    profile.devices = {"root": {"type": "disk", "path": "/", "pool": "tank"}}
    profile.save()


def test_a_daemon_nobody_initialised_shows_nothing(daemon: LxdDaemon) -> None:
    # Captured from LXD 5.0.2: a fresh daemon lists the host's interfaces as
    # unmanaged networks and a default profile without devices.
    lxd = daemon.client()
    assert lxd.pylxd.networks.all(), "the host's own interfaces are listed"
    assert lxd.existing_setup() == ExistingSetup()
    assert not lxd.existing_setup().initialised


def test_a_daemon_initialised_by_hand_is_adopted(
    daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialise_by_hand(daemon)
    before = daemon.client().existing_setup()
    assert before == ExistingSetup(storage_pools=("tank",), profiles=("default",))
    ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)

    state = ctx.run(ctx.on.install(), testing.State(resources=frozenset(EMPTY_RESOURCES)))

    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    said = "adopted the existing LXD: storage pools tank; profiles with devices default"
    assert testing.MaintenanceStatus(said) in ctx.unit_status_history
    lxd = daemon.client()
    assert lxd.existing_setup() == before, "no default pool, no lxdbr0: nothing initialised"
    assert lxd.pylxd.profiles.get("default").devices == {
        "root": {"type": "disk", "path": "/", "pool": "tank"}
    }
    memory = stored_memory(state)
    assert memory["initialised"] is True
    assert memory["init_options"] == {"mode": "standalone", "lxd-preseed": ""}
    assert memory["adopted"] == "storage pools tank; profiles with devices default"

    # The next hook does not look again, and a preseed is refused as usual.
    again = ctx.run(ctx.on.config_changed(), state)
    assert again.unit_status == testing.ActiveStatus("standalone; no network listener")
    preseed = "storage_pools:\n- name: other\n  driver: dir\n"
    refused = ctx.run(
        ctx.on.config_changed(),
        testing.State(
            config={"lxd-preseed": preseed},
            resources=state.resources,
            stored_states=state.stored_states,
        ),
    )
    assert refused.unit_status.name == "blocked"
    assert "lxd-preseed" in refused.unit_status.message
    assert lxd.existing_setup() == before


def test_standalone_on_a_cluster_member_blocks_saying_what_to_do(
    daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.client().cluster.enable(daemon.name, daemon.address)
    ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)

    state = ctx.run(ctx.on.install(), testing.State(resources=frozenset(EMPTY_RESOURCES)))

    assert state.unit_status == testing.BlockedStatus(
        f"LXD here is already member {daemon.name} of an LXD cluster, but mode=standalone: "
        "set mode=cluster to manage that cluster with this application, or remove the "
        f"member from its cluster by hand (lxc cluster remove {daemon.name} on another member)"
    )
    assert stored_memory(state)["initialised"] is False
    lxd = daemon.client()
    assert lxd.cluster.server_name == daemon.name, "still a member: the charm left nothing"
    assert lxd.existing_setup().storage_pools == ()


# --- a cluster formed the way Canonical's charm forms it, refreshed to ours -------------

#: Canonical's stored state on a clustered unit (keys from its `set_default`).
CANONICAL_CLUSTERED = {
    "addresses": {},
    "config": {"mode": "cluster", "lxd-preseed": "", "snap-channel": "auto"},
    "inside_container": False,
    "lxd_binary_path": "",
    "lxd_clustered": True,
    "lxd_initialized": True,
    "lxd_snap_path": "",
    "ovn_certificates_present": False,
    "reboot_required": "false",
}


def form_canonical_cluster(units: LxdUnits, count: int) -> dict[str, str]:
    """`count` units already in the relation, their daemons one cluster, as Canonical's
    charm leaves them: members named after the units' hostnames, a `members` map, join
    tokens in plain application data, its stored state. Returns the plain tokens."""
    started = units.pool.start(count)
    placed = []
    for daemon in started:
        unit = units.sim.place_unit(
            {"version": "1.0", "hostname": f"node{units.sim.next_number}"}, machine=daemon
        )
        units.attach(unit, daemon)
        stored = testing.StoredState(
            name="_stored", owner_path="LxdCharm", content=CANONICAL_CLUSTERED
        )
        unit.state = replace(unit.state, stored_states=frozenset({stored}))
        placed.append((unit, daemon))
    (first, first_daemon), *joiners = placed
    lxd = first_daemon.client()
    lxd.apply_preseed(initial_preseed(first_daemon))
    lxd.cluster.enable(f"node{first.number}", first_daemon.address)
    tokens: dict[str, str] = {}
    for unit, daemon in joiners:
        name = f"node{unit.number}"
        token = lxd.cluster.add_join_token(name).token
        daemon.client().join_cluster(name, daemon.address, token, lxd.cluster.member_config())
        tokens[unit.name] = token
    units.sim.app_data.update(
        {
            "version": "1.0",
            "members": json.dumps({unit.name: f"node{unit.number}" for unit, _ in placed}),
            **tokens,
        }
    )
    return tokens


def test_a_canonical_cluster_refreshed_to_ours_keeps_every_member(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units = LxdUnits(lxd_pool, tmp_path, monkeypatch)
    tokens = form_canonical_cluster(units, 3)
    before = {name: units.daemon(name).client().existing_setup() for name in units.sim.units}

    for name in sorted(units.sim.units):  # juju refresh --switch: upgrade-charm everywhere
        units.sim.run_hook(name, "upgrade_charm")
    units.sim.settle()

    after = {name: units.daemon(name).client().existing_setup() for name in units.sim.units}
    for unit in units.sim.units.values():  # read from Canonical's stored state
        adopted = stored_memory(unit.state)["adopted"]
        assert adopted == "LXD initialised by the earlier charm (cluster member)"
    assert after == before, "nothing re-initialised"
    members = units.daemon("lxd/0").client().cluster.members()
    assert sorted(m.name for m in members) == ["node0", "node1", "node2"]
    assert json.loads(units.sim.app_data["members"]) == {
        "lxd/0": "node0",
        "lxd/1": "node1",
        "lxd/2": "node2",
    }
    for name, token in tokens.items():
        assert units.sim.app_data.get(name, "") != token, f"plain token of {name} removed"
    assert all(u.state.unit_status.name == "active" for u in units.sim.units.values()), {
        n: u.state.unit_status for n, u in units.sim.units.items()
    }

    # Then our protocol grows and shrinks it.
    units.add(1)
    units.sim.settle()
    names = sorted(m.name for m in units.daemon("lxd/0").client().cluster.members())
    assert names == ["node0", "node1", "node2", "node3"]
    units.sim.remove_unit("lxd/3")
    units.sim.settle()
    names = sorted(m.name for m in units.daemon("lxd/0").client().cluster.members())
    assert names == ["node0", "node1", "node2"]


def test_a_canonical_cluster_mid_refresh_changes_no_membership_until_all_run_ours(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mixed moment on real daemons: Juju refreshes one unit at a time.

    Units whose hooks the test does not run still run Canonical's charm: their
    bags and stored state stay as it left them (`lxd_charm.mixed`).
    """
    units = LxdUnits(lxd_pool, tmp_path, monkeypatch)
    form_canonical_cluster(units, 3)
    first = units.daemon("lxd/0").client()
    before = {name: units.daemon(name).client().existing_setup() for name in units.sim.units}

    # A member refreshed under the old leader: it says why and touches nothing.
    member = units.sim.run_hook("lxd/1", "upgrade_charm")
    assert member.unit_status == testing.WaitingStatus(
        "refresh in progress: lxd/0, lxd/2 still run the earlier charm; this member changes "
        "no cluster membership until `juju refresh` has reached every unit"
    )
    assert stored_memory(member)["initialised"] is True

    # The leader next; then a new unit (of ours) asks to join while lxd/2 is still old.
    leader = units.sim.run_hook("lxd/0", "upgrade_charm")
    assert leader.unit_status == testing.WaitingStatus(
        "refresh in progress: lxd/2 still runs the earlier charm; joins and removals wait "
        "until `juju refresh` has reached every unit"
    )
    [new] = units.add(1)
    for kind in ("install", "relation_created", "config_changed", "start"):
        units.sim.run_hook(new.name, kind)
    for peer in ("lxd/0", "lxd/1", "lxd/2"):  # its relation-list: every peer, lxd/2 too
        units.sim.run_hook(new.name, "relation_joined", peer)
    joiner = units.sim.run_hook(new.name, "relation_changed", "lxd/2")
    assert joiner.unit_status == testing.WaitingStatus(
        "refresh in progress: lxd/2 still runs the earlier charm; joining waits until "
        "`juju refresh` has reached every unit"
    )
    units.sim.run_hook("lxd/0", "relation_joined", new.name)
    units.sim.run_hook("lxd/0", "relation_changed", new.name)
    assert first.cluster.join_tokens() == [], "LXD issued no join token"
    assert sorted(m.name for m in first.cluster.members()) == ["node0", "node1", "node2"]
    after = {name: units.daemon(name).client().existing_setup() for name in before}
    assert after == before, "nothing initialised"

    # The last unit is refreshed: the protocol proceeds and the new unit joins.
    units.sim.run_hook("lxd/2", "upgrade_charm")
    units.sim.settle()
    assert sorted(m.name for m in first.cluster.members()) == [
        "node0",
        "node1",
        "node2",
        "node3",
    ]
    assert all(u.state.unit_status.name == "active" for u in units.sim.units.values()), {
        n: u.state.unit_status for n, u in units.sim.units.items()
    }
