"""Fixtures for the LXD charm's unit tests: a fake machine behind the one seam.

No I/O leaves the test's temporary directory: snapd is `FakeSnapd`, the
machine is a `FakeHost` (tests/harness/fake_host.py) whose daemon is a
`FakeLxd` (tests/harness/fake_lxd.py), and `lxd_charm.host.make_host` is
the only thing patched. The fakes live in tests/harness; this file holds
fixtures only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

import lxd_charm.host
from lxd_common.snap import LxdSnap
from tests.harness.fake_host import FakeHost, set_boot
from tests.harness.fake_snapd import FakeSnapd


@pytest.fixture
def snapd() -> FakeSnapd:
    return FakeSnapd()


@pytest.fixture
def host(tmp_path: Path, snapd: FakeSnapd, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    set_boot(tmp_path, "boot-1")
    fake = FakeHost(
        snap=LxdSnap(snapd),
        root=tmp_path,
        state_dir=tmp_path / "state",
        daemon_dir=tmp_path / "lxd",
    )
    monkeypatch.setattr(lxd_charm.host, "make_host", lambda: fake)
    for var in ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield fake


@pytest.fixture
def charm_module(
    load_charm: Callable[[str], ModuleType], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    return load_charm("lxd")


@pytest.fixture
def ctx(charm_module: ModuleType) -> testing.Context[Any]:
    return testing.Context(charm_module.LxdCharm, app_name="lxd")
