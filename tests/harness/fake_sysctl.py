"""sysctl for tests: a scratch `<root>/proc/sys`, and two ways to tune it.

Tests must never tune the kernel of the machine they run on. Either

- keep the real charmlibs-sysctl and point it under a scratch root with
  `charmlibs_under` (what `fake_kernel` does for whole charm units): its
  `/etc/sysctl.d` moves under the root and the `sysctl` command it runs is
  replaced by `FakeSysctl`, which reads and writes `<root>/proc/sys`. This
  module is the only place that touches the library's internals, because the
  library has no public way to do either; or
- give `SysctlTuning` a `FakeSysctlBackend`, which does not use the library at
  all and keeps the same files under the root.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from charmlibs.sysctl import _sysctl as charmlibs_impl

from lxd_common.errors import SysctlError
from lxd_common.sysctl import SysctlBackend

# Kernel defaults the fake /proc/sys starts from.
DEFAULTS = {
    "fs.aio-max-nr": "65536",
    "fs.inotify.max_queued_events": "16384",
    "fs.inotify.max_user_instances": "128",
    "fs.inotify.max_user_watches": "8192",
    "kernel.dmesg_restrict": "0",
    "kernel.keys.maxbytes": "20000",
    "kernel.keys.maxkeys": "200",
    "net.core.bpf_jit_limit": "264241152",
    "net.ipv4.neigh.default.gc_thresh3": "1024",
    "net.ipv6.neigh.default.gc_thresh3": "1024",
    "vm.max_map_count": "65530",
}


def proc_sys(root: Path, key: str) -> Path:
    """The file under `root` that holds `key`, as the kernel lays out /proc/sys."""
    return root / "proc" / "sys" / Path(*key.split("."))


def populate(root: Path, values: Mapping[str, str] = DEFAULTS) -> None:
    """Write `values` into `<root>/proc/sys`, the kernel's state before any tuning."""
    for key, value in values.items():
        path = proc_sys(root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")


class FakeSysctl:
    """Stands in for the `sysctl` binary charmlibs-sysctl runs, on `<root>/proc/sys`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[list[str]] = []
        self.denied: set[str] = set()
        self.broken = False

    def path(self, key: str) -> Path:
        return proc_sys(self.root, key)

    def read(self, key: str) -> str:
        return self.path(key).read_text().strip()

    def __call__(self, cmd: list[str], **kwargs: Any) -> str:
        self.calls.append(cmd)
        assert cmd[0] == "sysctl"
        if self.broken:
            raise subprocess.CalledProcessError(255, cmd, output="sysctl: fake failure")
        args = cmd[1:]
        if args and args[0] == "-n":
            return "".join(f"{self.read(key)}\n" for key in args[1:])
        out = []
        for arg in args:
            key, _, value = arg.partition("=")
            if key in self.denied:
                out.append(f'sysctl: permission denied on key "{key}", ignoring')
                continue
            self.path(key).write_text(f"{value}\n")
            out.append(f"{key} = {value}")
        return "\n".join(out) + "\n"


def charmlibs_under(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysctl:
    """Point charmlibs-sysctl at `<root>/etc/sysctl.d` and a `FakeSysctl` on `root`.

    Undone by `monkeypatch` at the end of the test. Both go together: the
    production backend accepts a root once the library's file path is under it,
    which must mean the library no longer runs the real `sysctl` either.
    """
    directory = root / "etc" / "sysctl.d"
    directory.mkdir(parents=True, exist_ok=True)
    fake = FakeSysctl(root)
    monkeypatch.setattr(charmlibs_impl, "check_output", fake)
    monkeypatch.setattr(charmlibs_impl, "SYSCTL_DIRECTORY", directory)
    monkeypatch.setattr(
        charmlibs_impl, "SYSCTL_FILENAME", directory / charmlibs_impl.SYSCTL_FILENAME.name
    )
    return fake


def fake_kernel(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysctl:
    """Populate ``root``'s /proc/sys with `DEFAULTS` and route charmlibs-sysctl to it."""
    populate(root)
    return charmlibs_under(root, monkeypatch)


class FakeSysctlBackend(SysctlBackend):
    """A `SysctlBackend` on `<root>`, without charmlibs-sysctl.

    Live values are `<root>/proc/sys` files; each application's settings are
    `<root>/etc/sysctl.d/90-juju-<app>`, as the library names them. Like the
    library it refuses a key another application's file sets differently, and
    applies nothing when the kernel refuses one key (`denied`).

    Attributes:
        calls: every change asked of it, in order: `("persist", app, values)`,
            `("write", key, value)`, `("remove", app)`.
        denied: keys the kernel refuses to set.
    """

    PREFIX = "90-juju-"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.directory = root / "etc" / "sysctl.d"
        self.calls: list[tuple[Any, ...]] = []
        self.denied: set[str] = set()

    def read(self, key: str) -> str | None:
        path = proc_sys(self.root, key)
        return path.read_text().strip() if path.is_file() else None

    def write(self, key: str, value: str) -> None:
        self.calls.append(("write", key, value))
        if key in self.denied:
            raise SysctlError(f"permission denied on key {key!r}")
        proc_sys(self.root, key).write_text(f"{value}\n")

    def persisted(self, app_name: str) -> dict[str, str] | None:
        path = self.directory / f"{self.PREFIX}{app_name}"
        return _parse(path.read_text()) if path.is_file() else None

    def persist(self, app_name: str, values: Mapping[str, str]) -> None:
        self.calls.append(("persist", app_name, dict(values)))
        others = self._others(app_name)
        if conflict := sorted(k for k, v in values.items() if others.get(k, v) != v):
            raise SysctlError(f"Validation error for keys: {conflict}")
        if denied := sorted(self.denied & set(values)):
            raise SysctlError(
                f"could not apply sysctl tuning ({', '.join(sorted(values))}): "
                f"permission denied on {denied}"
            )
        for key, value in values.items():
            proc_sys(self.root, key).write_text(f"{value}\n")
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [f"# {app_name}", *(f"{k}={v}" for k, v in values.items())]
        (self.directory / f"{self.PREFIX}{app_name}").write_text("\n".join(lines) + "\n")

    def remove(self, app_name: str) -> set[str]:
        self.calls.append(("remove", app_name))
        (self.directory / f"{self.PREFIX}{app_name}").unlink(missing_ok=True)
        return set(self._others(app_name))

    def _others(self, app_name: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for path in sorted(self.directory.glob(f"{self.PREFIX}*")):
            if path.name != f"{self.PREFIX}{app_name}":
                merged.update(_parse(path.read_text()))
        return merged


def _parse(text: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in text.splitlines())
    return {k.strip(): v.strip() for k, _, v in pairs if v and not k.startswith(("#", ";"))}
