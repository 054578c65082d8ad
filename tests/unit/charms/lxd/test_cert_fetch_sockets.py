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

import datetime
import http.server
import ipaddress
import ssl
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lxd_charm.cert_fetch import CertFetchError, UrllibOpener, fetch_certificate
from lxd_common.certs import generate_client_certificate

#: The whole fetch's deadline in the slow-server tests.
DEADLINE = 0.5
#: How long the fetch may take past its deadline: the abort grace (1 s) and scheduling.
SLACK = 3.0
#: The slow server sends a byte this often: far inside any socket timeout here.
TRICKLE_INTERVAL = 0.05

Reply = Callable[["Handler"], None]


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers each path from the server's script."""

    server: Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        reply = self.server.script.get(self.path)
        if reply is None:
            self.send_error(404)
            return
        try:
            reply(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.server.client_gone.set()  # the client shut its end: what the abort does

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    """A scripted server on 127.0.0.1 (https when given a TLS context), in a thread."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: dict[str, Reply] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        self.client_gone = threading.Event()
        self.scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}{path}"

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


def serve(body: bytes) -> Reply:
    def reply(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return reply


def moved(location: str) -> Reply:
    def reply(handler: Handler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return reply


def trickle_headers(handler: Handler) -> None:
    """A status line, then one header a byte at a time that never ends (until stopped)."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    handler.wfile.flush()
    while not handler.server.stop.wait(TRICKLE_INTERVAL):
        handler.wfile.write(b"a")
        handler.wfile.flush()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(tls: ssl.SSLContext | None = None) -> Server:
        server = Server(tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A self-signed server certificate for 127.0.0.1: the server's context, and the CA file.

    `lxd_common.certs` makes client certificates only (clientAuth, no
    addresses), which a TLS client rightly refuses from a server, so this one
    is built here: serverAuth, with 127.0.0.1 as its address.
    """
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cert-fetch test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


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
    # Captured from Python 3.11's ssl against this server: OpenSSL's verify message.
    assert str(info.value) == (
        f"cannot fetch the certificate from {url}: TLS failed (self-signed certificate)"
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
    server.script = {"/client.crt": trickle_headers}
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
