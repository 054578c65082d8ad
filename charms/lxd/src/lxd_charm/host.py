"""Everything on the machine the charm acts on, behind one seam.

Production uses the real snapd, the local LXD socket and the real `/proc`,
`/sys` and `/etc`. Tests replace `make_host` to swap in a fake snapd and a
scratch root directory, and point `LXD_DIR` at a real test daemon: the LXD
client finds its socket the way Juju does, `LXD_DIR` first.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient
    from lxd_common.snap import LxdSnap
    from lxd_common.sysctl import KernelHardening, SysctlTuning

STATE_DIR = Path("/var/lib/lxd-charm")
SNAP_LXD_DIR = Path("/var/snap/lxd/common/lxd")
LXD_WAIT_SECONDS = 60.0


@dataclass
class Host:
    """The machine: its LXD snap, its LXD daemon and its kernel settings."""

    snap: LxdSnap = field(default_factory=lambda: _real_snap())
    root: Path = Path("/")
    state_dir: Path = STATE_DIR
    lxd_wait: float = LXD_WAIT_SECONDS
    hostname: str = field(default_factory=socket.gethostname)
    """The LXD member name this machine uses in a cluster."""

    @property
    def debug_binary(self) -> Path:
        """Where the LXD snap looks for a sideloaded `lxd` binary."""
        from lxd_common.snap import DEBUG_BINARY

        return self.root / DEBUG_BINARY.relative_to("/")

    @property
    def sideload_dir(self) -> Path:
        """Where resources unpacked from tarballs are kept (one per kind)."""
        return self.state_dir / "sideload"

    def lxd(self) -> LxdClient:
        """A client for the local daemon, waiting while it (re)starts."""
        from lxd_common.lxd import LxdClient  # pylxd: only for hooks that use LXD

        return LxdClient.local(wait=self.lxd_wait)

    daemon_dir: Path | None = None
    """The daemon's directory, when not found the way the client finds it (tests)."""

    @property
    def lxd_dir(self) -> Path:
        """The daemon's directory: `LXD_DIR` when set, else the snap's."""
        if self.daemon_dir is not None:
            return self.daemon_dir
        return Path(os.environ.get("LXD_DIR") or SNAP_LXD_DIR)

    @property
    def lxd_log(self) -> Path:
        """Where the daemon logs, including why it failed to start."""
        return self.lxd_dir / "logs" / "lxd.log"

    def restart_lxd(self) -> None:
        """Start the daemon again from what its directory holds now."""
        self.snap.restart()

    def sysctl(self, app_name: str) -> SysctlTuning:
        """Production sysctl tuning, persisted for this application."""
        from lxd_common.sysctl import SysctlTuning  # only for hooks that tune

        return SysctlTuning(app_name, self.state_dir, root=self.root)

    def hardening(self) -> KernelHardening:
        """Restricted permissions on files that leak instance names."""
        from lxd_common.sysctl import KernelHardening  # only for hooks that tune

        return KernelHardening(self.state_dir, root=self.root)


def _real_snap() -> LxdSnap:
    from lxd_common.snap import LxdSnap  # charmlibs-snap: only for hooks that talk to snapd

    return LxdSnap()


def make_host() -> Host:
    """The real machine; tests replace this function."""
    return Host()
