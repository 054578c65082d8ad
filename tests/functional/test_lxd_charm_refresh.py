"""A refresh round through the built charm: real LXD daemons, one process per hook.

snapd does not run here, so each unit's snapd is the harness's `FakeSnapd`,
kept in a file per machine across hook processes (`lxd_agent_boot`): this
checks that the round's cohort, hold and progress survive that boundary as
they must across real hooks, while the cluster itself is three real Debian
LXD daemons (the leader counts them before it starts a round).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.juju_sim import Sim
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits


@pytest.fixture
def cluster(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Sim, Path]]:
    """Three units of the built charm on three real daemons, formed into one cluster."""
    units = LxdUnits(
        lxd_pool, tmp_path, monkeypatch, {"snap-channel": "5.21/stable"}, in_process=False
    )
    try:
        sim = units.sim
        units.add(3)
        sim.settle()
        assert all(u.state.unit_status.name == "active" for u in sim.units.values())
        yield sim, tmp_path
    finally:
        units.close()


def snapd_of(root: Path, unit: int) -> dict[str, Any]:
    """What unit ``unit``'s snapd holds, as its last hook process saved it."""
    saved: dict[str, Any] = json.loads((root / f"state-{unit}" / "fake-snapd.json").read_text())
    return saved


def test_members_join_the_cohort_hold_refreshes_and_refresh_in_one_round(
    cluster: tuple[Sim, Path],
) -> None:
    sim, root = cluster
    for unit in range(3):
        saved = snapd_of(root, unit)
        assert saved["cohorts"] == {"lxd": "+"}
        assert saved["snaps"]["lxd"]["held"] is True
        assert saved["snaps"]["lxd"]["channel"] == "5.21/stable"
        assert sim.unit_data[f"lxd/{unit}"]["lxd-version"] == "5.21.0"

    sim.config_changed(**{"snap-channel": "6/stable"})
    sim.settle()
    assert sim.app_data["refresh-round"] == "1"
    for unit in range(3):
        saved = snapd_of(root, unit)
        assert saved["snaps"]["lxd"]["channel"] == "6/stable", unit
        assert saved["snaps"]["lxd"]["held"] is True, "the refresh kept the hold"
        assert saved["cohorts"] == {"lxd": "+"}
        assert sim.unit_data[f"lxd/{unit}"]["refresh-done"] == "1"
        assert sim.unit_data[f"lxd/{unit}"]["lxd-version"] == "6.0"
    leader = sim.units["lxd/0"].state.unit_status
    assert leader.name == "active" and leader.message.startswith("cluster: 3/3 members online")

    results = sim.run("lxd/0", sim.on.action("refresh"))
    assert results is not None
    assert (results["round"], results["channel"]) == ("2", "6/stable")
    sim.settle()
    assert all(sim.unit_data[f"lxd/{u}"]["refresh-done"] == "2" for u in range(3))
    assert all(u.state.unit_status.name == "active" for u in sim.units.values())
