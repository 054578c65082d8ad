"""Three units join a real LXD 5.0 cluster at once, as Juju runs them.

Juju's unit agents run different units' hooks at the same time, each hook a
fresh process of the built charm. Here `Sim(parallel=True)` with the
unit-agent stand-in does the same on three real daemons: every joiner gets
its token in the same leader hook, and their hooks run side by side. LXD 5.0
wedged a joining daemon in about one run in five when three `lxd init`
joins ran at once, so the charm's joiners take turns; this test is the proof
that the turns hold when nothing serialises the units' hooks but the charm.
"""

from __future__ import annotations

from pathlib import Path

import ops
import pytest

from tests.harness.juju_sim import Sim
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits, built_lxd_charm
from tests.harness.unit_agent import UnitAgentRunner


def test_three_units_join_at_once_through_the_built_charm(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    charm = built_lxd_charm()
    units = LxdUnits(lxd_pool, tmp_path, monkeypatch, in_process=False, parallel=True, charm=charm)
    try:
        units.add(3)
        units.sim.settle()
        sim = units.sim
        assert sim.most_at_once >= 2, "the units' hooks never overlapped"
        units.assert_formed(3)
        # One token round: both joiners were served by one leader hook.
        rounds = {hook for hook, owner in sim.secrets_added if owner == "app"}
        assert len(rounds) == 1
        print(
            f"\n{len(sim.hooks)} hooks, at most {sim.most_at_once} at once, "
            f"{len(sim.failed_hooks)} failed and retried: {sim.failed_hooks}"
        )
    finally:
        units.close()


def test_the_stand_in_serves_concurrent_hooks_of_different_units(tmp_path: Path) -> None:
    """Four probe units in parallel: each hook's tools answer from its own session.

    The leader adds a secret and grants it in its relation-created; every other
    unit reads it once the leader's hook has committed and writes the word back.
    A tool call answered from another hook's session would show as a wrong or
    missing word, or a refused read.
    """
    from tests.functional.test_unit_agent import probe_charm

    runner = UnitAgentRunner(
        probe_charm(tmp_path / "probe"), unit_env=lambda _: {"PROBE": "secret-granted"}
    )
    try:
        sim = Sim(
            ops.CharmBase,
            app="probe",
            peer="cluster",
            hook_retries=0,
            runner=runner,
            parallel=True,
        )
        sim.add_units(4)
        sim.settle()
        assert sim.most_at_once >= 2
        for name in ("probe/1", "probe/2", "probe/3"):
            assert sim.unit_data[name]["word"] == "swordfish", name
        assert len(runner.timings) == len(sim.hooks)
    finally:
        runner.close()
