"""LXD charm units on real daemons: each simulated Juju unit drives its own `lxd`.

Glue between `juju_sim.Sim` (Juju's rules) and `lxd_daemons.DaemonPool` (real
LXD on loopback). Unit `lxd/N` gets daemon N: its `LXD_DIR` points there and
its `cluster` and `https` bindings are that daemon's loopback address, so the
charm finds and configures "its" LXD the way it would on its own machine.
snapd is the only thing replaced (`FakeSnapd`), and sysctl writes go to a
scratch /proc/sys.

By default every hook runs the BUILT charm (`tox -e pack`) as Juju's unit
agent would, a fresh `dispatch` process per hook (`unit_agent.UnitAgentRunner`),
with the machine seams of `lxd_agent_boot` (the fake snapd persisted in a
file per unit, sysctl under the scratch root, "restart LXD" asked of this
process). Without a built charm the test skips, naming `tox -e pack`. With
`LXD_CHARM_TESTS_IN_PROCESS=1` the charm's source runs in the test process
through ops.testing instead, which is faster to debug (breakpoints, one
traceback). Tests read the machine through `snapd()` and change it through
`tune()`, which work the same either way. With ``parallel=True`` (built charm
only) every unit runs its own hook queue at the same time as the others, as
Juju's unit agents do: the concurrent-join test and `bench/cluster_formation.py`
use it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import socket
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ops
import pytest
from ops import testing

from lxd_common.snap import LxdSnap
from tests.harness.agent_context import AgentContext, CharmContext
from tests.harness.charms import built_charm, load_charm_module, missing_charm_message
from tests.harness.charms import run_in_process as _run_in_process
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.fake_sysctl import fake_kernel
from tests.harness.juju_sim import Sim, SimUnit
from tests.harness.lxd_agent_boot import load_snapd, lxd_agent_env, snapd_file
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.unit_agent import UnitAgentRunner

EMPTY_RESOURCES = tuple(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)
BOOT = Path(__file__).resolve().with_name("lxd_agent_boot.py")
"""Run at the start of every hook process of the built LXD charm (see `lxd_agent_boot`)."""

PROXY_VARIABLES = ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_NO_PROXY")


def run_in_process() -> bool:
    """Whether `LXD_CHARM_TESTS_IN_PROCESS` asks for the in-process charm (see charms.py)."""
    return _run_in_process()


def built_lxd_charm() -> Path:
    """The packed LXD charm; the test skips with the command to run when it was not built."""
    found = built_charm("lxd")
    if found is None:
        pytest.skip(missing_charm_message("lxd"))
    return found


def prepare_machine(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scratch machine root: its own /proc/sys (sysctl never tunes this host) and boot id."""
    fake_kernel(root, monkeypatch)
    boot = root / "proc/sys/kernel/random/boot_id"
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text("boot-1\n")


def agent_workdir(root: Path) -> Path | None:
    """Where a stand-in keeps its socket and charms: next to the test's other files,
    unless the socket path would be too long there.

    A Unix socket path must stay under 108 bytes; pytest's tmp_path may not
    (the runner then uses a temporary directory of its own).
    """
    workdir = root / "agent"
    if len(str(workdir / "agent.sock")) >= 100:
        return None
    workdir.mkdir(exist_ok=True)
    return workdir


def lxd_charm_in_process(
    daemon: LxdDaemon, root: Path, monkeypatch: pytest.MonkeyPatch
) -> testing.Context[Any]:
    """A `testing.Context` for one LXD charm unit on ``daemon``, in this process.

    For the few tests that drive one of the charm's classes directly inside a
    hook (``with ctx(event, state) as manager``), which a separate hook
    process cannot offer; `lxd_charm_on` is the default for everything else.
    """
    prepare_machine(root / "machine", monkeypatch)
    for var in PROXY_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    module = load_charm_module("lxd")
    host = importlib.import_module("lxd_charm.host").Host(
        snap=LxdSnap(FakeSnapd()), root=root / "machine", state_dir=root / "state"
    )
    monkeypatch.setattr(importlib.import_module("lxd_charm.host"), "make_host", lambda: host)
    monkeypatch.setenv("LXD_DIR", str(daemon.directory))
    return testing.Context(module.LxdCharm, app_name="lxd")  # the bundles name the app lxd


