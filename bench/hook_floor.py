"""What one hook costs as Juju runs it, next to what any ops charm would pay for it.

A formation as Juju runs it is a chain of hooks, each a fresh process
(`bench.cluster_formation`). This measures, through the same unit-agent
stand-in and on one unit of the built charm (one real daemon, nothing else
running in the model), the wall time of one hook for:

- **bare Python**: the charm's `dispatch` running a `charm.py` that only
  starts (`import sys`);
- **an ops charm that does nothing**: `ops.main` on a charm observing no event
  (the least any ops charm pays for a hook: Python, ops, its storage, its
  hook-tool calls);
- **this charm**: a `cluster-relation-created`, which its own `dispatch`
  ends before Python starts (as it does `cluster-relation-joined`); its
  `update-status` on a member (connects to LXD: one request), its `start`
  in the boot of its last reconcile (no reconcile: memory and status
  only), and its `config-changed` (a full reconcile);
- **a unit's first hook**: `install` on a fresh unit, with the bytecode the
  `.charm` ships, and with all bytecode removed (what every unit's first
  hooks paid before the charm shipped it checked by source hash).

Medians of ``--repeat`` hooks, interleaved. Needs `tox -e pack` first.

    python -m bench.hook_floor            # print the table
    python -m bench.hook_floor --write    # also update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.charms import built_charm, missing_charm_message
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits
from tests.harness.unit_agent import unpack_charm

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
NULL_OPS_CHARM = "import ops\n\n\nclass Nothing(ops.CharmBase):\n    pass\n\n\nops.main(Nothing)\n"
BARE_PYTHON = "import sys\n"


def _swap_charm_py(charm_dir: Path, text: str) -> None:
    """Replace the unit's `src/charm.py` (a hard link into the template: unlink first)."""
    path = charm_dir / "src" / "charm.py"
    path.unlink()
    path.write_text(text)
    path.chmod(0o755)


@contextlib.contextmanager
def one_formed_unit(charm: Path) -> Iterator[tuple[LxdUnits, Callable[[str], float]]]:
    """A one-member cluster through the stand-in, and a function timing one hook kind on it.

    The function takes "update-status", "config-changed", "start" or
    "cluster-relation-created" and returns that hook's seconds (nothing else
    runs in the model meanwhile).
    """
    patch = pytest.MonkeyPatch()
    with DaemonPool() as pool, tempfile.TemporaryDirectory() as scratch:
        units = LxdUnits(pool, Path(scratch), patch, in_process=False, charm=charm)
        try:
            units.add(1)
            units.sim.settle()
            sim, runner = units.sim, units.runner
            assert runner is not None

            def one(kind: str) -> float:
                before = len(runner.timings)
                if kind == "update-status":
                    sim.update_status()
                elif kind == "cluster-relation-created":
                    sim.run_hook("lxd/0", "relation_created")
                elif kind == "start":
                    sim.run_hook("lxd/0", "start")
                else:
                    sim.config_changed()  # no option changed: the reconcile finds nothing to do
                sim.settle()
                [timing] = runner.timings[before:]
                return timing.seconds

            yield units, one
        finally:
            units.close()
            patch.undo()


def null_hook(charm: Path, repeat: int = 3) -> float:
    """Median seconds of a hook of an ops charm that does nothing, through the stand-in."""
    with one_formed_unit(charm) as (units, one):
        assert units.runner is not None
        _swap_charm_py(units.runner.charm_dir("lxd/0"), NULL_OPS_CHARM)
        return statistics.median(one("update-status") for _ in range(repeat))


def steady_hooks(charm: Path, repeat: int) -> dict[str, float]:
    """One formed single-member unit; medians of its hooks with each `charm.py`."""
    with one_formed_unit(charm) as (units, one):
        assert units.runner is not None
        charm_dir = units.runner.charm_dir("lxd/0")
        original = (charm_dir / "src" / "charm.py").read_text()
        runs: dict[str, list[float]] = {
            "bare": [],
            "null": [],
            "cluster-relation-created": [],
            "update-status": [],
            "start": [],
            "config-changed": [],
        }
        for _ in range(repeat):
            _swap_charm_py(charm_dir, BARE_PYTHON)
            runs["bare"].append(one("update-status"))
            _swap_charm_py(charm_dir, NULL_OPS_CHARM)
            runs["null"].append(one("update-status"))
            _swap_charm_py(charm_dir, original)
            runs["cluster-relation-created"].append(one("cluster-relation-created"))
            runs["update-status"].append(one("update-status"))
            runs["start"].append(one("start"))
            runs["config-changed"].append(one("config-changed"))
    return {kind: statistics.median(seconds) for kind, seconds in runs.items()}


def first_hooks(charm: Path, repeat: int) -> dict[str, float]:
    """`install` on a fresh unit: with the shipped bytecode, and with none."""
    with tempfile.TemporaryDirectory() as work:
        shipped = unpack_charm(charm, Path(work) / "shipped")
        stripped = unpack_charm(charm, Path(work) / "stripped")
        for cache in list(stripped.rglob("__pycache__")):
            shutil.rmtree(cache)
        runs: dict[str, list[float]] = {"first (shipped bytecode)": [], "first (no bytecode)": []}
        for _ in range(repeat):
            for kind, charm_dir in zip(runs, (shipped, stripped), strict=True):
                with one_formed_unit(charm_dir) as (units, _):
                    assert units.runner is not None
                    runs[kind].append(units.runner.timings[0].seconds)  # its install
    return {kind: statistics.median(seconds) for kind, seconds in runs.items()}


def table(figures: dict[str, float]) -> str:
    null = figures["null"]
    names = {
        "bare": "bare Python (`import sys`)",
        "null": "an ops charm that does nothing",
        "cluster-relation-created": "this charm: `cluster-relation-created` (dispatch ends it)",
        "update-status": "this charm: `update-status` (a one-member cluster's leader: 2 requests)",
        "start": "this charm: `start` in the boot of its last reconcile (no reconcile)",
        "config-changed": "this charm: `config-changed` (full reconcile)",
        "first (shipped bytecode)": "this charm: `install`, a fresh unit, shipped bytecode",
        "first (no bytecode)": "this charm: `install`, a fresh unit, no bytecode",
    }
    lines = ["| hook | seconds | x an ops charm that does nothing |", "| --- | --- | --- |"]
    for kind, label in names.items():
        lines.append(f"| {label} | {figures[kind]:.3f} | {figures[kind] / null:.2f} |")
    return "\n".join(lines)


def main() -> None:
    """Measure, print, and optionally write docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    charm = built_charm("lxd")
    if charm is None:
        raise SystemExit(missing_charm_message("lxd"))
    figures = steady_hooks(charm, args.repeat) | first_hooks(charm, max(3, args.repeat // 2))
    note = f"({platform.machine()}, Python {platform.python_version()}, median of {args.repeat})"
    body = f"{table(figures)}\n\n{note}"
    print(body)
    if args.write:
        text = DOC.read_text()
        begin, end = "<!-- BEGIN hook-floor -->", "<!-- END hook-floor -->"
        if begin not in text:
            text = f"{text.rstrip()}\n\n{begin}\n{end}\n"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        DOC.write_text(f"{head}{begin}\n{body}\n{end}{tail}")


if __name__ == "__main__":
    main()
