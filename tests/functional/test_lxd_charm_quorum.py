"""A removal never costs the cluster its database quorum: the charm's own code on real daemons.

Captured from LXD 5.0 here: with three members (all three database voters)
and one of them offline, removing a second member fails with "Failed to
leave the cluster: server has lost leadership", after which the database
has no majority and LXD lists every member offline. From four members on,
LXD keeps three voters and promotes an online standby when a voter goes,
so what decides is the roles, not the count of members online.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.clusters import wait_until_offline
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, wait_until
from tests.harness.lxd_units import LxdUnits


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LxdUnits:
    return LxdUnits(lxd_pool, tmp_path, monkeypatch)


def formed(units: LxdUnits, count: int) -> LxdDaemon:
    units.add(count)
    units.sim.settle()
    return units.daemon("lxd/0")


def listed(daemon: LxdDaemon) -> dict[str, tuple[str, list[str]]]:
    return {m.name: (m.status, m.roles) for m in daemon.client().cluster.members()}


def take_down(units: LxdUnits, leader: LxdDaemon, *unit_names: str) -> None:
    """Kill the units' daemons and wait until LXD lists their members offline, the rest online."""
    for name in unit_names:
        units.daemon(name).kill()
        units.tune(name, lxd_wait=1.0)  # its hooks find no LXD quickly
    wait_until_offline(leader, *(f"node{name.split('/')[1]}" for name in unit_names))


def status(units: LxdUnits, unit: str = "lxd/0") -> tuple[str, str]:
    got = units.sim.units[unit].state.unit_status
    return got.name, got.message


def test_three_members_refuse_a_removal_that_would_lose_the_quorum(
    lxd_units: LxdUnits, lxd_pool: DaemonPool
) -> None:
    leader = formed(lxd_units, 3)
    assert {roles[0] for roles in [r for _, r in listed(leader).values()]} <= {
        "database",
        "database-leader",
    }
    take_down(lxd_units, leader, "lxd/2")

    lxd_units.sim.remove_unit("lxd/1")
    lxd_units.sim.settle()
    assert status(lxd_units) == (
        "blocked",
        "not removing node1 (lxd/1): node2 (lxd/2) is offline and the cluster would lose its "
        "quorum; bring node2 back or remove lxd/2 first",
    )
    # The database kept its majority: it still answers, and node1 is still a member.
    assert sorted(listed(leader)) == ["node0", "node1", "node2"]
    assert not lxd_units.sim.failed_hooks

    lxd_pool.restart(lxd_units.daemon("lxd/2"))
    assert wait_until(lambda: listed(leader)["node2"][0] == "Online", timeout=60, interval=1)
    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert sorted(listed(leader)) == ["node0", "node2"]
    assert status(lxd_units)[0] == "active", status(lxd_units)


def test_five_members_count_roles_not_members(lxd_units: LxdUnits) -> None:
    """Two standbys offline: a count of members would refuse, the voters are all online."""
    leader = formed(lxd_units, 5)
    roles = {name: r for name, (_, r) in listed(leader).items()}
    standbys = sorted(name for name, r in roles.items() if "database-standby" in r)
    voters = sorted(name for name, r in roles.items() if "database" in r)
    assert len(voters) == 3 and len(standbys) == 2, roles
    down = [f"lxd/{name.removeprefix('node')}" for name in standbys]
    take_down(lxd_units, leader, *down)

    leaving = next(name for name in voters if name != "node0")
    lxd_units.sim.remove_unit(f"lxd/{leaving.removeprefix('node')}")
    lxd_units.sim.settle()
    remaining = listed(leader)
    assert leaving not in remaining
    assert sorted(remaining) == sorted({*voters, *standbys} - {leaving})
    # Two members are still offline: the leader says so instead of active.
    name, message = status(lxd_units)
    assert name == "blocked"
    assert message == (
        f"{standbys[0]} ({down[0]}), {standbys[1]} ({down[1]}) are offline: bring them back, "
        "or remove the units"
    ), remaining  # what LXD listed after the removal
    assert not lxd_units.sim.failed_hooks
