"""Joining an LXD cluster: what LXD's refusals mean, and retrying the passing ones.

LXD refuses a join for three kinds of reasons, and each needs a different
answer (messages captured from LXD 5.0; tests/functional/test_lxd_cluster.py):

- the token is no good: expired ("Token has expired"), replaced or already
  used ("No matching cluster join operation found"). Only a new token helps;
- the cluster cannot be reached or its database is busy ("Unable to connect
  to any of the cluster members specified in join token", dqlite leader
  changes). It passes: retried here with backoff for a while;
- a remote (Ceph) storage pool is not ready for this member yet: "Failed to
  create storage pool "<pool>": Placeholder volume does not exist", while
  the pool is being created cluster-wide, or while this member's LXD cannot
  read Ceph's files. It usually passes: retried here and on later hooks, for
  `PENDING_BUDGET_SECONDS` in all (`pending_problem`), then the operator is
  told what to check;
- anything else is about this machine or its settings, such as a storage
  pool source that does not exist ("Failed to create storage pool ...").
  A new token would fail the same way, so the operator is told.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping, Sequence

import tenacity

from lxd_charm.half_join import pools_named
from lxd_charm.outcomes import BlockedError, CannotFinishError, WaitingError
from lxd_common.errors import LxdApiError
from lxd_common.lxd import LxdClient, transient

logger = logging.getLogger(__name__)

JOIN_RETRY_SECONDS = 60.0
MIN_ATTEMPT_SECONDS = 30.0
"""The least a join attempt is given: LXD 5.0 joins here in well under a second."""

UNREACHABLE_MARKERS = (
    "unable to connect to any of the cluster members",
    "connection refused",
    "no route to host",
    "i/o timeout",
)
TOKEN_MARKERS = ("token", "no matching cluster join operation")
PENDING_MARKERS = ("placeholder volume does not exist",)
"""LXD's Ceph driver, mounting a pool whose marker image it cannot see (yet)."""
PENDING_BUDGET_SECONDS = 900.0
"""How long, over all hooks, a join waits for a remote pool before the operator is told."""


class Refusal(enum.Enum):
    """Why LXD refused a join, by what would make it succeed."""

    UNREACHABLE = "unreachable"
    """The cluster is unreachable or busy: the same join later."""
    TOKEN = "token"  # noqa: S105 (a kind of refusal, not a secret)
    """The token is expired, replaced or used: a new token."""
    PENDING = "pending"
    """A remote storage pool is not ready for this member yet: the same join later, a while."""
    MACHINE = "machine"
    """This machine or its settings: the operator."""


def refusal(error: LxdApiError) -> Refusal:
    """Classify a join refusal (unreachable first: that message mentions the token too)."""
    message = str(error).lower()
    if transient(error) or any(marker in message for marker in UNREACHABLE_MARKERS):
        return Refusal.UNREACHABLE
    if any(marker in message for marker in PENDING_MARKERS):
        return Refusal.PENDING
    if any(marker in message for marker in TOKEN_MARKERS):
        return Refusal.TOKEN
    return Refusal.MACHINE


def reason(error: LxdApiError) -> str:
    """LXD's own words, without the preamble every join refusal shares."""
    message = str(error)
    for preamble in ("Failed to join cluster: ", "Error: ", "LXD refused the preseed: "):
        if preamble in message:
            return message.split(preamble, 1)[1]
    return message


def pending_problem(said: str, since: float, now: float) -> CannotFinishError:
    """A `Refusal.PENDING` join: waiting while the budget lasts, then blocked with what to check.

    Args:
        said: the refusal as the status shows it (LXD's words).
        since: when the first such refusal of this join came (`time.time()`).
        now: the time now.
    """
    waited = max(now - since, 0.0)
    if waited < PENDING_BUDGET_SECONDS:
        return WaitingError(
            f"{said}: a remote storage pool is not ready for this member yet; "
            "retrying on the next hook"
        )
    pool = next(iter(pools_named(said)), "<pool>")
    return BlockedError(
        f"{said}, for {waited / 60:.0f} min: check that this machine reaches Ceph with the "
        f"charm's files (`ceph -s --id <user>` with the snap's ceph.conf) and that the RBD "
        f"image lxd_<OSD pool> exists (`lxc storage show {pool}` names the OSD pool); "
        "the join is retried on the next hook"
    )


def _passing(error: BaseException) -> bool:
    return isinstance(error, LxdApiError) and refusal(error) in (
        Refusal.UNREACHABLE,
        Refusal.PENDING,
    )


def join_with_retries(
    lxd: LxdClient,
    server_name: str,
    address: str,
    token: str,
    member_config: Sequence[Mapping[str, str]],
    retry_seconds: float | None = None,
) -> None:
    """Join as ``server_name``; raises the last `LxdApiError` (see `refusal`).

    Passing refusals are retried, and the whole of it (every attempt's
    ``lxd init`` and the waits between them) ends within ``retry_seconds``
    (default `JOIN_RETRY_SECONDS`) plus `MIN_ATTEMPT_SECONDS`: each attempt
    gets only the time left, so a slow join cannot hold the hook for long.
    """
    budget = JOIN_RETRY_SECONDS if retry_seconds is None else retry_seconds
    deadline = time.monotonic() + budget

    def attempt() -> None:
        left = max(deadline - time.monotonic(), MIN_ATTEMPT_SECONDS)
        lxd.join_cluster(server_name, address, token, member_config, timeout=left)

    retryer = tenacity.Retrying(
        stop=tenacity.stop_before_delay(budget),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=5),
        retry=tenacity.retry_if_exception(_passing),
        before_sleep=lambda state: logger.info(
            "LXD refused the join (attempt %d), retrying: %s",
            state.attempt_number,
            state.outcome.exception() if state.outcome else "",
        ),
        reraise=True,
    )
    retryer(attempt)
