"""`lxd_charm.ovn.probe_northbound` against a real TLS server on loopback, one thread each.

test_ovn_relation.py stands a fake in for the probe, and only the
functional tier ran the real one (against Debian's ovsdb-server). Here the
unit tier drives it over real sockets: a server on a loopback address of its
own, port 6641 as the probe dials, with certificates from the test's CA,
answering as the northbound database, as something else, not at all, or
refusing our certificate. The details asserted are what Python's ssl
(OpenSSL 3) and the kernel said when this was written.
"""

from __future__ import annotations

import errno
import json
import secrets
import socket
import ssl
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lxd_charm import ovn
from lxd_common.errors import EndpointError
from tests.harness.ovn import OvnCa

CA = OvnCa()
OTHER_CA = OvnCa("another")
CERT, KEY = CA.issue("lxd-0")
SERVER_CERT, SERVER_KEY = CA.issue("ovn-central-0")
MATERIAL = ovn.TlsMaterial.from_pem(CA.pem, CERT, KEY, "vault/0")
ANSWER = json.dumps({"id": 0, "result": ["_Server", "OVN_Northbound"], "error": None}).encode()

Behaviour = Callable[[ssl.SSLSocket], None]


def _address() -> str:
    """A loopback address of this test's own (the functional tier uses other /24s)."""
    pick = secrets.randbelow
    return f"127.{200 + pick(51)}.{1 + pick(254)}.{2 + pick(253)}"


def _server_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_ca)
    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = Path(directory) / "c.pem", Path(directory) / "k.pem"
        cert_path.write_text(cert)
        key_path.write_text(key)
        context.load_cert_chain(cert_path, key_path)
    return context


