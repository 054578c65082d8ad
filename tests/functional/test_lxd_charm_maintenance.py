"""Maintenance: the charm's `evacuate` and `restore` actions on a real 3-member cluster.

Captured from LXD 5.0.2 here (docs/interfaces/lxd-cluster.md has the rest):
evacuating a member moves its containers to the other members, running ones
cold on a dir pool (stopped, copied, started again: "Migrating", then
"Starting"), stopped ones too (they stay stopped); an instance whose
``cluster.evacuate`` is ``stop`` stays on the member, stopped. The member
lists as "Evacuated" and keeps its database role. `restore` moves them back
and starts what evacuation stopped. LXD 5.0.2 ignores the evacuation's
``mode`` (no ``clustering_evacuation_mode``), so the action refuses any but
``auto`` there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ops import testing

from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import LxdUnits


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LxdUnits:
    return LxdUnits(lxd_pool, tmp_path, monkeypatch)


def places(daemon: LxdDaemon) -> dict[str, tuple[str, str]]:
    return {
        name: (at.location, at.status) for name, at in daemon.client().cluster.placements().items()
    }


def status(units: LxdUnits, unit: str) -> tuple[str, str]:
    got = units.sim.units[unit].state.unit_status
    return got.name, got.message


def action(units: LxdUnits, unit: str, name: str, **params: str) -> dict[str, str]:
    results = units.sim.run(unit, units.sim.on.action(name, params=params))
    assert results is not None
    return {key: str(value) for key, value in results.items()}


def test_evacuate_moves_containers_away_and_restore_brings_them_back(
    lxd_units: LxdUnits, busybox_image: Path
) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    leader = lxd_units.daemon("lxd/0")
    leader.import_image(busybox_image)
    for name in ("run1", "run2", "idle", "pinned"):
        leader.lxc("init", "busybox", name, "--target", "node1")
    leader.lxc("config", "set", "pinned", "cluster.evacuate", "stop")
    for name in ("run1", "run2", "pinned"):
        leader.lxc("start", name)
    assert {name: where for name, (where, _) in places(leader).items()} == dict.fromkeys(
        ("run1", "run2", "idle", "pinned"), "node1"
    )

    # LXD 5.0.2 would ignore the mode: the action says so instead of pretending.
    with pytest.raises(testing.ActionFailed, match="mode=stop cannot be honoured"):
        action(lxd_units, "lxd/1", "evacuate", mode="stop")
    assert places(leader)["run1"] == ("node1", "Running")

    got = action(lxd_units, "lxd/1", "evacuate")
    after = places(leader)
    assert got["member"] == "node1" and got["state"] == "evacuated" and got["count"] == "4"
    for name in ("run1", "run2", "idle"):
        where, state = after[name]
        assert where in {"node0", "node2"}, (name, after)
        assert f"{name}: node1 -> {where} ({state})" in got["instances"]
    assert after["run1"][1] == after["run2"][1] == "Running"
    assert after["idle"][1] == "Stopped"
    assert after["pinned"] == ("node1", "Stopped")
    assert "pinned: stays on node1 (Stopped)" in got["instances"]
    member = {m.name: m for m in leader.client().cluster.members()}["node1"]
    assert member.status == "Evacuated" and member.roles == ["database"]

    # The unit says so at once; the leader's count once its `evacuated` field reaches it.
    assert status(lxd_units, "lxd/1") == (
        "active",
        "cluster: member node1 is evacuated: run the restore action to take instances again; "
        f"cluster on {lxd_units.daemon('lxd/1').address}",
    )
    lxd_units.sim.settle()
    assert status(lxd_units, "lxd/0")[0] == "active"
    assert status(lxd_units, "lxd/0")[1].startswith(
        "cluster: 2/3 members online, 1 evacuated (node1), 3 units; "
    )

    # A second voter of three may not go too: that would leave one database member.
    with pytest.raises(testing.ActionFailed, match=r"not evacuating node2 .lxd/2.: node1"):
        action(lxd_units, "lxd/2", "evacuate")

    again = action(lxd_units, "lxd/1", "evacuate")
    assert again["state"].startswith("already evacuated")

    back = action(lxd_units, "lxd/1", "restore")
    assert back["state"] == "restored"
    assert places(leader) == dict.fromkeys(("run1", "run2", "pinned"), ("node1", "Running")) | {
        "idle": ("node1", "Stopped")
    }
    assert "pinned: stays on node1 (Running)" in back["instances"]
    lxd_units.sim.settle()
    assert status(lxd_units, "lxd/1")[1].startswith("cluster: member node1; ")
    assert status(lxd_units, "lxd/0")[1].startswith("cluster: 3/3 members online, 3 units; ")
    assert action(lxd_units, "lxd/1", "restore")["state"] == "not evacuated: nothing to restore"
    assert not lxd_units.sim.failed_hooks


def test_remove_unit_refused_for_instances_names_evacuate(
    lxd_units: LxdUnits, busybox_image: Path
) -> None:
    """The charm never moves instances on its own at removal: it names the way forward."""
    lxd_units.add(3)
    lxd_units.sim.settle()
    leader = lxd_units.daemon("lxd/0")
    leader.import_image(busybox_image)
    leader.lxc("init", "busybox", "keep", "--target", "node2")

    lxd_units.sim.remove_unit("lxd/2")
    lxd_units.sim.settle()
    assert status(lxd_units, "lxd/0") == (
        "blocked",
        "cannot remove lxd/2: member 'node2' still holds 1 instance(s) (keep); move them "
        "first with `juju run lxd/2 evacuate` (`lxc cluster evacuate node2` once the unit is "
        "gone), or delete them",
    )
    assert places(leader)["keep"] == ("node2", "Stopped")  # untouched
    assert not lxd_units.sim.failed_hooks
