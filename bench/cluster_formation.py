"""How many hooks, and how long, to form an N-member cluster from the charm's code.

Next to it, the floor measured in the same run: the same members formed
directly with `lxd init --preseed` (through lxd_common, no charm, no Juju
simulation). The daemons are started before either clock starts, so both
figures cover forming the cluster only.

    python -m bench.cluster_formation             # print the table
    python -m bench.cluster_formation --write     # also update docs/benchmarks.md

Run as root on a machine with Debian's LXD (scripts/dev setup installs it).
Not part of the test suite: timings belong here, not in assertions.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness.clusters import form_cluster
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import LxdUnits

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def floor(daemons: list[LxdDaemon]) -> float:
    """Seconds to form the cluster directly: bootstrap preseed, then one join preseed each."""
    started = time.perf_counter()
    form_cluster(daemons)
    elapsed = time.perf_counter() - started
    assert len(daemons[0].client().cluster.members()) == len(daemons)
    return elapsed


def charm_driven(size: int) -> tuple[float, int, int, int]:
    """Seconds, hooks, leader hooks and token rounds for the charm's units to form the cluster.

    A token round is a hook in which the leader added application secrets:
    join tokens are the only ones it adds.
    """
    patch = pytest.MonkeyPatch()
    with DaemonPool() as pool, tempfile.TemporaryDirectory() as scratch:
        try:
            units = LxdUnits(pool, Path(scratch), patch)
            units.add(size)  # daemons start here, before the clock
            started = time.perf_counter()
            hooks = units.sim.settle()
            elapsed = time.perf_counter() - started
            leader = units.sim.leader
            assert leader is not None
            assert len(units.daemon(leader.name).client().cluster.members()) == size
            leader_hooks = sum(1 for unit, _ in units.sim.hooks if unit == leader.name)
            rounds = {hook for hook, owner in units.sim.secrets_added if owner == "app"}
        finally:
            patch.undo()
    return elapsed, hooks, leader_hooks, len(rounds)


def measure(size: int, repeat: int) -> dict[str, float]:
    """Median figures over ``repeat`` runs of each."""
    charm, floors, hooks, leader_hooks, rounds = [], [], 0, 0, 0
    for _ in range(repeat):
        seconds, hooks, leader_hooks, rounds = charm_driven(size)
        charm.append(seconds)
        with DaemonPool() as pool:
            floors.append(floor(pool.start(size)))
    charm_s, floor_s = statistics.median(charm), statistics.median(floors)
    return {
        "size": size,
        "hooks": hooks,
        "leader_hooks": leader_hooks,
        "rounds": rounds,
        "charm_s": charm_s,
        "floor_s": floor_s,
        "ratio": charm_s / floor_s,
    }


def table(rows: list[dict[str, float]]) -> str:
    """The figures as a markdown table."""
    lines = [
        "| members | hooks (all units) | leader hooks | leader hooks issuing tokens "
        "| charm-driven (s) | floor: lxd init --preseed (s) | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['size']:.0f} | {row['hooks']:.0f} | {row['leader_hooks']:.0f} | "
            f"{row['rounds']:.0f} | "
            f"{row['charm_s']:.2f} | {row['floor_s']:.2f} | {row['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Measure, print, and optionally write docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    rows = [measure(size, args.repeat) for size in args.sizes]
    result = table(rows)
    print(result)
    if args.write:
        text = DOC.read_text()
        begin, end = "<!-- BEGIN cluster-formation -->", "<!-- END cluster-formation -->"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        machine = (
            f"{platform.machine()}, {platform.python_version()}, median of {args.repeat} runs"
        )
        DOC.write_text(f"{head}{begin}\n{result}\n\n({machine})\n{end}{tail}")


if __name__ == "__main__":
    main()
