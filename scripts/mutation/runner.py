"""Run the unit tests against each mutant of one module, in a forked child.

The parent imports the heavy third-party libraries the unit tier uses (ops,
Scenario, cryptography, pylxd, pytest) once and never imports the project's
own packages; each test run is a ``fork`` of it, so a run pays for pytest's
collection of the few test files it needs, not for a new interpreter. In the
child, a finder placed first on ``sys.meta_path`` answers the mutated
module's name with the mutated source (compiled under the real file name),
so it does not matter how the tests reach the module: ``lxd_common`` from
the installed package, ``lxd_charm`` from ``charms/lxd/src`` on
``sys.path``, or through another module that imports it; a charm's
``charm.py``, which the tests import by its file location under a name of
their own, is answered by that location (`answering_file`).

Which tests run for a mutant is decided by one traced run of the whole test
selection against the unmutated code: each test's executed lines of the
module are recorded, and a mutant runs only the tests that executed a line
of the node it changed (for code that runs at import, every test that
touched the module at all). A mutant that no test executes survives
without a run.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest

# Imported once in the parent so every forked run starts with them loaded.
PRELOAD = (
    "pytest",
    "yaml",
    "ops",
    "ops.testing",
    "scenario",
    "cryptography.x509",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.serialization",
    "pylxd",
    "requests",
    "tenacity",
    "jsonschema",
)
PROJECT_PACKAGES = ("lxd_common", "lxd_charm", "lxd_integrator", "tests")
# The unit tier as `tox -e unit` runs it: the interface-tester tests need older ops
# (`tox -e interfaces`), so they are deselected here as there.
PYTEST_ARGS = (
    *("-x", "-q", "-p", "no:cacheprovider", "--no-header"),
    *("-m", "not interface_tester"),
)


def preload() -> None:
    """Import the third-party libraries the tests use, before any fork."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    leaked = [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES]
    if leaked:
        msg = f"project modules imported before forking: {sorted(leaked)[:5]}"
        raise RuntimeError(msg)


class _MutantLoader(importlib.abc.Loader):
    def __init__(self, path: Path, source: str) -> None:
        self.path, self.source = path, source

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = str(self.path)
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)  # noqa: S102


class _MutantFinder(importlib.abc.MetaPathFinder):
    """Answers one module name with the mutated source; defers every other name."""

    def __init__(self, name: str, path: Path, source: str) -> None:
        self.name, self.path, self.source = name, path, source

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        package = self.path.name == "__init__.py"
        spec = importlib.util.spec_from_loader(
            fullname,
            _MutantLoader(self.path, self.source),
            origin=str(self.path),
            is_package=package,
        )
        if spec is not None:
            spec.has_location = True
            if package:
                spec.submodule_search_locations = [str(self.path.parent)]
        return spec


@dataclass
class Coverage:
    """Per test: the module's lines it executed, and how long it took."""

    lines: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    durations: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    passed: bool = False


class _Tracer:
    """A pytest plugin recording which lines of one file each test executes.

    A test also counts as executing what its fixtures ran (a module- or
    session-scoped fixture runs once, inside whichever test needs it first)
    and what its test file ran at import (module-level test data).
    """

    def __init__(self, filenames: set[str]) -> None:
        self.filenames = filenames
        self.lines: dict[str, set[tuple[str, int]]] = defaultdict(set)
        self.durations: dict[str, float] = defaultdict(float)
        self.current: set[tuple[str, int]] = set()
        self.fixture_lines: dict[str, set[tuple[str, int]]] = defaultdict(set)
        self.file_lines: dict[str, set[tuple[str, int]]] = defaultdict(set)
        self.fixtures_of: dict[str, list[str]] = {}

    def _global(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if frame.f_code.co_filename in self.filenames:
            self.current.add((frame.f_code.co_filename, frame.f_lineno))
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "line":
            self.current.add((frame.f_code.co_filename, frame.f_lineno))
        return self._local

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: Any) -> Iterator[Any]:
        if not isinstance(collector, pytest.Module):
            return (yield)
        saved, self.current = self.current, self.file_lines[collector.nodeid]
        sys.settrace(self._global)
        try:
            return (yield)
        finally:
            sys.settrace(None)
            self.current = saved

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Iterator[Any]:
        saved, self.current = self.current, self.fixture_lines[fixturedef.argname]
        try:
            return (yield)
        finally:
            self.current = saved

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Iterator[None]:
        self.fixtures_of[item.nodeid] = list(getattr(item, "fixturenames", ()))
        self.current = self.lines[item.nodeid]
        sys.settrace(self._global)
        threading.settrace(self._global)  # threads the code under test starts
        try:
            return (yield)
        finally:
            sys.settrace(None)
            threading.settrace(None)

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.durations[report.nodeid] += report.duration

    def pytest_sessionfinish(self, session: Any) -> None:
        for test, fixtures in self.fixtures_of.items():
            lines = self.lines[test]
            lines |= self.file_lines.get(test.split("::")[0], set())
            for name in fixtures:
                lines |= self.fixture_lines.get(name, set())


