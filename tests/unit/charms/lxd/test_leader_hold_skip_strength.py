"""A leader holding first tokens skips a peer event only when the bags bring nothing but a count.

`LxdCharm._leader_still_holding` lets the leader return from a peer event on
databag reads alone while it holds first tokens for planned units
(`cluster.still_holding`). Every other case must reconcile, and most of
those reconciles end in a status the skip could also have left, so these
tests measure what the hook asked: the leader's LXD and snapd. Each case
starts from the leader's hook that began the hold (lxd/1 announced, lxd/2
and lxd/3 planned and silent), changes the one thing the case is about,
and runs the leader's next peer event.

Found by `tox -e mutation -- charms/lxd/src/charm.py --function
LxdCharm._leader_still_holding` (18 survivors before these tests).
"""

from __future__ import annotations

from typing import Any

import pytest
from ops import testing

from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim

from .test_charm_cluster import (  # the cluster simulator and its helpers
    HELD,
    Machine,
    add_unit,
    announce,
    bag_of,
    bootstrapped,
    run,
    sim,  # noqa: F401 (a fixture)
)


@pytest.fixture
def holding(sim: Sim) -> Machine:  # noqa: F811 (the fixture's value)
    """Leader lxd/0 holds lxd/1's first token: 2 of the 4 planned units have announced."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3")
    add_unit(sim, 3, "node-d", "10.0.0.4")
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status == testing.WaitingStatus(HELD.format(2, 4))
    return first


def asked(machine: Machine, snapd: FakeSnapd) -> tuple[int, int, int]:
    return machine.lxd.connections, machine.lxd.calls, len(snapd.calls)


def next_announcement_reconciles(
    sim: Sim,  # noqa: F811 (the fixture's value)
    leader: Machine,
    snapd: FakeSnapd,
    bag: dict[str, str] | None = None,
    **state: Any,
) -> testing.State:
    """lxd/2 announces itself (``bag``); the leader's peer event must ask LXD: its State."""
    before = asked(leader, snapd)
    sim.write_unit_bag("lxd/2", bag if bag is not None else announce("node-c"))
    out = run(sim, 0, "relation_changed", 2, **state)
    assert asked(leader, snapd)[1] > before[1], "the peer event skipped the reconcile"
    return out


def test_another_announcement_only_counts(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
) -> None:
    """The reference case: the skip the others must not take."""
    before = asked(holding, snapd)
    sim.write_unit_bag("lxd/2", announce("node-c"))
    out = run(sim, 0, "relation_changed", 2)
    assert asked(holding, snapd) == before
    assert out.unit_status == testing.WaitingStatus(HELD.format(3, 4))


@pytest.mark.parametrize(
    "status",
    [
        testing.WaitingStatus("waiting for the cluster peer relation"),
        testing.BlockedStatus(HELD.format(2, 4)),
        testing.ActiveStatus("cluster: 1/1 members online, 4 units"),
    ],
    ids=["another-wait", "hold-words-blocked", "active"],
)
def test_a_leader_whose_last_hook_did_not_end_holding_reconciles(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
    status: Any,
) -> None:
    out = next_announcement_reconciles(sim, holding, snapd, unit_status=status)
    assert out.unit_status == testing.WaitingStatus(HELD.format(3, 4))


def test_a_member_that_lost_leadership_reconciles(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
) -> None:
    """Its status still says it holds; the hold is not its to keep any more."""
    sim.set_leader("lxd/1")
    next_announcement_reconciles(sim, holding, snapd)


def test_a_leader_with_deputy_work_reconciles(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
) -> None:
    """A `leader-token` in its own bag: it issued a token as a deputy, which it must tend."""
    sim.write_unit_bag("lxd/0", {**bag_of(sim, 0), "leader-token": "secret:deputised"})
    next_announcement_reconciles(sim, holding, snapd)


def test_a_peer_of_the_earlier_charm_reconciles(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
) -> None:
    """A refresh from the earlier charm is under way: the mixed-moment rules decide."""
    earlier = {"version": "1.0", "hostname": "node-c"}
    out = next_announcement_reconciles(sim, holding, snapd, earlier)
    assert out.unit_status != testing.WaitingStatus(HELD.format(3, 4))


def test_an_application_bag_in_the_earlier_charms_shape_reconciles(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
) -> None:
    """Only a leader of the earlier charm writes it so: the reconcile writes this charm's back."""
    sim.app_data["version"] = "1.0"
    next_announcement_reconciles(sim, holding, snapd)
    assert sim.app_data["version"] == "1.4"


def test_an_application_bag_it_cannot_read_reconciles(
    sim: Sim,  # noqa: F811
    holding: Machine,
    snapd: FakeSnapd,
) -> None:
    sim.app_data["members"] = "{not json"
    out = next_announcement_reconciles(sim, holding, snapd)
    assert out.unit_status.name == "blocked"
    assert "members" in out.unit_status.message
