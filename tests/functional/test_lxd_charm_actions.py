"""The LXD charm's trust actions against real LXD daemons, used by real clients.

Each test runs the action logic (`lxd_charm.actions`) on a fresh daemon the
way the charm does, then checks the result from the other side: a real HTTPS
client with the certificate (or the token) the action handled.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pylxd
import pytest
from pylxd.client import get_session_for_url

from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import LxdDaemon

# The functional tier has its own conftest, which does not put the charm's
# src/ on sys.path as the unit tier's does.
_CHARM_SRC = str(Path(__file__).resolve().parents[2] / "charms" / "lxd" / "src")
if _CHARM_SRC not in sys.path:
    sys.path.insert(0, _CHARM_SRC)

from lxd_charm.actions import (  # noqa: E402 - needs the charm's src on sys.path
    ActionError,
    AddTrustedClientParams,
    GetClientTokenParams,
    RemoveTrustedClientParams,
    add_trusted_client,
    get_client_token,
    remove_trusted_client,
)
from lxd_charm.cert_fetch import CertFetchError, fetch_certificate  # noqa: E402


@pytest.fixture
def listening(daemon: LxdDaemon) -> LxdDaemon:
    daemon.client().set_server_config({"core.https_address": daemon.address})
    return daemon


def mangled(pem: str) -> str:
    """How `juju run lxd/0 add-trusted-client cert="$(cat c.crt)"` can arrive."""
    return pem.replace("\n", " ")


def openssl_style(fp: str) -> str:
    """What `openssl x509 -noout -fingerprint -sha256` prints."""
    return "sha256 Fingerprint=" + ":".join(fp[i : i + 2].upper() for i in range(0, 64, 2))


def client_entries(lxd: LxdClient) -> list[str]:
    return [e.name for e in lxd.trust.entries() if e.type == "client"]


def remote_trusted(daemon: LxdDaemon, pair: CertificatePair) -> bool:
    with LxdClient.remote(daemon.address, pair, daemon.server_cert) as remote:
        return remote.trusted


# --- a tiny web server for cert-url ---------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class CertServer:
    """Serves fixed routes on 127.0.0.1 (ephemeral port) from a background thread."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path, Route(404, b"not found"))
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def cert_server() -> Iterator[CertServer]:
    server = CertServer()
    try:
        yield server
    finally:
        server.close()


# --- add-trusted-client ----------------------------------------------------------------------


def test_add_mangled_pem_trusts_a_client_restricted_to_its_projects(
    listening: LxdDaemon,
) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("allowed")
    lxd.pylxd.projects.create("other")
    pair = generate_client_certificate("carol")
    assert not remote_trusted(listening, pair)

    results = add_trusted_client(
        lxd, AddTrustedClientParams(cert=mangled(pair.certificate), projects="allowed")
    )

    fp = fingerprint(pair.certificate)
    assert results["fingerprint"] == fp
    assert (results["name"], results["projects"]) == ("carol", "allowed")
    entry = lxd.trust.find(fp)
    assert entry is not None
    assert (entry.name, entry.type, entry.restricted, entry.projects) == (
        "carol",
        "client",
        True,
        ["allowed"],
    )
    with LxdClient.remote(listening.address, pair, listening.server_cert) as remote:
        assert remote.trusted
        assert {p.name for p in remote.pylxd.projects.all()} == {"allowed"}


def test_add_again_updates_instead_of_duplicating(listening: LxdDaemon) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("p1")
    pair = generate_client_certificate("dave")
    add_trusted_client(lxd, AddTrustedClientParams(cert=pair.certificate))
    results = add_trusted_client(
        lxd, AddTrustedClientParams(name="dave-ci", cert=pair.certificate, projects="p1")
    )
    assert results["message"].startswith("updated client 'dave-ci'")
    assert client_entries(lxd) == ["dave-ci"]
    entry = lxd.trust.find(fingerprint(pair.certificate))
    assert entry is not None
    assert (entry.restricted, entry.projects) == (True, ["p1"])


def test_add_from_cert_url(listening: LxdDaemon, cert_server: CertServer) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("web")
    pair = generate_client_certificate("from-url")
    cert_server.routes["/old.crt"] = Route(302, headers={"Location": "/client.crt"})
    cert_server.routes["/client.crt"] = Route(body=pair.certificate.encode())

    results = add_trusted_client(
        lxd, AddTrustedClientParams(cert_url=cert_server.url("/old.crt"), projects="web")
    )

    assert (results["name"], results["projects"]) == ("from-url", "web")
    assert "fetched-from" not in results  # redirected on the same server
    entry = lxd.trust.find("from-url")
    assert entry is not None
    assert entry.fingerprint == fingerprint(pair.certificate)
    assert remote_trusted(listening, pair)


