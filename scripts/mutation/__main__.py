"""Mutation testing of the unit tier, one module at a time: ``tox -e mutation``.

A mutant is one small wrong edit of a module (see `scripts.mutation.mutants`);
it is *killed* when a unit test fails against it, and it *survives* when
every test still passes: a wrong answer nobody notices. The score of a
module is killed / (mutants - known equivalents). Equivalent mutants, edits
that change nothing any caller can observe, are listed with a one-line
reason in ``scripts/mutation/equivalents.yaml`` and are not counted.

Usage::

    tox -e mutation                               # every module with decisions
    tox -e mutation -- lxd_common/endpoints.py    # one module (path under its src/)
    tox -e mutation -- lxd_charm/cluster.py -j 2 --fail-under 95

It prints, per module, the counts and score, and every survivor with its
``file:line``, function and the line before and after; the exit code is 1
when a module scores below ``--fail-under``. This is not part of ``.ci/run``
(it takes minutes per module); CI runs it weekly (.github/workflows/mutation.yaml).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts.mutation import runner
from scripts.mutation.mutants import Mutant, mutants_of

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (
    REPO / "common" / "src",
    REPO / "charms" / "lxd" / "src",
    REPO / "charms" / "lxd-integrator" / "src",
    REPO / "lxd-charms-interfaces" / "src",
)
EQUIVALENTS = Path(__file__).with_name("equivalents.yaml")
DEFAULT_TESTS = ("tests/unit", "lxd-charms-interfaces/tests")  # what `tox -e unit` runs

# Every module whose functions make decisions (protocols, policies, parsing).
MODULES = (
    # the cluster protocol, and what the peer relation decides around it
    "lxd_charm/cluster.py",
    "lxd_charm/cluster_peer.py",
    "lxd_charm/cluster_join.py",
    "lxd_charm/half_join.py",
    "lxd_charm/peer_bags.py",
    "lxd_charm/adopt.py",
    "lxd_charm/maintenance.py",
    "lxd_charm/mixed.py",
    "lxd_charm/snap_refresh.py",
    "lxd_charm/refresh_round.py",
    # the machine steps, the host seam they act on, how a step says it cannot finish,
    # snap config waiting for a reboot, and the unit's memory
    "lxd_charm/machine.py",
    "lxd_charm/host.py",
    "lxd_charm/outcomes.py",
    "lxd_charm/pending.py",
    "lxd_charm/memory.py",
    # the https and integrator relations, and the interface package they speak
    "lxd_charm/https_provider.py",
    "lxd_charm/cert_fetch.py",
    "lxd_charm/https_relation.py",
    "lxd_integrator/registration.py",
    "lxd_integrator/credentials.py",
    "lxd_integrator/connection.py",
    "lxd_integrator/config.py",
    "lxd_charms_interfaces/lxd_https.py",
    "lxd_charms_interfaces/lxd.py",
    "lxd_charms_interfaces/_pem.py",
    "lxd_charms_interfaces/_endpoint.py",
    # COS, Ceph, OVN and the fan
    "lxd_charm/cos/__init__.py",
    "lxd_charm/cos/scrape.py",
    "lxd_charm/cos/metrics_endpoint.py",
    "lxd_charm/cos/dashboards.py",
    "lxd_charm/cos/loki.py",
    "lxd_charm/cos/serve.py",
    "lxd_charm/ceph.py",
    "lxd_charm/ceph_relation.py",
    "lxd_charm/ovn.py",
    "lxd_charm/ovn_relation.py",
    "lxd_charm/ovn_tls.py",
    "lxd_charm/fan.py",
    # the LXD charm's initialisation, options and listeners
    "lxd_charm/initialise.py",
    "lxd_charm/config.py",
    "lxd_charm/listeners.py",
    # the LXD charm's actions and the charms' hook wiring and status
    "lxd_charm/actions.py",
    "charms/lxd/src/charm.py",
    "charms/lxd-integrator/src/charm.py",
    # lxd_common: certificates, endpoints, projects, deadlines, snap policy, preseed, trust
    "lxd_common/certs.py",
    "lxd_common/endpoints.py",
    "lxd_common/projects.py",
    "lxd_common/deadline.py",
    "lxd_common/snap/_channel.py",
    "lxd_common/snap/_config.py",
    "lxd_common/lxd/_preseed.py",
    "lxd_common/lxd/_trust.py",
    "lxd_common/snap/_lxd_snap.py",
    "lxd_common/lxd/_cluster.py",
    "lxd_common/sysctl.py",
    "lxd_common/lxd/_client.py",
    # lxd_common: error translation and retries, side-loaded snaps, snapd, storage, the socket
    "lxd_common/lxd/_api.py",
    "lxd_common/snap/_sideload.py",
    "lxd_common/snap/_snapd.py",
    "lxd_common/lxd/_storage.py",
    "lxd_common/lxd/_socket.py",
    "lxd_common/interfaces/lxd.py",
    "lxd_common/errors.py",
    "lxd_common/_lazy.py",
    # lxd_common: the packages' lazy exports (which private module each name loads from)
    "lxd_common/lxd/__init__.py",
    "lxd_common/snap/__init__.py",
)


@dataclass(frozen=True)
class Equivalent:
    """A mutant known to change nothing observable, and why."""

    module: str
    function: str
    before: str
    after: str
    reason: str
    previous: str | None = None
    """The line above, when the same edit of the same line occurs twice in the function."""

    def matches(self, module: str, mutant: Mutant) -> bool:
        """Whether this entry names that mutant (by text, so it survives moved lines)."""
        return (self.module, self.function, self.before, self.after) == (
            module,
            mutant.function,
            mutant.before,
            mutant.after,
        ) and self.previous in (None, mutant.previous)


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    """The equivalents file's entries; each must give a reason."""
    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text()) or [] if path.exists() else []
    equivalents = []
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            msg = f"{path.name}: an equivalent mutant needs a reason: {entry}"
            raise SystemExit(msg)
        equivalents.append(
            Equivalent(
                str(entry["module"]),
                str(entry["function"]),
                str(entry["before"]),
                str(entry["after"]),
                str(entry["reason"]),
                None if entry.get("previous") is None else str(entry["previous"]),
            )
        )
    return equivalents