def lxd_charm_on(daemon: LxdDaemon, root: Path, monkeypatch: pytest.MonkeyPatch) -> CharmContext:
    """A context (with `testing.Context`'s ``run``) for one LXD charm unit on ``daemon``.

    By default the built charm runs through the stand-in (`agent_context.AgentContext`),
    on a machine like `LxdUnits`' (fake snapd persisted under ``root/state``);
    with `LXD_CHARM_TESTS_IN_PROCESS=1`, a `testing.Context` in this process.
    The model's proxy variables are cleared, so a test sets exactly the ones it
    means (with ``monkeypatch.setenv``: they reach the hook either way).
    """
    prepare_machine(root / "machine", monkeypatch)
    for var in PROXY_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    state_dir = root / "state"
    if run_in_process():
        return lxd_charm_in_process(daemon, root, monkeypatch)
    state_dir.mkdir(parents=True, exist_ok=True)
    machine = lxd_agent_env(
        root / "machine", state_dir, socket.gethostname(), daemon.directory, restart_by_test=False
    )
    runner = UnitAgentRunner(built_lxd_charm(), boot=BOOT, workdir=agent_workdir(root))
    context = AgentContext(
        runner, app_name="lxd", machine=daemon, forwarded=PROXY_VARIABLES, unit_env=lambda: machine
    )
    weakref.finalize(context, runner.close)
    return context


