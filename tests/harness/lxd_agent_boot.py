"""Boot code for LXD charm hooks run by the unit-agent stand-in: this test machine's seams.

A built charm in a fresh process cannot be patched from the test, and
snapd cannot run here. `UnitAgentRunner(boot=<this file>)` runs this
module at interpreter start of every hook process (before `src/charm.py`),
with `LXD_AGENT_MACHINE` (JSON, written by `lxd_agent_env`) saying where
the unit's machine is. It replaces `lxd_charm.host.make_host`, the charm's
one machine seam, with a `Host` on that root: a `FakeSnapd` whose state is
kept in a file across hooks (one machine, many processes), sysctl routed
to the root's /proc/sys, and `restart_lxd` asking the test process (over the
stand-in's socket) to restart the unit's real daemon. `LXD_DIR` already
points the LXD client at that daemon. Nothing of this ships in the charm:
it is loaded from the test tree by path.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MACHINE_VARIABLE = "LXD_AGENT_MACHINE"


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Setattr:
    """What `fake_sysctl.charmlibs_under` needs of pytest's monkeypatch: a plain setattr."""

    def setattr(self, target: Any, name: str, value: Any) -> None:
        setattr(target, name, value)


BOOTED = "_lxd_agent_booted"
"""Set on `sys` once `main` ran in this process."""


def load_snapd(snapd: Any, path: Path) -> Any:
    """Fill ``snapd`` (a `FakeSnapd`) from the machine's file, when earlier hooks wrote one.

    The test process reads a unit's snapd this way too (`lxd_units.LxdUnits.snapd`):
    what the charm's hooks left on "the machine", not an object in memory.
    """
    from lxd_common.snap import InstalledSnap

    if path.is_file():
        saved = json.loads(path.read_text())
        snapd.snaps = {k: InstalledSnap(**v) for k, v in saved["snaps"].items()}
        snapd.config = saved["config"]
        snapd._revision = saved["revision"]
        snapd.cohorts = saved.get("cohorts", {})
        snapd.calls = [tuple(call) for call in saved.get("calls", [])]
        snapd.restarts = list(saved.get("restarts", []))
    return snapd


def _persistent_snapd(path: Path) -> Any:
    fake_snapd = _load("_agent_fake_snapd", HERE / "fake_snapd.py")
    snapd = load_snapd(fake_snapd.FakeSnapd(), path)

    def save() -> None:
        snaps = {k: dataclasses.asdict(v) for k, v in snapd.snaps.items()}
        state = {
            "snaps": snaps,
            "config": snapd.config,
            "revision": snapd._revision,
            "cohorts": snapd.cohorts,
            "calls": snapd.calls,
            "restarts": snapd.restarts,
        }
        path.write_text(json.dumps(state, default=str))

    atexit.register(save)
    return snapd


def main() -> None:
    """Install this unit's machine behind `lxd_charm.host.make_host`."""
    raw = os.environ.get(MACHINE_VARIABLE)
    if not raw or getattr(sys, BOOTED, False):
        # Once per process: the `.pth` line can run twice at interpreter start (seen:
        # every hook saved its snapd state twice), and the second, unused FakeSnapd's
        # save at exit then wiped the state the hook's own left.
        return
    setattr(sys, BOOTED, True)
    machine = json.loads(raw)
    root = Path(machine["root"])
    # fake_sysctl imports pytest for a type only; the charm's venv has no pytest.
    sys.modules.setdefault("pytest", types.ModuleType("pytest"))
    fake_sysctl = _load("_agent_fake_sysctl", HERE / "fake_sysctl.py")
    fake_sysctl.charmlibs_under(root, _Setattr())
    tool = _load("_agent_hook_tool", HERE / "hook_tools" / "hook_tool.py")

    import lxd_charm.host as seam
    from lxd_common.snap import LxdSnap

    host = seam.Host(
        snap=LxdSnap(_persistent_snapd(Path(machine["snapd"]))),
        root=root,
        state_dir=Path(machine["state_dir"]),
        hostname=machine["hostname"],
    )
    for name, value in machine.get("host", {}).items():  # e.g. a short lxd_wait
        setattr(host, name, value)

    def restart_lxd() -> None:
        code, _, err = tool.call("_machine", ["restart-lxd"], None)
        if code:
            raise RuntimeError(f"the test could not restart LXD: {err}")

    if machine.get("restart_by_test", True):
        host.restart_lxd = restart_lxd  # type: ignore[method-assign]
    seam.make_host = lambda: host


def snapd_file(state_dir: Path) -> Path:
    """Where a unit's fake snapd keeps its state between hook processes."""
    return state_dir / "fake-snapd.json"


def lxd_agent_env(
    root: Path,
    state_dir: Path,
    hostname: str,
    lxd_dir: Path,
    host: dict[str, Any] | None = None,
    *,
    restart_by_test: bool = True,
) -> dict[str, str]:
    """The environment a unit's hooks get: its daemon and its machine (read by `main`).

    ``host`` sets attributes of the unit's `Host` (e.g. ``{"lxd_wait": 1.0}``
    for a unit whose daemon a test killed: its hooks give up on LXD quickly).
    With ``restart_by_test`` (the default), restarting LXD asks the test
    (`_machine restart-lxd`); without, it only reaches the fake snapd.
    """
    machine = {
        "root": str(root),
        "state_dir": str(state_dir),
        "hostname": hostname,
        "snapd": str(snapd_file(state_dir)),
        "host": dict(host or {}),
        "restart_by_test": restart_by_test,
    }
    return {"LXD_DIR": str(lxd_dir), MACHINE_VARIABLE: json.dumps(machine)}


if __name__ == "_boot":
    main()
