"""What every hook pays before the charm does anything: starting Python and importing it.

Juju starts a new process for every hook, so import time is paid on every
`update-status`, every relation event, on every unit. This measures, in fresh
interpreters, the wall time to import each charm module (with everything it
imports), next to a bare interpreter start, and lists the slowest imports.

    python -m bench.hook_startup            # print the figures
    python -m bench.hook_startup --write    # also update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
CHARMS = {"lxd": REPO / "charms/lxd/src", "lxd-integrator": REPO / "charms/lxd-integrator/src"}


def _env(src: Path | None) -> dict[str, str]:
    paths = [str(REPO / "common/src")] + ([str(src)] if src else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}


def wall(code: str, src: Path | None, repeat: int) -> float:
    """Median seconds for a fresh interpreter to run ``code``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=_env(src), check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def slowest_imports(src: Path, count: int = 5) -> list[tuple[str, float]]:
    """What charm.py imports directly, by cumulative import time (`python -X importtime`)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import charm"],
        env=_env(src),
        capture_output=True,
        text=True,
        check=True,
    )
    totals: dict[str, float] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        # Depth 1 under `charm` (two more spaces of indent than the top level).
        if match and len(match.group(2)) == 3:
            totals[match.group(3)] = int(match.group(1)) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def main() -> None:
    """Measure, print, and optionally write docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    bare = wall("pass", None, args.repeat)
    lines = [
        "| charm | import charm.py (s) | import ops alone (s) | ratio | bare interpreter (s) "
        "| slowest direct imports (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, src in CHARMS.items():
        # Interleaved, so both figures see the same machine load.
        charm_runs, ops_runs = [], []
        for _ in range(args.repeat):
            charm_runs.append(wall("import charm", src, 1))
            ops_runs.append(wall("import ops", src, 1))
        seconds, ops_alone = statistics.median(charm_runs), statistics.median(ops_runs)
        slow = ", ".join(f"{module} {cost:.3f}" for module, cost in slowest_imports(src))
        lines.append(
            f"| {name} | {seconds:.3f} | {ops_alone:.3f} | {seconds / ops_alone:.2f}x "
            f"| {bare:.3f} | {slow} |"
        )
    result = "\n".join(lines)
    print(result)
    if args.write:
        text = DOC.read_text()
        begin, end = "<!-- BEGIN hook-startup -->", "<!-- END hook-startup -->"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        note = f"(median of {args.repeat} fresh interpreters, Python {sys.version.split()[0]})"
        DOC.write_text(f"{head}{begin}\n{result}\n\n{note}\n{end}{tail}")


if __name__ == "__main__":
    main()