def resolve(module: str) -> tuple[str, str, Path]:
    """(display path, dotted module name, file) for `lxd_common/endpoints.py` and the like.

    A module directly under a `src/` (a charm's `charm.py`: every charm has
    one) is named by its path from the repository root,
    `charms/lxd/src/charm.py`, so two charms' scores and equivalents stay
    apart; the bare `charm.py` matches several files and is refused.
    """
    relative = module.removeprefix("./")
    found: dict[Path, Path] = {}
    for root in SOURCE_ROOTS:
        for candidate in (root / relative, REPO / relative):
            if candidate.is_file() and candidate.is_relative_to(root):
                found.setdefault(candidate, root)
    if len(found) > 1:
        paths = ", ".join(str(c.relative_to(REPO)) for c in found)
        msg = (
            f"{module!r} names more than one module ({paths}): "
            "give its path from the repository root"
        )
        raise SystemExit(msg)
    for candidate, root in found.items():
        inside = candidate.relative_to(root)
        dotted = ".".join(inside.with_suffix("").parts).removesuffix(".__init__")
        shown = candidate.relative_to(REPO) if len(inside.parts) == 1 else inside
        return shown.as_posix(), dotted, candidate
    msg = f"no module {module!r} under {', '.join(str(r.relative_to(REPO)) for r in SOURCE_ROOTS)}"
    raise SystemExit(msg)


@dataclass
class Result:
    """One module's outcome."""

    module: str
    mutants: int = 0
    equivalent: int = 0
    killed: int = 0
    timeouts: int = 0
    survivors: list[tuple[Mutant, str]] = field(default_factory=list)
    matched: set[Equivalent] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def counted(self) -> int:
        """The mutants that count: all but the known equivalents."""
        return self.mutants - self.equivalent

    @property
    def score(self) -> float:
        """Killed (or timed out) per counted mutant, in percent."""
        return 100.0 * (self.killed + self.timeouts) / self.counted if self.counted else 100.0


def _tests_for(mutant: Mutant, coverage: runner.Coverage) -> list[str]:
    """The tests that run the mutated code, quickest first (a run stops at the first failure)."""
    lines = set(range(mutant.first_line, mutant.end_line + 1))
    if mutant.runtime:
        tests = [test for test, hit in coverage.lines.items() if hit & lines]
        if not tests and mutant.statement != (0, 0):  # a node that starts no line event
            lines = set(range(mutant.statement[0], mutant.statement[1] + 1))
            tests = [test for test, hit in coverage.lines.items() if hit & lines]
    else:
        # Import-time code (constants, class bodies, dataclass fields) is also reached
        # through what it built (a dataclass's generated methods run no line of the
        # module), so every test of each file that touches the module runs.
        files = {test.split("::")[0] for test, hit in coverage.lines.items() if hit}
        tests = [test for test in coverage.durations if test.split("::")[0] in files]
    return sorted(tests, key=lambda test: coverage.durations.get(test, 0.0))


def in_functions(mutant: Mutant, functions: Sequence[str]) -> bool:
    """Whether ``--function`` keeps the mutant: its function or a method of that class is named."""
    return not functions or any(
        mutant.function == name or mutant.function.startswith(name + ".") for name in functions
    )


