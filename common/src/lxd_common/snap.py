"""The LXD snap: install, refresh, snap config and sideloading, on charmlibs-snap.

The charm keeps LXD on the channel the operator chose, pushes the
`snap-config-*` keys into the snap's own configuration, and can swap in a
debug build of LXD (a bare `lxd` binary or a whole `.snap`) attached as a
Juju resource. Everything that talks to snapd goes through a `SnapBackend`,
so tests and demos replace snapd with `lxd_common.snap_fake.FakeSnapd`::

    lxd = LxdSnap()  # the real snapd, through charmlibs-snap
    lxd.ensure("5.21/stable")  # True when it installed or refreshed
    changed = lxd.set_config({"daemon-debug": True, "lxcfs-loadavg": None})
    live, needs_reboot = split_pending(changed)

    binary = select_resource(resource_path, "binary")  # None when detached
    if binary:
        lxd.install_debug_binary(binary)
    else:
        lxd.remove_debug_binary()

Errors (all from `lxd_common.errors`):

- `SnapChannelError`: a malformed channel, or one the store has no release on.
- `SnapDowngradeError`: the channel would move LXD to an older track.
- `SnapConfigError`: an unknown snap config key, or a value of the wrong kind.
- `SideloadError`: a resource that cannot be used on this machine.
- `SnapError`: anything else snapd refused or failed.
"""

from __future__ import annotations

import contextlib
import filecmp
import logging
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal, Protocol

from charmlibs import snap as _snapd

from lxd_common.errors import (
    SideloadError,
    SnapChannelError,
    SnapConfigError,
    SnapDowngradeError,
    SnapError,
)

logger = logging.getLogger(__name__)

RISKS: tuple[str, ...] = ("stable", "candidate", "beta", "edge")
"""Snap risk levels, most to least stable."""

DEBUG_BINARY = Path("/var/snap/lxd/common/lxd.debug")
"""Where the LXD snap looks for a debug build: its daemon wrapper runs this file instead
of the bundled `lxd` when it exists, so sideloading a binary needs no repacked snap."""

CONFIG_KEYS: dict[str, str] = {
    "ceph-builtin": "ceph.builtin",
    "ceph-external": "ceph.external",
    "criu-enable": "criu.enable",
    "daemon-debug": "daemon.debug",
    "daemon-group": "daemon.group",
    "daemon-syslog": "daemon.syslog",
    "lvm-external": "lvm.external",
    "lxcfs-cfs": "lxcfs.cfs",
    "lxcfs-loadavg": "lxcfs.loadavg",
    "lxcfs-pidfd": "lxcfs.pidfd",
    "openvswitch-builtin": "openvswitch.builtin",
    "shiftfs-enable": "shiftfs.enable",
}
"""Charm config-key suffix (after `snap-config-`) to the LXD snap's config key."""

REBOOT_REQUIRED: frozenset[str] = frozenset(
    k for k in CONFIG_KEYS.values() if k.startswith("lxcfs.")
)
"""Snap keys that only take effect after a reboot: LXCFS serves every running container's
/proc, so restarting it to pick up new options would break them all."""

CHARM_CONFIG_PREFIX = "snap-config-"

_SNAP_KEYS = frozenset(CONFIG_KEYS.values())
_STRING_KEYS = frozenset({"daemon.group", "shiftfs.enable"})
_BOOL_VALUES = frozenset({"true", "false"})

_TRACK_RE = re.compile(r"latest|\d+(?:\.\d+)?")
_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?")
_CHANNEL_FORMS = (
    "expected RISK, TRACK, TRACK/RISK or TRACK/RISK/BRANCH, where RISK is one of "
    f"{', '.join(RISKS)} and TRACK is 'latest' or a version such as 5.21 or 6"
)

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


