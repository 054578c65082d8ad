"""``add-trusted-client cert-url=...`` against real local web servers: deadline and redirects.

The servers are Python's threading http.server on loopback, scripted per
path: one trickles the body a byte every 2 s after its headers, one
trickles its headers, one never answers, others redirect to a second
"host" (127.0.0.2 is another address on loopback, so another host by name
and by port), over http or over https with a certificate made here and
trusted through the fetch's ``cafile``. A real LXD daemon receives what the
action trusts.

The slow servers would hold the old fetch for a minute (a socket timeout
restarts with every byte); the deadline here is 3 s, and the tests allow it
5 s of slack, far below that minute, so they cannot pass by luck nor fail
on a slow machine.
"""

from __future__ import annotations

import functools
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.web_servers import (
    ScriptedServer,
    moved,
    scripted_servers,
    serve,
    server_tls,
    stall,
    trickle_body,
    trickle_headers,
)

_CHARM_SRC = str(Path(__file__).resolve().parents[2] / "charms" / "lxd" / "src")
if _CHARM_SRC not in sys.path:
    sys.path.insert(0, _CHARM_SRC)

from lxd_charm.actions import (  # noqa: E402 - needs the charm's src on sys.path
    ActionError,
    AddTrustedClientParams,
    add_trusted_client,
)
from lxd_charm.cert_fetch import CertFetchError, fetch_certificate  # noqa: E402

DEADLINE = 3.0
#: Generous slack over the deadline, yet far below the ~60 s the slow servers take.
SLACK = 5.0
#: The slow servers send one byte per interval, always within the socket timeout.
INTERVAL = 2.0
#: Bytes the slow servers trickle: 60 s worth, then they finish normally.
TRICKLED = 30


@pytest.fixture
def servers() -> Iterator[Callable[..., ScriptedServer]]:
    with scripted_servers() as start:
        yield start


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """The servers' TLS context (a test CA's certificate for 127.0.0.1 and 127.0.0.2), the CA."""
    return server_tls(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "127.0.0.2"])


@pytest.fixture
def listening(daemon: LxdDaemon) -> LxdDaemon:
    daemon.client().set_server_config({"core.https_address": daemon.address})
    return daemon


def client_entries(lxd: LxdClient) -> list[str]:
    return [e.name for e in lxd.trust.entries() if e.type == "client"]


def timed_failure(url: str) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(CertFetchError) as info:
        fetch_certificate(url, timeout=DEADLINE)
    return time.monotonic() - started, str(info.value)


# --- one deadline for the whole fetch ------------------------------------------------------


def test_a_body_trickled_a_byte_every_2s_fails_at_the_deadline(
    servers: Callable[..., ScriptedServer],
) -> None:
    server = servers()
    server.script["/slow.crt"] = trickle_body(INTERVAL, TRICKLED)
    elapsed, message = timed_failure(server.url("/slow.crt"))
    assert elapsed < DEADLINE + SLACK
    assert message == (
        f"cannot fetch the certificate from {server.url('/slow.crt')}: the download took "
        "longer than 3s (the deadline for connecting, the answer and the body together)"
    )


def test_headers_trickled_a_byte_every_2s_fail_at_the_deadline(
    servers: Callable[..., ScriptedServer],
) -> None:
    server = servers()
    server.script["/slow.crt"] = trickle_headers(INTERVAL, TRICKLED)
    elapsed, message = timed_failure(server.url("/slow.crt"))
    assert elapsed < DEADLINE + SLACK
    assert message.startswith(f"cannot fetch the certificate from {server.url('/slow.crt')}: ")
    assert "longer than 3s" in message


def test_a_server_that_never_answers_fails_at_the_deadline(
    servers: Callable[..., ScriptedServer],
) -> None:
    server = servers()
    server.script["/silent.crt"] = stall(60)
    elapsed, message = timed_failure(server.url("/silent.crt"))
    assert elapsed < DEADLINE + SLACK
    assert server.requests == ["/silent.crt"]  # it got the request, and kept quiet
    # A socket timeout (3s: all the time left) or the deadline: whichever fires first.
    assert "timed out after 3s" in message or "longer than 3s" in message


