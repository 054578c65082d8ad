"""A fake `sysctl` command on a scratch `<root>/proc/sys`, for tests.

charmlibs-sysctl runs the real `sysctl` binary; tests must never tune the
kernel of the machine they run on, so they swap that subprocess call for
`FakeSysctl`, which reads and writes files under a temporary root the way
the kernel exposes them under /proc/sys.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from charmlibs.sysctl import _sysctl as charmlibs_impl

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


class FakeSysctl:
    """Stands in for the `sysctl` binary charmlibs-sysctl runs, on `<root>/proc/sys`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[list[str]] = []
        self.denied: set[str] = set()
        self.broken = False

    def path(self, key: str) -> Path:
        return self.root / "proc" / "sys" / Path(*key.split("."))

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


def fake_kernel(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysctl:
    """Populate ``root``'s /proc/sys with `DEFAULTS` and route charmlibs-sysctl to it."""
    for key, value in DEFAULTS.items():
        path = root / "proc" / "sys" / Path(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    fake = FakeSysctl(root)
    monkeypatch.setattr(charmlibs_impl, "check_output", fake)
    return fake