class Server:
    """One TCP listener on <address>:6641; each connection is handed to ``serve``."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.address = _address()
        self.listener = socket.create_server((self.address, ovn.NORTHBOUND_PORT))
        self.serve = serve
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            try:
                self.serve(connection)
            except (OSError, ssl.SSLError):
                pass
            finally:
                self.done.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def serving() -> Iterator[Callable[[Callable[[socket.socket], None]], Server]]:
    servers: list[Server] = []

    def start(serve: Callable[[socket.socket], None]) -> Server:
        server = Server(serve)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def tls(
    behaviour: Behaviour, context: ssl.SSLContext | None = None
) -> Callable[[socket.socket], None]:
    """A connection handler: a TLS handshake with ``context``, then ``behaviour``."""
    context = context or _server_context(SERVER_CERT, SERVER_KEY, CA.pem)

    def serve(raw: socket.socket) -> None:
        raw.settimeout(5)
        with context.wrap_socket(raw, server_side=True) as conn:
            behaviour(conn)

    return serve


def answering(reply: bytes) -> Behaviour:
    def behaviour(conn: ssl.SSLSocket) -> None:
        request = conn.recv(65536)
        assert json.loads(request) == {"id": 0, "method": "list_dbs", "params": []}
        conn.sendall(reply)

    return behaviour


def test_the_northbound_database_is_reachable(serving: Callable[..., Server]) -> None:
    server = serving(tls(answering(ANSWER)))
    probe = ovn.probe_northbound(server.address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(f"{server.address}:6641", "reachable", "")
    assert server.done.wait(5)


def test_another_service_answering_is_not_ovn(serving: Callable[..., Server]) -> None:
    reply = json.dumps({"id": 0, "result": ["Open_vSwitch"], "error": None}).encode()
    server = serving(tls(answering(reply)))
    probe = ovn.probe_northbound(server.address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(
        f"{server.address}:6641", "not-ovn", "it does not serve OVN_Northbound"
    )


def test_a_clean_close_without_an_answer_is_a_refusal(serving: Callable[..., Server]) -> None:
    def close(conn: ssl.SSLSocket) -> None:
        conn.recv(65536)
        conn.unwrap()

    server = serving(tls(close))
    probe = ovn.probe_northbound(server.address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(
        f"{server.address}:6641", "refused", "the connection was closed without an answer"
    )


def test_a_server_that_does_not_trust_our_certificate_refuses_it(
    serving: Callable[..., Server],
) -> None:
    # TLS 1.2, so that the refusal comes in the handshake: with TLS 1.3 the
    # server refuses after it, and whether the client then reads the alert or
    # a reset is a race.
    context = _server_context(SERVER_CERT, SERVER_KEY, OTHER_CA.pem)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    server = serving(tls(lambda conn: None, context))
    probe = ovn.probe_northbound(server.address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(f"{server.address}:6641", "refused", "tlsv1 alert unknown ca")


def test_a_server_signed_by_another_ca_is_untrusted(serving: Callable[..., Server]) -> None:
    cert, key = OTHER_CA.issue("ovn-central-0")
    server = serving(tls(lambda conn: None, _server_context(cert, key, CA.pem)))
    probe = ovn.probe_northbound(server.address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(
        f"{server.address}:6641", "untrusted", "unable to get local issuer certificate"
    )


def test_nothing_listening_is_unreachable() -> None:
    address = _address()
    probe = ovn.probe_northbound(address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(f"{address}:6641", "unreachable", "Connection refused")


def test_a_server_that_never_handshakes_is_unreachable(serving: Callable[..., Server]) -> None:
    gate = threading.Event()
    server = serving(lambda raw: gate.wait(5) and None)
    try:
        probe = ovn.probe_northbound(server.address, MATERIAL, timeout=0.2)
    finally:
        gate.set()
    assert probe == ovn.Probe(f"{server.address}:6641", "unreachable", "no answer")


def test_material_ssl_cannot_load_is_untrusted_before_any_connection() -> None:
    broken = ovn.TlsMaterial(ca="not a pem", certificate=CERT, private_key=KEY, source="v/0")
    address = _address()
    probe = ovn.probe_northbound(address, broken, timeout=5)
    assert probe.target == f"{address}:6641"
    assert probe.kind == "untrusted"
    assert probe.detail.startswith("cannot use the CA or client certificate: ")
    assert len(probe.detail) > len("cannot use the CA or client certificate: ")


def test_probe_all_probes_every_unit_for_real(serving: Callable[..., Server]) -> None:
    server = serving(tls(answering(ANSWER)))
    silent = _address()
    got = ovn.probe_all({"c/0": server.address, "c/1": silent}, MATERIAL, budget=5)
    assert got == {
        "c/0": ovn.Probe(f"{server.address}:6641", "reachable"),
        "c/1": ovn.Probe(f"{silent}:6641", "unreachable", "Connection refused"),
    }
    assert ovn.probe_all({}, MATERIAL) == {}


def test_the_reason_of_an_error_without_words_is_its_type() -> None:
    assert ovn._reason(ConnectionResetError()) == "ConnectionResetError"
    assert ovn._reason(ConnectionResetError("reset")) == "reset"


def test_the_client_context_checks_the_ca_but_not_the_host_name() -> None:
    context = ovn._client_context(MATERIAL)
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1


def test_the_tuning_and_names() -> None:
    assert ovn.NORTHBOUND_PORT == 6641
    assert ovn.NORTHBOUND_KEY == "network.ovn.northbound_connection"
    assert (ovn.OVN_EXTENSION, ovn.SSL_CONFIG_EXTENSION) == ("network_type_ovn", "ovn_ssl_config")
    assert MATERIAL.server_config() == {
        "network.ovn.ca_cert": MATERIAL.ca,
        "network.ovn.client_cert": MATERIAL.certificate,
        "network.ovn.client_key": MATERIAL.private_key,
    }
    assert repr(MATERIAL) == "TlsMaterial(source='vault/0')"


# --- the rest of the module's edges ----------------------------------------------------


def test_a_bound_address_with_one_bracket_is_refused_whole() -> None:
    for value in ("10.0.0.17]", "[10.0.0.17"):
        with pytest.raises(EndpointError) as caught:
            ovn.parse_bound_address(value)
        assert str(caught.value) == f"bound-address {value!r} is not an IP address"


def test_removing_files_that_are_not_there_is_fine(tmp_path: Path) -> None:
    files = ovn.OvnFiles(tmp_path)
    files.remove()
    assert not files.present()


class FailingContext:
    """A TLS context whose handshake fails with ``error`` (a route lost mid-connection)."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def wrap_socket(self, raw: socket.socket) -> ssl.SSLSocket:
        raise self.error


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (OSError(errno.EHOSTUNREACH, "No route to host"), "No route to host"),
        (OSError("the interface went away"), "the interface went away"),
    ],
)
def test_another_os_error_after_connecting_is_unreachable(
    serving: Callable[..., Server], monkeypatch: pytest.MonkeyPatch, error: OSError, detail: str
) -> None:
    server = serving(lambda raw: None)
    monkeypatch.setattr(ovn, "_client_context", lambda material: FailingContext(error))
    probe = ovn.probe_northbound(server.address, MATERIAL, timeout=5)
    assert probe == ovn.Probe(f"{server.address}:6641", "unreachable", detail)


def test_probes_run_on_named_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []

    def probe(address: str, material: ovn.TlsMaterial, timeout: float = 0.0) -> ovn.Probe:
        names.append(threading.current_thread().name)
        return ovn.Probe(ovn.northbound_target(address), "reachable")

    monkeypatch.setattr(ovn, "probe_northbound", probe)
    ovn.probe_all({"c/0": "10.0.0.1"}, MATERIAL)
    assert len(names) == 1
    assert names[0].startswith("ovn-probe_")


def test_the_key_is_private_before_ssl_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    load = ssl.SSLContext.load_cert_chain

    def recording(
        self: ssl.SSLContext, certfile: Any, keyfile: Any = None, password: Any = None
    ) -> None:
        modes.append(stat.S_IMODE(Path(keyfile).stat().st_mode))
        load(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", recording)
    ovn._client_context(MATERIAL)
    assert modes == [0o600]


def test_no_probes_is_a_bug() -> None:
    with pytest.raises(ValueError, match=r"^no probes$"):
        ovn.probe_summary({})