def run_module(
    module: str,
    coverage: runner.Coverage,
    jobs: int,
    equivalents: list[Equivalent],
    functions: Sequence[str] = (),
) -> Result:
    """Mutate one module (only the named functions, if any) and run the covering tests."""
    shown, dotted, path = resolve(module)
    began = time.monotonic()
    result = Result(shown)
    pending: list[tuple[Mutant, list[str]]] = []
    for mutant in mutants_of(path.read_text()):
        if not in_functions(mutant, functions):
            continue
        result.mutants += 1
        known = [e for e in equivalents if e.matches(shown, mutant)]
        if known:
            result.equivalent += 1
            result.matched.update(known)
            continue
        selected = _tests_for(mutant, coverage)
        if not selected:
            result.survivors.append((mutant, "no test runs this line"))
            continue
        pending.append((mutant, selected))
    running: list[tuple[Mutant, runner.Child]] = []
    total, done = len(pending), 0
    print(f"{shown}: {result.mutants} mutants, {total} to run", flush=True)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                mutant, selected = pending.pop(0)
                budget = 30 + 3 * sum(coverage.durations.get(t, 0.0) for t in selected)
                running.append(
                    (mutant, runner.start_mutant(dotted, path, mutant.source, selected, budget))
                )
            for item in list(running):
                mutant, child = item
                if not child.poll():
                    continue
                running.remove(item)
                child.text()
                done += 1
                if done % 50 == 0:
                    print(f"{shown}: {done}/{total} run", flush=True)
                if child.timed_out:
                    result.timeouts += 1
                elif child.status == 0:
                    result.survivors.append((mutant, "every test passes"))
                    # shown as it comes too: a long run's survivors can be looked at meanwhile
                    print(f"{shown}:{mutant.line} survived: {mutant.what}", flush=True)
                else:
                    result.killed += 1
            time.sleep(0.01)
    finally:  # interrupted: end the children still running
        for _, child in running:
            child.kill()
    result.seconds = time.monotonic() - began
    return result


def report(result: Result) -> None:
    """Print one module's score and its survivors."""
    print(
        f"\n== {result.module}: {result.mutants} mutants, {result.equivalent} equivalent, "
        f"{result.killed} killed, {result.timeouts} timed out, {len(result.survivors)} survived: "
        f"score {result.score:.1f}% ({result.seconds:.0f}s)"
    )
    for mutant, why in sorted(result.survivors, key=lambda s: s[0].line):
        print(f"  {result.module}:{mutant.line} in {mutant.function}: {mutant.what} ({why})")
        print(f"    - {mutant.before}")
        print(f"    + {mutant.after}")


def markdown(results: list[Result]) -> str:
    """The score table, as docs/mutation.md and the CI summary show it."""
    rows = [
        "| module | mutants | equivalent | killed | survived | score | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| `{r.module}` | {r.mutants} | {r.equivalent} | {r.killed + r.timeouts} | "
            f"{len(r.survivors)} | {r.score:.1f}% | {r.seconds:.0f}s |"
        )
    return "\n".join(rows) + "\n"


def _shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N, for ``--shard``."""
    index, _, count = text.partition("/")
    if not (index.isdecimal() and count.isdecimal() and 1 <= int(index) <= int(count)):
        msg = f"--shard takes K/N with 1 <= K <= N, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(index), int(count)


def main(argv: list[str] | None = None) -> int:
    """Run the modules named (or all of them) and report; 1 if one scores too low."""
    parser = argparse.ArgumentParser(prog="tox -e mutation --", description=__doc__.split("\n")[0])
    parser.add_argument(
        "modules",
        nargs="*",
        help=f"paths under a src/ directory (default: {len(MODULES)} modules)",
    )
    parser.add_argument("--tests", action="append", help="test paths to run (default: tests/unit)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--fail-under", type=float, default=0.0, help="exit 1 when a module scores lower"
    )
    parser.add_argument("--markdown", type=Path, help="also write the score table to this file")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        help="only the mutants in this function or class (qualified, e.g. LxdCharm._on_start); "
        "a partial score, for working on survivors",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        help="K/N: only every N-th of the modules, from the K-th (CI runs N jobs at once)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` ends the children
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows as it comes
    os.chdir(REPO)
    equivalents = load_equivalents()
    modules = args.modules or list(MODULES)
    if args.shard:
        index, count = args.shard
        modules = modules[index - 1 :: count]
    if args.list:
        for module in modules:
            shown, _, path = resolve(module)
            for m in mutants_of(path.read_text()):
                if not in_functions(m, args.function):
                    continue
                print(f"{shown}:{m.line} {m.function}: {m.what}: {m.before!r} -> {m.after!r}")
        return 0
    runner.preload()
    paths = [resolve(module)[2] for module in modules]
    began = time.monotonic()
    coverage, output = runner.trace(paths, args.tests or list(DEFAULT_TESTS), timeout=1800)
    if not coverage or not all(c.passed for c in coverage.values()):
        print(output[-4000:])
        print("the tests fail on the unmutated code; fix them first")
        return 2
    print(f"traced which tests run which lines in {time.monotonic() - began:.0f}s")
    results = []
    for module, path in zip(modules, paths, strict=True):
        result = run_module(module, coverage[path], max(1, args.jobs), equivalents, args.function)
        report(result)
        results.append(result)
    for r in results if not args.function else ():  # a partial run cannot tell a stale entry
        for e in equivalents:
            if e.module == r.module and e not in r.matched:
                print(f"stale equivalent (matches no mutant now): {e.module} {e.function}")
                print(f"    {e.before!r} -> {e.after!r}")
    table = markdown(results)
    print("\n" + table)
    if args.markdown:
        args.markdown.write_text(table)
    low = [r.module for r in results if r.score < args.fail_under]
    if low:
        print(f"below {args.fail_under:g}%: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
