"""`lxd_common.lxd._api`, one wrong answer each: refusals, odd answers, what is transient.

Written for the mutants test_api.py let through (docs/mutation.md): an
answer that is JSON but not an object, an HTTP 400 without LXD's error
fields, a refusal whose response has no status at all, each of the
cluster database's transient words, and a transient refusal that outlasts
the retry budget (the caller gets LXD's error, not tenacity's).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from pylxd import exceptions as pylxd_exceptions

from lxd_common.errors import LxdApiError
from lxd_common.lxd._api import check, retry_transient, status_code, transient

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import Replies


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


# --- check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        (b"[1, 2, 3]", "[1, 2, 3]"),
        (b'"a proxy said no"', "'a proxy said no'"),
        (b"null", "None"),
        # The body is cut to 80 characters of its repr, so a huge answer stays readable.
        (b'["' + b"x" * 200 + b'"]', "['" + "x" * 78),
    ],
)
def test_check_refuses_json_that_is_not_an_object(
    reply: Replies, content: bytes, shown: str
) -> None:
    with pytest.raises(
        LxdApiError, match=exactly(f"LXD sent an unexpected answer while reading: {shown}")
    ) as caught:
        check(reply.raw(200, content), "reading")
    assert caught.value.status == 0


def test_check_refuses_an_http_400_without_lxd_error_fields(reply: Replies) -> None:
    # Not typed "error" by LXD: only the HTTP status says it was refused.
    with pytest.raises(LxdApiError, match=exactly("LXD refused reading: Bad Request")) as caught:
        check(reply.raw(400, b'{"type": "sync"}'), "reading")
    assert caught.value.status == 400


def test_check_returns_a_body_sent_with_http_399(reply: Replies) -> None:
    # The boundary from below: anything under 400 that LXD did not type "error" is an answer.
    response = reply.raw(200, b'{"type": "sync", "metadata": {"a": 1}}')
    response.status_code = 399
    assert check(response, "reading") == {"type": "sync", "metadata": {"a": 1}}


# --- status_code ---------------------------------------------------------------------


class Shapeless:
    """A response with neither a JSON body nor a status (what a broken transport leaves)."""


def test_status_code_of_a_response_without_any_status_is_zero() -> None:
    assert status_code(pylxd_exceptions.LXDAPIException(Shapeless())) == 0


# --- transient -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "LXD refused listing cluster members: no available dqlite leader server found",
        "LXD refused updating the member: database is locked",
        "LXD refused adding the certificate: Failed to begin transaction: context canceled",
        # Matched without regard to case: LXD capitalises some of its words.
        "LXD refused listing cluster members: Context Deadline Exceeded",
        "LXD refused removing cluster member 'm2': Not Leader",
    ],
)
def test_each_database_settling_word_is_transient(said: str) -> None:
    assert transient(LxdApiError(said)) is True


def test_a_refusal_without_those_words_is_not_transient() -> None:
    assert transient(LxdApiError("LXD refused listing cluster members: Forbidden")) is False


def test_a_transient_refusal_that_outlasts_the_budget_raises_lxds_own_error() -> None:
    calls = []
    refusal = LxdApiError("LXD refused listing cluster members: database is locked", 503)

    def call() -> None:
        calls.append(1)
        raise refusal

    with pytest.raises(LxdApiError) as caught:
        retry_transient(call, seconds=0.3)
    assert caught.value is refusal
    assert len(calls) >= 2  # it was retried before giving up
