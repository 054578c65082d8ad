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
from lxd_common.errors import LxdNotFoundError, LxdUnreachableError
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
    ``lxd_not_found`` models no socket where LXD installs one (a daemon that
    is not running). ``restart_lxd`` is counted in ``lxd_restarts`` and
    clears both.
    """

    fake_lxd: FakeLxd = field(default_factory=FakeLxd)
    tuning: RecordedSetting = field(default_factory=RecordedSetting)
    hardened: RecordedSetting = field(default_factory=RecordedSetting)
    lxd_missing: bool = False
    lxd_not_found: bool = False
    lxd_restarts: int = 0

    def lxd(self) -> Any:
        """The fake daemon; connecting costs one request, as pylxd's client asks ``/1.0``."""
        if self.lxd_not_found:
            raise LxdNotFoundError(
                "no LXD socket found (tried /var/snap/lxd/common/lxd/unix.socket)"
            )
        if self.fake_lxd.unreachable and self.lxd_missing:
            raise LxdUnreachableError("no socket")
        self.fake_lxd.connect()
        return self.fake_lxd

    def restart_lxd(self) -> None:
        self.lxd_restarts += 1
        self.lxd_not_found = self.lxd_missing = False

    def sysctl(self, app_name: str) -> Any:
        return self.tuning

    def hardening(self) -> Any:
        return self.hardened


def set_boot(root: Path, boot: str) -> None:
    """Write the machine's boot id: the charm tells a reboot from a new boot id."""
    path = root / "proc/sys/kernel/random/boot_id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(boot + "\n")
