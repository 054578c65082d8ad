"""The built lxd-integrator, one dispatch process per hook, against real LXD daemons over HTTPS.

The unit-agent stand-in plays Juju (`integrator_units.integrator_on`; with
LXD_CHARM_TESTS_IN_PROCESS=1, ops.testing in this process): the cloud spec
`credential-get` hands over once the operator ran `juju trust`
points at a real daemon on loopback, with a real client certificate trusted
there and the daemon's real server certificate. Everything else is real:
the HTTPS connection with the pinned certificate, the cluster's members, the
trust store, and requirers' pylxd clients connecting with the certificates
the integrator registered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import socket
import ssl
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import ops
import pylxd
import pytest
from ops import testing
from pylxd.client import get_session_for_url
from pylxd.exceptions import LXDAPIException

from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.interfaces.lxd import PROVIDER_SCHEMA, LxdRequirer, ProviderData
from lxd_common.lxd import LxdClient
from tests.harness.agent_context import CharmContext
from tests.harness.clusters import bootstrap, join
from tests.harness.databags import local_app_data, local_unit_data
from tests.harness.integrator_units import integrator_on
from tests.harness.lxd_daemons import LxdDaemon, wait_until

MODEL_UUID = "5a1f03c2-8d3e-4b7a-9c1d-2e3f4a5b6c7d"


def validate(bag: Mapping[str, str], schema: Mapping[str, Any]) -> None:
    jsonschema.validate(dict(bag), schema)
    for key, spec in schema["properties"].items():
        if key in bag and spec.get("contentMediaType") == "application/json":
            jsonschema.validate(json.loads(bag[key]), spec["contentSchema"])


@pytest.fixture
def pylxd_as(tmp_path: Path) -> Callable[[str, CertificatePair, str], pylxd.Client]:
    """A plain pylxd client (what a requirer would use) with a certificate, server pinned."""
    count = iter(range(1000))

    def connect(endpoint: str, pair: CertificatePair, server_cert: str) -> pylxd.Client:
        directory = tmp_path / f"client-{next(count)}"
        directory.mkdir()
        cert, key, server = directory / "c.crt", directory / "c.key", directory / "s.crt"
        cert.write_text(pair.certificate)
        key.write_text(pair.private_key)
        server.write_text(server_cert)
        session = get_session_for_url(endpoint, verify=str(server), cert=(str(cert), str(key)))
        session.trust_env = False  # or REQUESTS_CA_BUNDLE would override the pinned certificate
        return pylxd.Client(endpoint=endpoint, cert=(str(cert), str(key)), session=session)

    return connect


@pytest.fixture
def credential() -> CertificatePair:
    return generate_client_certificate("juju-credential")


@pytest.fixture
def integrator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CharmContext:
    """The integrator, trusted (`juju trust`): the built charm, unless in-process is asked."""
    return integrator_on(tmp_path, monkeypatch, CONNECT_WAIT=1.0)


def trusted_state(
    daemon: LxdDaemon,
    credential: CertificatePair,
    *relations: testing.Relation,
    endpoint: str | None = None,
    server_cert: str | None = None,
    leader: bool = True,
) -> testing.State:
    spec = testing.CloudSpec(
        type="lxd",
        name="localhost",
        endpoint=endpoint or f"https://{daemon.address}",
        credential=testing.CloudCredential(
            auth_type="certificate",
            attributes={
                "client-cert": credential.certificate,
                "client-key": credential.private_key,
                "server-cert": server_cert or daemon.server_cert,
            },
        ),
    )
    return testing.State(
        leader=leader,
        relations=relations,
        model=testing.Model(type="lxd", uuid=MODEL_UUID, cloud_spec=spec),
    )


def api(*unit_certs: list[str]) -> testing.Relation:
    units = {n: {"client_certificates": json.dumps(c)} for n, c in enumerate(unit_certs)}
    return testing.Relation("api", remote_app_name="myapp", remote_units_data=units)


class RequirerCharm(ops.CharmBase):
    """A requirer charm using the library, with the first requirer certificate."""

    certificate = ""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = LxdRequirer(self, "lxd", certificates=[self.certificate])


# --- a real cluster ---------------------------------------------------------------------


@pytest.fixture
def cluster(start_daemons: Callable[[int], list[LxdDaemon]]) -> list[LxdDaemon]:
    a, b, c = start_daemons(3)
    bootstrap(a)
    join(a, b)
    join(a, c)
    return [a, b, c]


def test_a_real_cluster_is_published_and_requirers_are_trusted_by_every_member(
    cluster: list[LxdDaemon],
    integrator: CharmContext,
    credential: CertificatePair,
    pylxd_as: Callable[..., pylxd.Client],
) -> None:
    a = cluster[0]
    a.client().trust.add(credential.certificate, name="juju-credential")
    cluster_cert = a.server_cert
    unit0, unit1 = generate_client_certificate("myapp-0"), generate_client_certificate("myapp-1")
    relation = api([unit0.certificate], [unit1.certificate], [unit0.private_key])

    state = integrator.run(
        integrator.on.relation_changed(relation, remote_unit=0),
        trusted_state(a, credential, relation),
    )

    # The real members, as LXD lists them, complete with scheme and port.
    members = sorted(a.client().cluster.members(), key=lambda m: m.name)
    assert [(m.name, m.url) for m in members] == [
        (d.name, f"https://{d.address}") for d in cluster
    ]
    rel = state.get_relation(relation.id)
    fps = sorted([fingerprint(unit0.certificate), fingerprint(unit1.certificate)])
    expected = [{"name": m.name, "endpoint": m.url, "trusted_certs_fp": fps} for m in members]
    for bag in (local_app_data(rel), local_unit_data(rel)):
        assert bag["version"] == "1.0"
        assert json.loads(bag["nodes"]) == expected
        validate(bag, PROVIDER_SCHEMA)
    # The unit that sent its private key is refused, the others served.
    assert json.loads(local_app_data(rel)["errors"]) == {
        "myapp/2": "certificate 1 of 1: this is a private key, not a certificate; give the "
        "certificate (-----BEGIN CERTIFICATE-----) instead"
    }
    assert state.unit_status == testing.BlockedStatus(
        "ignored certificates from myapp/2: certificate 1 of 1: this is a private key, not a "
        "certificate; give the certificate (-----BEGIN CERTIFICATE-----) instead"
    )

    # The trust store holds exactly these, named after the requiring units.
    entries = {e.fingerprint: e for e in a.client().trust.entries() if e.type == "client"}
    prefix = f"lxd-integrator:5a1f03c2:{relation.id}:"
    assert entries[fingerprint(unit0.certificate)].name == f"{prefix}myapp/0"
    assert entries[fingerprint(unit1.certificate)].name == f"{prefix}myapp/1"
    assert not entries[fingerprint(unit0.certificate)].restricted

    # A requirer, through the library, finds the nodes and its trust, and every member trusts it.
    RequirerCharm.certificate = unit0.certificate
    requirer = testing.Context(
        RequirerCharm, meta={"name": "myapp", "requires": {"lxd": {"interface": "lxd"}}}
    )
    lxd_rel = testing.Relation("lxd", remote_app_data=dict(rel.local_app_data))
    with requirer(requirer.on.update_status(), testing.State(relations={lxd_rel})) as mgr:
        assert mgr.charm.lxd.is_trusted()
        endpoints = [node.endpoint for node in mgr.charm.lxd.nodes()]
    assert endpoints == [f"https://{d.address}" for d in cluster]
    for endpoint in endpoints:
        for pair in (unit0, unit1):
            client = pylxd_as(endpoint, pair, cluster_cert)
            assert client.trusted, f"not trusted by {endpoint}"
    assert not pylxd_as(endpoints[0], generate_client_certificate("x"), cluster_cert).trusted

    # myapp/1 departs: its certificate loses access on every member, myapp/0 keeps it.
    state = integrator.run(
        integrator.on.relation_departed(rel, remote_unit=1, departing_unit=1), state
    )
    assert json.loads(local_app_data(state.get_relation(relation.id))["nodes"])[0][
        "trusted_certs_fp"
    ] == [fingerprint(unit0.certificate)]

    def refuses_unit1(endpoint: str) -> bool:
        return not pylxd_as(endpoint, unit1, cluster_cert).trusted

    for endpoint in endpoints:
        assert wait_until(functools.partial(refuses_unit1, endpoint))
        assert pylxd_as(endpoint, unit0, cluster_cert).trusted

    # m3 leaves the cluster: update-status publishes the two members left.
    a.client().cluster.remove_member("m3")
    state = integrator.run(integrator.on.update_status(), state)
    nodes = json.loads(local_app_data(state.get_relation(relation.id))["nodes"])
    assert [(n["name"], n["endpoint"]) for n in nodes] == [
        (d.name, f"https://{d.address}") for d in cluster[:2]
    ]

    # The relation is broken: every certificate it registered is gone, the credential stays.
    state = integrator.run(integrator.on.relation_broken(state.get_relation(relation.id)), state)
    remaining = {e.name for e in a.client().trust.entries() if e.type == "client"}
    assert remaining == {"juju-credential"}
    assert wait_until(lambda: not pylxd_as(endpoints[0], unit0, cluster_cert).trusted)


# --- one standalone daemon --------------------------------------------------------------


@pytest.fixture
def listening(daemon: LxdDaemon) -> LxdDaemon:
    daemon.client().set_server_config({"core.https_address": daemon.address})
    return daemon


def test_a_standalone_server_is_published_at_its_endpoint(
    listening: LxdDaemon,
    integrator: CharmContext,
    credential: CertificatePair,
    pylxd_as: Callable[..., pylxd.Client],
) -> None:
    listening.client().trust.add(credential.certificate, name="juju-credential")
    requirer = generate_client_certificate("myapp-0")
    relation = api([requirer.certificate])
    state = integrator.run(
        integrator.on.relation_joined(relation, remote_unit=0),
        # Juju's EnsureHTTPS/EnsureHostPort: a bare address works.
        trusted_state(listening, credential, relation, endpoint=listening.host),
    )
    server_name = listening.client().server_info()["environment"]["server_name"]
    endpoint = f"https://{listening.address}"
    data = ProviderData.from_databag(state.get_relation(relation.id).local_unit_data)
    assert data is not None
    assert [(n.name, n.endpoint) for n in data.nodes] == [(server_name, endpoint)]
    assert data.trusted_fingerprints() == {fingerprint(requirer.certificate)}
    assert state.unit_status == testing.ActiveStatus(f"LXD {server_name} at {endpoint}")
    assert pylxd_as(endpoint, requirer, listening.server_cert).trusted


def test_fallback_config_reaches_a_real_daemon(
    listening: LxdDaemon,
    credential: CertificatePair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listening.client().trust.add(credential.certificate, name="juju-credential")
    ctx = integrator_on(tmp_path, monkeypatch, app_trusted=False, CONNECT_WAIT=1.0)
    config = {
        "lxd-endpoint": f"https://{listening.address}",
        # Pasted through a shell: newlines lost.
        "lxd-client-cert": credential.certificate.replace("\n", " "),
        "lxd-client-key": credential.private_key,
        "lxd-server-cert": listening.server_cert,
    }
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert isinstance(state.unit_status, testing.ActiveStatus)

    # The same, with the key in a Juju user secret (lxd-client-key-secret).
    secret = testing.Secret(tracked_content={"client-key": credential.private_key})
    config = {k: v for k, v in config.items() if k != "lxd-client-key"}
    config["lxd-client-key-secret"] = secret.id
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config, secrets={secret}))
    assert isinstance(state.unit_status, testing.ActiveStatus)


def test_an_untrusted_credential_is_reported(
    listening: LxdDaemon, integrator: CharmContext, credential: CertificatePair
) -> None:
    state = integrator.run(integrator.on.config_changed(), trusted_state(listening, credential))
    assert state.unit_status == testing.BlockedStatus(
        f"LXD at https://{listening.address} does not trust client-cert of the trusted "
        "credential: add it to LXD's trust store"
    )


def test_a_server_with_another_certificate_is_refused(
    listening: LxdDaemon, integrator: CharmContext, credential: CertificatePair
) -> None:
    listening.client().trust.add(credential.certificate, name="juju-credential")
    impostor = generate_client_certificate("impostor").certificate
    state = integrator.run(
        integrator.on.config_changed(),
        trusted_state(listening, credential, server_cert=impostor),
    )
    assert state.unit_status == testing.BlockedStatus(
        f"LXD at https://{listening.address} presented a certificate that does not match "
        "server-cert of the trusted credential"
    )


def test_an_unreachable_endpoint_is_reported(
    listening: LxdDaemon, integrator: CharmContext, credential: CertificatePair
) -> None:
    endpoint = f"https://{listening.host}:1"  # nothing listens on port 1
    state = integrator.run(
        integrator.on.update_status(), trusted_state(listening, credential, endpoint=endpoint)
    )
    assert state.unit_status == testing.BlockedStatus(
        f"cannot reach LXD at {endpoint}: connection refused"
    )


@pytest.fixture
def key_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """Where the client key lives during each connection, and with which modes."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen: list[dict[str, Any]] = []
    original = LxdClient.remote

    def spy(*args: Any, **kwargs: Any) -> LxdClient:
        client = original(*args, **kwargs)
        (directory,) = scratch.glob("lxd-client-*")
        seen.append(
            {
                "dir_mode": stat.S_IMODE(directory.stat().st_mode),
                "files": {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()},
            }
        )
        return client

    monkeypatch.setattr(LxdClient, "remote", spy)
    yield seen
    assert list(scratch.glob("lxd-client-*")) == [], "the key must not outlive the hook"


