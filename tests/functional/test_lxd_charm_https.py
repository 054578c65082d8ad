"""The `https` relation served by the LXD charm's real code on a real daemon.

ops.testing plays Juju and the requiring charm; the certificate a requirer
sends must then open (and, after clean-up, close) a real HTTPS connection.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ops import testing
from pylxd.exceptions import LXDAPIException

from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.interfaces.lxd_https import PROVIDER_SCHEMA, ServerInfo
from lxd_common.lxd import LxdClient
from tests.harness.agent_context import CharmContext
from tests.harness.databags import local_unit_data
from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_on


@pytest.fixture
def ctx(daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return lxd_charm_on(daemon, tmp_path, monkeypatch)


def requirer(*pairs: CertificatePair, projects: str | None = None) -> testing.Relation:
    bags = {}
    for index, pair in enumerate(pairs):
        bag = {"version": "1.0", "certificate": pair.certificate, "autoremove": "true"}
        if projects is not None:
            bag["projects"] = projects
        bags[index] = bag
    return testing.Relation("https", remote_app_name="ci", id=3, remote_units_data=bags)


def installed(ctx: CharmContext, daemon: LxdDaemon, rel: testing.Relation) -> testing.State:
    network = testing.Network("https", [testing.BindAddress([testing.Address(daemon.host)])])
    state = testing.State(
        config={"lxd-listen-https": True, "lxd-init-network": False},
        networks={network},
        relations={rel},
        resources=frozenset(EMPTY_RESOURCES),
    )
    return ctx.run(ctx.on.install(), state)


def changed(ctx: CharmContext, state: testing.State, rel: testing.Relation) -> testing.State:
    state = replace(state, relations=frozenset({rel}))
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def test_requirer_certificate_opens_exactly_its_project(
    ctx: CharmContext, daemon: LxdDaemon
) -> None:
    lxd = daemon.client()
    pair = generate_client_certificate("ci-runner")
    state = installed(ctx, daemon, requirer(pair))
    for name in ("ci", "prod"):
        lxd.pylxd.projects.create(name)
    state = changed(ctx, state, requirer(pair, projects="ci"))
    assert state.unit_status.name == "active", state.unit_status.message

    bag = dict(local_unit_data(state.get_relation(3)))
    jsonschema.validate(bag, PROVIDER_SCHEMA)
    info = ServerInfo.from_databag(bag)
    assert info is not None
    assert info.addresses == (daemon.address,)
    # What the requirer is told to expect is what the server really presents.
    with LxdClient.remote(info.addresses[0], pair, info.certificate) as remote:
        remote.require_trusted()
        assert {p.name for p in remote.pylxd.projects.all()} == {"ci"}
        instances = remote.pylxd.api.instances
        assert instances.get(params={"project": "ci"}).json()["metadata"] == []
        with pytest.raises(LXDAPIException, match="not authorized"):
            instances.get(params={"project": "prod"})
    entry = lxd.trust.find("juju-relation-ci/0:autoremove")
    assert entry is not None and entry.projects == ["ci"]


def test_unknown_project_grants_nothing(ctx: CharmContext, daemon: LxdDaemon) -> None:
    pair = generate_client_certificate("ci-runner")
    state = installed(ctx, daemon, requirer(pair, projects="nosuch"))
    assert state.unit_status.name == "blocked"
    assert "nosuch" in state.unit_status.message
    with LxdClient.remote(daemon.address, pair, daemon.server_cert) as remote:
        assert not remote.trusted


def test_rotation_then_break_leaves_nothing_behind(ctx: CharmContext, daemon: LxdDaemon) -> None:
    lxd = daemon.client()
    old, new = generate_client_certificate("old"), generate_client_certificate("new")
    state = installed(ctx, daemon, requirer(old))
    state = changed(ctx, state, requirer(new))
    ours = [e for e in lxd.trust.entries() if e.name.startswith("juju-relation-")]
    assert [e.fingerprint for e in ours] == [fingerprint(new.certificate)]
    with LxdClient.remote(daemon.address, old, daemon.server_cert) as remote:
        assert not remote.trusted, "the rotated-out certificate no longer opens LXD"

    state = ctx.run(ctx.on.relation_broken(state.get_relation(3)), state)
    assert [e for e in lxd.trust.entries() if e.type == "client"] == []
    with LxdClient.remote(daemon.address, new, daemon.server_cert) as remote:
        assert not remote.trusted
