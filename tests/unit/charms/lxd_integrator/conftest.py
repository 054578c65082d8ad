"""A fake LXD for the integrator's unit tests, reached the way the charm reaches the real one.

`FakeLxdServer` stands in for the LXD behind the credentials: the charm's
`lxd_integrator.connection.open_lxd` calls `LxdClient.remote`, which the
`lxd` fixture replaces with the server's `remote`, so everything from the
certificate pinning check onwards runs the charm's real code. The fake
behaves as real LXD does for the calls the charm makes (captured from LXD
5.0.2, and checked by tests/functional/test_lxd_integrator.py):

- ``GET /1.0`` says ``auth: trusted`` only when the client certificate is in
  the trust store as a client, and carries no ``environment`` otherwise;
- the trust store is keyed by fingerprint: adding a known certificate
  renames it, adding a member's server certificate is refused (409);
- clustered members' own certificates are in the store as ``server`` entries;
- a pinned server certificate that does not match fails like pylxd does
  ("Fingerprints did not match").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from ops import testing

import lxd_integrator.connection
from lxd_common.certs import (
    CertificatePair,
    fingerprint,
    generate_client_certificate,
    load_certificate,
)
from lxd_common.errors import LxdApiError, LxdUnreachableError, TrustEntryNotFoundError
from lxd_common.lxd import ClusterMember, LxdClient, TrustEntry


class FakeTrust:
    """LXD's trust store, keyed by fingerprint like the real one."""

    def __init__(self, server: FakeLxdServer) -> None:
        self._server = server
        self.by_fingerprint: dict[str, TrustEntry] = {}

    def entries(self) -> list[TrustEntry]:
        self._server.calls.append("trust.entries")
        return list(self.by_fingerprint.values())

    def find_all(self, name: str) -> list[TrustEntry]:
        return [e for e in self.by_fingerprint.values() if e.name == name]

    def put(self, pem: str, name: str, type_: str = "client") -> TrustEntry:
        """Test setup: an entry as someone else (an operator, LXD) made it."""
        fp = fingerprint(pem)
        entry = TrustEntry(name, fp, type_, False, [], pem)
        self.by_fingerprint[fp] = entry
        return entry

    def add(
        self, certificate_pem: str, name: str, projects: list[str] | None = None
    ) -> TrustEntry:
        self._server.calls.append("trust.add")
        if self._server.refuse_additions:
            raise LxdApiError(f"LXD refused trusting certificate {name!r}: nope", 400)
        fp = fingerprint(load_certificate(certificate_pem))
        existing = self.by_fingerprint.get(fp)
        if existing is not None and existing.type != "client":
            raise LxdApiError(
                f"this certificate is already trusted as {existing.type} certificate "
                f"{existing.name!r}; it is not changed",
                409,
            )
        entry = TrustEntry(
            name, fp, "client", projects is not None, list(projects or []), certificate_pem
        )
        self.by_fingerprint[fp] = entry
        return entry

    def update(
        self, fingerprint_: str, *, name: str | None = None, projects: list[str] | None = None
    ) -> TrustEntry:
        self._server.calls.append("trust.update")
        current = self.by_fingerprint.get(fingerprint_)
        if current is None:
            raise TrustEntryNotFoundError(f"no trusted certificate has fingerprint {fingerprint_}")
        entry = TrustEntry(
            current.name if name is None else name,
            current.fingerprint,
            current.type,
            projects is not None,
            list(projects or []),
            current.certificate,
        )
        self.by_fingerprint[fingerprint_] = entry
        return entry

    def remove(self, name_or_fingerprint: str) -> TrustEntry:
        self._server.calls.append("trust.remove")
        entry = self.by_fingerprint.pop(name_or_fingerprint, None)
        if entry is None:
            raise TrustEntryNotFoundError(f"no trusted certificate {name_or_fingerprint!r}")
        return entry


class FakeCluster:
    def __init__(self, server: FakeLxdServer) -> None:
        self._server = server

    def members(self) -> list[ClusterMember]:
        self._server.calls.append("cluster.members")
        return list(self._server.members)


