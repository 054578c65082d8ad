"""Fixtures that give each functional test real LXD daemons on loopback.

The tier never skips silently: without root or without LXD (and no way to
install it), the whole session stops with one line that says what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tests.harness.charms  # noqa: F401  (puts each charm's src/ on sys.path)
from tests.harness.images import build_busybox_image
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, ensure_lxd_installed


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
