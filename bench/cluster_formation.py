"""Forming an N-member cluster from the charm, as Juju runs it, next to the floor.

Three ways to form the same N members on real daemons, interleaved in one
run (one of each, then the next round), median of ``--repeat`` rounds:

- **as Juju runs it**: the built charm (`tox -e pack`), a fresh `dispatch`
  process per hook through the unit-agent stand-in, units in parallel
  (`Sim(parallel=True)`); every unit's `LXD_DIR` names a counting proxy in
  front of its daemon (`bench.lxd_requests`), so LXD requests are counted per
  hook kind without touching the charm. After the formation: one
  `update-status` on every unit, then scale-down (one unit removed).
- **in-process**: the charm's code through ops.testing, one hook at a time
  (`LxdUnits`), the figure earlier versions of this benchmark reported.
- **floor**: `lxd init --preseed` by hand (bootstrap, then one join preseed
  per member, through lxd_common), no charm, no Juju.

The daemons are started before each clock starts.

    python -m bench.cluster_formation             # print the tables
    python -m bench.cluster_formation --write     # also update docs/benchmarks.md

Run as root on a machine with Debian's LXD (scripts/dev setup installs it).
Not part of the test suite: timings belong here, not in assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from bench.hook_floor import null_hook
from bench.lxd_requests import CountingRunner, HookRequests, Proxies
from tests.harness.charms import built_charm, missing_charm_message
from tests.harness.clusters import form_cluster
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import LxdUnits
from tests.harness.unit_agent import HookTiming

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def floor(daemons: list[LxdDaemon]) -> float:
    """Seconds to form the cluster directly: bootstrap preseed, then one join preseed each."""
    started = time.perf_counter()
    form_cluster(daemons)
    elapsed = time.perf_counter() - started
    assert len(daemons[0].client().cluster.members()) == len(daemons)
    return elapsed


def daemons_cpu(daemons: list[LxdDaemon]) -> float:
    """CPU seconds the daemons used so far, with the children they waited for (/proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for daemon in daemons:
        stat = Path(f"/proc/{daemon.process.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def own_cpu() -> float:
    """CPU seconds of this process: the simulator, the stand-in's tool server, the proxies."""
    times = os.times()
    return times.user + times.system


def in_process(size: int) -> float:
    """Seconds for the charm's code, in this process, one hook at a time."""
    patch = pytest.MonkeyPatch()
    with DaemonPool() as pool, tempfile.TemporaryDirectory() as scratch:
        try:
            units = LxdUnits(pool, Path(scratch), patch, in_process=True)
            units.add(size)
            started = time.perf_counter()
            units.sim.settle()
            elapsed = time.perf_counter() - started
            leader = units.sim.leader
            assert leader is not None
            assert len(units.daemon(leader.name).client().cluster.members()) == size
        finally:
            patch.undo()
    return elapsed


def as_juju_runs_it(charm: Path, size: int) -> dict[str, Any]:
    """Formation, update-status and scale-down through the stand-in, units in parallel."""
    patch = pytest.MonkeyPatch()
    with DaemonPool() as pool, tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        proxies = Proxies(root / "proxies")
        units = LxdUnits(
            pool,
            root,
            patch,
            in_process=False,
            parallel=True,
            charm=charm,
            lxd_dir=lambda daemon: proxies.proxy(daemon.directory).directory,
            runner_type=CountingRunner,
        )
        runner = units.runner
        assert isinstance(runner, CountingRunner)
        runner.proxies = proxies
        try:
            units.add(size)
            daemons = [units.daemon(name) for name in units.sim.units]
            lxd_before, own_before = daemons_cpu(daemons), own_cpu()
            started = time.perf_counter()
            hooks = units.sim.settle()
            formation = time.perf_counter() - started
            lxd_cpu, harness_cpu = daemons_cpu(daemons) - lxd_before, own_cpu() - own_before
            sim = units.sim
            leader = sim.leader
            assert leader is not None
            assert len(units.daemon(leader.name).client().cluster.members()) == size
            leader_hooks = sum(1 for unit, _ in sim.hooks if unit == leader.name)
            formed = len(runner.per_hook)
            formation_timings = list(runner.timings)
            sim.update_status()
            sim.settle()
            status = runner.per_hook[formed:]
            leaving = max(sim.units, key=lambda n: int(n.split("/")[1]))
            began = len(runner.per_hook)
            sim.remove_unit(leaving)
            started = time.perf_counter()
            sim.settle()
            scale_down = time.perf_counter() - started
            assert len(units.daemon(leader.name).client().cluster.members()) == size - 1
            return {
                "seconds": formation,
                "hooks": hooks,
                "leader_hooks": leader_hooks,
                "at_once": sim.most_at_once,
                "failed": len(sim.failed_hooks),
                "scale_down": scale_down,
                "formation_requests": runner.per_hook[:formed],
                "status_requests": status,
                "scale_down_requests": runner.per_hook[began:],
                "timings": formation_timings,
                "lxd_cpu": lxd_cpu,
                "harness_cpu": harness_cpu,
            }
        finally:
            units.close()
            proxies.close()
            patch.undo()


def measure(charm: Path, size: int, repeat: int) -> dict[str, Any]:
    """Median figures over ``repeat`` interleaved rounds of the three ways."""
    juju: list[dict[str, Any]] = []
    floors: list[float] = []
    local: list[float] = []
    nulls: list[float] = []
    for _ in range(repeat):
        juju.append(as_juju_runs_it(charm, size))
        with DaemonPool() as pool:
            floors.append(floor(pool.start(size)))
        local.append(in_process(size))
        nulls.append(null_hook(charm))
    floor_s = statistics.median(floors)
    juju_s = statistics.median(r["seconds"] for r in juju)
    local_s = statistics.median(local)
    null_s = statistics.median(nulls)
    bound_s = floor_s + critical_hooks(size) * null_s
    last = juju[-1]
    return {
        "size": size,
        "floor_s": floor_s,
        "null_s": null_s,
        "bound_s": bound_s,
        "bound_ratio": bound_s / floor_s,
        "juju_s": juju_s,
        "juju_ratio": juju_s / floor_s,
        "local_s": local_s,
        "local_ratio": local_s / floor_s,
        "scale_down_s": statistics.median(r["scale_down"] for r in juju),
        "hooks": last["hooks"],
        "leader_hooks": last["leader_hooks"],
        "at_once": max(r["at_once"] for r in juju),
        "failed": sum(r["failed"] for r in juju),
        "runs": juju,
    }


def critical_hooks(size: int) -> int:
    """Hooks one after another on the way to ``size`` members, whatever a charm does in them.

    Juju runs a unit's hooks in order, one at a time: the leader's install,
    cluster-relation-created, leader-elected (where it bootstraps), config-changed
    and start come before any peer event; then one leader hook issues the
    tokens (once it has seen the others announce themselves), each joiner joins
    in a hook of its own, one after another (LXD takes one join at a time),
    and a last leader hook records the joins: N + 6 hooks for N members.
    """
    return size + 6


def formation_table(rows: list[dict[str, Any]]) -> str:
    """Formation and scale-down, as a markdown table."""
    lines = [
        "| members | floor: lxd init --preseed (s) | as Juju runs it (s) | ratio "
        "| any ops charm, at least (s) | ratio "
        "| in-process (s) | ratio | hooks (all units) | leader hooks | most hooks at once "
        "| scale-down by one (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['floor_s']:.2f} | {r['juju_s']:.2f} | {r['juju_ratio']:.2f} "
            f"| {r['bound_s']:.2f} | {r['bound_ratio']:.2f} "
            f"| {r['local_s']:.2f} | {r['local_ratio']:.2f} | {r['hooks']} | "
            f"{r['leader_hooks']} | {r['at_once']} | {r['scale_down_s']:.2f} |"
        )
    return "\n".join(lines)


def _per_kind(records: list[HookRequests]) -> dict[tuple[str, str], list[int]]:
    kinds: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in records:
        kinds[(record.kind, "leader" if record.leader else "member")].append(len(record.requests))
    return kinds


def requests_table(rows: list[dict[str, Any]]) -> str:
    """LXD requests per hook kind (min/median/max over every hook of that kind), per size."""
    lines = [
        "| members | phase | hook kind | unit | hooks | requests per hook (min / median / max) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        run = r["runs"][-1]
        for phase, key in (
            ("formation", "formation_requests"),
            ("update-status", "status_requests"),
            ("scale-down", "scale_down_requests"),
        ):
            for (kind, role), counts in sorted(_per_kind(run[key]).items()):
                lines.append(
                    f"| {r['size']} | {phase} | {kind} | {role} | {len(counts)} | "
                    f"{min(counts)} / {statistics.median(counts):g} / {max(counts)} |"
                )
    return "\n".join(lines)


def where_the_time_goes(rows: list[dict[str, Any]]) -> str:
    """Per size: the sum of hook wall times, and the leader's, next to the formation."""
    lines = [
        "| members | formation (s) | sum of all hooks' wall time (s) | leader's hooks (s) "
        "| mean hook (s) | hook of an ops charm that does nothing (s) "
        "| hooks ended by dispatch (no Python) | hook-tool calls | LXD requests |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        run = r["runs"][-1]
        timings: list[HookTiming] = run["timings"]
        leader_time = sum(t.seconds for t in timings if t.unit == "lxd/0")
        total = sum(t.seconds for t in timings)
        calls = sum(t.tool_calls for t in timings)
        # An ops hook always calls juju-log at least once; one dispatch ends calls nothing.
        no_python = sum(1 for t in timings if t.tool_calls == 0)
        requests = sum(len(h.requests) for h in run["formation_requests"])
        lines.append(
            f"| {r['size']} | {run['seconds']:.2f} | {total:.2f} | {leader_time:.2f} | "
            f"{total / max(1, len(timings)):.2f} | {r['null_s']:.2f} | {no_python} of "
            f"{len(timings)} | {calls} | {requests} |"
        )
    return "\n".join(lines)


def where_the_cores_go(rows: list[dict[str, Any]]) -> str:
    """Per size: the machine's CPU over the formation, by who used it (last round)."""
    cores = os.cpu_count() or 1
    lines = [
        f"| members | formation (s) | CPU over it, {cores} cores (s) | hooks (s) "
        "| LXD daemons (s) | simulator, stand-in, proxies (s) | left idle (s) "
        "| mean CPU per hook that starts Python (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        run = r["runs"][-1]
        timings: list[HookTiming] = run["timings"]
        hooks_cpu = sum(t.cpu_seconds for t in timings)
        python = [t for t in timings if t.tool_calls > 0]
        capacity = cores * run["seconds"]
        idle = capacity - hooks_cpu - run["lxd_cpu"] - run["harness_cpu"]
        lines.append(
            f"| {r['size']} | {run['seconds']:.2f} | {capacity:.1f} | {hooks_cpu:.1f} | "
            f"{run['lxd_cpu']:.1f} | {run['harness_cpu']:.1f} | {idle:.1f} | "
            f"{hooks_cpu / max(1, len(python)):.3f} |"
        )
    return "\n".join(lines)


def dump(path: Path, row: dict[str, Any]) -> None:
    """Append every hook of the size's last run (phase, unit, kind, requests, seconds)."""
    run = row["runs"][-1]
    with path.open("a") as out:
        for phase in ("formation_requests", "status_requests", "scale_down_requests"):
            for hook in run[phase]:
                record = {
                    "size": row["size"],
                    "phase": phase.removesuffix("_requests"),
                    **dataclasses.asdict(hook),
                }
                out.write(json.dumps(record) + "\n")


def _replace(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    if begin not in text:
        return f"{text.rstrip()}\n\n{begin}\n{body}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main() -> None:
    """Measure, print, and optionally write docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--dump", type=Path, help="write every hook's LXD requests and timing here (JSON lines)"
    )
    args = parser.parse_args()
    charm = built_charm("lxd")
    if charm is None:
        raise SystemExit(missing_charm_message("lxd"))
    rows = []
    for size in args.sizes:
        rows.append(measure(charm, size, args.repeat))
        print(formation_table(rows[-1:]), flush=True)
        if args.dump:
            dump(args.dump, rows[-1])
    machine = f"{platform.machine()}, Python {platform.python_version()}, median of {args.repeat}"
    tables = {
        "cluster-formation": f"{formation_table(rows)}\n\n({machine})",
        "hook-time": where_the_time_goes(rows),
        "cpu-use": where_the_cores_go(rows),
        "lxd-requests": requests_table(rows),
    }
    for body in tables.values():
        print(body, "", sep="\n")
    if args.write:
        text = DOC.read_text()
        for name, body in tables.items():
            text = _replace(text, name, body)
        DOC.write_text(text)


if __name__ == "__main__":
    main()
