"""Unit tests for lxd_common.lxd._api: pylxd/requests failures become our errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import requests
from pylxd import exceptions as pylxd_exceptions

from lxd_common.errors import LxdApiError, LxdUnreachableError
from lxd_common.lxd._api import check, lxd_message, status_code, translate_errors

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import Replies


class BareResponse:
    """The least pylxd's exceptions need: a status code and maybe a JSON body."""

    def __init__(self, status: int, body: object = None, *, json_fails: bool = False) -> None:
        self.status_code = status
        self._body = body
        self._json_fails = json_fails

    def json(self) -> object:
        if self._json_fails:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        return self._body


# --- translate_errors: transport failures -----------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pylxd_exceptions.ClientConnectionFailed("socket refused"),
        requests.ConnectionError("socket refused"),
        requests.Timeout("socket refused"),
        requests.exceptions.ReadTimeout("socket refused"),
        requests.exceptions.ConnectTimeout("socket refused"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_become_unreachable(failure: Exception) -> None:
    with pytest.raises(LxdUnreachableError) as caught, translate_errors("reading the config"):
        raise failure
    assert str(caught.value) == "cannot reach LXD while reading the config: socket refused"
    assert caught.value.__cause__ is failure


def test_connection_failure_without_a_reason_still_says_what_failed() -> None:
    # pylxd raises ClientConnectionFailed() with no message when GET /1.0 is not a 200.
    with pytest.raises(LxdUnreachableError) as caught, translate_errors("connecting"):
        raise pylxd_exceptions.ClientConnectionFailed()
    assert str(caught.value) == "cannot reach LXD while connecting: connection failed"


# --- translate_errors: LXD refusals -----------------------------------------


@pytest.mark.parametrize(
    ("exception", "status", "body", "expected_status"),
    [
        (pylxd_exceptions.NotFound, 404, {"error_code": 404, "error": "Project not found"}, 404),
        (
            pylxd_exceptions.Conflict,
            409,
            {"error_code": 409, "error": "Certificate already in trust store"},
            409,
        ),
        (pylxd_exceptions.LXDAPIException, 400, {"error_code": 400, "error": "Bad name"}, 400),
        # LXD's error_code wins over the HTTP status when they differ.
        (pylxd_exceptions.LXDAPIException, 500, {"error_code": 403, "error": "Forbidden"}, 403),
        # No error_code in the body: the HTTP status is used.
        (pylxd_exceptions.LXDAPIException, 503, {"error": "Busy"}, 503),
        (pylxd_exceptions.LXDAPIException, 502, {"error_code": 0, "error": "Gateway"}, 502),
    ],
)
def test_refusals_become_api_errors_with_status(
    exception: type[pylxd_exceptions.LXDAPIException],
    status: int,
    body: dict[str, object],
    expected_status: int,
) -> None:
    with pytest.raises(LxdApiError) as caught, translate_errors("adding the certificate"):
        raise exception(BareResponse(status, {"type": "error", **body}))
    assert caught.value.status == expected_status
    assert str(caught.value) == f"LXD refused adding the certificate: {body['error']}"
    assert not isinstance(caught.value, LxdUnreachableError)


def test_refusal_with_a_real_pylxd_response(reply: Replies) -> None:
    response = reply.error(404, "Project not found")
    with pytest.raises(LxdApiError) as caught, translate_errors("listing"):
        raise pylxd_exceptions.NotFound(response)
    assert (caught.value.status, str(caught.value)) == (
        404,
        "LXD refused listing: Project not found",
    )


def test_operation_failure_reported_with_http_200_uses_the_operation_error(
    reply: Replies,
) -> None:
    # pylxd's Operation.wait raises LXDAPIException on a 200 whose operation failed.
    body = {"type": "sync", "metadata": {"status_code": 400, "err": "Failed to join"}}
    response = reply.raw(200, json.dumps(body).encode())
    with pytest.raises(LxdApiError) as caught, translate_errors("joining"):
        raise pylxd_exceptions.LXDAPIException(response)
    assert str(caught.value) == "LXD refused joining: Failed to join"
    assert caught.value.status == 200


def test_refusal_with_a_non_json_body_uses_the_text_and_http_status(
    reply: Replies,
) -> None:
    response = reply.raw(502, b"Bad Gateway from proxy", "text/plain")
    with pytest.raises(LxdApiError) as caught, translate_errors("listing"):
        raise pylxd_exceptions.LXDAPIException(response)
    assert str(caught.value) == "LXD refused listing: Bad Gateway from proxy"
    assert caught.value.status == 502


def test_lxd_message_without_a_reason() -> None:
    error = pylxd_exceptions.LXDAPIException(BareResponse(500, {"error": ""}))
    assert lxd_message(error) == "LXD refused the request without a reason"


def test_lxd_message_from_an_unreadable_response() -> None:
    # Not JSON and no .content to fall back to: pylxd's __str__ itself fails.
    error = pylxd_exceptions.LXDAPIException(BareResponse(500, json_fails=True))
    assert lxd_message(error) == "LXD refused the request (unreadable response)"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (BareResponse(409, {"error_code": 409}), 409),
        (BareResponse(500, {"error_code": "404"}), 404),
        (BareResponse(500, {"error_code": None}), 500),
        (BareResponse(418, json_fails=True), 418),
        (BareResponse(500, ["not", "a", "mapping"]), 500),
        (BareResponse(500, {"error_code": "n/a"}), 500),
        (BareResponse(0, {}), 0),
    ],
)
def test_status_code_variants(response: BareResponse, expected: int) -> None:
    assert status_code(pylxd_exceptions.LXDAPIException(response)) == expected


