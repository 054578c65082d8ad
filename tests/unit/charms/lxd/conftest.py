"""A machine for the LXD charm's unit tests: fake snapd, fake LXD, scratch root.

No I/O leaves the test's temporary directory: snapd is `FakeSnapd`, the LXD
daemon is `FakeLxd` (which behaves like the real one for the calls the
charm makes, as the functional tier checks against real daemons), and the
kernel settings are recorded instead of applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

import lxd_charm.host
from lxd_common.certs import fingerprint, generate_client_certificate, load_certificate
from lxd_common.errors import (
    LxdApiError,
    LxdUnreachableError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.lxd import TrustEntry, parse_preseed
from lxd_common.snap import LxdSnap
from lxd_common.snap_fake import FakeSnapd


class FakeTrust:
    """The trust store as LXD behaves (checked by tests/functional/test_lxd_trust.py)."""

    def __init__(self, projects: set[str]) -> None:
        self.projects = projects
        self.by_fingerprint: dict[str, TrustEntry] = {}

    def entries(self) -> list[TrustEntry]:
        return list(self.by_fingerprint.values())

    def find_all(self, name: str) -> list[TrustEntry]:
        return [e for e in self.entries() if e.name == name]

    def add(
        self, certificate_pem: str, name: str, projects: list[str] | None = None
    ) -> TrustEntry:
        fp = fingerprint(load_certificate(certificate_pem))
        missing = [p for p in projects or [] if p not in self.projects]
        if missing:
            raise ProjectNotFoundError(f"project(s) {', '.join(missing)} do not exist")
        existing = self.by_fingerprint.get(fp)
        if existing is not None and existing.type != "client":
            raise LxdApiError("already trusted as server certificate", 409)
        entry = TrustEntry(
            name, fp, "client", projects is not None, list(projects or []), certificate_pem
        )
        self.by_fingerprint[fp] = entry
        return entry

    def remove(self, key: str) -> TrustEntry:
        entry = self.by_fingerprint.pop(key, None)
        if entry is None:
            raise TrustEntryNotFoundError(key)
        return entry


class FakeLxd:
    """The subset of `LxdClient` the charm's hooks use, with real semantics."""

    def __init__(self) -> None:
        self.trust = FakeTrust({"default"})
        self.server_pair = generate_client_certificate("fake-lxd-server")
        self.config: dict[str, str] = {}
        self.preseeds: list[dict[str, Any]] = []
        self.refuse_preseed: str | None = None
        self.unreachable = False
        self.calls = 0

    def __enter__(self) -> FakeLxd:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _call(self) -> None:
        self.calls += 1
        if self.unreachable:
            raise LxdUnreachableError("cannot reach LXD while testing: connection refused")

    def server_info(self) -> dict[str, Any]:
        self._call()
        return {
            "auth": "trusted",
            "config": dict(self.config),
            "environment": {
                "certificate": self.server_pair.certificate,
                "certificate_fingerprint": fingerprint(self.server_pair.certificate),
            },
        }

    def server_config(self) -> dict[str, str]:
        self._call()
        return dict(self.config)

    def set_server_config(self, values: Mapping[str, str | None]) -> list[str]:
        self._call()
        changed = []
        for key, value in values.items():
            if not value:
                if key in self.config:
                    del self.config[key]
                    changed.append(key)
            elif self.config.get(key) != value:
                self.config[key] = value
                changed.append(key)
        return sorted(changed)

    def apply_preseed(self, preseed: Mapping[str, Any]) -> None:
        self._call()
        data = parse_preseed(preseed)
        if self.refuse_preseed:
            raise LxdApiError(f"LXD refused the preseed: {self.refuse_preseed}")
        self.preseeds.append(data)
        self.config.update(data.get("config") or {})


@dataclass
class RecordedSetting:
    """Stands in for SysctlTuning / KernelHardening: records what was asked."""

    applied: list[bool] = field(default_factory=list)

    def apply(self, enabled: bool) -> bool:
        self.applied.append(enabled)
        return True


@dataclass
class FakeHost(lxd_charm.host.Host):
    fake_lxd: FakeLxd = field(default_factory=FakeLxd)
    tuning: RecordedSetting = field(default_factory=RecordedSetting)
    hardened: RecordedSetting = field(default_factory=RecordedSetting)
    lxd_missing: bool = False

    def lxd(self) -> Any:
        if self.fake_lxd.unreachable and self.lxd_missing:
            raise LxdUnreachableError("no socket")
        return self.fake_lxd

    def sysctl(self, app_name: str) -> Any:
        return self.tuning

    def hardening(self) -> Any:
        return self.hardened


def set_boot(root: Path, boot: str) -> None:
    path = root / "proc/sys/kernel/random/boot_id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(boot + "\n")


@pytest.fixture
def snapd() -> FakeSnapd:
    return FakeSnapd()


@pytest.fixture
def host(tmp_path: Path, snapd: FakeSnapd, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHost]:
    set_boot(tmp_path, "boot-1")
    fake = FakeHost(snap=LxdSnap(snapd), root=tmp_path, state_dir=tmp_path / "state")
    monkeypatch.setattr(lxd_charm.host, "make_host", lambda: fake)
    for var in ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield fake


@pytest.fixture
def charm_module(
    load_charm: Callable[[str], ModuleType], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    module = load_charm("lxd")
    # charm.py bound make_host at import time; point it at the fake host too.
    monkeypatch.setattr(module, "make_host", lambda: host)
    return module


@pytest.fixture
def ctx(charm_module: ModuleType) -> testing.Context[Any]:
    return testing.Context(charm_module.LxdCharm)
