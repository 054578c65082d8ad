"""Refresh rounds, hook by hook: every member refreshes LXD together, or none does.

Each unit runs on its own machine: its own `FakeLxd` (joined into one
cluster by the charm, as real daemons would be) and its own `FakeSnapd`, so
what a unit's hook asked of snapd is that machine's record. The Juju
simulator plays Juju between hooks. The protocol keys are
docs/interfaces/lxd-cluster.md's ("Refresh rounds").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_common.errors import SnapError
from lxd_common.snap import LxdSnap
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeLxd
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim, SimUnit

EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)
VERSIONS = {"5.21": "5.21.1", "6": "6.1"}
"""What the fake store has on each track (a member's LXD version follows its snap's)."""


@dataclass
class Machine:
    """One unit's machine: its hostname (the member name), address, LXD and snapd."""

    hostname: str
    ip: str
    lxd: FakeLxd = field(default_factory=FakeLxd)
    snapd: FakeSnapd = field(default_factory=lambda: FakeSnapd(versions=VERSIONS))

    @property
    def binding(self) -> testing.Network:
        return testing.Network("cluster", [testing.BindAddress([testing.Address(self.ip)])])

    def snap(self) -> Any:
        installed = self.snapd.snaps["lxd"]
        return installed


@pytest.fixture
def sim(charm_module: ModuleType, host: FakeHost) -> Sim:
    state_root = host.state_dir

    def on_its_machine(unit: SimUnit) -> None:
        machine: Machine = unit.machine
        host.fake_lxd, host.hostname = machine.lxd, machine.hostname
        host.snap = LxdSnap(machine.snapd)
        host.state_dir = state_root / f"unit-{unit.number}"

    return Sim(
        charm_module.LxdCharm,
        app="lxd",
        peer="cluster",
        config={"mode": "cluster", "snap-channel": "5.21/stable"},
        before_hook=on_its_machine,
        networks=lambda unit: [unit.machine.binding],
        resources=EMPTY_RESOURCES,
        peers_read_app_secrets=False,
    )


def run(sim: Sim, unit: int, kind: str, source: int | None = None) -> testing.State:
    return sim.run_hook(f"lxd/{unit}", kind, None if source is None else f"lxd/{source}")


def formed(sim: Sim, count: int = 3) -> list[Machine]:
    """Units 0..count-1 (node-a, node-b...) are members; the leader confirmed them all."""
    machines = []
    for unit in range(count):
        machine = Machine(f"node-{chr(ord('a') + unit)}", f"10.0.0.{unit + 1}")
        sim.place_unit(None, machine=machine)
        machines.append(machine)
    run(sim, 0, "install")
    for unit in range(1, count):
        run(sim, unit, "install")
        run(sim, unit, "relation_changed", 0)
    run(sim, 0, "relation_changed", 1)  # issues the tokens
    for unit in range(1, count):
        run(sim, unit, "relation_changed", 0)  # joins
    run(sim, 0, "relation_changed", 1)  # confirms
    sim.settle()
    assert sorted(m.name for m in machines[0].lxd.cluster.members()) == [
        m.hostname for m in machines
    ]
    return machines


def status(sim: Sim, unit: int) -> Any:
    """The status the unit's last hook left (compare with `testing.*Status`)."""
    return sim.units[f"lxd/{unit}"].state.unit_status


def refreshes(machine: Machine) -> list[tuple[Any, ...]]:
    return [call for call in machine.snapd.calls if call[0] == "refresh"]


# --- install: cohort and hold ---------------------------------------------------------------


def test_cluster_members_install_in_the_cohort_with_automatic_refreshes_held(sim: Sim) -> None:
    machines = formed(sim)
    for machine in machines:
        assert machine.snapd.cohorts == {"lxd": "+"}
        assert machine.snap().held, f"{machine.hostname}: snapd may not refresh LXD on its own"
        assert machine.snapd.calls[0] == ("install", "lxd", "5.21/stable")
    assert sim.unit_data["lxd/1"]["lxd-version"] == "5.21.1"