@dataclass
class Child:
    """A forked test run: its pid, when it must have finished, and its captured output."""

    pid: int
    deadline: float
    output: Any  # an open temporary file
    status: int | None = None
    timed_out: bool = False

    def poll(self) -> bool:
        """True once the child has ended (killed first if past its deadline)."""
        done, raw = os.waitpid(self.pid, os.WNOHANG)
        if done:
            self.status = os.waitstatus_to_exitcode(raw)
            return True
        if time.monotonic() < self.deadline:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.timed_out = True
        return True

    def kill(self) -> None:
        """End the child and everything it started now."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def text(self) -> str:
        """What the child printed (once: the file is closed after)."""
        self.output.seek(0)
        text: str = self.output.read().decode(errors="replace")
        self.output.close()
        return text


def start(body: Callable[[], int], timeout: float) -> Child:
    """Fork and run `body` in the child, its output captured; it exits with body's result."""
    out = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - the Child closes it in text()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.setpgid(0, 0)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            code = body()
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return Child(pid, time.monotonic() + timeout, out)


def wait(child: Child) -> Child:
    """Block until the child has ended."""
    while not child.poll():
        time.sleep(0.02)
    return child


def trace(
    paths: Sequence[Path], tests: Sequence[str], timeout: float
) -> tuple[dict[Path, Coverage], str]:
    """Run `tests` against the unmutated modules, recording each test's lines of each one.

    One run for every module: it is the slowest step, so it is not repeated per module.
    """
    with tempfile.NamedTemporaryFile(mode="w+", suffix=".json") as result:

        def body() -> int:
            tracer = _Tracer({str(p) for p in paths})
            code = int(pytest.main([*PYTEST_ARGS, *tests], plugins=[tracer]))
            per_file: dict[str, dict[str, list[int]]] = defaultdict(dict)
            for test, hits in tracer.lines.items():
                for filename in {f for f, _ in hits}:
                    per_file[filename][test] = sorted(n for f, n in hits if f == filename)
            data = {"lines": per_file, "durations": dict(tracer.durations), "code": code}
            Path(result.name).write_text(json.dumps(data))
            return code

        child = wait(start(body, timeout))
        output = child.text()
        answer: dict[Path, Coverage] = {}
        raw = Path(result.name).read_text()
        if raw:
            data = json.loads(raw)
            for path in paths:
                coverage = Coverage()
                hits = data["lines"].get(str(path), {})
                coverage.lines = defaultdict(set, {k: set(v) for k, v in hits.items()})
                coverage.durations = defaultdict(float, data["durations"])
                coverage.passed = data["code"] == 0 and child.status == 0
                answer[path] = coverage
    return answer, output


@contextlib.contextmanager
def answering_file(path: Path, source: str) -> Iterator[None]:
    """Answer an import of `path` by file location with the mutated source.

    The charms' `charm.py` files are imported by location, under a name of
    the caller's choosing (tests.harness.charms.load_charm_module), which no
    finder on `sys.meta_path` is asked about; `spec_from_file_location` is
    what every such import goes through, so it answers that one file.
    """
    original = importlib.util.spec_from_file_location
    wanted = path.resolve()

    def spec_from_file_location(
        name: str, location: Any = None, *args: Any, **kwargs: Any
    ) -> importlib.machinery.ModuleSpec | None:
        if location is None or Path(location).resolve() != wanted:
            return original(name, location, *args, **kwargs)
        spec = importlib.util.spec_from_loader(name, _MutantLoader(path, source), origin=str(path))
        if spec is not None:
            spec.has_location = True
        return spec

    importlib.util.spec_from_file_location = spec_from_file_location
    try:
        yield
    finally:
        importlib.util.spec_from_file_location = original


def start_mutant(
    name: str, path: Path, source: str, tests: Sequence[str], timeout: float
) -> Child:
    """Start the tests against this mutant; the child fails when a test notices it."""

    def body() -> int:
        sys.meta_path.insert(0, _MutantFinder(name, path, source))
        with answering_file(path, source):
            return int(pytest.main([*PYTEST_ARGS, *tests]))

    return start(body, timeout)
