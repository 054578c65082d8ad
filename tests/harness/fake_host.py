"""A fake machine for the LXD charm's unit tests: `FakeHost` behind `lxd_charm.host.make_host`.

The charm reaches its machine only through `lxd_charm.host.make_host()`;
tests replace that one function (nothing else) with one returning a
`FakeHost`: a scratch root directory, the given snapd, a `FakeLxd` for the
daemon and recorded kernel settings instead of applied ones. Needs the LXD
charm's `src/` on `sys.path` (tox's PYTHONPATH, or `load_charm_module`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxd_charm.host
from lxd_common.errors import LxdUnreachableError
from tests.harness.fake_lxd import FakeLxd


@dataclass
class RecordedSetting:
    """Stands in for SysctlTuning / KernelHardening: records what was asked."""

    applied: list[bool] = field(default_factory=list)

    def apply(self, enabled: bool) -> bool:
        self.applied.append(enabled)
        return True


@dataclass
class FakeHost(lxd_charm.host.Host):
    """`lxd_charm.host.Host` with a `FakeLxd` and recorded kernel settings.

    ``lxd_missing`` with ``fake_lxd.unreachable`` models a machine whose LXD
    socket does not exist at all (as before the snap is installed).
    """

    fake_lxd: FakeLxd = field(default_factory=FakeLxd)
    tuning: RecordedSetting = field(default_factory=RecordedSetting)
    hardened: RecordedSetting = field(default_factory=RecordedSetting)
    lxd_missing: bool = False

    def lxd(self) -> Any:
        """The fake daemon; connecting costs one request, as pylxd's client asks ``/1.0``."""
        if self.fake_lxd.unreachable and self.lxd_missing:
            raise LxdUnreachableError("no socket")
        self.fake_lxd.connect()
        return self.fake_lxd

    def sysctl(self, app_name: str) -> Any:
        return self.tuning

    def hardening(self) -> Any:
        return self.hardened


def set_boot(root: Path, boot: str) -> None:
    """Write the machine's boot id: the charm tells a reboot from a new boot id."""
    path = root / "proc/sys/kernel/random/boot_id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(boot + "\n")