def test_the_client_key_lives_only_during_the_hook(
    listening: LxdDaemon,
    credential: CertificatePair,
    key_dirs: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In-process on purpose: the spy reads the key's directory while the
    # connection is open, inside the hook, which a dispatch process hides.
    integrator = integrator_on(tmp_path, monkeypatch, in_process=True, CONNECT_WAIT=1.0)
    listening.client().trust.add(credential.certificate, name="juju-credential")
    state = integrator.run(integrator.on.config_changed(), trusted_state(listening, credential))
    assert isinstance(state.unit_status, testing.ActiveStatus)
    integrator.run(integrator.on.remove(), dataclasses.replace(state))
    assert key_dirs == [
        {
            "dir_mode": 0o700,
            "files": {"client.crt": 0o644, "client.key": 0o600, "server.crt": 0o644},
        }
    ]


# --- the operator's ceiling (allowed-projects) -------------------------------------------


def reaches_only_ci(address: str, pair: CertificatePair, server_cert: str) -> None:
    with LxdClient.remote(address, pair, server_cert) as remote:
        remote.require_trusted()
        assert {p.name for p in remote.pylxd.projects.all()} == {"ci"}
        assert remote.pylxd.api.instances.get(params={"project": "ci"}).json()["metadata"] == []
        with pytest.raises(LXDAPIException, match="not authorized"):
            remote.pylxd.api.instances.get(params={"project": "default"})


def registered(daemon: LxdDaemon, pair: CertificatePair) -> tuple[bool, list[str]]:
    found = {e.fingerprint: e for e in daemon.client().trust.entries()}[
        fingerprint(pair.certificate)
    ]
    return found.restricted, found.projects


def test_a_standalone_server_registers_under_the_ceiling(
    listening: LxdDaemon, integrator: CharmContext, credential: CertificatePair
) -> None:
    lxd = listening.client()
    lxd.trust.add(credential.certificate, name="juju-credential")
    lxd.pylxd.projects.create("ci")
    unit = generate_client_certificate("myapp-0")
    relation = api([unit.certificate])
    state = trusted_state(listening, credential, relation)
    state = dataclasses.replace(state, config={"allowed-projects": "ci"})
    state = integrator.run(integrator.on.relation_changed(relation, remote_unit=0), state)
    assert state.unit_status.name == "active", state.unit_status.message
    assert registered(listening, unit) == (True, ["ci"])
    reaches_only_ci(listening.address, unit, listening.server_cert)

    # Lifting the ceiling re-registers it unrestricted, as before the option existed.
    state = integrator.run(integrator.on.config_changed(), dataclasses.replace(state, config={}))
    assert registered(listening, unit) == (False, [])


def test_every_member_of_a_cluster_holds_the_certificate_to_the_ceiling(
    cluster: list[LxdDaemon], integrator: CharmContext, credential: CertificatePair
) -> None:
    first = cluster[0]
    first.client().trust.add(credential.certificate, name="juju-credential")
    first.client().pylxd.projects.create("ci")
    unit = generate_client_certificate("myapp-0")
    relation = api([unit.certificate])
    state = trusted_state(first, credential, relation)
    # Registered unrestricted first, then the operator sets the ceiling.
    state = integrator.run(integrator.on.relation_changed(relation, remote_unit=0), state)
    assert registered(first, unit) == (False, [])
    state = integrator.run(
        integrator.on.config_changed(),
        dataclasses.replace(state, config={"allowed-projects": "ci"}),
    )
    assert state.unit_status.name == "active", state.unit_status.message
    for member in cluster:
        assert registered(member, unit) == (True, ["ci"])
        reaches_only_ci(member.address, unit, first.server_cert)


# --- a total deadline on talking to LXD --------------------------------------------------


class TricklingLxd(threading.Thread):
    """An HTTPS endpoint with a real LXD server certificate that answers one byte a second.

    Every read finishes well within the integrator's per-read timeout, so only a
    total deadline ends the hook; it gives up after a minute, which is how long a
    hook without one would hang here.
    """

    def __init__(self, daemon: LxdDaemon) -> None:
        super().__init__(daemon=True)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(daemon.directory / "server.crt", daemon.directory / "server.key")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        self.listener.settimeout(0.5)
        while not self.stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(raw,), daemon=True).start()

    def _answer(self, raw: socket.socket) -> None:
        with (
            contextlib.suppress(OSError, ssl.SSLError),
            self.tls.wrap_socket(raw, server_side=True) as conn,
        ):
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            deadline = time.monotonic() + 60
            while not self.stop.is_set() and time.monotonic() < deadline:
                conn.sendall(b" ")
                time.sleep(1)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def test_a_trickling_endpoint_costs_a_hook_no_more_than_its_deadline(
    daemon: LxdDaemon,
    credential: CertificatePair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integrator = integrator_on(tmp_path, monkeypatch, CONNECT_WAIT=1.0, HOOK_DEADLINE=3.0)
    server = TricklingLxd(daemon)
    try:
        endpoint = f"https://127.0.0.1:{server.port}"
        started = time.monotonic()
        state = integrator.run(
            integrator.on.update_status(), trusted_state(daemon, credential, endpoint=endpoint)
        )
        took = time.monotonic() - started
    finally:
        server.close()
    assert took < 3 + 15, f"the hook took {took:.0f}s"  # 60s without the deadline
    assert state.unit_status == testing.BlockedStatus(
        f"LXD at {endpoint} did not answer within 3 seconds in all: retrying at the next hook"
    )
