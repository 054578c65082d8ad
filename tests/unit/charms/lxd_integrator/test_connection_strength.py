"""Each decision of `lxd_integrator.connection`, one wrong answer each (no Juju, no LXD).

`open_lxd` is driven with `LxdClient.remote` replaced by a script of
answers, so what is retried, for how long, and with which timeout is seen
call by call. The error texts are written by hand in the shapes requests
and urllib3 use (an OSError's repr inside a `ProtocolError`, an `[Errno N]`
text inside a `NewConnectionError`), not captured: what is tested is which
part of such a text becomes the reason. Each message is compared whole.
"""

from __future__ import annotations

from typing import Any

import pytest

from lxd_common.certs import CertificatePair, generate_client_certificate
from lxd_common.deadline import DeadlineExceededError
from lxd_common.errors import LxdUnreachableError
from lxd_common.interfaces.lxd import Node
from lxd_common.lxd import LxdClient
from lxd_integrator import connection
from lxd_integrator.connection import (
    LxdConnectionProblem,
    explain_unreachable,
    open_lxd,
    read_nodes,
)
from lxd_integrator.credentials import Credentials, CredentialSource

ENDPOINT = "https://10.0.0.1:8443"
POOL = (
    "cannot reach LXD while connecting to https://x: HTTPSConnectionPool(host='x', "
    "port=8443): Max retries exceeded with url: /1.0 (Caused by "
)


@pytest.fixture(scope="module")
def credentials() -> Credentials:
    pair: CertificatePair = generate_client_certificate("conn")
    return Credentials(ENDPOINT, pair, pair.certificate, CredentialSource.CONFIG)


class Script:
    """Stands in for `LxdClient.remote`: raises the scripted errors in turn, then connects."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.timeouts: list[float] = []
        self.client = object()

    def remote(self, *args: Any, timeout: float, **kwargs: Any) -> object:
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return self.client


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    fake = Script()
    monkeypatch.setattr(LxdClient, "remote", fake.remote)
    return fake


# --- open_lxd: the timeout, and what is retried ---------------------------------------------


def test_each_answer_waits_the_default_timeout_unless_given(
    script: Script, credentials: Credentials
) -> None:
    assert open_lxd(credentials, wait=0) is script.client
    assert open_lxd(credentials, wait=0, timeout=3.5) is script.client
    assert script.timeouts == [connection.API_TIMEOUT, 3.5]


def test_an_unreachable_lxd_is_retried_within_the_wait(
    script: Script, credentials: Credentials
) -> None:
    script.errors = [LxdUnreachableError(POOL + "OSError(111, 'Connection refused')))")]
    assert open_lxd(credentials, wait=5) is script.client
    assert len(script.timeouts) == 2


@pytest.mark.parametrize(
    "error",
    [
        DeadlineExceededError("talking to LXD took longer than 60 seconds"),
        LxdUnreachableError(
            POOL + "SSLError(SSLCertVerificationError(1, '[SSL: "
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate')))"
        ),
    ],
    ids=["the-hooks-deadline-is-spent", "a-certificate-that-does-not-verify"],
)
def test_what_retrying_cannot_fix_is_not_retried(
    script: Script, credentials: Credentials, error: LxdUnreachableError
) -> None:
    script.errors = [error, error]
    with pytest.raises(LxdConnectionProblem) as caught:
        open_lxd(credentials, wait=1)
    assert len(script.timeouts) == 1
    assert str(caught.value) == explain_unreachable(credentials, error)


def test_a_spent_deadline_says_so(script: Script, credentials: Credentials) -> None:
    script.errors = [DeadlineExceededError("talking to LXD took longer than 60 seconds")]
    with pytest.raises(LxdConnectionProblem) as caught:
        open_lxd(credentials, wait=0)
    assert str(caught.value) == (
        f"LXD at {ENDPOINT} did not answer within {connection.HOOK_DEADLINE:g} seconds "
        "in all: retrying at the next hook"
    )


# --- explain_unreachable: the reason in a few words --------------------------------------


MISMATCH = f"LXD at {ENDPOINT} presented a certificate that does not match lxd-server-cert"


@pytest.mark.parametrize(
    "text",
    [
        # pylxd's words when the pinned certificate differs
        "Fingerprints did not match",
        POOL + "SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number')))",
    ],
    ids=["pin", "other-tls"],
)
def test_tls_failures_are_about_the_server_certificate(
    credentials: Credentials, text: str
) -> None:
    assert explain_unreachable(credentials, LxdUnreachableError(text)) == MISMATCH


@pytest.mark.parametrize(
    ("caused_by", "reason"),
    [
        ("ConnectionRefusedError(111, 'Connection refused')", "connection refused"),
        ("OSError(113, 'No route to host')", "no route to host"),
        ("OSError(101, 'Network is unreachable')", "network is unreachable"),
        ("gaierror(-2, 'Name or service not known')", "name or service not known"),
        (
            "gaierror(-3, 'Temporary failure in name resolution')",
            "temporary failure in name resolution",
        ),
    ],
)
def test_known_reasons_are_found_without_an_errno_text(
    credentials: Credentials, caused_by: str, reason: str
) -> None:
    error = LxdUnreachableError(f"{POOL}ProtocolError('Connection aborted.', {caused_by})))")
    assert explain_unreachable(credentials, error) == f"cannot reach LXD at {ENDPOINT}: {reason}"


def test_an_errno_text_is_the_reason_otherwise(credentials: Credentials) -> None:
    error = LxdUnreachableError(
        POOL + "NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f>: "
        "Failed to establish a new connection: [Errno 99] Cannot assign requested address'))"
    )
    assert explain_unreachable(credentials, error) == (
        f"cannot reach LXD at {ENDPOINT}: cannot assign requested address"
    )


def test_without_either_the_last_part_is_the_reason(credentials: Credentials) -> None:
    error = LxdUnreachableError("cannot reach LXD: the server went away: try later")
    assert explain_unreachable(credentials, error) == f"cannot reach LXD at {ENDPOINT}: try later"


def test_a_long_reason_is_cut_to_120_characters(credentials: Credentials) -> None:
    error = LxdUnreachableError("x" * 200)
    assert explain_unreachable(credentials, error) == f"cannot reach LXD at {ENDPOINT}: " + (
        "x" * 120
    )


# --- read_nodes --------------------------------------------------------------------------


class Standalone:
    def __init__(self, environment: dict[str, object]) -> None:
        self.environment = environment

    def server_info(self) -> dict[str, object]:
        return {"auth": "trusted", "environment": self.environment}


def test_a_standalone_server_without_a_name_is_published_as_lxd(
    credentials: Credentials,
) -> None:
    nodes = read_nodes(Standalone({"server_clustered": False}), credentials)  # type: ignore[arg-type]
    assert nodes == (Node("lxd", ENDPOINT),)