def test_cert_url_failures_on_a_real_server(listening: LxdDaemon, cert_server: CertServer) -> None:
    lxd = listening.client()
    cert_server.routes["/to-file"] = Route(302, headers={"Location": "file:///etc/hostname"})
    cert_server.routes["/big.crt"] = Route(body=b"A" * 70000)
    cert_server.routes["/login"] = Route(body=b"<html>please log in</html>")

    with pytest.raises(CertFetchError, match=r"HTTP 404 Not Found"):
        fetch_certificate(cert_server.url("/missing.crt"))
    with pytest.raises(
        CertFetchError, match=r"redirected \(HTTP 302\) to a URL that is not fetched"
    ):
        fetch_certificate(cert_server.url("/to-file"))
    with pytest.raises(CertFetchError, match="more than the 65536"):
        fetch_certificate(cert_server.url("/big.crt"))
    with pytest.raises(ActionError, match="is not usable: no PEM markers"):
        add_trusted_client(lxd, AddTrustedClientParams(cert_url=cert_server.url("/login")))
    assert client_entries(lxd) == []


def test_cert_url_connection_refused() -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CertFetchError, match="connection refused"):
        fetch_certificate(f"http://127.0.0.1:{port}/client.crt", timeout=5)


def test_unknown_project_adds_nothing(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("erin")
    with pytest.raises(ActionError) as info:
        add_trusted_client(lxd, AddTrustedClientParams(cert=pair.certificate, projects="nosuch"))
    assert "nosuch" in str(info.value)
    assert "lxc project create" in str(info.value)
    with pytest.raises(ActionError, match="nosuch"):
        get_client_token(lxd, GetClientTokenParams(name="erin", projects="nosuch"))
    assert client_entries(lxd) == []
    assert lxd.trust.find(fingerprint(pair.certificate)) is None


def test_private_key_is_refused_and_nothing_added(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("frank")
    with pytest.raises(ActionError, match="private key"):
        add_trusted_client(lxd, AddTrustedClientParams(cert=mangled(pair.private_key)))
    assert client_entries(lxd) == []


# --- remove-trusted-client -----------------------------------------------------------------------


def test_remove_with_an_openssl_fingerprint_revokes_the_client(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("gone-soon")
    fp = add_trusted_client(lxd, AddTrustedClientParams(cert=pair.certificate))["fingerprint"]
    assert remote_trusted(listening, pair)

    results = remove_trusted_client(lxd, RemoveTrustedClientParams(fingerprint=openssl_style(fp)))

    assert (results["fingerprint"], results["name"]) == (fp, "gone-soon")
    assert lxd.trust.find(fp) is None
    assert not remote_trusted(listening, pair)
    with pytest.raises(ActionError, match="nothing was removed"):
        remove_trusted_client(lxd, RemoveTrustedClientParams(fingerprint=fp))


def test_cluster_members_certificates_are_protected(listening: LxdDaemon) -> None:
    """A member's own certificate is type "server": neither removed nor re-added as a client."""
    listening.lxc("cluster", "enable", "m1")
    lxd = listening.client()
    (member,) = [e for e in lxd.trust.entries() if e.type == "server"]
    lxd.pylxd.projects.create("p1")

    with pytest.raises(ActionError, match="is a server certificate"):
        remove_trusted_client(lxd, RemoveTrustedClientParams(fingerprint=member.fingerprint))
    server_crt = (listening.directory / "server.crt").read_text()
    with pytest.raises(ActionError, match="already trusted as a server certificate"):
        add_trusted_client(lxd, AddTrustedClientParams(cert=server_crt, projects="p1"))

    assert lxd.trust.find(member.fingerprint) == member


# --- get-client-token -----------------------------------------------------------------


def test_client_token_gets_a_real_pylxd_client_trusted(
    listening: LxdDaemon, tmp_path: Path
) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("tokens")
    results = get_client_token(lxd, GetClientTokenParams(name="grace", projects="tokens"))
    assert (results["name"], results["projects"]) == ("grace", "tokens")

    pair = generate_client_certificate("grace-laptop")
    cert, key, server = tmp_path / "c.crt", tmp_path / "c.key", tmp_path / "server.crt"
    cert.write_text(pair.certificate)
    key.write_text(pair.private_key)
    server.write_text(listening.server_cert)
    url = f"https://{listening.address}"
    session = get_session_for_url(url, verify=str(server), cert=(str(cert), str(key)))
    session.trust_env = False  # or REQUESTS_CA_BUNDLE would override the pinned certificate
    client = pylxd.Client(endpoint=url, cert=(str(cert), str(key)), session=session)
    assert not client.trusted
    client.authenticate(results["token"])
    assert client.trusted

    entry = lxd.trust.find("grace")
    assert entry is not None
    assert entry.fingerprint == fingerprint(pair.certificate)
    assert (entry.restricted, entry.projects) == (True, ["tokens"])
