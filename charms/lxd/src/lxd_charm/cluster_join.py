"""Joining an LXD cluster, retried while LXD serialises joins.

LXD admits one new member at a time: while another join is being processed
it refuses with a transient error. Several units that got their tokens in
the same leader hook join at about the same moment, so a refusal is retried
with backoff for a while before it counts as a real failure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import tenacity

from lxd_common.errors import LxdApiError
from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

JOIN_RETRY_SECONDS = 60.0


def _transient(error: BaseException) -> bool:
    """LXD's refusals are transient unless they are about the token itself."""
    return isinstance(error, LxdApiError) and "token" not in str(error).lower()


def join_with_retries(
    lxd: LxdClient,
    server_name: str,
    address: str,
    token: str,
    member_config: Sequence[Mapping[str, str]],
    retry_seconds: float = JOIN_RETRY_SECONDS,
) -> None:
    """Join as ``server_name``; raises the last `LxdApiError` once retries run out."""
    retryer = tenacity.Retrying(
        stop=tenacity.stop_after_delay(retry_seconds),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=5),
        retry=tenacity.retry_if_exception(_transient),
        before_sleep=lambda state: logger.info(
            "LXD refused the join (attempt %d), retrying: %s",
            state.attempt_number,
            state.outcome.exception() if state.outcome else "",
        ),
        reraise=True,
    )
    retryer(lxd.join_cluster, server_name, address, token, member_config)
