"""`lxd_charm.cert_fetch`'s real opener against servers on 127.0.0.1, in this process.

test_cert_fetch.py drives every decision through a fake opener; what it
cannot reach is the socket layer under `UrllibOpener`: the handlers that
open http and https connections, and the connection class that registers
each socket so the deadline can shut it down. Those are exercised here
against real servers on loopback (a thread each, port 0, nothing leaves the
machine), so the mutation run (which uses the unit tier) measures them too:
a fetch that does not return the body, an https fetch that does not verify
with the given CA, or a deadline that leaves the worker reading, fails here.

The functional tier (tests/functional/test_lxd_charm_cert_url.py) runs the
same fences with the action and a real LXD daemon, at a 3 s deadline; these
use 0.5 s and a server trickling a byte every 50 ms, so a socket timeout
(which restarts with every byte) never ends the read: only the abort does.
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator

import pytest

from lxd_charm.cert_fetch import CertFetchError, UrllibOpener, fetch_certificate
from lxd_common.certs import generate_client_certificate
from tests.harness.web_servers import (
    ScriptedServer,
    moved,
    scripted_servers,
    serve,
    server_tls,
    trickle_headers,
)

#: The whole fetch's deadline in the slow-server tests.
DEADLINE = 0.5
#: How long the fetch may take past its deadline: the abort grace (1 s) and scheduling.
SLACK = 3.0
#: The slow server sends a byte this often: far inside any socket timeout here.
TRICKLE_INTERVAL = 0.05

Server = ScriptedServer


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    with scripted_servers() as start:
        yield lambda tls=None: start("127.0.0.1", tls)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """The servers' TLS context (a test CA's certificate for 127.0.0.1) and the CA file."""
    return server_tls(tmp_path_factory.mktemp("tls"), ["127.0.0.1"])


@pytest.fixture(scope="module")
def pem() -> str:
    """What the servers serve: a real client certificate, as an operator would publish it."""
    return generate_client_certificate("alice-laptop").certificate


def _fetch_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cert-fetch" and t.is_alive()]


def _cut_off(url: str, cafile: str | None = None) -> tuple[float, str]:
    """Fetch from a server that never finishes; (seconds taken, the error's message)."""
    began = time.monotonic()
    with pytest.raises(CertFetchError) as info:
        fetch_certificate(url, timeout=DEADLINE, cafile=cafile)
    return time.monotonic() - began, str(info.value)


def _too_slow(url: str) -> str:
    return (
        f"cannot fetch the certificate from {url}: the download took longer than "
        f"{DEADLINE:g}s (the deadline for connecting, the answer and the body together)"
    )


def test_a_real_http_fetch_follows_a_redirect_and_returns_the_body(
    servers: Callable[..., Server], pem: str
) -> None:
    server = servers()
    server.script = {"/old.crt": moved("/client.crt"), "/client.crt": serve(pem.encode())}
    fetched = fetch_certificate(server.url("/old.crt"), timeout=5)
    assert fetched.text == pem
    assert fetched.requested == server.url("/old.crt")
    assert fetched.final_url == server.url("/client.crt")
    assert not fetched.moved
    assert server.requests == ["/old.crt", "/client.crt"]


def test_a_real_https_fetch_is_verified_against_the_given_ca(
    servers: Callable[..., Server], tls: tuple[ssl.SSLContext, str], pem: str
) -> None:
    context, cafile = tls
    server = servers(context)
    server.script = {"/client.crt": serve(pem.encode())}
    fetched = fetch_certificate(server.url("/client.crt"), timeout=5, cafile=cafile)
    assert (fetched.text, fetched.final_url) == (pem, server.url("/client.crt"))


def test_a_real_https_fetch_without_that_ca_is_refused_as_unverified(
    servers: Callable[..., Server], tls: tuple[ssl.SSLContext, str], pem: str
) -> None:
    server = servers(tls[0])
    server.script = {"/client.crt": serve(pem.encode())}
    url = server.url("/client.crt")
    with pytest.raises(CertFetchError) as info:
        fetch_certificate(url, timeout=5)
    # Captured from Python 3.11's ssl against this server (signed by a CA the client
    # was not given): OpenSSL's verify message.
    assert str(info.value) == (
        f"cannot fetch the certificate from {url}: TLS failed "
        "(unable to get local issuer certificate)"
    )
    assert server.requests == []  # no request was sent over the unverified connection


def test_the_real_opener_opens_and_its_body_says_where_it_came_from(
    servers: Callable[..., Server], pem: str
) -> None:
    server = servers()
    server.script = {"/client.crt": serve(pem.encode())}
    body = UrllibOpener().open(server.url("/client.crt"), timeout=5)
    try:
        assert body.url == server.url("/client.crt")
        assert body.read(-1) == pem.encode()
    finally:
        body.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_headers_trickled_forever_are_cut_off_at_the_deadline_and_the_socket_shut(
    servers: Callable[..., Server], tls: tuple[ssl.SSLContext, str], scheme: str
) -> None:
    server = servers(tls[0] if scheme == "https" else None)
    server.script = {"/client.crt": trickle_headers(TRICKLE_INTERVAL)}
    url = server.url("/client.crt")
    before = set(_fetch_workers())
    took, message = _cut_off(url, cafile=tls[1] if scheme == "https" else None)
    assert message == _too_slow(url)
    assert DEADLINE <= took < DEADLINE + SLACK
    # The worker was reading headers that keep coming, which no socket timeout
    # ends; only shutting its socket down does, and then it has ended.
    assert not set(_fetch_workers()) - before
    assert server.client_gone.wait(5)  # the server saw the connection end under it


def test_an_aborted_opener_shuts_each_new_socket_so_it_gets_nothing(
    servers: Callable[..., Server], pem: str
) -> None:
    server = servers()
    server.script = {"/client.crt": serve(pem.encode())}
    opener = UrllibOpener()
    opener.abort()
    with pytest.raises(urllib.error.URLError) as info:
        opener.open(server.url("/client.crt"), timeout=5)
    # Captured: the request's first write meets the socket shut on connecting.
    assert isinstance(info.value.reason, BrokenPipeError)
    assert server.requests == []