def test_the_action_fails_at_the_deadline_and_trusts_nothing(
    listening: LxdDaemon, servers: Callable[..., ScriptedServer]
) -> None:
    lxd = listening.client()
    server = servers()
    server.script["/slow.crt"] = trickle_body(INTERVAL, TRICKLED)
    fetch = functools.partial(fetch_certificate, timeout=DEADLINE)
    started = time.monotonic()
    with pytest.raises(ActionError, match="took longer than 3s"):
        add_trusted_client(lxd, AddTrustedClientParams(cert_url=server.url("/slow.crt")), fetch)
    assert time.monotonic() - started < DEADLINE + SLACK
    assert client_entries(lxd) == []


# --- redirects keep the first request's guarantees ---------------------------------------------


def test_a_redirect_to_another_host_is_followed_and_reported(
    listening: LxdDaemon, servers: Callable[..., ScriptedServer]
) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("mirrored")
    named, mirror = servers("127.0.0.1"), servers("127.0.0.2")
    mirror.script["/client.crt"] = serve(pair.certificate.encode())
    named.script["/client.crt"] = moved(mirror.url("/client.crt") + "?signature=s3cr3t")

    results = add_trusted_client(lxd, AddTrustedClientParams(cert_url=named.url("/client.crt")))

    shown = mirror.url("/client.crt")  # without the query
    assert shown.startswith("http://127.0.0.2:")
    assert results["fetched-from"] == shown
    assert results["message"].endswith(f"the certificate came from {shown}")
    assert "s3cr3t" not in str(results)
    assert (named.requests, mirror.requests) == (["/client.crt"], ["/client.crt?signature=s3cr3t"])
    entry = lxd.trust.find("mirrored")
    assert entry is not None
    assert entry.fingerprint == fingerprint(pair.certificate)


def test_an_https_redirect_to_another_https_host_is_followed_and_reported(
    servers: Callable[..., ScriptedServer], tls: tuple[ssl.SSLContext, str]
) -> None:
    context, ca_file = tls
    pair = generate_client_certificate("over-tls")
    named, mirror = servers("127.0.0.1", context), servers("127.0.0.2", context)
    mirror.script["/c.crt"] = serve(pair.certificate.encode())
    named.script["/c.crt"] = moved(mirror.url("/c.crt"))

    fetched = fetch_certificate(named.url("/c.crt"), timeout=DEADLINE, cafile=ca_file)

    assert fetched.text == pair.certificate
    assert fetched.final_url == mirror.url("/c.crt")
    assert fetched.final_url.startswith("https://127.0.0.2:")
    assert fetched.moved


def test_https_is_verified_so_the_test_ca_is_what_lets_it_through(
    servers: Callable[..., ScriptedServer], tls: tuple[ssl.SSLContext, str]
) -> None:
    server = servers("127.0.0.1", tls[0])
    server.script["/c.crt"] = serve(b"x")
    with pytest.raises(CertFetchError, match="TLS failed"):
        fetch_certificate(server.url("/c.crt"), timeout=DEADLINE)


def test_a_redirect_from_https_to_http_is_refused_and_nothing_trusted(
    listening: LxdDaemon,
    servers: Callable[..., ScriptedServer],
    tls: tuple[ssl.SSLContext, str],
) -> None:
    lxd = listening.client()
    context, ca_file = tls
    pair = generate_client_certificate("downgraded")
    named, plain = servers("127.0.0.1", context), servers("127.0.0.2")
    plain.script["/c.crt"] = serve(pair.certificate.encode())
    named.script["/c.crt"] = moved(plain.url("/c.crt"))
    fetch = functools.partial(fetch_certificate, timeout=DEADLINE, cafile=ca_file)

    with pytest.raises(ActionError) as info:
        add_trusted_client(lxd, AddTrustedClientParams(cert_url=named.url("/c.crt")), fetch)

    assert str(info.value).startswith(
        f"{named.url('/c.crt')} redirected (HTTP 302) from https to http ({plain.url('/c.crt')}); "
        "refused"
    )
    assert plain.requests == []  # never asked: the certificate did not travel in the clear
    assert client_entries(lxd) == []
