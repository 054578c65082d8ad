"""The operator's ceiling on `https` requirers (`https-allowed-projects`), on real daemons.

A restricted requirer's certificate reaches its project and nothing else
over HTTPS; an unrestricted request under the ceiling is refused and never
appears in LXD's trust list, on a standalone unit and on a 3-member cluster.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from ops import testing
from pylxd.exceptions import LXDAPIException

from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.interfaces.lxd_https import ServerInfo
from lxd_common.lxd import LxdClient
from tests.harness.agent_context import CharmContext
from tests.harness.databags import local_unit_data
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, LxdUnits, lxd_charm_on

CEILING = "ci"


def bag(pair: CertificatePair, projects: str | None) -> dict[str, str]:
    data = {"version": "1.0", "certificate": pair.certificate}
    if projects is not None:
        data["projects"] = projects
    return data


def trusted_fingerprints(lxd: LxdClient) -> set[str]:
    return {e.fingerprint for e in lxd.trust.entries()}


def reaches_only_ci(address: str, pair: CertificatePair, server_cert: str) -> None:
    with LxdClient.remote(address, pair, server_cert) as remote:
        remote.require_trusted()
        assert {p.name for p in remote.pylxd.projects.all()} == {"ci"}
        instances = remote.pylxd.api.instances
        assert instances.get(params={"project": "ci"}).json()["metadata"] == []
        with pytest.raises(LXDAPIException, match="not authorized"):
            instances.get(params={"project": "default"})


def test_standalone_serves_inside_the_ceiling_and_refuses_the_rest(
    daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx: CharmContext = lxd_charm_on(daemon, tmp_path, monkeypatch)
    lxd = daemon.client()
    restricted, greedy = generate_client_certificate("ci"), generate_client_certificate("root")
    rel = testing.Relation(
        "https",
        remote_app_name="client",
        id=4,
        remote_units_data={0: bag(restricted, "ci"), 1: bag(greedy, None)},
    )
    network = testing.Network("https", [testing.BindAddress([testing.Address(daemon.host)])])
    state = testing.State(
        config={
            "lxd-listen-https": True,
            "lxd-init-network": False,
            "https-allowed-projects": CEILING,
        },
        networks={network},
        relations={rel},
        resources=frozenset(EMPTY_RESOURCES),
    )
    state = ctx.run(ctx.on.install(), state)
    lxd.pylxd.projects.create("ci")
    state = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=0), replace(state, relations=frozenset({rel}))
    )
    assert state.unit_status == testing.BlockedStatus(
        "https relation: client/1 asked for unrestricted access; allowed: ci"
    )
    assert fingerprint(greedy.certificate) not in trusted_fingerprints(lxd)
    with LxdClient.remote(daemon.address, greedy, daemon.server_cert) as remote:
        assert not remote.trusted
    info = ServerInfo.from_databag(local_unit_data(state.get_relation(4)))
    assert info is not None
    reaches_only_ci(info.addresses[0], restricted, info.certificate)


def test_a_cluster_refuses_unrestricted_access_on_every_member(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units = LxdUnits(lxd_pool, tmp_path, monkeypatch, config={"https-allowed-projects": CEILING})
    units.add(3)
    units.sim.settle()
    leader_lxd = units.daemon("lxd/0").client()
    leader_lxd.pylxd.projects.create("ci")
    greedy, restricted = generate_client_certificate("root"), generate_client_certificate("ci")
    rel = testing.Relation(
        "https", remote_app_name="client", remote_units_data={0: bag(greedy, None)}
    )
    leader = units.sim.units["lxd/0"]
    leader.state = replace(leader.state, relations=frozenset({*leader.state.relations, rel}))
    units.sim.run("lxd/0", units.sim.on.relation_changed(rel, remote_unit=0))

    assert leader.state.unit_status == testing.BlockedStatus(
        "https relation: client/0 asked for unrestricted access; allowed: ci"
    )
    answer = leader.state.get_relation(rel.id).local_app_data
    assert ServerInfo.from_databag(answer) is None, "a refused relation gets no answer"
    for daemon in units.daemons.values():
        assert fingerprint(greedy.certificate) not in trusted_fingerprints(daemon.client())
        with LxdClient.remote(daemon.address, greedy, daemon.server_cert) as remote:
            assert not remote.trusted

    # The same unit asks for what the ceiling allows: it is trusted on every member.
    rel = replace(rel, remote_units_data={0: bag(restricted, "ci")})
    leader.state = replace(
        leader.state,
        relations=frozenset({*(r for r in leader.state.relations if r.id != rel.id), rel}),
    )
    units.sim.run("lxd/0", units.sim.on.relation_changed(rel, remote_unit=0))
    info = ServerInfo.from_databag(leader.state.get_relation(rel.id).local_app_data)
    assert info is not None
    for address in info.addresses:
        reaches_only_ci(address, restricted, info.certificate)
