"""Refresh rounds: every cluster member refreshes LXD together, decided here without ops.

LXD requires every member of a cluster to run the same version: a member
refreshed to a newer one waits, unusable, until all the others run it too.
So a cluster never refreshes one member at a time. The leader starts a
*refresh round* (a number and a channel in the application bag, see
`lxd_charm.peer_bags`) when `snap-channel` changes or the `refresh` action
asks, and every member refreshes in the hook where it sees the round. Each
unit publishes the LXD version its snap runs and the last round it refreshed
in; the leader's status says who is behind, and who failed, with snapd's
words. Before a round starts, the quorum rules of `lxd_charm.cluster` apply:
a refresh restarts LXD on every member, so with a member offline (or the
database below a majority) the refreshed members would wait for good.

The bag keys (protocol 1.5, docs/interfaces/lxd-cluster.md):

- app bag ``refresh-round``: the round's number; ``refresh-channel``: the
  channel it moves to ("" for the channel each member tracks);
- unit bag ``lxd-version``: the LXD version of the unit's snap (`short_version`);
  ``refresh-done``: the last round it refreshed in; ``refresh-error``: snapd's
  words when its refresh in the current round failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from lxd_charm import cluster
from lxd_charm.peer_bags import REFRESH_CHANNEL, REFRESH_DONE, REFRESH_ROUND
from lxd_common.errors import SnapChannelError
from lxd_common.snap import parse_channel

LXD_VERSION: Final = "lxd-version"
REFRESH_ERROR: Final = "refresh-error"
ERROR_LENGTH: Final = 400
"""At most this much of snapd's words goes in a unit bag (a status line, not a log)."""

_NUMBERS = re.compile(r"\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Round:
    """A refresh round: its number, and the channel it moves every member to.

    Attributes:
        number: counts up from 1; a unit has refreshed in it once its
            ``refresh-done`` says this number.
        channel: the channel (complete, `track/risk`), or "" for the channel
            each member already tracks (the `refresh` action's round).
    """

    number: int
    channel: str = ""

    def shown(self) -> str:
        """For messages: "refresh round 2 to 5.21/stable"."""
        target = self.channel or "the tracked channel"
        return f"refresh round {self.number} to {target}"

    def write(self) -> dict[str, str]:
        """The application bag keys that announce it."""
        return {REFRESH_ROUND: str(self.number), REFRESH_CHANNEL: self.channel}


def read_round(app_bag: Mapping[str, str]) -> Round | None:
    """The latest round the leader started, or None (there was none, or it is unreadable)."""
    number = app_bag.get(REFRESH_ROUND, "")
    if not number.isdigit():
        return None
    return Round(int(number), app_bag.get(REFRESH_CHANNEL, ""))


def _complete(channel: str) -> str | None:
    """The channel spelled out (`5.21` -> `5.21/stable`), None for `auto` or no channel."""
    try:
        return str(parse_channel(channel))
    except SnapChannelError:
        return None  # `auto`, or "" (a file-installed snap tracks none)


def next_round(
    current: Round | None, wanted: str, tracked: str, *, asked: bool = False
) -> Round | None:
    """The round the leader should start now, or None.

    Args:
        current: the latest round started (None: never).
        wanted: the `snap-channel` option (`auto` names no channel: it never
            starts a round by itself).
        tracked: the channel the leader's own snap tracks, which is where the
            cluster is when no round has been started yet.
        asked: the `refresh` action asks for a round even on the same channel
            (it picks up a newer revision there).
    """
    number = (current.number if current else 0) + 1
    target = _complete(wanted)
    last = current.channel if current and current.channel else _complete(tracked)
    if asked:
        return Round(number, target or (current.channel if current else ""))
    if target is None or target == last:
        return None
    return Round(number, target)


def refusal(
    members: Iterable[cluster.MemberView], owners: Mapping[str, str], round_: Round
) -> str | None:
    """Why the round must not start now (`lxd_charm.cluster`'s quorum rules), or None.

    A refresh restarts LXD on every member and a refreshed member waits
    until all the others run its version: with a member offline, every
    refreshed member would wait for it, and below a majority the database
    cannot take the new version's schema at all. Evacuated members still
    run LXD, so they refresh with the rest.
    """
    listed = list(members)
    problem = cluster.quorum_problem(listed, owners) or cluster.offline_members(listed, owners)
    if problem is None:
        return None
    return (
        f"not starting {round_.shown()}: {problem}. A refresh restarts LXD on every "
        "member, and refreshed members wait until all run the same version"
    )


def due(round_: Round | None, bag: Mapping[str, str]) -> bool:
    """Whether the unit whose bag this is still has to refresh in ``round_``."""
    return round_ is not None and bag.get(REFRESH_DONE) != str(round_.number)


def short_version(snap_version: str) -> str:
    """The LXD version in a snap's version (`5.21.3-c5ae129` -> `5.21.3`), as LXD reports it."""
    match = _NUMBERS.match(snap_version)
    return match.group(0) if match else snap_version


def _version_key(version: str) -> tuple[tuple[int, ...], str]:
    match = _NUMBERS.match(version)
    numbers = tuple(int(part) for part in match.group(0).split(".")) if match else ()
    return numbers, version


@dataclass(frozen=True)
class Progress:
    """What the leader's status says about a round (or versions that differ).

    Attributes:
        message: e.g. "refreshing to 5.21.3: node-b still on 5.21.1, 2 members waiting
            for it".
        blocked: a member's refresh failed: the operator must look (else it is under way).
    """

    message: str
    blocked: bool = False


def progress(
    round_: Round | None, bags: Mapping[str, Mapping[str, str]], members: Mapping[str, str]
) -> Progress | None:
    """Who is behind: failures first, then versions that differ, then units not done yet.

    Args:
        round_: the latest round (None: none was ever started).
        bags: the member units' bags, the leader's own included.
        members: unit name -> member name, for the units that are members.
    """
    units = sorted((unit for unit in bags if unit in members), key=cluster.unit_number)

    def named(unit: str) -> str:
        return f"{members[unit]} ({unit})"

    if round_ is not None:
        failed = [u for u in units if bags[u].get(REFRESH_ERROR) and due(round_, bags[u])]
        if failed:
            more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
            first = failed[0]
            return Progress(
                f"{round_.shown()}: {named(first)} failed: {bags[first][REFRESH_ERROR]}{more}",
                blocked=True,
            )
    versions = {u: bags[u][LXD_VERSION] for u in units if bags[u].get(LXD_VERSION)}
    if len(set(versions.values())) > 1:
        newest = max(versions.values(), key=_version_key)
        behind: dict[str, list[str]] = {}
        for unit, version in versions.items():
            if version != newest:
                behind.setdefault(version, []).append(members[unit])
        ahead = sum(1 for version in versions.values() if version == newest)
        lagging = sum(len(names) for names in behind.values())
        shown = ", ".join(
            f"{', '.join(names)} {'still ' if i == 0 else ''}on {version}"
            for i, (version, names) in enumerate(
                sorted(behind.items(), key=lambda item: _version_key(item[0]))
            )
        )
        return Progress(
            f"refreshing to {newest}: {shown}, {ahead} member{'s' if ahead != 1 else ''} "
            f"waiting for {'it' if lagging == 1 else 'them'}"
        )
    if round_ is not None:
        pending = [u for u in units if due(round_, bags[u])]
        if pending:
            more = f" (+{len(pending) - 1} more)" if len(pending) > 1 else ""
            return Progress(f"{round_.shown()}: waiting for {named(pending[0])}{more}")
    return None
