"""LXD charm units run as Juju runs them: the built charm, a process per hook, units at once.

Glue between `juju_sim.Sim` (Juju's rules), `unit_agent.UnitAgentRunner`
(the built `.charm`'s `dispatch` in a fresh process per hook) and
`lxd_daemons.DaemonPool` (real LXD on loopback): unit `lxd/N` runs on daemon
N, its hooks get that daemon's `LXD_DIR` and a machine of their own through
`lxd_agent_boot` (a FakeSnapd kept in a file, sysctl under a scratch root).
With ``parallel=True`` (the default) each unit runs its own hook queue at the
same time as the others, as Juju's unit agents do. The functional test of
concurrent joins and `bench/cluster_formation.py` build their units here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ops
from ops import testing

from tests.harness.fake_sysctl import populate
from tests.harness.juju_sim import Sim, SimUnit
from tests.harness.lxd_agent_boot import lxd_agent_env
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, agent_workdir
from tests.harness.unit_agent import UnitAgentRunner

REPO = Path(__file__).resolve().parents[2]
BOOT = REPO / "tests" / "harness" / "lxd_agent_boot.py"


class AgentUnits:
    """A simulated LXD application whose unit N runs the built charm on real daemon N."""

    def __init__(
        self,
        pool: DaemonPool,
        root: Path,
        charm: Path,
        *,
        parallel: bool = True,
        config: dict[str, Any] | None = None,
        lxd_dir: Callable[[LxdDaemon], Path] | None = None,
        runner_type: type[UnitAgentRunner] = UnitAgentRunner,
    ) -> None:
        """Set the application up, with no units yet.

        Args:
            pool: where the units' daemons come from.
            root: scratch directory for the machine roots and the unpacked charms.
            charm: the built `.charm` (or a charm directory).
            parallel: run different units' hooks at the same time.
            config: application config on top of cluster mode with no bridge.
            lxd_dir: the `LXD_DIR` a unit's hooks get for its daemon (default:
                the daemon's own directory; the benchmark puts a counting proxy there).
            runner_type: the runner class (the benchmark counts requests per hook).
        """
        self.pool = pool
        self.root = root
        self._lxd_dir = lxd_dir or (lambda daemon: daemon.directory)
        self.machine = root / "machine"
        populate(self.machine)
        boot_id = self.machine / "proc/sys/kernel/random/boot_id"
        boot_id.parent.mkdir(parents=True, exist_ok=True)
        boot_id.write_text("boot-1\n")
        self.runner = runner_type(
            charm,
            boot=BOOT,
            unit_env=self._unit_env,
            machine_calls={"restart-lxd": self._restart},
            workdir=agent_workdir(root),
        )
        self.sim = Sim(
            ops.CharmBase,
            app="lxd",
            peer="cluster",
            config={"mode": "cluster", "lxd-init-network": False, **(config or {})},
            networks=self._networks,
            resources=EMPTY_RESOURCES,
            runner=self.runner,
            parallel=parallel,
        )

    def add(self, count: int = 1) -> list[SimUnit]:
        """Start ``count`` daemons and add a unit on each, together (hooks queued, not run)."""
        return self.sim.add_units(count, machines=self.pool.start(count))

    def daemon(self, unit: str) -> LxdDaemon:
        """The daemon unit ``lxd/N`` runs on."""
        found = self.sim.units.get(unit) or self.sim.removed[unit]
        daemon: LxdDaemon = found.machine
        return daemon

    def close(self) -> None:
        """Stop the runner's hook-tool server and remove the unpacked charms."""
        self.runner.close()

    def _unit_env(self, unit: SimUnit) -> dict[str, str]:
        daemon: LxdDaemon = unit.machine
        state = self.root / f"state-{unit.number}"
        state.mkdir(exist_ok=True)
        return lxd_agent_env(self.machine, state, f"node{unit.number}", self._lxd_dir(daemon))

    def _restart(self, unit: SimUnit) -> None:
        """What `snap restart lxd` does on the unit's machine: its daemon starts again."""
        daemon: LxdDaemon = unit.machine
        if daemon.alive():
            daemon.kill()
        self.pool.restart(daemon)

    def _networks(self, unit: SimUnit) -> list[testing.Network]:
        host = unit.machine.host
        return [
            testing.Network(
                name, [testing.BindAddress([testing.Address(host)])], ingress_addresses=[host]
            )
            for name in ("cluster", "https")
        ]
