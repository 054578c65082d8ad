"""The mixed moment of `juju refresh --switch`: some units still run Canonical's charm.

The rules are `lxd_charm.mixed` (pure, tested first); then the charm in a
simulated cluster whose units Juju refreshes one at a time. Canonical's
peer data below is test data written down from its charm-lxd (what its
`_on_cluster_relation_created`, `_leader_issue_join_token` and
`_non_leader_join_cluster` leave in the bags); none of its code is used.
The simulator runs this charm for every unit, so a unit still on
Canonical's charm is one whose hooks the test does not run: its bag and
stored state stay as Canonical's charm left them until its refresh
(upgrade-charm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_charm import cluster
from lxd_charm.mixed import Mixed, assess, earlier_charm, unjoined_records, unrecorded_leader
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeLxd
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim, SimUnit

EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)

#: Canonical's unit bag once the unit is a member (it pops `hostname` after its join).
CANONICAL_MEMBER_BAG = {"version": "1.0"}
#: Canonical's stored state on a unit, keys from its `set_default`.
CANONICAL_STORED: dict[str, Any] = {
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


# --- the rules ------------------------------------------------------------------------


def test_version_1_0_is_the_earlier_charms_and_ours_is_not() -> None:
    assert earlier_charm({"version": "1.0"})
    assert earlier_charm({"version": "1.0", "hostname": "juju-a", "metrics_target": ""})
    assert not earlier_charm({"version": cluster.VERSION, "hostname": "juju-a"})
    assert not earlier_charm({"version": "1.1"})
    assert not earlier_charm({}), "a unit whose first hook has not run is a new unit"


def test_assess_names_the_units_on_the_earlier_charm_in_unit_order() -> None:
    bags = {
        "lxd/10": {"version": "1.0"},
        "lxd/2": {"version": "1.0", "hostname": "b"},
        "lxd/3": {"version": cluster.VERSION, "hostname": "c"},
        "lxd/4": {},
    }
    found = assess({"version": cluster.VERSION}, bags)
    assert found == Mixed(earlier_units=("lxd/2", "lxd/10"), earlier_app=False)
    assert assess({"version": "1.0"}, {}) == Mixed(earlier_units=(), earlier_app=True)


@pytest.mark.parametrize(
    ("found", "leader", "holds"),
    [
        (Mixed(), True, False),
        (Mixed(), False, False),
        (Mixed(earlier_units=("lxd/1",)), True, True),
        (Mixed(earlier_units=("lxd/1",)), False, True),
        # every peer is ours: a leader of ours rewrites the app bag itself...
        (Mixed(earlier_app=True), True, False),
        # ...another unit cannot tell the leader runs ours until it has
        (Mixed(earlier_app=True), False, True),
    ],
)
def test_who_holds(found: Mixed, leader: bool, holds: bool) -> None:
    assert found.holds(leader) is holds


def test_the_messages_say_who_still_runs_the_earlier_charm_and_what_waits() -> None:
    two = Mixed(earlier_units=("lxd/1", "lxd/2"))
    assert two.message(True, member=True) == (
        "refresh in progress: lxd/1, lxd/2 still run the earlier charm; joins and removals "
        "wait until `juju refresh` has reached every unit"
    )
    assert Mixed(earlier_units=("lxd/0",)).message(False, member=True) == (
        "refresh in progress: lxd/0 still runs the earlier charm; this member changes no "
        "cluster membership until `juju refresh` has reached every unit"
    )
    assert Mixed(earlier_app=True).message(False, member=False) == (
        "refresh in progress: the leader has not run this charm yet; joining waits until "
        "`juju refresh` has reached every unit"
    )
    many = Mixed(earlier_units=tuple(f"lxd/{n}" for n in range(7)))
    assert "lxd/0, lxd/1, lxd/2, lxd/3, lxd/4 (+2 more) still run" in many.message(
        True, member=True
    )
    exactly_shown = Mixed(earlier_units=tuple(f"lxd/{n}" for n in range(5)))
    assert "lxd/0, lxd/1, lxd/2, lxd/3, lxd/4 still run the earlier charm" in (
        exactly_shown.message(True, member=True)
    )


def test_unjoined_records_are_the_earlier_charms_tokens_never_used() -> None:
    members = {"lxd/0": "a", "lxd/1": "b", "lxd/2": "c", "lxd/3": "d", "lxd/4": "e"}
    bags = {
        "lxd/1": {"version": cluster.VERSION, "hostname": "b"},  # a member: LXD lists it
        "lxd/2": {"version": cluster.VERSION, "hostname": "c"},  # issued a token, never joined
        "lxd/3": {"version": cluster.VERSION, "hostname": "d", "joined": "d"},  # ours joined
    }
    # lxd/0 is the leader (no bag of its own here); lxd/4 left: a removal, not this rule.
    assert unjoined_records(members, {"a", "b"}, bags) == ["lxd/2"]
    assert unjoined_records(members, {"a", "b", "c", "d", "e"}, bags) == []


@pytest.mark.parametrize(
    ("members", "lxd_members", "record"),
    [
        ({}, {"a"}, True),  # the earlier charm's lone leader: no map yet
        ({"lxd/0": "a"}, {"a"}, False),  # recorded already
        ({}, set(), False),  # not a member (yet)
        ({"lxd/5": "a"}, {"a"}, False),  # another unit claims the name
    ],
)
def test_an_unrecorded_leader_is_recorded_only_when_lxd_lists_it_and_nobody_claims_it(
    members: dict[str, str], lxd_members: set[str], record: bool
) -> None:
    assert unrecorded_leader(members, "lxd/0", "a", lxd_members) is record


# --- a cluster in Canonical's shape, refreshed one unit at a time ----------------------


@dataclass
class Machine:
    hostname: str
    ip: str
    lxd: FakeLxd = field(default_factory=FakeLxd)

    @property
    def address(self) -> str:
        return f"{self.ip}:8443"


@pytest.fixture
def sim(charm_module: ModuleType, host: FakeHost, snapd: FakeSnapd) -> Sim:
    """The `lxd` application in cluster mode, each unit on its own `Machine`."""
    snapd.seed("lxd", "5.21/stable")  # installed by the earlier charm: auto keeps it
    state_root = host.state_dir

    def on_its_machine(unit: SimUnit) -> None:
        machine: Machine = unit.machine
        host.fake_lxd, host.hostname = machine.lxd, machine.hostname
        host.state_dir = state_root / f"unit-{unit.number}"

    return Sim(
        charm_module.LxdCharm,
        app="lxd",
        peer="cluster",
        config={"mode": "cluster"},
        before_hook=on_its_machine,
        networks=lambda unit: [
            testing.Network("cluster", [testing.BindAddress([testing.Address(unit.machine.ip)])])
        ],
        resources=EMPTY_RESOURCES,
        peers_read_app_secrets=False,
    )


def canonical_cluster(sim: Sim, members: int, waiting: int = 0) -> list[Machine]:
    """Units 0..members-1 members of one LXD cluster as Canonical's charm forms it, then
    ``waiting`` more units it has issued a plain token for that have not joined yet."""
    machines = []
    for number in range(members + waiting):
        machine = Machine(f"node-{chr(ord('a') + number)}", f"10.0.0.{number + 1}")
        joined = number < members
        bag = (
            CANONICAL_MEMBER_BAG
            if joined
            else {**CANONICAL_MEMBER_BAG, "hostname": machine.hostname}
        )
        unit = sim.place_unit(bag, machine=machine)
        stored = {**CANONICAL_STORED, "lxd_clustered": joined, "lxd_initialized": joined}
        unit.state = replace(
            unit.state,
            stored_states=frozenset(
                {testing.StoredState(name="_stored", owner_path="LxdCharm", content=stored)}
            ),
        )
        machines.append(machine)
    first = machines[0].lxd
    first.cluster.enable(machines[0].hostname, machines[0].address)
    tokens = {}
    for number, machine in enumerate(machines[1:], start=1):
        token = first.cluster.add_join_token(machine.hostname).token
        if number < members:
            machine.lxd.join_cluster(machine.hostname, machine.address, token)
        else:
            tokens[f"lxd/{number}"] = token  # Canonical's: the token itself, in plain data
    sim.app_data["version"] = "1.0"
    if len(machines) == 1:
        return machines  # its leader writes `members` only when it issues a first token
    sim.app_data.update(
        {
            "members": json.dumps(
                {f"lxd/{n}": m.hostname for n, m in enumerate(machines)},
                separators=(",", ":"),
                sort_keys=True,
            ),
            "member_config": "[]",
            **tokens,
        }
    )
    return machines


def refresh(sim: Sim, unit: int) -> testing.State:
    """`juju refresh --switch` reaches one unit: its upgrade-charm, with Canonical's leftovers."""
    return sim.run_hook(f"lxd/{unit}", "upgrade_charm")


