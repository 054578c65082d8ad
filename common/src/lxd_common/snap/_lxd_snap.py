"""`LxdSnap`: the channel, config and sideloading rules applied through one snapd."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from lxd_common.errors import SideloadError, SnapError

from ._channel import AUTO_CHANNEL, Channel, parse_channel, refuse_downgrade, try_parse_channel
from ._config import (
    CONFIG_KEYS,
    REBOOT_REQUIRED,
    SNAP_KEYS,
    as_config_string,
    desired_value,
    flatten,
    snap_key,
    split_pending,
)
from ._sideload import DEBUG_BINARY, drop_binary, place_binary
from ._snapd import CharmlibsSnapBackend, InstalledSnap, SnapBackend

logger = logging.getLogger(__name__)

COHORT = "+"
"""The cohort cluster members install and refresh in (`snap ... --cohort=+`): every
machine that asks for it is offered the same revision of a channel."""


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

    def ensure(self, channel: str, *, cohort: bool = False, refresh: bool = True) -> bool:
        """Install LXD, or move it to `channel`, unless that would downgrade it.

        A snap installed from a file tracks no channel, so it is moved back to the store;
        callers that sideload a snap skip this while the resource is attached.

        Args:
            channel: the channel to track, in any form `parse_channel` accepts, or
                `auto`: Ubuntu's lxd-installer where present, else the store's default
                channel, and never a refresh of an installed snap.
            cohort: install (and refresh) in the `+` cohort (`COHORT`), so every
                machine that does is offered the same revision.
            refresh: False leaves a snap installed from the store where it is,
                whatever it tracks (a cluster member refreshes only in a refresh
                round); one installed from a file still goes back to the store.

        Returns:
            True when it installed or refreshed the snap.

        Raises:
            SnapChannelError: the channel is malformed or not in the store.
            SnapDowngradeError: the move goes to an older track.
            SnapdUnavailableError: snapd did not answer; retry later.
            SnapError: snapd refused.
        """
        if channel == AUTO_CHANNEL:
            return self._ensure_auto(cohort)
        target = parse_channel(channel)
        current = self.installed()
        if current is None:
            logger.info(
                "installing snap %s from %s%s", self.name, target, " in cohort +" if cohort else ""
            )
            self.backend.install(self.name, str(target), cohort=COHORT if cohort else "")
            return True
        tracked = try_parse_channel(current.channel)
        local = current.revision.startswith("x")  # installed from a file
        if tracked == target or not (refresh or local):
            return False
        refuse_downgrade(self.name, current, tracked, target)
        logger.info(
            "refreshing snap %s from %s to %s", self.name, current.channel or "a file", target
        )
        self.backend.refresh(self.name, str(target), amend=local, cohort=COHORT if cohort else "")
        return True

    def refresh(
        self, channel: str | None, *, cohort: bool = False, leave_cohort: bool = False
    ) -> bool:
        """Refresh LXD now: to `channel`, or to the newest revision of the one it tracks.

        What a cluster's refresh round runs on every member. snapd does
        nothing (and LXD keeps running) when there is no newer revision. A
        move to an older track is refused, as in `ensure`.

        Args:
            channel: the channel to move to (any form `parse_channel` accepts), or
                None (or `auto`) to stay on the tracked one.
            cohort: refresh in the `+` cohort, so every member gets the same revision.
            leave_cohort: leave the cohort it is in (ignored with ``cohort``).

        Returns:
            True when the installed revision changed.

        Raises:
            SnapError: LXD is not installed, or snapd refused the refresh (in
                snapd's words); `SnapDowngradeError` for an older track,
                `SnapdUnavailableError` when snapd did not answer.
        """
        current = self.installed()
        if current is None:
            raise SnapError(f"snap {self.name} is not installed")
        target = self._newer_target(current, channel)
        local = current.revision.startswith("x")
        logger.info(
            "refreshing snap %s (%s) on %s%s",
            self.name,
            current.version,
            target or current.channel or "the store's default channel",
            " in cohort +" if cohort else "",
        )
        self.backend.refresh(
            self.name,
            str(target) if target is not None else (current.channel or None),
            amend=local,
            cohort=COHORT if cohort else "",
            leave_cohort=leave_cohort and not cohort,
        )
        after = self.installed()
        return after is None or after.revision != current.revision

    def refuse_older(self, channel: str | None) -> None:
        """Raise `SnapDowngradeError` when `channel` is an older track than LXD runs.

        What a cluster's leader checks before it asks every member to refresh
        there. None (or `auto`) names no channel: nothing to refuse.
        """
        current = self.installed()
        if current is not None:
            self._newer_target(current, channel)

    def _newer_target(self, current: InstalledSnap, channel: str | None) -> Channel | None:
        if channel is None or channel == AUTO_CHANNEL:
            return None
        target = parse_channel(channel)
        refuse_downgrade(self.name, current, try_parse_channel(current.channel), target)
        return target

    def set_hold(self, held: bool) -> bool:
        """Hold (or release) snapd's automatic refreshes of LXD, when that is not so already.

        A cluster's members must all run the same LXD, and snapd's automatic
        refreshes reach machines at random times; held, LXD moves only when
        the charm refreshes it.

        Returns:
            True when it changed the hold.
        """
        current = self.installed()
        if current is None or current.held == held:
            return False
        if held:
            self.backend.hold(self.name)
        else:
            self.backend.unhold(self.name)
        logger.info(
            "%s snapd's automatic refreshes of %s", "held" if held else "released", self.name
        )
        return True

    def _ensure_auto(self, cohort: bool) -> bool:
        """`auto`: install through lxd-installer where present, else from the default channel.

        An installed snap is left on whatever it tracks: `auto` names no
        channel to move it to, so a switch to `auto` never refreshes LXD. A
        snap installed from a file goes back to the store's default channel.
        ``cohort`` applies to the store install only: lxd-installer takes none,
        so a cluster that needs the cohort from the start names a channel.
        """
        current = self.installed()
        if current is not None:
            if not current.revision.startswith("x"):
                return False
            logger.info(
                "moving snap %s from a file back to the store's default channel", self.name
            )
            self.backend.refresh(self.name, None, amend=True)
            return True
        wrapper = self.backend.installer(self.name)
        if wrapper is not None:
            logger.info("installing snap %s through lxd-installer (%s)", self.name, wrapper)
            self.backend.run_installer(wrapper)
        else:
            logger.info("installing snap %s from the store's default channel", self.name)
            self.backend.install(self.name, None, cohort=COHORT if cohort else "")
        return True

    # --- config ---

    def get_config(self) -> dict[str, str]:
        """The snap config keys this charm manages that are set, by snap key."""
        flat = flatten(self.backend.get_config(self.name))
        return {key: as_config_string(v) for key, v in flat.items() if key in SNAP_KEYS}

    def config_changes(self, values: Mapping[str, bool | str | None]) -> dict[str, str | None]:
        """What `set_config(values)` would change, without changing it.

        This is the delta `show-pending-config` reports while a reboot is pending.

        Returns:
            Snap key to its new value, or None where the key would be unset.

        Raises:
            SnapConfigError: an unknown key, or a value of the wrong kind.
        """
        desired = {snap_key(key): value for key, value in values.items()}
        wanted = {key: desired_value(key, value) for key, value in desired.items()}
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
            SnapdUnavailableError: snapd did not answer; retry later.
            SnapError: snapd refused.
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

    def restart(self) -> None:
        """Restart LXD's services (the daemon starts from what its directory holds now).

        Raises:
            SnapError: snapd refused (`SnapdUnavailableError` when it did not answer).
        """
        self.backend.restart(self.name)

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

        An identical binary already in place is left alone, so a re-run hook does not
        restart LXD.

        Returns:
            True when it installed the binary (and restarted LXD).

        Raises:
            SideloadError: the binary is missing, or the snap's directory is not there.
            SnapError: LXD did not restart.
        """
        if not place_binary(path, target, self.name):
            return False
        logger.info("installed debug LXD binary at %s; restarting %s", target, self.name)
        self.backend.restart(self.name)
        return True

    def remove_debug_binary(self, target: Path = DEBUG_BINARY) -> bool:
        """Drop a sideloaded debug binary, so LXD runs the snap's own build again.

        Returns:
            True when there was one to remove (and LXD was restarted).
        """
        if not drop_binary(target):
            return False
        logger.info("removed debug LXD binary %s; restarting %s", target, self.name)
        self.backend.restart(self.name)
        return True