class LxdUnits:
    """A simulated LXD application whose unit N runs on real daemon N.

    Args:
        pool: where the units' daemons come from.
        root: scratch space: the machine root and each unit's state directory.
        monkeypatch: for the in-process mode's seams (undone by pytest).
        config: the application's config on top of cluster mode.
        in_process: run the charm's source in this process (default: the
            `LXD_CHARM_TESTS_IN_PROCESS` switch; otherwise the built charm).
        parallel: (built charm only) every unit runs its own hook queue at the
            same time as the others, as Juju's unit agents do (`Sim(parallel=True)`).
        charm: (built charm only) the `.charm` or charm directory to run
            (default: the one `tox -e pack` built).
        lxd_dir: the `LXD_DIR` a unit's hooks get for its daemon (default: the
            daemon's own directory; the benchmark puts a counting proxy there).
        runner_type: (built charm only) the stand-in's class (the benchmark
            counts LXD requests per hook).
    """

    def __init__(
        self,
        pool: DaemonPool,
        root: Path,
        monkeypatch: pytest.MonkeyPatch,
        config: dict[str, Any] | None = None,
        *,
        in_process: bool | None = None,
        parallel: bool = False,
        charm: Path | None = None,
        lxd_dir: Callable[[LxdDaemon], Path] | None = None,
        runner_type: type[UnitAgentRunner] = UnitAgentRunner,
    ) -> None:
        self.pool = pool
        self.root = root
        self.monkeypatch = monkeypatch
        self.in_process = run_in_process() if in_process is None else in_process
        self._lxd_dir = lxd_dir or (lambda daemon: daemon.directory)
        self.daemons: dict[int, LxdDaemon] = {}
        self.hostnames: dict[int, str] = {}
        self.host_settings: dict[int, dict[str, Any]] = {}
        """Per unit, attributes its `Host` gets (`tune`)."""
        self._hosts: dict[int, Any] = {}
        self._snapds: dict[int, FakeSnapd] = {}
        prepare_machine(root / "machine", monkeypatch)
        config = {"mode": "cluster", "lxd-init-network": False, **(config or {})}
        self.runner: UnitAgentRunner | None = None
        charm_type: type[ops.CharmBase] = ops.CharmBase
        if self.in_process:
            charm_type = load_charm_module("lxd").LxdCharm
            # Imported here, after load_charm_module has put the charm's src/ on sys.path.
            self.host_module: Any = importlib.import_module("lxd_charm.host")
        else:
            self.runner = runner_type(
                charm or built_lxd_charm(),
                boot=BOOT,
                unit_env=self._unit_env,
                machine_calls={"restart-lxd": self._restart_unit},
                workdir=agent_workdir(root),
            )
            self._finalizer = weakref.finalize(self, self.runner.close)
        self.sim = Sim(
            charm_type,
            app="lxd",
            peer="cluster",
            config=config,
            before_hook=self._before_hook if self.in_process else None,
            networks=self._networks,
            resources=EMPTY_RESOURCES,
            runner=self.runner,
            parallel=parallel,
        )

    def close(self) -> None:
        """Stop the stand-in (done anyway when the object goes away)."""
        if self.runner is not None:
            self._finalizer()

    # ------------------------------------------------------------------ units

    def add(self, count: int = 1, hostname: str | None = None) -> list[SimUnit]:
        """Start ``count`` daemons and add a unit for each, together (hooks queued, not run).

        Unit ``lxd/N`` calls itself ``nodeN`` unless ``hostname`` says otherwise.
        """
        started = self.pool.start(count)
        units = self.sim.add_units(count, machines=started)
        for unit, daemon in zip(units, started, strict=True):
            self.attach(unit, daemon, hostname)
        return units

    def attach(self, unit: SimUnit, daemon: LxdDaemon, hostname: str | None = None) -> None:
        """Give a unit placed by `Sim.place_unit` its machine: ``daemon`` and a state dir."""
        self.daemons[unit.number] = daemon
        self.hostnames[unit.number] = hostname or f"node{unit.number}"
        self.host_settings.setdefault(unit.number, {})
        self._state_dir(unit.number).mkdir(parents=True, exist_ok=True)
        if self.in_process:
            snapd = self._snapds[unit.number] = FakeSnapd()
            host = self.host_module.Host(
                snap=LxdSnap(snapd),
                root=self.root / "machine",
                state_dir=self._state_dir(unit.number),
                hostname=self.hostnames[unit.number],
            )
            host.restart_lxd = functools.partial(self._restart, daemon)
            self._hosts[unit.number] = host

    def _state_dir(self, number: int) -> Path:
        return self.root / f"state-{number}"

    def daemon(self, unit: str) -> LxdDaemon:
        """The daemon unit ``lxd/N`` runs on."""
        return self.daemons[int(unit.split("/")[1])]

    def assert_formed(self, count: int) -> None:
        """Units lxd/0..lxd/count-1 are members node0..: in LXD, in the app bag, all active.

        The leader's status counts them all online (the others name only themselves).
        """
        names = [f"node{n}" for n in range(count)]
        for each in self.sim.units:
            listed = sorted(m.name for m in self.daemon(each).client().cluster.members())
            assert listed == names, (each, listed)
        assert json.loads(self.sim.app_data["members"]) == {
            f"lxd/{n}": name for n, name in enumerate(names)
        }
        for name, unit in self.sim.units.items():
            assert unit.state.unit_status.name == "active", (name, unit.state.unit_status)
        assert self.sim.units["lxd/0"].state.unit_status.message.startswith(
            f"cluster: {count}/{count} members online, {count} units; cluster on "
        )

    def tune(self, unit: str, **host: Any) -> None:
        """Set attributes of the unit's machine seam (`lxd_charm.host.Host`) for its next hooks.

        E.g. ``tune("lxd/2", lxd_wait=1.0)`` once a test killed its daemon, so its
        hooks give up on LXD quickly.
        """
        number = int(unit.split("/")[1])
        self.host_settings[number].update(host)
        for name, value in host.items():
            if number in self._hosts:
                setattr(self._hosts[number], name, value)

    def snapd(self, unit: str) -> FakeSnapd:
        """What the unit's snapd holds now: the in-process fake, or the one its hooks saved."""
        number = int(unit.split("/")[1])
        if number in self._snapds:
            return self._snapds[number]
        loaded: FakeSnapd = load_snapd(FakeSnapd(), snapd_file(self._state_dir(number)))
        return loaded

    def hook_env(self, unit: SimUnit) -> dict[str, str]:
        """Variables Juju would put in this unit's hook environment (override to add some)."""
        return {}

    # ------------------------------------------------------------------ seams

    def _restart(self, daemon: LxdDaemon) -> None:
        """What `snap restart lxd` does for a unit's machine: its daemon starts again."""
        if daemon.alive():
            daemon.kill()
        self.pool.restart(daemon)

    def _restart_unit(self, unit: SimUnit) -> None:
        self._restart(self.daemons[unit.number])

    def _unit_env(self, unit: SimUnit) -> dict[str, str]:
        number = unit.number
        env = lxd_agent_env(
            self.root / "machine",
            self._state_dir(number),
            self.hostnames[number],
            self._lxd_dir(self.daemons[number]),
            host=self.host_settings.get(number),
        )
        env.update(self.hook_env(unit))
        return env

    def _networks(self, unit: SimUnit) -> list[testing.Network]:
        daemon: LxdDaemon = unit.machine  # set by `add`
        host = daemon.host
        return [
            testing.Network(
                name, [testing.BindAddress([testing.Address(host)])], ingress_addresses=[host]
            )
            for name in ("cluster", "https")
        ]

    @contextlib.contextmanager
    def _before_hook(self, unit: SimUnit) -> Iterator[None]:
        """In-process only: this process becomes the unit's machine for one hook."""
        daemon, host = self.daemons[unit.number], self._hosts[unit.number]
        seam: Any = importlib.import_module("lxd_charm.host")
        original = seam.make_host
        seam.make_host = lambda: host
        try:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("LXD_DIR", str(self._lxd_dir(daemon)))
                for name in PROXY_VARIABLES:
                    env.delenv(name, raising=False)
                for name, value in self.hook_env(unit).items():
                    if value:
                        env.setenv(name, value)
                    else:
                        env.delenv(name, raising=False)
                yield
        finally:
            seam.make_host = original