def names(machine: Machine) -> list[str]:
    return sorted(member.name for member in machine.lxd.cluster.members())


def test_a_leader_refreshed_first_holds_joins_and_removals_while_peers_are_on_the_old_charm(
    sim: Sim,
) -> None:
    machines = canonical_cluster(sim, members=3, waiting=1)

    out = refresh(sim, 0)

    assert out.unit_status == testing.WaitingStatus(
        "refresh in progress: lxd/1, lxd/2, lxd/3 still run the earlier charm; joins and "
        "removals wait until `juju refresh` has reached every unit"
    )
    assert names(machines[0]) == ["node-a", "node-b", "node-c"]
    assert sim.app_secrets == {}, "no join token issued"
    pending = [token.server_name for token in machines[0].lxd.cluster.join_tokens()]
    assert pending == ["node-d"], "only the earlier charm's own token is pending in LXD"
    assert sim.app_data["version"] == cluster.VERSION, "the earlier charm refuses this version"
    assert "lxd/3" not in sim.app_data, "the plain token is gone from the peer data"
    assert json.loads(sim.app_data["members"]) == {
        "lxd/0": "node-a",
        "lxd/1": "node-b",
        "lxd/2": "node-c",
        "lxd/3": "node-d",
    }, "the earlier charm's record is kept as it is"
    assert machines[0].lxd.preseeds == [], "nothing initialised"


