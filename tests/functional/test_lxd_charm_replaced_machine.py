"""A replaced machine, and members no unit owns: the charm's own code on real daemons.

Captured from LXD 5.0.2 here: LXD removes an unreachable member only with
force (without it: 500 'Delete "https://<member>/1.0/storage-pools/local":
Unable to connect to ...'); a forced removal also drops the records of the
instances on it (they are listed with status "Error" while it is offline,
and gone after); a new daemon can then join under the old name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.clusters import join, statuses, wait_until_offline
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, wait_until
from tests.harness.lxd_units import LxdUnits


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LxdUnits:
    return LxdUnits(lxd_pool, tmp_path, monkeypatch)


def status(units: LxdUnits, unit: str = "lxd/0") -> tuple[str, str]:
    got = units.sim.units[unit].state.unit_status
    return got.name, got.message


def voters(daemon: LxdDaemon) -> int:
    roles = [set(m.roles) for m in daemon.client().cluster.members()]
    return sum(bool(r & {"database", "database-leader"}) for r in roles)


def formed(units: LxdUnits) -> LxdDaemon:
    """Three members, once LXD has given all three a database vote.

    LXD promotes the third member to a voter on a later heartbeat, after its
    join; the test's own hand operations (a join, an instance on a member)
    wait for that, so that they never meet the cluster mid-rebalance.
    """
    units.add(3)
    units.sim.settle()
    leader = units.daemon("lxd/0")
    assert wait_until(lambda: voters(leader) == 3, timeout=60, interval=0.5)
    return leader


def dies(leader: LxdDaemon, daemon: LxdDaemon, name: str) -> None:
    daemon.kill()
    wait_until_offline(leader, name)


def test_a_member_added_by_hand_is_shown_then_replaced_when_its_machine_dies(
    lxd_units: LxdUnits, lxd_pool: DaemonPool
) -> None:
    leader = formed(lxd_units)
    [extra] = lxd_pool.start(1)
    extra.name = "node7"
    join(leader, extra)
    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert status(lxd_units)[1].startswith(
        "cluster: 4/4 members online, 3 units; owned by no unit: node7; "
    )
    assert "node7" in statuses(leader)  # shown, never removed on the charm's own

    dies(leader, extra, "node7")
    lxd_units.add(1, hostname="node7")  # the machine's replacement announces its name
    lxd_units.sim.settle()
    assert statuses(leader) == dict.fromkeys(("node0", "node1", "node2", "node7"), "Online")
    assert lxd_units.sim.units["lxd/3"].state.unit_status.name == "active"
    assert status(lxd_units) == (
        "active",
        f"cluster: 4/4 members online, 4 units; cluster on {leader.address}",
    )
    assert not lxd_units.sim.failed_hooks


def test_a_dead_members_instances_are_never_discarded_by_the_charm(
    lxd_units: LxdUnits, busybox_image: Path
) -> None:
    leader = formed(lxd_units)
    leader.import_image(busybox_image)
    leader.lxc("init", "busybox", "web", "--target", "node2")
    dies(leader, lxd_units.daemon("lxd/2"), "node2")
    lxd_units.tune("lxd/2", lxd_wait=1.0)  # its hooks find no LXD quickly

    lxd_units.sim.remove_unit("lxd/2")
    lxd_units.sim.settle()
    blocked = (
        "blocked",
        "cannot remove lxd/2: its member 'node2' is offline and holds 1 instance(s) (web); "
        "bring its machine back, or discard them with `lxc cluster remove --force node2`",
    )
    assert status(lxd_units) == blocked
    lxd_units.add(1, hostname="node2")
    lxd_units.sim.settle()
    assert status(lxd_units) == blocked
    assert "node2" in statuses(leader)
    assert "web" in leader.client().cluster.placements()

    # The operator decides to discard it, as the status says; the new unit then joins.
    leader.lxc("cluster", "remove", "--force", "--yes", "node2")
    assert "web" not in leader.client().cluster.placements()
    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert statuses(leader) == dict.fromkeys(("node0", "node1", "node2"), "Online")
    assert status(lxd_units)[0] == "active", status(lxd_units)
    assert not lxd_units.sim.failed_hooks
