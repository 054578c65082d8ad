"""An in-memory snapd, for tests and demos on machines where snapd does not run.

`FakeSnapd` implements `lxd_common.snap.SnapBackend` and records what was
asked of it, so a test can assert on the calls as well as on the end state::

    snapd = FakeSnapd(channels=["latest/stable", "5.21/stable"], versions={"5.21": "5.21.3"})
    lxd = LxdSnap(snapd)
    lxd.ensure("5.21/stable")
    assert snapd.calls == [("install", "lxd", "5.21/stable")]
    snapd.fail_on("refresh")  # the next refreshes raise SnapError
    snapd.publish("5.21", "5.21.4")  # the store's newer revision on the 5.21 track

It lives in the test harness, not in `lxd_common`, so no fake ships with the charms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxd_common.errors import SnapChannelError, SnapError
from lxd_common.snap import InstalledSnap, SnapBackend, parse_channel

DEFAULT_LATEST_VERSION = "6.1"
"""What `latest` installs when no version was given for it."""

OPERATIONS = frozenset(
    {
        "installed",
        "install",
        "refresh",
        "get_config",
        "set_config",
        "unset_config",
        "install_file",
        "restart",
        "installer",
        "run_installer",
        "hold",
        "unhold",
    }
)
"""Names `FakeSnapd.fail_on` accepts: the `SnapBackend` methods."""


class FakeSnapd(SnapBackend):
    """A stand-in for snapd that keeps its state in memory.

    Attributes:
        snaps: installed snaps by name.
        config: each snap's config, flat (dotted keys to string values).
        calls: every state-changing call, in order, as tuples such as
            `("refresh", "lxd", "5.21/stable")` or `("set_config", "lxd", {...})`.
        restarts: names of snaps restarted, in order.
        installed_files: local `.snap` files installed, in order.
        cohorts: the cohort each snap was installed or refreshed in (`+`), by name;
            absent for a snap in none (never joined, or left with `leave_cohort`).
    """

    def __init__(
        self,
        channels: Iterable[str] | None = None,
        versions: Mapping[str, str] | None = None,
        *,
        file_snap_name: str = "lxd",
        default_channel: str = "5.21/stable",
        lxd_installer: str | None = None,
    ) -> None:
        """Create an empty snapd.

        Args:
            channels: the channels the store offers (any form `parse_channel` takes);
                None offers every well-formed channel.
            versions: the version installed from each track (`{"5.21": "5.21.3"}`); a
                numeric track defaults to `<track>.0`, `latest` to `DEFAULT_LATEST_VERSION`.
            file_snap_name: the name a local `.snap` installs as (the fake cannot read
                the file's metadata).
            default_channel: what an install without a channel tracks (the store's
                default track for the snap).
            lxd_installer: the channel Ubuntu's lxd-installer wrapper installs from,
                when the machine has one (None: no wrapper).
        """
        self.channels = None if channels is None else {str(parse_channel(c)) for c in channels}
        self.versions = dict(versions or {})
        self.file_snap_name = file_snap_name
        self.default_channel = default_channel
        self.lxd_installer = lxd_installer
        self.snaps: dict[str, InstalledSnap] = {}
        self.config: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.restarts: list[str] = []
        self.installed_files: list[Path] = []
        self.cohorts: dict[str, str] = {}
        self._failures: dict[str, Exception] = {}
        self._revision = 0

    # --- test controls ---

    def seed(self, name: str, channel: str, version: str | None = None) -> InstalledSnap:
        """Put a snap in place as if installed earlier, without recording a call."""
        snap = self._make(name, channel, version)
        self.snaps[name] = snap
        self.config.setdefault(name, {})
        return snap

    def fail_on(self, operation: str, error: Exception | None = None) -> None:
        """Make every later call of `operation` raise `error` (a `SnapError` by default)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {sorted(OPERATIONS)}")
        self._failures[operation] = error or SnapError(f"fake snapd: {operation} failed")

    def publish(self, track: str, version: str) -> None:
        """The store releases ``version`` on ``track``: the next refresh there picks it up."""
        self.versions[track] = version

    def clear_failures(self) -> None:
        """Let every operation succeed again."""
        self._failures.clear()

    # --- SnapBackend ---

    def installed(self, name: str) -> InstalledSnap | None:
        """The installed snap, or None."""
        self._maybe_fail("installed")
        return self.snaps.get(name)

    def install(self, name: str, channel: str | None, *, cohort: str = "") -> None:
        """Install from the fake store (None: its default channel), in ``cohort`` if given."""
        self._maybe_fail("install")
        if name in self.snaps:
            raise SnapError(f"snap {name!r} is already installed")
        tracked = self.default_channel if channel is None else channel
        self._offer(name, tracked)
        self.calls.append(("install", name, channel))
        self.snaps[name] = self._make(name, tracked)
        self.config.setdefault(name, {})
        self._join_cohort(name, cohort)

    def installer(self, name: str) -> Path | None:
        """The wrapper's path when the machine has lxd-installer."""
        self._maybe_fail("installer")
        return Path(f"/usr/sbin/{name}") if self.lxd_installer is not None else None

    def run_installer(self, path: Path) -> None:
        """The wrapper installs the snap from the channel the release chose."""
        self._maybe_fail("run_installer")
        if self.lxd_installer is None:
            raise SnapError(f"{path}: no such file")
        name = path.name
        self.calls.append(("run_installer", name))
        self.snaps[name] = self._make(name, self.lxd_installer)
        self.config.setdefault(name, {})

    def refresh(
        self,
        name: str,
        channel: str | None,
        *,
        amend: bool = False,
        cohort: str = "",
        leave_cohort: bool = False,
    ) -> None:
        """Move an installed snap to another channel (None: the store's default, which
        snapd only takes for a file-installed snap, with ``amend``).

        On the channel it tracks, with the store's version unchanged, nothing
        changes (snapd: "snap has no updates available"); the refresh's hold
        and cohort flags apply either way.
        """
        self._maybe_fail("refresh")
        self._require(name)
        current = self.snaps[name]
        if current.revision.startswith("x") and not amend:
            raise SnapError(f"local snap {name!r} is unknown to the store, use --amend to proceed")
        tracked = self.default_channel if channel is None else channel
        self._offer(name, tracked)
        self.calls.append(("refresh", name, channel))
        fresh = self._make(name, tracked)
        if (fresh.channel, fresh.version) != (current.channel, current.version):
            self.snaps[name] = dataclasses.replace(fresh, held=current.held)
        if leave_cohort and not cohort:
            self.cohorts.pop(name, None)
        self._join_cohort(name, cohort)

    def hold(self, name: str) -> None:
        """Hold automatic refreshes (recorded; a fake snapd refreshes nothing on its own)."""
        self._maybe_fail("hold")
        self._require(name)
        self.calls.append(("hold", name))
        self.snaps[name] = dataclasses.replace(self.snaps[name], held=True)

    def unhold(self, name: str) -> None:
        """Release the hold."""
        self._maybe_fail("unhold")
        self._require(name)
        self.calls.append(("unhold", name))
        self.snaps[name] = dataclasses.replace(self.snaps[name], held=False)

    def get_config(self, name: str) -> dict[str, Any]:
        """The config nested by dots, the shape snapd's API returns."""
        self._maybe_fail("get_config")
        self._require(name)
        nested: dict[str, Any] = {}
        for key, value in self.config[name].items():
            *parents, leaf = key.split(".")
            node = nested
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
        return nested

    def set_config(self, name: str, values: dict[str, str]) -> None:
        """Set config keys."""
        self._maybe_fail("set_config")
        self._require(name)
        self.calls.append(("set_config", name, dict(values)))
        self.config[name].update(values)

    def unset_config(self, name: str, keys: list[str]) -> None:
        """Unset config keys; unknown ones are ignored, as snapd does."""
        self._maybe_fail("unset_config")
        self._require(name)
        self.calls.append(("unset_config", name, list(keys)))
        for key in keys:
            self.config[name].pop(key, None)

    def install_file(self, path: Path) -> None:
        """Install a local snap: no channel, an `x<N>` revision."""
        self._maybe_fail("install_file")
        if not path.is_file():
            raise SnapError(f"snap install --dangerous {path} failed: no such file")
        name = self.file_snap_name
        self.calls.append(("install_file", path))
        self.installed_files.append(path)
        self._revision += 1
        self.snaps[name] = InstalledSnap(name, "", f"x{self._revision}", "sideloaded")
        self.config.setdefault(name, {})

    def restart(self, name: str) -> None:
        """Record a restart."""
        self._maybe_fail("restart")
        self._require(name)
        self.calls.append(("restart", name))
        self.restarts.append(name)

    # --- helpers ---

    def _maybe_fail(self, operation: str) -> None:
        if operation in self._failures:
            raise self._failures[operation]

    def _require(self, name: str) -> None:
        if name not in self.snaps:
            raise SnapError(f"snap {name!r} is not installed")

    def _join_cohort(self, name: str, cohort: str) -> None:
        if cohort:
            self.cohorts[name] = cohort

    def _offer(self, name: str, channel: str) -> None:
        if self.channels is not None and str(parse_channel(channel)) not in self.channels:
            raise SnapChannelError(f"snap {name!r} has no release on channel {channel!r}")

    def _make(self, name: str, channel: str, version: str | None = None) -> InstalledSnap:
        parsed = parse_channel(channel)
        if version is None:
            default = DEFAULT_LATEST_VERSION if parsed.track == "latest" else f"{parsed.track}.0"
            version = self.versions.get(parsed.track, default)
        self._revision += 1
        return InstalledSnap(name, str(parsed), str(self._revision), version)
