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

import contextlib
import datetime
import functools
import http.server
import ipaddress
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import LxdDaemon

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

Reply = Callable[["Handler"], None]


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers from the server's script: one `Reply` per path."""

    server: ScriptedServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        path = self.path.partition("?")[0]
        reply = self.server.script.get(path, functools.partial(static, b"not found", 404))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            reply(self)  # a client that gave up, as it should, ends it early

    def log_message(self, format: str, *args: object) -> None:
        pass


class ScriptedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a handler still trickling never holds up the test's end

    def __init__(self, host: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((host, 0), Handler)
        self.script: dict[str, Reply] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        self.scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


def static(body: bytes, status: int, handler: Handler) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, handler: Handler) -> None:
    handler.send_response(302)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def trickle_body(handler: Handler) -> None:
    """Full headers at once, then the body a byte every INTERVAL seconds."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(TRICKLED))
    handler.end_headers()
    handler.wfile.flush()
    for _ in range(TRICKLED):
        if handler.server.stop.wait(INTERVAL):
            return
        handler.wfile.write(b"A")
        handler.wfile.flush()


def trickle_headers(handler: Handler) -> None:
    """A status line, then a header a byte every INTERVAL seconds: the headers never end."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    handler.wfile.flush()
    for _ in range(TRICKLED):
        if handler.server.stop.wait(INTERVAL):
            return
        handler.wfile.write(b"a")
        handler.wfile.flush()
    handler.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")


def stall(handler: Handler) -> None:
    """Read the request, then say nothing at all."""
    handler.server.stop.wait(60)


@pytest.fixture
def servers() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(host, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A test CA and a server certificate it signed for 127.0.0.1 and 127.0.0.2.

    `lxd_common.certs` only makes client certificates (clientAuth, no
    addresses), which a TLS client rightly refuses from a server; so the
    server's is made here.
    """
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cert-url test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.2")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.crt", "s.crt", "s.key"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(ca_file)


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
    server.script["/slow.crt"] = trickle_body
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
    server.script["/slow.crt"] = trickle_headers
    elapsed, message = timed_failure(server.url("/slow.crt"))
    assert elapsed < DEADLINE + SLACK
    assert message.startswith(f"cannot fetch the certificate from {server.url('/slow.crt')}: ")
    assert "longer than 3s" in message


def test_a_server_that_never_answers_fails_at_the_deadline(
    servers: Callable[..., ScriptedServer],
) -> None:
    server = servers()
    server.script["/silent.crt"] = stall
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
    server.script["/slow.crt"] = trickle_body
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
    mirror.script["/client.crt"] = functools.partial(static, pair.certificate.encode(), 200)
    named.script["/client.crt"] = functools.partial(
        redirect, mirror.url("/client.crt") + "?signature=s3cr3t"
    )

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
    mirror.script["/c.crt"] = functools.partial(static, pair.certificate.encode(), 200)
    named.script["/c.crt"] = functools.partial(redirect, mirror.url("/c.crt"))

    fetched = fetch_certificate(named.url("/c.crt"), timeout=DEADLINE, cafile=ca_file)

    assert fetched.text == pair.certificate
    assert fetched.final_url == mirror.url("/c.crt")
    assert fetched.final_url.startswith("https://127.0.0.2:")
    assert fetched.moved


def test_https_is_verified_so_the_test_ca_is_what_lets_it_through(
    servers: Callable[..., ScriptedServer], tls: tuple[ssl.SSLContext, str]
) -> None:
    server = servers("127.0.0.1", tls[0])
    server.script["/c.crt"] = functools.partial(static, b"x", 200)
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
    plain.script["/c.crt"] = functools.partial(static, pair.certificate.encode(), 200)
    named.script["/c.crt"] = functools.partial(redirect, plain.url("/c.crt"))
    fetch = functools.partial(fetch_certificate, timeout=DEADLINE, cafile=ca_file)

    with pytest.raises(ActionError) as info:
        add_trusted_client(lxd, AddTrustedClientParams(cert_url=named.url("/c.crt")), fetch)

    assert str(info.value).startswith(
        f"{named.url('/c.crt')} redirected (HTTP 302) from https to http ({plain.url('/c.crt')}); "
        "refused"
    )
    assert plain.requests == []  # never asked: the certificate did not travel in the clear
    assert client_entries(lxd) == []
