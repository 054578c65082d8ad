"""A cluster join that died half-way: telling it apart, and undoing it where that loses nothing.

Captured from LXD 5.0 by killing a joining daemon at the moment it wrote
each piece of local state (tests/functional/test_lxd_charm_half_join.py):

- killed once the cluster certificate is written, the daemon starts again
  standalone, but keeps the storage pools the join created locally, and
  every later join is refused: "Failed to update storage pool "local": Pool
  source cannot be changed when not in pending state". Deleting those
  pools (they hold no volume yet) lets the next join through;
- killed between writing the cluster certificate and its key, the daemon
  never starts again: "failed to load TLS certificate: tls: failed to find
  any PEM data in key input". The same reset as below undoes it;
- killed once the global database's first segment is written, the daemon
  never starts again: "Failed to initialize global database: No node
  registered with address 10.0.0.2:8443". The cluster never registered the
  member, so its local database describes a membership that does not
  exist. Removing the local database and the cluster certificate, and the
  empty directories of the pools the join began, gives a daemon that starts
  empty and joins.

Both are undone only on a machine that never became a member (the charm's
memory says it did not) and holds no instance; anywhere else the operator
gets the exact step instead.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

HALF_JOINED_START_FAILURES = (
    "No node registered with address",
    "failed to load TLS certificate",
)
"""Why a daemon whose join died half-way cannot start: its local database was written
(the cluster never registered the member), or the cluster certificate was written
and its key not yet (captured from LXD 5.0)."""

LEFTOVER_POOL_MARKERS = (
    "pool source cannot be changed when not in pending state",
    "storage pool directory",
)
"""How LXD refuses a join over a pool an earlier, unfinished join left behind."""

_START_FAILURE = re.compile(r'msg="Failed to start the daemon" err="(?P<err>(?:[^"\\]|\\.)*)"')
_LOG_TAIL_BYTES = 64 * 1024
_INSTANCE_DIRS = ("containers", "virtual-machines")
_POOL_CONTENT = ("containers", "virtual-machines", "custom", "images", "buckets")


def half_joined(start_failure: str) -> bool:
    """Whether LXD's reason for not starting is one a half-done join leaves."""
    return any(marker in start_failure for marker in HALF_JOINED_START_FAILURES)


def start_failure(log: Path) -> str | None:
    """LXD's reason the last time it failed to start, from the tail of its log; None if none."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - _LOG_TAIL_BYTES))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None
    found = list(_START_FAILURE.finditer(tail))
    return found[-1]["err"].replace('\\"', '"') if found else None


_LEFTOVER_CERTIFICATE = re.compile(
    r'Failed adding local trusted certificate "(?P<name>[^"]+)" '
    r'\((?P<fingerprint>[0-9a-f]{64})\): This "certificates" entry already exists'
)


def leftover_refusal(message: str) -> bool:
    """Whether a join refusal is about something an earlier, unfinished join created here.

    A pool (see the module docstring), or the trust entry of this member's own
    certificate: killed a moment later than the pool case, the dead join had
    also added it, and the next join is refused with "Failed adding local
    trusted certificate "node1" (<fingerprint>): This "certificates" entry
    already exists" (seen in one run of five under load).
    """
    lowered = message.lower()
    return any(m in lowered for m in LEFTOVER_POOL_MARKERS) or bool(leftover_certificates(message))


def leftover_certificates(refusal: str) -> list[tuple[str, str]]:
    """(name, fingerprint) of each trust entry a join refusal says is left over."""
    return [(m["name"], m["fingerprint"]) for m in _LEFTOVER_CERTIFICATE.finditer(refusal)]


_POOL_NAME = re.compile(r'storage pool "(?P<name>[^"]+)"|storage-pools/(?P<dir>[^/"\s]+)')


def pools_named(refusal: str) -> list[str]:
    """The storage pools a join refusal names (LXD quotes them, or names their directory)."""
    names = {m["name"] or m["dir"] for m in _POOL_NAME.finditer(refusal)}
    return sorted(names)


def instances_on_disk(lxd_dir: Path) -> list[str]:
    """The instances a daemon's directory holds, readable while the daemon cannot start."""
    found: list[str] = []
    for kind in _INSTANCE_DIRS:
        directory = lxd_dir / kind
        if directory.is_dir():
            found += sorted(entry.name for entry in directory.iterdir())
    return found


@dataclass(frozen=True)
class Reset:
    """What `reset_unregistered_member` removed, for the log."""

    removed: list[str]


def reset_unregistered_member(lxd_dir: Path) -> Reset:
    """Remove the local state of a membership the cluster never registered.

    Only the local database, the cluster certificate and pool directories
    with nothing in them go: the caller has checked that this machine never
    became a member and that `instances_on_disk` is empty.

    Raises:
        ValueError: the directory holds instances, or a pool directory holds data.
    """
    instances = instances_on_disk(lxd_dir)
    if instances:
        raise ValueError(f"{lxd_dir} holds instances ({', '.join(instances)})")
    pools = [p for p in sorted((lxd_dir / "storage-pools").glob("*")) if p.is_dir()]
    for pool in pools:
        if any(_has_content(pool / part) for part in _POOL_CONTENT):
            raise ValueError(f"the storage pool directory {pool} holds data")
    removed = []
    if (lxd_dir / "database").exists():
        shutil.rmtree(lxd_dir / "database")
        removed.append("database")
    for name in ("cluster.crt", "cluster.key"):
        if (lxd_dir / name).exists():
            (lxd_dir / name).unlink()
            removed.append(name)
    for pool in pools:
        shutil.rmtree(pool)
        removed.append(f"storage-pools/{pool.name}")
    return Reset(removed)


def _has_content(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())