def test_standalone_units_join_no_cohort_and_hold_nothing(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    ctx.run(ctx.on.install(), testing.State(resources=EMPTY_RESOURCES))
    assert snapd.cohorts == {}
    assert not snapd.snaps["lxd"].held
    assert not any(call[0] == "hold" for call in snapd.calls)


def test_standalone_options_can_ask_for_the_cohort_and_the_hold(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    config = {"snap-cohort": "true", "snap-hold": "true", "snap-channel": "6/stable"}
    ctx.run(ctx.on.install(), testing.State(config=config, resources=EMPTY_RESOURCES))
    assert snapd.cohorts == {"lxd": "+"} and snapd.snaps["lxd"].held
    out = ctx.run(
        ctx.on.config_changed(),
        testing.State(config={**config, "snap-hold": "false"}, resources=EMPTY_RESOURCES),
    )
    assert not snapd.snaps["lxd"].held and snapd.calls[-1] == ("unhold", "lxd")
    assert out.unit_status.name == "active"


def test_members_can_be_left_unheld_and_out_of_the_cohort(sim: Sim) -> None:
    sim.config.update({"snap-hold": "false", "snap-cohort": "false"})
    for machine in formed(sim):
        assert machine.snapd.cohorts == {} and not machine.snap().held


def test_an_invalid_policy_blocks_naming_the_values(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    out = ctx.run(
        ctx.on.install(), testing.State(config={"snap-hold": "yes"}, resources=EMPTY_RESOURCES)
    )
    assert out.unit_status == testing.BlockedStatus(
        "invalid snap-hold 'yes': set auto (on in cluster mode, off standalone), true or false"
    )
    assert snapd.calls == []


# --- a channel change: one round ---------------------------------------------------------


def test_a_member_does_not_refresh_on_its_own_config_change(sim: Sim) -> None:
    machines = formed(sim)
    sim.config["snap-channel"] = "6/stable"
    run(sim, 1, "config_changed")
    assert refreshes(machines[1]) == []
    assert machines[1].snap().channel == "5.21/stable"


def test_a_channel_change_refreshes_every_member_in_the_same_round(sim: Sim) -> None:
    machines = formed(sim)
    sim.config_changed(**{"snap-channel": "6/stable"})
    sim.settle()
    assert sim.app_data["refresh-round"] == "1"
    assert sim.app_data["refresh-channel"] == "6/stable"
    for unit, machine in enumerate(machines):
        assert refreshes(machine) == [("refresh", "lxd", "6/stable")], "once, in the round"
        assert machine.snap().channel == "6/stable" and machine.snap().held
        assert machine.snapd.cohorts == {"lxd": "+"}
        assert sim.unit_data[f"lxd/{unit}"]["refresh-done"] == "1"
        assert sim.unit_data[f"lxd/{unit}"]["lxd-version"] == "6.1"
    assert status(sim, 0) == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.1:8443"
    )


def test_the_leader_names_the_members_still_behind(sim: Sim) -> None:
    formed(sim)
    sim.config["snap-channel"] = "6/stable"
    out = run(sim, 0, "config_changed")  # the leader starts the round and refreshes
    assert out.unit_status == testing.WaitingStatus(
        "refreshing to 6.1: node-b, node-c still on 5.21.1, 1 member waiting for them"
    )
    run(sim, 1, "relation_changed", 0)  # node-b refreshes in the round
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status == testing.WaitingStatus(
        "refreshing to 6.1: node-c still on 5.21.1, 2 members waiting for it"
    )
    run(sim, 2, "relation_changed", 0)
    out = run(sim, 0, "relation_changed", 2)
    assert out.unit_status.name == "active"


def test_a_refreshed_member_whose_lxd_waits_says_for_whom(sim: Sim) -> None:
    """LXD 5.x: a refreshed member serves nothing until every member runs its version."""
    machines = formed(sim)
    sim.config["snap-channel"] = "6/stable"
    run(sim, 0, "config_changed")
    machines[1].lxd.unreachable = True  # its refreshed daemon waits for the others
    out = run(sim, 1, "relation_changed", 0)
    assert machines[1].snap().channel == "6/stable"
    assert out.unit_status == testing.WaitingStatus(
        "refreshing to 6.1: node-c still on 5.21.1, 2 members waiting for it"
    )
    machines[1].lxd.unreachable = False
    out = run(sim, 1, "config_changed")
    assert out.unit_status.name == "active", (
        "a member whose LXD answers is active: the leader's status counts who is behind"
    )


def test_a_failed_member_is_named_blocked_with_snapds_words_and_retried(sim: Sim) -> None:
    machines = formed(sim)
    words = 'cannot refresh "lxd": download of snap "lxd" failed: connection reset'
    machines[2].snapd.fail_on("refresh", SnapError(words))
    sim.config_changed(**{"snap-channel": "6/stable"})
    sim.settle()
    assert status(sim, 2) == testing.BlockedStatus(
        f"refresh round 1 to 6/stable failed: {words}; fix it and the refresh is retried "
        "at the next hook"
    )
    assert status(sim, 0) == testing.BlockedStatus(
        f"refresh round 1 to 6/stable: node-c (lxd/2) failed: {words}"
    )
    machines[2].snapd.clear_failures()
    sim.run("lxd/2", sim.on.update_status())  # not active: it reconciles, and refreshes
    sim.settle()
    assert machines[2].snap().channel == "6/stable"
    assert "refresh-error" not in sim.unit_data["lxd/2"]
    assert status(sim, 0).name == "active" and status(sim, 2).name == "active"


def test_no_round_while_a_member_is_offline(sim: Sim) -> None:
    machines = formed(sim)
    machines[0].lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.config["snap-channel"] = "6/stable"
    out = run(sim, 0, "config_changed")
    assert out.unit_status == testing.BlockedStatus(
        "not starting refresh round 1 to 6/stable: node-c (lxd/2) is offline: bring it back, "
        "or remove the unit. A refresh restarts LXD on every member, and refreshed members "
        "wait until all run the same version"
    )
    assert "refresh-round" not in sim.app_data
    assert all(refreshes(machine) == [] for machine in machines)
    machines[0].lxd.cluster.set_status("node-c", "Online")
    sim.run("lxd/0", sim.on.update_status())
    sim.settle()
    assert all(machine.snap().channel == "6/stable" for machine in machines)


def test_a_downgrade_starts_no_round(sim: Sim) -> None:
    machines = formed(sim)
    sim.config["snap-channel"] = "5.0/stable"
    out = run(sim, 0, "config_changed")
    assert out.unit_status == testing.BlockedStatus(
        "not starting refresh round 1 to 5.0/stable: refusing to move lxd from 5.21/stable "
        "to 5.0/stable: LXD cannot be downgraded; set snap-channel back to 5.21/stable"
    )
    assert "refresh-round" not in sim.app_data and refreshes(machines[0]) == []


def test_a_unit_joining_later_installs_the_channel_and_owes_no_refresh(sim: Sim) -> None:
    formed(sim)
    sim.config_changed(**{"snap-channel": "6/stable"})
    sim.settle()
    late = Machine("node-d", "10.0.0.4")
    sim.place_unit(None, machine=late)
    run(sim, 3, "install")
    sim.settle()
    assert late.snapd.calls[0] == ("install", "lxd", "6/stable")
    assert refreshes(late) == [] and late.snapd.cohorts == {"lxd": "+"}
    assert sim.unit_data["lxd/3"]["refresh-done"] == "1"
    assert status(sim, 0) == testing.ActiveStatus(
        "cluster: 4/4 members online, 4 units; cluster on 10.0.0.1:8443"
    )


# --- the refresh action -----------------------------------------------------------------


def refresh(sim: Sim, unit: int) -> dict[str, Any]:
    results = sim.run(f"lxd/{unit}", sim.on.action("refresh"))
    assert results is not None
    return results


def test_the_action_picks_up_a_newer_revision_on_every_member(sim: Sim) -> None:
    machines = formed(sim)
    for machine in machines:
        machine.snapd.publish("5.21", "5.21.3")
    got = refresh(sim, 0)
    assert got["round"] == "1" and got["channel"] == "5.21/stable"
    assert got["version"] == "5.21.3", "the leader refreshed in its own round at once"
    sim.settle()
    for unit, machine in enumerate(machines):
        assert refreshes(machine) == [("refresh", "lxd", "5.21/stable")]
        assert machine.snap().version == "5.21.3"
        assert sim.unit_data[f"lxd/{unit}"]["lxd-version"] == "5.21.3"
    assert status(sim, 0).name == "active"


def test_a_second_action_is_a_new_round_even_without_a_new_revision(sim: Sim) -> None:
    machines = formed(sim)
    refresh(sim, 0)
    sim.settle()
    got = refresh(sim, 0)
    sim.settle()
    assert got["round"] == "2"
    before = [m.snap().revision for m in machines]
    assert all(len(refreshes(m)) == 2 for m in machines)
    assert [m.snap().revision for m in machines] == before, "no newer revision: nothing moved"
    assert status(sim, 0).name == "active"


def test_the_action_runs_on_the_leader_only(sim: Sim) -> None:
    formed(sim)
    with pytest.raises(testing.ActionFailed) as info:
        sim.run("lxd/1", sim.on.action("refresh"))
    assert info.value.message == (
        "a cluster refreshes every member in one round, which the leader starts: "
        "run `juju run lxd/leader refresh`"
    )
    assert "refresh-round" not in sim.app_data


def test_the_action_is_refused_while_a_member_is_offline(sim: Sim) -> None:
    machines = formed(sim)
    machines[0].lxd.cluster.set_status("node-b", "Offline", "No heartbeat for 30s")
    with pytest.raises(testing.ActionFailed) as info:
        sim.run("lxd/0", sim.on.action("refresh"))
    assert info.value.message.startswith(
        "not starting refresh round 1 to 5.21/stable: node-b (lxd/1) is offline"
    )
    assert all(refreshes(machine) == [] for machine in machines)


def test_the_action_refreshes_a_standalone_unit_alone(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    state = testing.State(config={"snap-channel": "5.21/stable"}, resources=EMPTY_RESOURCES)
    out = ctx.run(ctx.on.install(), state)
    snapd.publish("5.21", "5.21.3")
    ctx.run(ctx.on.action("refresh"), out)
    assert ctx.action_results is not None
    assert ctx.action_results["refreshed"] == "yes"
    assert ctx.action_results["version"] == "5.21.3"
    assert snapd.calls[-1] == ("refresh", "lxd", "5.21/stable") and snapd.cohorts == {}
    ctx.run(ctx.on.action("refresh"), out)
    assert ctx.action_results["refreshed"] == "no: no newer revision"


def test_a_standalone_refresh_failure_fails_the_action_with_snapds_words(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    out = ctx.run(ctx.on.install(), testing.State(resources=EMPTY_RESOURCES))
    snapd.fail_on("refresh", SnapError('cannot refresh "lxd": store is unreachable'))
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action("refresh"), out)
    assert (
        info.value.message == 'refreshing LXD failed: cannot refresh "lxd": store is unreachable'
    )


# --- a zone change, applied in the hook that sees it ------------------------------------


def test_a_zone_change_is_applied_by_the_hook_that_sees_it(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A healthy member's update-status and peer events skip the reconcile, but not then."""
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az1")
    machines = formed(sim)

    def domain_of(name: str) -> str:
        return next(m.failure_domain for m in machines[0].lxd.cluster.members() if m.name == name)

    assert domain_of("node-b") == "az1"
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az2")
    sim.run("lxd/1", sim.on.update_status())
    assert domain_of("node-b") == "az2"
    assert status(sim, 1).name == "active"
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az3")
    run(sim, 2, "relation_changed", 0)
    assert domain_of("node-c") == "az3"
    sim.run("lxd/1", sim.on.update_status())  # az3 now for lxd/1 too
    assert domain_of("node-b") == "az3"
    calls = machines[1].lxd.calls
    sim.run("lxd/1", sim.on.update_status())  # no change: the one request that checks LXD
    assert machines[1].lxd.calls == calls + 1


# --- which status a round's report shows ------------------------------------------------


def test_a_round_explains_a_wait_but_gives_way_to_another_block() -> None:
    from lxd_charm.outcomes import BlockedError, WaitingError
    from lxd_charm.refresh_round import RefreshReport
    from lxd_charm.snap_refresh import Progress

    behind = RefreshReport(progress=Progress("refreshing to 6.1: node-b still on 5.21.1, ..."))
    lxd_waits = WaitingError("LXD is not answering: connection refused")
    assert behind.status(lxd_waits) == testing.WaitingStatus(
        "refreshing to 6.1: node-b still on 5.21.1, ..."
    )
    assert behind.status(None) == testing.WaitingStatus(
        "refreshing to 6.1: node-b still on 5.21.1, ..."
    )
    assert behind.status(BlockedError("fix lxd-preseed")) is None
    failed = RefreshReport(progress=Progress("refresh round 1 to 6/stable: ...", blocked=True))
    assert failed.status(None) == testing.BlockedStatus("refresh round 1 to 6/stable: ...")
    refused = RefreshReport(problem=BlockedError("not starting refresh round 1 ..."))
    assert refused.status(BlockedError("node-c is offline")) == testing.BlockedStatus(
        "not starting refresh round 1 ..."
    )
    snapd_busy = RefreshReport(problem=WaitingError("snapd is not answering"))
    assert snapd_busy.status(None) == testing.WaitingStatus("snapd is not answering")
    assert snapd_busy.status(BlockedError("other")) is None
    assert RefreshReport().status(lxd_waits) is None