def test_a_unit_departing_in_the_mixed_moment_is_removed_only_once_every_unit_runs_ours(
    sim: Sim,
) -> None:
    machines = canonical_cluster(sim, members=4)
    refresh(sim, 0)
    sim.remove_unit("lxd/3")  # its agent still runs the earlier charm

    out = sim.run_hook("lxd/0", "relation_departed", "lxd/3")

    assert names(machines[0]) == ["node-a", "node-b", "node-c", "node-d"], "not removed"
    assert "removing" not in sim.app_data, "not even recorded: Juju's list decides later"
    assert out.unit_status.name == "waiting"
    assert "lxd/1, lxd/2 still run the earlier charm" in out.unit_status.message

    refresh(sim, 1)
    refresh(sim, 2)
    sim.settle()

    assert names(machines[0]) == ["node-a", "node-b", "node-c"]
    assert json.loads(sim.app_data["members"]) == {
        "lxd/0": "node-a",
        "lxd/1": "node-b",
        "lxd/2": "node-c",
    }
    assert all(u.state.unit_status.name == "active" for u in sim.units.values()), {
        n: u.state.unit_status for n, u in sim.units.items()
    }


def test_a_member_refreshed_under_the_old_leader_changes_nothing_and_says_why(
    sim: Sim,
) -> None:
    machines = canonical_cluster(sim, members=3)

    out = refresh(sim, 1)

    assert out.unit_status == testing.WaitingStatus(
        "refresh in progress: lxd/0, lxd/2 still run the earlier charm; this member changes "
        "no cluster membership until `juju refresh` has reached every unit"
    )
    memory = out.get_stored_state("_stored", owner_path="LxdCharm").content["memory"]
    assert memory["initialised"] is True, "adopted from Canonical's stored state"
    assert sim.unit_data["lxd/1"]["version"] == cluster.VERSION, "it announces ours"
    assert sim.app_data["version"] == "1.0", "a non-leader never writes the app bag"
    assert names(machines[0]) == ["node-a", "node-b", "node-c"]


def test_a_joiner_refreshed_under_the_old_leader_does_not_join_and_says_why(
    sim: Sim,
) -> None:
    machines = canonical_cluster(sim, members=2, waiting=1)

    out = refresh(sim, 2)

    said = (
        "refresh in progress: lxd/0, lxd/1 still run the earlier charm; joining waits until "
        "`juju refresh` has reached every unit"
    )
    assert out.unit_status == testing.WaitingStatus(said)
    assert sim.unit_data["lxd/2"][cluster.JOIN_STATUS] == said, "the next leader reads why"
    assert machines[2].lxd.preseeds == [], "no join with the earlier charm's plain token"
    assert names(machines[0]) == ["node-a", "node-b"]


def test_once_every_unit_runs_ours_the_earlier_charms_unused_token_is_replaced_and_used(
    sim: Sim,
) -> None:
    machines = canonical_cluster(sim, members=2, waiting=1)
    for unit in (1, 2, 0):  # the leader last: the old leader held the cluster until then
        refresh(sim, unit)

    sim.settle()

    assert names(machines[0]) == ["node-a", "node-b", "node-c"]
    assert json.loads(sim.app_data["members"])["lxd/2"] == "node-c"
    assert sim.unit_data["lxd/2"]["joined"] == "node-c", "joined through this charm's protocol"
    assert all(u.state.unit_status.name == "active" for u in sim.units.values()), {
        n: u.state.unit_status for n, u in sim.units.items()
    }


def test_a_lone_leader_of_the_earlier_charm_is_recorded_and_then_grows(sim: Sim) -> None:
    [machine] = canonical_cluster(sim, members=1)
    assert "members" not in sim.app_data

    out = refresh(sim, 0)

    assert out.unit_status.name == "active", out.unit_status
    assert json.loads(sim.app_data["members"]) == {"lxd/0": "node-a"}
    added = Machine("node-b", "10.0.0.2")
    sim.add_unit(machine=added)
    sim.settle()
    assert names(machine) == ["node-a", "node-b"]
    assert json.loads(sim.app_data["members"]) == {"lxd/0": "node-a", "lxd/1": "node-b"}