def test_other_exceptions_pass_through_untouched() -> None:
    original = KeyError("metadata")
    with pytest.raises(KeyError) as caught, translate_errors("anything"):
        raise original
    assert caught.value is original


def test_no_failure_no_error() -> None:
    done = []
    with translate_errors("anything"):
        done.append(1)
    assert done == [1]


# --- check --------------------------------------------------------------------


def test_check_returns_the_body_of_a_success(reply: Replies) -> None:
    body = check(reply.sync({"auth": "trusted"}), "reading")
    assert body["metadata"] == {"auth": "trusted"}
    assert body["type"] == "sync"


def test_check_accepts_an_async_operation(reply: Replies) -> None:
    body = check(reply.async_op({"id": "op1", "class": "token"}), "issuing")
    assert body["metadata"]["id"] == "op1"


@pytest.mark.parametrize(("code", "message"), [(404, "Not found"), (409, "Already exists")])
def test_check_raises_on_error_bodies(reply: Replies, code: int, message: str) -> None:
    with pytest.raises(LxdApiError) as caught:
        check(reply.error(code, message), "adding the thing")
    assert str(caught.value) == f"LXD refused adding the thing: {message}"
    assert caught.value.status == code


def test_check_raises_on_an_error_body_sent_with_http_200(reply: Replies) -> None:
    body = {"type": "error", "error_code": 403, "error": "not authorized"}
    with pytest.raises(LxdApiError) as caught:
        check(reply.raw(200, json.dumps(body).encode()), "x")
    assert caught.value.status == 403


def test_check_raises_on_an_http_error_without_lxd_details(reply: Replies) -> None:
    with pytest.raises(LxdApiError) as caught:
        check(reply.raw(500, b"{}"), "reading")
    assert str(caught.value) == "LXD refused reading: Internal Server Error"
    assert caught.value.status == 500


def test_check_raises_on_a_non_json_answer(reply: Replies) -> None:
    with pytest.raises(LxdApiError) as caught:
        check(reply.raw(200, b"<html>proxy login</html>", "text/html"), "reading the config")
    assert str(caught.value) == "LXD sent a non-JSON answer while reading the config"
    assert caught.value.status == 0


def test_transient_cluster_errors_are_retried_until_they_clear() -> None:
    from lxd_common.lxd._api import retry_transient

    answers: Iterator[LxdApiError | str] = iter(
        [LxdApiError("LXD refused listing cluster members: context deadline exceeded"), "ok"]
    )

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_transient(call, seconds=5) == "ok"


@pytest.mark.parametrize(
    "said",
    [
        # Captured from LXD 5.0 removing a member while another was offline.
        "LXD refused removing cluster member 'm2': Failed to leave the cluster: "
        "server has lost leadership (10506)",
        "LXD refused listing cluster members: not leader",
        "LXD refused listing cluster members: leadership lost",
        "LXD refused listing cluster members: context deadline exceeded",
    ],
)
def test_a_database_leadership_change_is_transient(said: str) -> None:
    from lxd_common.lxd import transient

    assert transient(LxdApiError(said))


@pytest.mark.parametrize(
    "said",
    [
        "LXD refused removing cluster member 'x': not found",
        "LXD refused joining: Pool source cannot be changed when not in pending state",
    ],
)
def test_other_refusals_are_not_transient(said: str) -> None:
    from lxd_common.lxd import transient

    assert not transient(LxdApiError(said))
    assert not transient(ValueError("context deadline exceeded"))


def test_other_refusals_are_not_retried() -> None:
    from lxd_common.lxd._api import retry_transient

    calls = []

    def call() -> None:
        calls.append(1)
        raise LxdApiError("LXD refused removing cluster member 'x': not found", 404)

    with pytest.raises(LxdApiError, match="not found"):
        retry_transient(call, seconds=5)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "text",
    [
        "Max retries exceeded (Caused by SSLError('Fingerprints did not match. Expected \"ab\"'))",
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
    ],
)
def test_a_certificate_mismatch_is_its_own_error(text: str) -> None:
    from lxd_common.errors import LxdServerCertificateError

    with (
        pytest.raises(LxdServerCertificateError, match="not the expected one"),
        translate_errors("connecting"),
    ):
        raise pylxd_exceptions.ClientConnectionFailed(text)


def test_an_answer_that_breaks_off_is_unreachable_not_a_crash() -> None:
    import requests

    broken = requests.exceptions.ChunkedEncodingError(
        "Connection broken: IncompleteRead(60 bytes read, 99940 more expected)"
    )
    with pytest.raises(LxdUnreachableError) as caught, translate_errors("connecting"):
        raise broken
    assert str(caught.value) == (
        "LXD's answer broke off while connecting: Connection broken: IncompleteRead(60 bytes "
        "read, 99940 more expected)"
    )
