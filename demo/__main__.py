"""Form a real LXD cluster on this machine from the built LXD charm, then clean up.

What a `juju deploy ./bundles/cluster.yaml` does, minus Juju: three LXD
daemons start on loopback addresses, one per charm unit; each unit runs the
BUILT LXD charm (`tox -e pack`) as Juju's unit agent would, a fresh
`dispatch` process per hook with hook tools on its PATH (a small Juju
simulator answers them, carrying relation data and secrets between units the
way Juju would; snapd is faked, since it cannot run here); the units' leader
bootstraps the cluster and hands out join tokens in Juju secrets, the others
join. Then a unit is removed again, and everything is stopped and deleted.

Run as root (LXD daemons need it): ``scripts/dev demo`` or ``python -m demo``
(``--in-process`` runs the charm's source through ops.testing instead).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.harness.charms import PACK_COMMAND, built_charm
from tests.harness.lxd_daemons import DaemonPool, ensure_lxd_installed
from tests.harness.lxd_units import LxdUnits
from tests.harness.unit_agent import timing_summary


def step(message: str) -> None:
    """Narrate one step, so the output reads as the story of what happened."""
    print(f"==> {message}", flush=True)


def show_members(units: LxdUnits) -> None:
    """Print the cluster as LXD reports it, not as the charm thinks it is."""
    leader = units.sim.leader or next(iter(units.sim.units.values()))
    print(f"    {'MEMBER':<8} {'URL':<26} {'STATUS':<8} ROLES")
    members = units.daemon(leader.name).client().cluster.members()
    for member in sorted(members, key=lambda m: m.name):
        roles = ",".join(member.roles)
        print(f"    {member.name:<8} {member.url:<26} {member.status:<8} {roles}")


def show_units(units: LxdUnits) -> None:
    """Print what each unit's status says, as `juju status` would."""
    for name, unit in sorted(units.sim.units.items()):
        status = unit.state.unit_status
        leader = "*" if unit.leader else " "
        print(f"    {name}{leader} {status.name:<8} {status.message}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--units", type=int, default=3, help="cluster size (default 3)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the charm's source in this process (ops.testing), not the built .charm",
    )
    args = parser.parse_args(argv)
    problem = ensure_lxd_installed()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    charm = None if args.in_process else built_charm("lxd")
    if charm is None and not args.in_process:
        print(
            f"no built LXD charm (charms/lxd/lxd-host_*.charm): run `{PACK_COMMAND}` first, "
            "or `python -m demo --in-process`",
            file=sys.stderr,
        )
        return 1
    started = time.monotonic()
    patch = pytest.MonkeyPatch()
    with DaemonPool() as pool, tempfile.TemporaryDirectory(prefix="lxd-demo-") as scratch:
        units = LxdUnits(pool, Path(scratch), patch, in_process=args.in_process)
        try:
            how = f"the built charm {charm.name}" if charm else "the charm's source, in-process"
            step(
                f"deploy {args.units} units of the LXD charm in cluster mode (one LXD daemon "
                f"each), running {how}"
            )
            units.add(args.units)
            hooks = units.sim.settle()
            step(f"the units settled after {hooks} hooks: {describe(units.sim.hooks)}")
            show_hooks(units, 0)
            show_members(units)
            show_units(units)
            members = json.loads(units.sim.app_data["members"])
            step(f"the leader's record of units and members: {members}")

            last = max(units.sim.units, key=lambda name: int(name.split("/")[1]))
            step(f"juju remove-unit {last}: the leader removes its member")
            before = len(units.sim.hooks)
            units.sim.remove_unit(last)
            units.sim.settle()
            show_hooks(units, before)
            show_members(units)
            show_units(units)
            if units.runner is not None:
                timings = units.runner.timings
                spent = sum(t.seconds for t in timings)
                calls = sum(t.tool_calls for t in timings)
                step(
                    f"{len(timings)} dispatch processes, {spent:.1f}s in them, "
                    f"{calls} hook tool calls"
                )
                for kind, (count, mean, worst) in sorted(timing_summary(timings).items()):
                    print(f"    {kind:<20} {count:>3} hooks, mean {mean:.2f}s, max {worst:.2f}s")
        finally:
            step("stop the daemons and remove their state")
            units.close()
            patch.undo()
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0


def show_hooks(units: LxdUnits, since: int) -> None:
    """Print the hooks that ran, in the order they ran, as `juju debug-log` would show them."""
    for number, (unit, event) in enumerate(units.sim.hooks[since:], start=since + 1):
        print(f"    {number:>3} {unit:<6} {event}")


def describe(hooks: list[tuple[str, str]]) -> str:
    """A one-line breakdown of the hooks that ran, by event."""
    counts = Counter(event for _, event in hooks)
    return ", ".join(f"{count} {event}" for event, count in counts.most_common())


if __name__ == "__main__":
    sys.exit(main())