# --- channels ----------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """A fully spelled-out snap channel.

    Always complete (`track/risk[/branch]`), so two spellings of the same channel compare
    equal and a channel can be compared with what snapd reports as tracked.
    """

    track: str
    risk: str
    branch: str | None = None

    def __str__(self) -> str:
        base = f"{self.track}/{self.risk}"
        return f"{base}/{self.branch}" if self.branch else base

    @property
    def version(self) -> tuple[int, ...] | None:
        """The track as numbers (`5.21` -> `(5, 21)`); None for `latest`, which has no age."""
        if self.track == "latest":
            return None
        return tuple(int(part) for part in self.track.split("."))


def parse_channel(channel: str) -> Channel:
    """Parse and complete a snap channel as the operator wrote it.

    A lone risk means the `latest` track, not the installed snap's track as snapd would
    take it: a config value must mean the same thing whatever is installed, or the same
    `snap-channel` would put two units on different tracks. A lone track means its
    `stable` risk.

    Args:
        channel: `risk`, `track`, `track/risk` or `track/risk/branch`.

    Returns:
        The complete channel.

    Raises:
        SnapChannelError: the channel is not one of the accepted forms.
    """
    parts = channel.split("/")
    bad = SnapChannelError(f"invalid snap channel {channel!r}: {_CHANNEL_FORMS}")
    if not channel or any(not part or part != part.strip() or " " in part for part in parts):
        raise bad
    if len(parts) == 1:
        (only,) = parts
        if only in RISKS:
            return Channel("latest", only)
        if _TRACK_RE.fullmatch(only):
            return Channel(only, "stable")
        raise bad
    if len(parts) > 3 or not _TRACK_RE.fullmatch(parts[0]) or parts[1] not in RISKS:
        raise bad
    if len(parts) == 3 and not _BRANCH_RE.fullmatch(parts[2]):
        raise bad
    return Channel(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _try_parse_channel(channel: str) -> Channel | None:
    """Parse a channel snapd reported; None when it tracks none (a snap installed from a file)."""
    try:
        return parse_channel(channel)
    except SnapChannelError:
        return None


def _version_prefix(version: str) -> tuple[int, ...] | None:
    """`5.21.3-abc` -> `(5, 21)`, the part a track name can be compared with."""
    match = _VERSION_RE.match(version)
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _older(target: tuple[int, ...], current: tuple[int, ...]) -> bool:
    """Whether `target` is older, compared on the parts both have.

    Track `6` covers every 6.x, so it is neither older nor newer than a 6.1 install.
    """
    width = min(len(target), len(current))
    return target[:width] < current[:width]


# --- the snapd seam ------------------------------------------------------------


@dataclass(frozen=True)
class InstalledSnap:
    """What snapd says about an installed snap.

    Attributes:
        name: the snap's name.
        channel: the channel it tracks (`latest/stable`); empty for a snap installed from a
            file, which tracks none.
        revision: snapd's revision, a string because local installs are `x1`, `x2`, ...
        version: the packaged software's version, e.g. `5.21.3-c5ae129`.
    """

    name: str
    channel: str
    revision: str
    version: str


class SnapBackend(Protocol):
    """Everything this module asks of snapd, so tests can stand in for it."""

    def installed(self, name: str) -> InstalledSnap | None:
        """The installed snap, or None when it is not installed."""
        ...

    def install(self, name: str, channel: str) -> None:
        """Install the snap from the store, tracking `channel`."""
        ...

    def refresh(self, name: str, channel: str, *, amend: bool = False) -> None:
        """Move the installed snap to `channel`.

        ``amend`` lets snapd replace a snap installed from a file with the
        store's, which a plain refresh refuses to do.
        """
        ...

    def get_config(self, name: str) -> dict[str, Any]:
        """The snap's whole configuration, nested by dots as snapd returns it."""
        ...

    def set_config(self, name: str, values: dict[str, str]) -> None:
        """Set snap config keys (dotted names) in one change."""
        ...

    def unset_config(self, name: str, keys: list[str]) -> None:
        """Unset snap config keys, so the snap's defaults apply again."""
        ...

    def install_file(self, path: Path) -> None:
        """Install a local `.snap`, unsigned (`snap install --dangerous`)."""
        ...

    def restart(self, name: str) -> None:
        """Restart the snap's services."""
        ...


