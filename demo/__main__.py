"""Form a real LXD cluster on this machine from the LXD charm's own code, then clean up.

What a `juju deploy ./bundles/cluster.yaml` does, minus Juju: three LXD
daemons start on loopback addresses, one per charm unit; each unit runs the
LXD charm's real hooks (ops.testing and a small Juju simulator stand in for
Juju, carrying relation data and secrets between units the way Juju would;
snapd is faked, since it cannot run here); the units' leader bootstraps the
cluster and hands out join tokens in Juju secrets, the others join. Then a
unit is removed again, and everything is stopped and deleted.

Run as root (LXD daemons need it): ``scripts/dev demo`` or ``python -m demo``.
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

from tests.harness.lxd_daemons import DaemonPool, ensure_lxd_installed
from tests.harness.lxd_units import LxdUnits


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
    args = parser.parse_args(argv)
    problem = ensure_lxd_installed()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    started = time.monotonic()
    patch = pytest.MonkeyPatch()
    with DaemonPool() as pool, tempfile.TemporaryDirectory(prefix="lxd-demo-") as scratch:
        try:
            units = LxdUnits(pool, Path(scratch), patch)
            step(
                f"deploy {args.units} units of the LXD charm in cluster mode (one LXD daemon each)"
            )
            units.add(args.units)
            hooks = units.sim.settle()
            step(f"the units settled after {hooks} hooks: {describe(units.sim.hooks)}")
            show_members(units)
            show_units(units)
            members = json.loads(units.sim.app_data["members"])
            step(f"the leader's record of units and members: {members}")

            last = max(units.sim.units, key=lambda name: int(name.split("/")[1]))
            step(f"juju remove-unit {last}: the leader removes its member")
            units.sim.remove_unit(last)
            units.sim.settle()
            show_members(units)
            show_units(units)
        finally:
            step("stop the daemons and remove their state")
            patch.undo()
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0


def describe(hooks: list[tuple[str, str]]) -> str:
    """A one-line breakdown of the hooks that ran, by event."""
    counts = Counter(event for _, event in hooks)
    return ", ".join(f"{count} {event}" for event, count in counts.most_common())


if __name__ == "__main__":
    sys.exit(main())
