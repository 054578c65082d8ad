"""This unit's part in a cluster's refresh rounds, carried out in one hook.

`lxd_charm.snap_refresh` decides (pure functions over the databags); this
module acts with Juju (the peer bags) and snapd (through the machine's
`LxdSnap`). The leader starts a round when `snap-channel` changes or the
`refresh` action asks, after the quorum check; every member refreshes in the
hook where it first sees the round, and publishes its LXD version; the
leader reports who is behind. Nothing here sets a status: `take_part`
returns a `RefreshReport` for the charm's status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ops

from lxd_charm import snap_refresh
from lxd_charm.cluster_peer import owners
from lxd_charm.machine import Machine
from lxd_charm.outcomes import BlockedError, CannotFinishError, WaitingError, blocked_on
from lxd_charm.peer_bags import PEER, REFRESH_DONE
from lxd_charm.snap_refresh import LXD_VERSION, REFRESH_ERROR, Progress, Round
from lxd_common.errors import SnapdUnavailableError, SnapError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshReport:
    """What a hook's part in refresh rounds came to, for the unit status.

    Attributes:
        problem: this unit's own: a round the leader refused to start, or
            this member's failed refresh.
        progress: who is behind (`snap_refresh.progress`), as the bags say.
        for_a_wait_only: a member that is not the leader shows ``progress`` only
            in place of a wait (its refreshed LXD waiting for the others): it
            skips most peer events, so its account goes stale otherwise.
    """

    problem: CannotFinishError | None = None
    progress: Progress | None = None
    for_a_wait_only: bool = False

    def status(self, hook_problem: CannotFinishError | None) -> ops.StatusBase | None:
        """The status to show, or None to leave it to the rest of the hook's findings.

        This unit's own refresh problem comes first when it blocks: a refused
        round says why (a member offline, say) and that LXD stays where it is.
        Otherwise the round is shown unless the hook is blocked on something
        else: during a round a refreshed member's LXD waits for the others,
        so "LXD is not answering" is what the hook finds, and the round says why.
        """
        if isinstance(self.problem, BlockedError):
            return ops.BlockedStatus(str(self.problem))
        if isinstance(hook_problem, BlockedError):
            return None
        if self.problem is not None:
            return ops.WaitingStatus(str(self.problem))
        if self.progress is not None and (
            isinstance(hook_problem, WaitingError) or not self.for_a_wait_only
        ):
            kind = ops.BlockedStatus if self.progress.blocked else ops.WaitingStatus
            return kind(self.progress.message)
        return None


class RefreshRound:
    """Start (as the leader) and take part in (as every member) refresh rounds."""

    def __init__(self, charm: ops.CharmBase, machine: Machine) -> None:
        self._unit = charm.unit
        self._app = charm.app
        self._model = charm.model
        self._machine = machine

    def start(self, *, asked: bool) -> Round | None:
        """The leader starts the round that is due (or the one the action asks for).

        Returns:
            The round started, or None when none is due.

        Raises:
            BlockedError: the quorum rules refuse it, or it would downgrade LXD;
                the message says what to do.
            WaitingError: LXD is not answering, so the members cannot be counted.
        """
        peer = self._model.get_relation(PEER)
        snap = self._machine.host.snap
        with blocked_on(SnapError, "cannot ask snapd about LXD"):
            installed = snap.installed()
        if peer is None or installed is None or not self._unit.is_leader():
            return None
        current = snap_refresh.read_round(peer.data[self._app])
        config = self._machine.config
        wanted = snap_refresh.next_round(
            current, config.snap_channel, installed.channel, asked=asked
        )
        if wanted is None:
            return None
        with blocked_on(SnapError, f"not starting {wanted.shown()}"):
            snap.refuse_older(wanted.channel or None)
        with self._machine.lxd() as lxd:
            members = lxd.cluster.members()
        why = snap_refresh.refusal(members, owners(self._model), wanted)
        if why is not None:
            raise BlockedError(why)
        peer.data[self._app].update(wanted.write())
        logger.info("started %s", wanted.shown())
        return wanted

    def start_for_action(self) -> dict[str, str]:
        """The `refresh` action on a cluster unit: the leader starts a round, now.

        Returns:
            The action's results: the round's number and channel.

        Raises:
            BlockedError: not the leader, not a member yet, or the quorum rules
                refuse (the message says what to do).
            WaitingError: LXD or snapd is not answering.
        """
        if not self._unit.is_leader():
            raise BlockedError(
                f"a cluster refreshes every member in one round, which the leader starts: "
                f"run `juju run {self._app.name}/leader refresh`"
            )
        if not self._machine.memory.initialised:
            raise WaitingError("the leader is not a cluster member yet: run it once it is")
        started = self.start(asked=True)
        if started is None:
            raise WaitingError("waiting for the cluster peer relation and LXD's snap")
        return {"round": str(started.number), "channel": started.channel or "tracked"}

    def take_part(self) -> RefreshReport:
        """Start a due round (leader), refresh in it, publish the version, report.

        Standalone units and units without the peer relation have no part.
        A unit that is not a member yet counts as refreshed: its install
        takes the channel's current revision (in the cohort, when asked).
        """
        config = self._machine.config
        peer = self._model.get_relation(PEER)
        if config.mode != "cluster" or peer is None:
            return RefreshReport()
        problem: CannotFinishError | None = None
        if self._machine.memory.initialised:
            try:
                self.start(asked=False)
            except CannotFinishError as e:
                problem = e
        round_ = snap_refresh.read_round(peer.data[self._app])
        bag = peer.data[self._unit]
        if round_ is not None and snap_refresh.due(round_, bag):
            problem = self._refresh(round_, bag) or problem
        snap = self._machine.host.snap
        with blocked_on(SnapError, "cannot ask snapd about LXD"):
            installed = snap.installed()
        version = snap_refresh.short_version(installed.version) if installed else ""
        if bag.get(LXD_VERSION, "") != version:
            bag[LXD_VERSION] = version  # a change wakes the leader, whose status counts it
        by_unit = {unit: member for member, unit in owners(self._model).items()}
        bags = {unit.name: peer.data[unit] for unit in peer.units} | {self._unit.name: bag}
        return RefreshReport(
            problem=problem,
            progress=snap_refresh.progress(round_, bags, by_unit),
            for_a_wait_only=not self._unit.is_leader(),
        )

    def _refresh(self, round_: Round, bag: ops.RelationDataContent) -> CannotFinishError | None:
        """This member's refresh in ``round_``; a failure goes in its bag, in snapd's words."""
        machine = self._machine
        if not machine.memory.initialised or machine.memory.sideloaded_snap:
            # Not a member yet (its install takes the channel's revision), or the
            # operator's own snap, which stays until the resource is detached.
            bag.update({REFRESH_DONE: str(round_.number), REFRESH_ERROR: ""})
            return None
        config = machine.config
        try:
            changed = machine.host.snap.refresh(
                round_.channel or None,
                cohort=config.snap_in_cohort(),
                leave_cohort=config.snap_leaves_cohort(),
            )
        except SnapdUnavailableError as e:
            return WaitingError(f"{round_.shown()}: {e}")
        except SnapError as e:
            bag[REFRESH_ERROR] = str(e)[: snap_refresh.ERROR_LENGTH]
            return BlockedError(
                f"{round_.shown()} failed: {e}; fix it and the refresh is retried at the next hook"
            )
        bag.update({REFRESH_DONE: str(round_.number), REFRESH_ERROR: ""})
        logger.info("%s: %s", round_.shown(), "refreshed LXD" if changed else "no newer LXD")
        return None
