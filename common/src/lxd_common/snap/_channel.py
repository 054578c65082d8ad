"""Snap channels: parsing the operator's spelling, and the no-downgrade rule."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from lxd_common.errors import SnapChannelError, SnapDowngradeError

from ._snapd import InstalledSnap

logger = logging.getLogger(__name__)

AUTO_CHANNEL = "auto"
"""The channel value that lets the machine choose (see `LxdSnap.ensure`)."""

RISKS: tuple[str, ...] = ("stable", "candidate", "beta", "edge")
"""Snap risk levels, most to least stable."""

_TRACK_RE = re.compile(r"latest|\d+(?:\.\d+)?")
_BRANCH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?")
_CHANNEL_FORMS = (
    "expected RISK, TRACK, TRACK/RISK or TRACK/RISK/BRANCH, where RISK is one of "
    f"{', '.join(RISKS)} and TRACK is 'latest' or a version such as 5.21 or 6"
)


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


def try_parse_channel(channel: str) -> Channel | None:
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


def refuse_downgrade(
    name: str, current: InstalledSnap, tracked: Channel | None, target: Channel
) -> None:
    """Raise when `target` is an older track than what is installed.

    LXD upgrades its database schema on start and cannot read it back with an older
    release, so a downgrade would leave a daemon that does not start.

    Args:
        name: the snap's name, for the message.
        current: the installed snap.
        tracked: the channel it tracks, parsed; None for a snap installed from a file.
        target: where the operator wants it.

    Raises:
        SnapDowngradeError: `target` is older, saying which channel to go back to.
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
                name,
                current.version,
            )
            return
        older = _older(wanted, installed)
    if older:
        shown = current.channel or f"a local install of {current.version}"
        back = current.channel or "a track no older than that"
        raise SnapDowngradeError(
            f"refusing to move {name} from {shown} to {target}: "
            f"LXD cannot be downgraded; set snap-channel back to {back}"
        )