@contextlib.contextmanager
def _snapd_errors(action: str, name: str, channel: str | None = None) -> Iterator[None]:
    """Turn charmlibs-snap's errors into ours, so callers catch one hierarchy."""
    try:
        yield
    except _snapd.ChannelNotAvailableError as e:
        raise SnapChannelError(
            f"snap {name!r} has no release on channel {channel!r}; "
            f"pick a channel the store offers ({e})"
        ) from e
    except (_snapd.Error, ValueError) as e:
        raise SnapError(f"could not {action} snap {name!r}: {e}") from e


class CharmlibsSnapBackend(SnapBackend):
    """The real snapd, through charmlibs-snap (and the `snap` CLI for local files)."""

    def installed(self, name: str) -> InstalledSnap | None:
        """The installed snap, or None when it is not installed."""
        with _snapd_errors("query", name):
            try:
                info = _snapd.list_one(name)
            except _snapd.NotInstalledError:
                return None
        return InstalledSnap(info.name, info.tracking, info.revision, info.version)

    def install(self, name: str, channel: str) -> None:
        """Install the snap from the store, tracking `channel`."""
        with _snapd_errors("install", name, channel):
            _snapd.install(name, channel=channel)

    def refresh(self, name: str, channel: str, *, amend: bool = False) -> None:
        """Move the installed snap to `channel` (``amend``: from a file to the store)."""
        if amend:
            # charmlibs-snap has no `--amend`; the snap command does.
            command = ["snap", "refresh", "--amend", f"--channel={channel}", name]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                reason = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
                raise SnapError(f"could not move snap {name!r} back to the store: {reason}")
            return
        with _snapd_errors("refresh", name, channel):
            _snapd.refresh(name, channel=channel)

    def get_config(self, name: str) -> dict[str, Any]:
        """The snap's whole configuration, nested by dots as snapd returns it."""
        with _snapd_errors("read the configuration of", name):
            return _snapd.get(name)

    def set_config(self, name: str, values: dict[str, str]) -> None:
        """Set snap config keys (dotted names) in one change."""
        with _snapd_errors("configure", name):
            _snapd.set(name, dict(values))

    def unset_config(self, name: str, keys: list[str]) -> None:
        """Unset snap config keys, so the snap's defaults apply again."""
        with _snapd_errors("unset the configuration of", name):
            _snapd.unset(name, keys)

    def install_file(self, path: Path) -> None:
        """Install a local `.snap` with the `snap` CLI.

        snapd's REST API takes local snaps only as a multipart upload, which charmlibs-snap
        does not do, so this is the one operation that shells out.
        """
        try:
            subprocess.run(
                ["snap", "install", "--dangerous", str(path)],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.CalledProcessError as e:
            detail = (e.stderr or e.stdout or "").strip() or f"exit status {e.returncode}"
            raise SnapError(f"snap install --dangerous {path} failed: {detail}") from e
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SnapError(f"snap install --dangerous {path} failed: {e}") from e

    def restart(self, name: str) -> None:
        """Restart the snap's services."""
        with _snapd_errors("restart", name):
            _snapd.restart(name)


# --- snap config -------------------------------------------------------------


def snap_key(key: str) -> str:
    """The snap's config key for any of the names a caller may use.

    Accepts the snap key itself (`lxcfs.cfs`), the charm config suffix (`lxcfs-cfs`) or
    the whole charm config key (`snap-config-lxcfs-cfs`), so a charm can pass its config
    through without renaming it.

    Raises:
        SnapConfigError: the key is none of the LXD snap keys this charm manages.
    """
    if key in _SNAP_KEYS:
        return key
    suffix = key.removeprefix(CHARM_CONFIG_PREFIX)
    if suffix in CONFIG_KEYS:
        return CONFIG_KEYS[suffix]
    raise SnapConfigError(
        f"unknown snap config key {key!r}; known keys: {', '.join(sorted(CONFIG_KEYS))}"
    )


def split_pending(changes: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split config keys into those LXD applies live and those that need a reboot.

    Args:
        changes: config keys in any form `snap_key` accepts (e.g. what `set_config`
            returned, or the keys of a desired change).

    Returns:
        `(live, needs_reboot)`, each in input order and spelling.

    Raises:
        SnapConfigError: a key is unknown.
    """
    live: list[str] = []
    needs_reboot: list[str] = []
    for key in changes:
        (needs_reboot if snap_key(key) in REBOOT_REQUIRED else live).append(key)
    return live, needs_reboot


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten snapd's nesting of dotted keys (`{"ceph": {"builtin": true}}`) to compare keys."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_config_string(value: Any) -> str:
    """Render a value as the snap's hooks see it: snapd may hold `true` as JSON or a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _desired_value(key: str, value: bool | str | None) -> str | None:
    """The string the snap gets for `value`, or None to unset the key.

    An empty string unsets too: it is what Juju gives for a string option the operator
    cleared, and the snap treats an empty key as a bad value, not as its default.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        raise SnapConfigError(
            f"snap config {key!r} takes a boolean or a string, not {type(value).__name__}"
        )
    if value == "":
        return None
    if key not in _STRING_KEYS and value.lower() not in _BOOL_VALUES:
        raise SnapConfigError(f"snap config {key!r} takes true or false, not {value!r}")
    return value if key in _STRING_KEYS else value.lower()


# --- sideloading -------------------------------------------------------------


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


# --- the LXD snap --------------------------------------------------------------


class LxdSnap:
    """The LXD snap on this machine, as the charm manages it."""

    CONFIG_KEYS: ClassVar[dict[str, str]] = CONFIG_KEYS
    REBOOT_REQUIRED: ClassVar[frozenset[str]] = REBOOT_REQUIRED
    split_pending = staticmethod(split_pending)

    def __init__(self, backend: SnapBackend | None = None, name: str = "lxd") -> None:
        self.backend: SnapBackend = backend if backend is not None else CharmlibsSnapBackend()
        self.name = name

    def installed(self) -> InstalledSnap | None:
        """The installed LXD snap, or None."""
        return self.backend.installed(self.name)

    def ensure(self, channel: str) -> bool:
        """Install LXD, or move it to `channel`, unless that would downgrade it.

        A snap installed from a file tracks no channel, so it is moved back to the store;
        callers that sideload a snap skip this while the resource is attached.

        Args:
            channel: the channel to track, in any form `parse_channel` accepts.

        Returns:
            True when it installed or refreshed the snap.

        Raises:
            SnapChannelError: the channel is malformed or not in the store.
            SnapDowngradeError: the move goes to an older track.
            SnapError: snapd failed.
        """
        target = parse_channel(channel)
        current = self.installed()
        if current is None:
            logger.info("installing snap %s from %s", self.name, target)
            self.backend.install(self.name, str(target))
            return True
        tracked = _try_parse_channel(current.channel)
        if tracked == target:
            return False
        self._refuse_downgrade(current, tracked, target)
        local = current.revision.startswith("x")  # installed from a file
        logger.info(
            "refreshing snap %s from %s to %s", self.name, current.channel or "a file", target
        )
        self.backend.refresh(self.name, str(target), amend=local)
        return True

    def _refuse_downgrade(
        self, current: InstalledSnap, tracked: Channel | None, target: Channel
    ) -> None:
        """Raise when `target` is an older track than what is installed.

        LXD upgrades its database schema on start and cannot read it back with an older
        release, so a downgrade would leave a daemon that does not start.
        """
        wanted = target.version
        if wanted is None:  # `latest` is never older than anything
            return
        if tracked is not None and tracked.version is not None:
            older = _older(wanted, tracked.version)
        else:
            # From `latest` (or a sideloaded snap) only the installed version tells the age.
            installed = _version_prefix(current.version)
            if installed is None:
                logger.warning(
                    "cannot tell whether %s is older than installed %s version %r; refreshing",
                    target,
                    self.name,
                    current.version,
                )
                return
            older = _older(wanted, installed)
        if older:
            shown = current.channel or f"a local install of {current.version}"
            back = current.channel or "a track no older than that"
            raise SnapDowngradeError(
                f"refusing to move {self.name} from {shown} to {target}: "
                f"LXD cannot be downgraded; set snap-channel back to {back}"
            )

    # --- config ---

    def get_config(self) -> dict[str, str]:
        """The snap config keys this charm manages that are set, by snap key."""
        flat = _flatten(self.backend.get_config(self.name))
        return {key: _as_config_string(v) for key, v in flat.items() if key in _SNAP_KEYS}

    def config_changes(self, values: Mapping[str, bool | str | None]) -> dict[str, str | None]:
        """What `set_config(values)` would change, without changing it.

        This is the delta `show-pending-config` reports while a reboot is pending.

        Returns:
            Snap key to its new value, or None where the key would be unset.

        Raises:
            SnapConfigError: an unknown key, or a value of the wrong kind.
        """
        desired = {snap_key(key): value for key, value in values.items()}
        wanted = {key: _desired_value(key, value) for key, value in desired.items()}
        current = self.get_config()
        return {key: value for key, value in wanted.items() if current.get(key) != value}

    def set_config(self, values: Mapping[str, bool | str | None]) -> list[str]:
        """Make the snap's config match `values`, touching only keys that differ.

        Setting a key runs the snap's configure hook, which can restart LXD, so keys that
        already hold the value are left alone and a re-run hook changes nothing.

        Args:
            values: key (any form `snap_key` accepts) to a bool, a string, or None
                (or "") to unset it. Keys not given are left as they are.

        Returns:
            The snap keys that changed, sorted.

        Raises:
            SnapConfigError: an unknown key, or a value of the wrong kind.
            SnapError: snapd failed.
        """
        changes = self.config_changes(values)
        to_set = {key: value for key, value in changes.items() if value is not None}
        to_unset = sorted(key for key, value in changes.items() if value is None)
        if to_set:
            self.backend.set_config(self.name, to_set)
        if to_unset:
            self.backend.unset_config(self.name, to_unset)
        if changes:
            logger.info("changed snap %s config: %s", self.name, ", ".join(sorted(changes)))
        return sorted(changes)

    # --- sideloading ---

    def install_snap_file(self, path: Path) -> None:
        """Install a sideloaded `.snap` in place of the store's LXD.

        Raises:
            SideloadError: the file does not exist.
            SnapError: snapd refused it.
        """
        if not path.is_file():
            raise SideloadError(f"snap file {path} does not exist")
        logger.info("installing %s from local file %s", self.name, path)
        self.backend.install_file(path)

    def install_debug_binary(self, path: Path, target: Path = DEBUG_BINARY) -> bool:
        """Put a debug build of LXD where the snap runs it, and restart LXD onto it.

        The copy is written beside the target and renamed over it, so a restart never runs
        a half-written binary. An identical binary already in place is left alone, so a
        re-run hook does not restart LXD.

        Returns:
            True when it installed the binary (and restarted LXD).

        Raises:
            SideloadError: the binary is missing, or the snap's directory is not there.
            SnapError: LXD did not restart.
        """
        if not path.is_file():
            raise SideloadError(f"LXD binary {path} does not exist")
        if not target.parent.is_dir():
            raise SideloadError(
                f"{target.parent} does not exist; install the {self.name} snap first"
            )
        if target.is_file() and filecmp.cmp(path, target, shallow=False):
            return False
        partial = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(path, partial)
            partial.chmod(0o755)
            partial.replace(target)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise SideloadError(f"cannot install LXD binary to {target}: {e}") from e
        logger.info("installed debug LXD binary at %s; restarting %s", target, self.name)
        self.backend.restart(self.name)
        return True

    def remove_debug_binary(self, target: Path = DEBUG_BINARY) -> bool:
        """Drop a sideloaded debug binary, so LXD runs the snap's own build again.

        Returns:
            True when there was one to remove (and LXD was restarted).
        """
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        except OSError as e:
            raise SideloadError(f"cannot remove LXD binary {target}: {e}") from e
        logger.info("removed debug LXD binary %s; restarting %s", target, self.name)
        self.backend.restart(self.name)
        return True
