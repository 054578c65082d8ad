"""Scripted web servers on loopback, for the tests of fetching a certificate from a URL.

`ScriptedServer` is Python's threading http.server on a loopback address
(port 0, a thread of its own, nothing leaves the machine), over https when
given a TLS context. Each path answers with a `Reply` from its ``script``:
a body (`serve`), a redirect (`moved`), or a server that misbehaves in time
(`trickle_headers`, `trickle_body`, `stall`), which only a deadline over the
whole fetch ends. `server_tls` makes a test CA and a server certificate it
signed for the addresses the servers listen on (`lxd_common.certs` makes
client certificates only, which a TLS client rightly refuses from a server).

Used by the unit tier (`lxd_charm.cert_fetch`'s real opener, at a deadline
of a fraction of a second) and the functional tier (the `add-trusted-client`
action with `cert-url`, a real LXD daemon, at the action's deadline).
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Reply = Callable[["ScriptedHandler"], None]
"""How one path answers: writes the response (or stalls) through the handler."""


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    """Answers each path (query left out) from the server's script; 404 for others."""

    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        reply = self.server.script.get(self.path.partition("?")[0])
        if reply is None:
            self.send_error(404)
            return
        try:
            reply(self)
        except OSError:  # BrokenPipe, ConnectionReset, ssl.SSLError: the client shut its end
            self.server.client_gone.set()

    def log_message(self, format: str, *args: object) -> None:
        pass


class ScriptedServer(http.server.ThreadingHTTPServer):
    """A scripted server on ``host`` (https when given a TLS context), serving in a thread."""

    daemon_threads = True  # a handler still trickling never holds up the test's end

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        super().__init__((host, 0), ScriptedHandler)
        self.script: dict[str, Reply] = {}
        self.requests: list[str] = []
        """Every request's path, query included, in order."""
        self.stop = threading.Event()
        """Set when the test ends: slow replies stop trickling."""
        self.client_gone = threading.Event()
        """Set when a reply found the client's end of the connection shut."""
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


@contextlib.contextmanager
def scripted_servers() -> Iterator[Callable[..., ScriptedServer]]:
    """Start servers with the function yielded; all are closed at the end."""
    started: list[ScriptedServer] = []

    def start(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(host, tls)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.close()


def serve(body: bytes, status: int = 200) -> Reply:
    """Answer ``status`` with ``body`` at once."""

    def reply(handler: ScriptedHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return reply


def moved(location: str) -> Reply:
    """Redirect (302) to ``location``."""

    def reply(handler: ScriptedHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return reply


def trickle_headers(interval: float, count: int | None = None) -> Reply:
    """A status line, then one header a byte every ``interval`` s: ``count`` bytes, or forever.

    A socket timeout restarts with every byte, so only a deadline over the
    whole fetch (or the test's end) stops it.
    """

    def reply(handler: ScriptedHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        handler.wfile.flush()
        sent = 0
        while (count is None or sent < count) and not handler.server.stop.wait(interval):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            sent += 1
        if count is not None and sent == count:
            handler.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")

    return reply


def trickle_body(interval: float, count: int) -> Reply:
    """Full headers at once, then a body of ``count`` bytes, one every ``interval`` s."""

    def reply(handler: ScriptedHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(count))
        handler.end_headers()
        handler.wfile.flush()
        for _ in range(count):
            if handler.server.stop.wait(interval):
                return
            handler.wfile.write(b"A")
            handler.wfile.flush()

    return reply


def stall(seconds: float) -> Reply:
    """Read the request, then say nothing for ``seconds`` (or until the test ends)."""

    def reply(handler: ScriptedHandler) -> None:
        handler.server.stop.wait(seconds)

    return reply


def server_tls(directory: Path, addresses: Sequence[str]) -> tuple[ssl.SSLContext, str]:
    """A test CA and a server certificate it signed for ``addresses``.

    Returns the servers' TLS context and the CA's file, which a client must
    be given (``cafile``) to verify them: without it they are unverified.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scripted servers' test CA")])
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
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, addresses[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.crt", "server.crt", "server.key"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(ca_file)
