"""Where the local LXD daemon listens.

The search order is the one Juju's own LXD client uses, so a charm finds the
same daemon Juju would: an explicit ``LXD_DIR`` first (how tests and
non-standard installs point elsewhere), then the snap's socket (the
supported install), then the Debian package's socket.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import LxdNotFoundError

SNAP_SOCKET = Path("/var/snap/lxd/common/lxd/unix.socket")
DEBIAN_SOCKET = Path("/var/lib/lxd/unix.socket")


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def socket_candidates(env: Mapping[str, str] | None = None) -> list[Path]:
    """The sockets to try, best first."""
    env = os.environ if env is None else env
    candidates: list[Path] = []
    if lxd_dir := env.get("LXD_DIR"):
        candidates.append(Path(lxd_dir) / "unix.socket")
    candidates += [SNAP_SOCKET, DEBIAN_SOCKET]
    return candidates


def find_socket(
    env: Mapping[str, str] | None = None,
    is_socket: Callable[[Path], bool] = _is_socket,
) -> Path:
    """Return the first candidate path that is a Unix socket.

    Raises:
        LxdNotFoundError: none of the candidates is a socket, which usually
            means LXD is not installed or its daemon has never started.
    """
    candidates = socket_candidates(env)
    for path in candidates:
        if is_socket(path):
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise LxdNotFoundError(f"no LXD socket found (tried {tried}); is LXD installed and started?")
