"""LXD charm units on real daemons: each simulated Juju unit drives its own `lxd`.

Glue between `juju_sim.Sim` (Juju's rules, ops.testing underneath) and
`lxd_daemons.DaemonPool` (real LXD on loopback). Unit `lxd/N` gets daemon N:
its `LXD_DIR` points there and its `cluster` and `https` bindings are that
daemon's loopback address, so the charm finds and configures "its" LXD the
way it would on its own machine. snapd is the only thing replaced
(`FakeSnapd`), and sysctl writes go to a scratch /proc/sys.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_common.snap import LxdSnap
from tests.harness.charms import load_charm_module
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.fake_sysctl import fake_kernel
from tests.harness.juju_sim import Sim, SimUnit
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon

EMPTY_RESOURCES = tuple(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)


def prepare_machine(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scratch machine root: its own /proc/sys (sysctl never tunes this host) and boot id."""
    fake_kernel(root, monkeypatch)
    boot = root / "proc/sys/kernel/random/boot_id"
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text("boot-1\n")


def lxd_charm_on(
    daemon: LxdDaemon, root: Path, monkeypatch: pytest.MonkeyPatch
) -> testing.Context[Any]:
    """A `testing.Context` for one LXD charm unit whose LXD is ``daemon``.

    The model's proxy variables are cleared, so a test sets exactly the ones it means.
    """
    prepare_machine(root / "machine", monkeypatch)
    module = load_charm_module("lxd")
    host = importlib.import_module("lxd_charm.host").Host(
        snap=LxdSnap(FakeSnapd()), root=root / "machine", state_dir=root / "state"
    )
    monkeypatch.setattr(importlib.import_module("lxd_charm.host"), "make_host", lambda: host)
    monkeypatch.setenv("LXD_DIR", str(daemon.directory))
    for var in ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return testing.Context(module.LxdCharm, app_name="lxd")  # the bundles name the app lxd


class LxdUnits:
    """A simulated LXD application whose unit N runs on real daemon N."""

    def __init__(
        self,
        pool: DaemonPool,
        root: Path,
        monkeypatch: pytest.MonkeyPatch,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.pool = pool
        self.root = root
        self.monkeypatch = monkeypatch
        self.daemons: dict[int, LxdDaemon] = {}
        self.hosts: dict[int, Any] = {}
        self.module = load_charm_module("lxd")
        # Imported here, after load_charm_module has put the charm's src/ on sys.path.
        self.host_module = importlib.import_module("lxd_charm.host")
        prepare_machine(root / "machine", monkeypatch)
        self.sim = Sim(
            self.module.LxdCharm,
            app="lxd",
            peer="cluster",
            config={"mode": "cluster", "lxd-init-network": False, **(config or {})},
            before_hook=self._before_hook,
            networks=self._networks,
            resources=EMPTY_RESOURCES,
        )

    def add(self, count: int = 1, hostname: str | None = None) -> list[SimUnit]:
        """Start ``count`` daemons and add a unit for each, together (hooks queued, not run).

        Unit ``lxd/N`` calls itself ``nodeN`` unless ``hostname`` says otherwise.
        """
        started = self.pool.start(count)
        units = self.sim.add_units(count, machines=started)
        for unit, daemon in zip(units, started, strict=True):
            self.daemons[unit.number] = daemon
            host = self.host_module.Host(
                snap=LxdSnap(FakeSnapd()),
                root=self.root / "machine",
                state_dir=self.root / f"state-{unit.number}",
                hostname=hostname or f"node{unit.number}",
            )
            host.restart_lxd = functools.partial(self._restart, daemon)
            self.hosts[unit.number] = host
        return units

    def _restart(self, daemon: LxdDaemon) -> None:
        """What `snap restart lxd` does for a unit's machine: its daemon starts again."""
        if daemon.alive():
            daemon.kill()
        self.pool.restart(daemon)

    def daemon(self, unit: str) -> LxdDaemon:
        """The daemon unit ``lxd/N`` runs on."""
        return self.daemons[int(unit.split("/")[1])]

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
        daemon, host = self.daemons[unit.number], self.hosts[unit.number]
        saved = os.environ.get("LXD_DIR")
        os.environ["LXD_DIR"] = str(daemon.directory)
        seam: Any = importlib.import_module("lxd_charm.host")
        original = seam.make_host
        seam.make_host = lambda: host
        try:
            yield
        finally:
            seam.make_host = original
            if saved is None:
                os.environ.pop("LXD_DIR", None)
            else:
                os.environ["LXD_DIR"] = saved