@dataclass
class FakeClient:
    """What `LxdClient.remote` returns: one connection with the client's certificate."""

    server: FakeLxdServer
    endpoint: str
    client_fp: str
    closed: bool = False

    @property
    def trust(self) -> FakeTrust:
        return self.server.trust

    @property
    def cluster(self) -> FakeCluster:
        return FakeCluster(self.server)

    def server_info(self) -> dict[str, Any]:
        self.server.calls.append("server_info")
        entry = self.server.trust.by_fingerprint.get(self.client_fp)
        if entry is None or entry.type != "client":
            return {"auth": "untrusted", "api_version": "1.0", "public": False}
        return {
            "auth": "trusted",
            "environment": {
                "server_name": self.server.server_name,
                "server_clustered": bool(self.server.members),
                "addresses": [self.endpoint.removeprefix("https://")],
            },
        }

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FakeLxdServer:
    """The LXD behind the credentials, with the integrator's own certificate trusted."""

    credential: CertificatePair
    server_cert: str
    server_name: str = "lxd0"
    members: list[ClusterMember] = field(default_factory=list)
    reachable: bool = True
    refuse_additions: bool = False
    calls: list[str] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    clients: list[FakeClient] = field(default_factory=list)
    trust: FakeTrust = field(init=False)

    def __post_init__(self) -> None:
        self.trust = FakeTrust(self)
        self.trust.put(self.credential.certificate, "juju-credential")

    def remote(
        self,
        endpoint: str,
        client_cert: CertificatePair,
        server_cert: str | None = None,
        *,
        wait: float = 0.0,
        timeout: float = 30.0,
    ) -> FakeClient:
        """Stands in for `LxdClient.remote`."""
        self.connections.append(
            {"endpoint": endpoint, "server_cert": server_cert, "client": client_cert}
        )
        if not self.reachable:
            raise LxdUnreachableError(
                f"cannot reach LXD while connecting to {endpoint}: HTTPSConnectionPool("
                "host='10.0.0.1', port=8443): Max retries exceeded with url: /1.0 (Caused by "
                "NewConnectionError(\"HTTPSConnection(host='10.0.0.1', port=8443): Failed to "
                'establish a new connection: [Errno 111] Connection refused"))'
            )
        if server_cert is not None and fingerprint(self.server_cert) not in {
            fingerprint(block) for block in _blocks(server_cert)
        }:
            raise LxdUnreachableError(
                f"cannot reach LXD while connecting to {endpoint}: HTTPSConnectionPool("
                "host='10.0.0.1', port=8443): Max retries exceeded with url: /1.0 (Caused by "
                'SSLError(\'Fingerprints did not match. Expected "aa", got "bb"\'))'
            )
        client = FakeClient(self, endpoint, fingerprint(client_cert.certificate))
        self.clients.append(client)
        return client

    def cluster_of(self, count: int) -> None:
        """Make this LXD a cluster of `count` members, their server certificates trusted."""
        self.members = [
            ClusterMember(f"m{i}", f"https://10.0.0.{i}:8443", "Online", ["database"])
            for i in range(1, count + 1)
        ]
        self.server_name = "m1"
        for member in self.members:
            self.trust.put(
                generate_client_certificate(member.name).certificate, member.name, "server"
            )

    def client_entries(self) -> dict[str, str]:
        """Fingerprint -> name of the client entries, the integrator's own excluded."""
        own = fingerprint(self.credential.certificate)
        return {
            fp: e.name
            for fp, e in self.trust.by_fingerprint.items()
            if e.type == "client" and fp != own
        }


def _blocks(pem: str) -> list[str]:
    end = "-----END CERTIFICATE-----"
    return [part + end for part in pem.split(end) if "-----BEGIN CERTIFICATE-----" in part]


@pytest.fixture(scope="session")
def credential() -> CertificatePair:
    """The client certificate and key `juju trust` hands the integrator."""
    return generate_client_certificate("juju-credential")


@pytest.fixture(scope="session")
def server_cert() -> str:
    """The LXD server's certificate."""
    return generate_client_certificate("lxd-server").certificate


@pytest.fixture(scope="session")
def certs() -> list[CertificatePair]:
    """Client certificates requirers send, generated once."""
    return [generate_client_certificate(f"requirer-{i}") for i in range(6)]


@pytest.fixture
def lxd(
    monkeypatch: pytest.MonkeyPatch, credential: CertificatePair, server_cert: str
) -> FakeLxdServer:
    """The fake LXD; the charm's connections go to it, with no retry delay."""
    server = FakeLxdServer(credential, server_cert)
    monkeypatch.setattr(LxdClient, "remote", server.remote)
    monkeypatch.setattr(lxd_integrator.connection, "CONNECT_WAIT", 0.0)
    return server


@pytest.fixture
def charm_type(load_charm: Callable[[str], ModuleType]) -> Any:
    return load_charm("lxd-integrator").LxdIntegratorCharm


@pytest.fixture
def cloud_spec(credential: CertificatePair, server_cert: str) -> Callable[..., testing.CloudSpec]:
    """An LXD cloud spec as `juju trust` hands it over; override attributes by keyword."""

    def make(endpoint: str = "https://10.0.0.1:8443", **attributes: str) -> testing.CloudSpec:
        attrs = {
            "client-cert": credential.certificate,
            "client-key": credential.private_key,
            "server-cert": server_cert,
        }
        attrs.update({k.replace("_", "-"): v for k, v in attributes.items()})
        return testing.CloudSpec(
            type="lxd",
            name="localhost",
            endpoint=endpoint,
            credential=testing.CloudCredential(
                auth_type="certificate", attributes={k: v for k, v in attrs.items() if v}
            ),
        )

    return make


@pytest.fixture
def validate_databag() -> Callable[[Mapping[str, str], Mapping[str, Any]], None]:
    """Check a databag against a schema, JSON-encoded fields against their `contentSchema`."""

    def validate(bag: Mapping[str, str], schema: Mapping[str, Any]) -> None:
        jsonschema.validate(dict(bag), schema)
        for key, spec in schema["properties"].items():
            if key in bag and spec.get("contentMediaType") == "application/json":
                jsonschema.validate(json.loads(bag[key]), spec["contentSchema"])

    return validate
