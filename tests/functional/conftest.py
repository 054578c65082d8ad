"""Fixtures that give each functional test real LXD daemons on loopback.

The tier never skips silently: without root or without LXD (and no way to
install it), the whole session stops with one line that says what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.harness.charms  # noqa: F401  (puts each charm's src/ on sys.path)
from tests.harness.images import build_busybox_image
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, ensure_lxd_installed
from tests.harness.unit_agent import RECORDED, RECORDED_TOOLS, timing_summary


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = ensure_lxd_installed()
    if problem:
        pytest.exit(problem, returncode=1)


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a tiny busybox image tarball, built once per session."""
    return build_busybox_image(tmp_path_factory.mktemp("image"))


@pytest.fixture
def lxd_pool() -> Iterator[DaemonPool]:
    """A pool of daemons for one test; all of them are removed afterwards."""
    with DaemonPool() as pool:
        yield pool


@pytest.fixture
def start_daemons(lxd_pool: DaemonPool) -> Callable[[int], list[LxdDaemon]]:
    """Start N fresh daemons: ``a, b, c = start_daemons(3)``."""
    return lxd_pool.start


@pytest.fixture
def daemon(lxd_pool: DaemonPool) -> LxdDaemon:
    """One fresh, uninitialised daemon."""
    return lxd_pool.start(1)[0]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many hooks ran as dispatch processes of a built charm, and what they cost."""
    if not RECORDED:
        return
    total = sum(t.seconds for t in RECORDED)
    calls = sum(t.tool_calls for t in RECORDED)
    terminalreporter.write_sep("-", "unit-agent stand-in")
    terminalreporter.write_line(
        f"{len(RECORDED)} hooks as dispatch processes, {total:.1f}s in them "
        f"(mean {total / len(RECORDED):.2f}s), {calls} hook tool calls"
    )
    terminalreporter.write_line(f"  most called: {RECORDED_TOOLS.most_common(8)}")
    for kind, (count, mean, worst) in sorted(timing_summary(RECORDED).items()):
        terminalreporter.write_line(f"  {kind}: {count}, mean {mean:.2f}s, max {worst:.2f}s")
