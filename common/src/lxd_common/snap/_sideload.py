"""Sideloading: a debug LXD build from a Juju resource, in place of the store's."""

from __future__ import annotations

import filecmp
import logging
import platform
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Literal

from lxd_common.errors import SideloadError

logger = logging.getLogger(__name__)

DEBUG_BINARY = Path("/var/snap/lxd/common/lxd.debug")
"""Where the LXD snap looks for a debug build: its daemon wrapper runs this file instead
of the bundled `lxd` when it exists, so sideloading a binary needs no repacked snap."""

_ARCHES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "armv7l": "armhf",
}


def machine_arch() -> str:
    """This machine's architecture as snaps name it, the suffix of a resource tarball's members.

    Raises:
        SideloadError: LXD publishes no snap for this architecture.
    """
    machine = platform.machine()
    try:
        return _ARCHES[machine]
    except KeyError:
        raise SideloadError(
            f"unsupported machine architecture {machine!r}; "
            f"LXD snaps exist for {', '.join(sorted(set(_ARCHES.values())))}"
        ) from None


def _member_name(name: str) -> PurePosixPath:
    """A member's path with any `./` prefix gone (what `tar -C dir .` writes)."""
    return PurePosixPath(*(part for part in PurePosixPath(name).parts if part != "."))


def select_resource(
    path: Path | None,
    kind: Literal["binary", "snap"],
    arch: str | None = None,
    *,
    workdir: Path | None = None,
) -> Path | None:
    """The file to sideload from an attached resource, or None when there is none.

    Juju cannot detach a resource, so operators attach an empty file instead; that, like
    a missing resource, means "no sideload". A tarball carries one build per architecture
    (`lxd_<arch>` or `lxd_<arch>.snap` at its root) so one resource serves a mixed
    cluster; only this machine's member is extracted.

    Args:
        path: where Juju put the resource, or None when it has none.
        kind: `binary` for the lxd-binary resource, `snap` for lxd-snap.
        arch: the snap architecture to pick; defaults to this machine's.
        workdir: where to extract a tarball's member; defaults to a new temporary
            directory, which the caller may delete once the file is installed.

    Returns:
        The file to install, or None.

    Raises:
        SideloadError: the tarball is unsafe or has no member for this architecture.
    """
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return None
    if not tarfile.is_tarfile(path):
        return path
    arch = arch or machine_arch()
    wanted = PurePosixPath(f"lxd_{arch}" + (".snap" if kind == "snap" else ""))
    try:
        with tarfile.open(path) as tar:
            member = _find_member(tar, path, wanted)
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - _find_member only returns regular files
                raise SideloadError(f"{path}: member {wanted} cannot be read")
            target_dir = workdir or Path(tempfile.mkdtemp(prefix="lxd-sideload-"))
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / wanted.name
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            target.chmod(0o755 if kind == "binary" else 0o644)
    except (tarfile.TarError, OSError) as e:
        raise SideloadError(f"cannot read resource tarball {path}: {e}") from e
    return target


def _find_member(tar: tarfile.TarFile, path: Path, wanted: PurePosixPath) -> tarfile.TarInfo:
    """This machine's member, after refusing the whole tarball if any member is unsafe.

    A tarball with `../` or absolute paths or links was not built the documented way, and
    may be hostile; refusing it outright is clearer than quietly using part of it.
    """
    found: tarfile.TarInfo | None = None
    names: list[str] = []
    for member in tar.getmembers():
        raw = PurePosixPath(member.name)
        if raw.is_absolute() or ".." in raw.parts:
            raise SideloadError(f"resource tarball {path} has an unsafe path {member.name!r}")
        if member.issym() or member.islnk():
            raise SideloadError(f"resource tarball {path} has a link {member.name!r}")
        name = _member_name(member.name)
        if member.isdir():
            continue
        names.append(str(name))
        if name == wanted:
            if not member.isfile():
                raise SideloadError(f"resource tarball {path}: {member.name!r} is not a file")
            found = member
    if found is None:
        arch = wanted.name.removeprefix("lxd_").removesuffix(".snap")
        raise SideloadError(
            f"resource tarball {path} has no {wanted} for this machine's architecture "
            f"{arch!r}; it has: {', '.join(names) or 'nothing'}"
        )
    return found


def place_binary(path: Path, target: Path, snap_name: str) -> bool:
    """Put the binary at `path` where the snap runs it, unless an identical one is there.

    The copy is written beside the target and renamed over it, so a restart never runs
    a half-written binary. A file left at the copy's name (a hook killed mid-copy) is
    ours and is overwritten; a symbolic link there is removed (its target is left as it
    is), or the copy would be written into whatever it points at and the rename would
    put the link at the target. A directory there is refused, not removed: this code only
    ever writes a file at that name, so a directory is someone else's (an operator's
    or another tool's), its contents are not ours to judge, and deleting them as root
    on the charm's own initiative is not what an operator expects. The refusal names
    it, so removing it is one command, and the next hook installs the binary.

    Returns:
        True when it put the binary in place (the caller restarts the snap).

    Raises:
        SideloadError: the binary is missing, the snap's directory is not there, or a
            directory sits where the copy is written.
    """
    if not path.is_file():
        raise SideloadError(f"LXD binary {path} does not exist")
    if not target.parent.is_dir():
        raise SideloadError(f"{target.parent} does not exist; install the {snap_name} snap first")
    if target.is_file() and filecmp.cmp(path, target, shallow=False):
        return False
    partial = target.with_name(f".{target.name}.partial")
    if partial.is_symlink():
        partial.unlink()  # the copy would be written through it; what it points at stays
    if partial.is_dir():
        raise SideloadError(
            f"cannot install LXD binary to {target}: {partial} is a directory, where the "
            "binary is copied first; remove it and the next hook installs the binary"
        )
    try:
        shutil.copyfile(path, partial)
        partial.chmod(0o755)
        partial.replace(target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise SideloadError(f"cannot install LXD binary to {target}: {e}") from e
    return True


def drop_binary(target: Path) -> bool:
    """Remove a sideloaded binary; True when there was one (the caller restarts the snap)."""
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise SideloadError(f"cannot remove LXD binary {target}: {e}") from e
    return True
