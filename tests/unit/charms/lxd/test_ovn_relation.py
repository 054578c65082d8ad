"""`ovsdb-cms` and `certificates` through the charm: every event, and bad data sent."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm import ovn, ovn_relation
from lxd_charm.outcomes import BlockedError, WaitingError
from tests.harness.databags import get_relation, local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.fake_ovn import FakeProbes, OvnFakeLxd
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.ovn import OvnCa, legacy_answer, requested_csrs, v4_answer

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
CMS_NET = testing.Network("ovsdb-cms", [testing.BindAddress([testing.Address("10.0.0.5")])])
CA = OvnCa()
CERT, KEY = CA.issue("lxd-0")
CERTS_ID, CMS_ID = 5, 6
ACTIVE = "standalone; no network listener"
NEEDS_CERTS = (
    "ovsdb-cms needs the certificates relation: juju integrate lxd:certificates vault "
    "(the certificate authority ovn-central uses)"
)


@pytest.fixture
def lxd(host: FakeHost) -> OvnFakeLxd:
    host.fake_lxd = OvnFakeLxd()
    return host.fake_lxd


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> FakeProbes:
    fake = FakeProbes()
    monkeypatch.setattr(ovn, "probe_northbound", fake)
    return fake


def cms(*addresses: str, relation_id: int = CMS_ID) -> testing.Relation:
    return testing.Relation(
        "ovsdb-cms",
        remote_app_name="ovn-central",
        id=relation_id,
        remote_units_data={i: {"bound-address": a} for i, a in enumerate(addresses)},
    )


def certs(bag: dict[str, str] | None = None, **kwargs: Any) -> testing.Relation:
    return testing.Relation(
        "certificates",
        remote_app_name="vault",
        id=CERTS_ID,
        remote_units_data={0: bag if bag is not None else {}},
        **kwargs,
    )


def legacy(cert: str = CERT, key: str = KEY, ca: OvnCa = CA) -> testing.Relation:
    return certs(legacy_answer(ca, cert, key))


def base(**state: Any) -> testing.State:
    config = {"lxd-init-network": False, **state.pop("config", {})}
    return testing.State(config=config, networks={CMS_NET}, resources=EMPTY, **state)


def installed(
    ctx: testing.Context[Any], *relations: testing.Relation, **config: Any
) -> testing.State:
    return ctx.run(ctx.on.install(), base(relations=set(relations), config=config))


def changed(
    ctx: testing.Context[Any], state: testing.State, relation: testing.RelationBase
) -> testing.State:
    others = {r for r in state.relations if r.id != relation.id}
    state = replace(state, relations=frozenset({*others, relation}))
    return ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)


def files(host: FakeHost) -> ovn.OvnFiles:
    return ovn.OvnFiles(host.root)


def nb(lxd: OvnFakeLxd) -> str | None:
    return lxd.config.get("network.ovn.northbound_connection")


# --- ovsdb-cms ---------------------------------------------------------------


def test_ovsdb_cms_without_certificates_blocks_naming_the_ca_and_still_publishes(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = installed(ctx, cms('"10.0.0.9"'))
    out = ctx.run(ctx.on.relation_joined(state.get_relation(CMS_ID), remote_unit=0), state)
    assert out.unit_status == testing.BlockedStatus(NEEDS_CERTS)
    assert local_unit_data(out.get_relation(CMS_ID))["cms-client-bound-address"] == "10.0.0.5"
    # Where central listens comes from ovsdb-cms alone, not from this unit's certificate.
    assert nb(lxd) == "ssl:10.0.0.9:6641"
    assert probes.asked == []


def test_both_relations_point_lxd_at_every_central_unit(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    state = installed(ctx, legacy())
    out = changed(ctx, state, cms('"10.0.0.9"', '"10.0.0.10"', '"2001:db8::1"'))
    assert nb(lxd) == "ssl:10.0.0.10:6641,ssl:10.0.0.9:6641,ssl:[2001:db8::1]:6641"
    assert out.unit_status == testing.ActiveStatus(f"{ACTIVE}; ovn northbound reachable (3/3)")
    assert sorted(a for a, _ in probes.asked) == ["10.0.0.10", "10.0.0.9", "2001:db8::1"]
    assert {source for _, source in probes.asked} == {"vault/0"}
    _, cert, key = files(host).paths
    assert cert.read_text() == CERT
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_order_units_arrive_in_does_not_reconfigure_lxd(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.2"', '"10.0.0.1"'))
    first = nb(lxd)
    changed(ctx, state, cms('"10.0.0.1"', '"10.0.0.2"'))
    assert nb(lxd) == first == "ssl:10.0.0.1:6641,ssl:10.0.0.2:6641"


def test_no_bound_address_yet_waits(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    out = changed(ctx, installed(ctx, legacy()), cms(""))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the ovsdb-cms units to publish their address"
    )
    assert nb(lxd) is None


def test_an_unparseable_bound_address_is_ignored_beside_good_ones(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.9"', "not-an-ip"))
    assert nb(lxd) == "ssl:10.0.0.9:6641"
    assert out.unit_status == testing.ActiveStatus(
        f"{ACTIVE}; ovn northbound reachable (1/1, 1 ignored)"
    )


def test_only_unparseable_bound_addresses_block_naming_the_unit(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.999"'))
    assert out.unit_status == testing.BlockedStatus(
        "ovsdb-cms: ovn-central/0 sent bound-address '\"10.0.0.999\"' is not an IP address; "
        "fix ovn-central's bound address"
    )
    assert nb(lxd) is None


def test_a_departed_central_unit_leaves_the_connection(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"', '"10.0.0.2"'))
    rel = cms('"10.0.0.1"', '"10.0.0.2"')
    left = replace(rel, remote_units_data={0: {"bound-address": '"10.0.0.1"'}})
    state = replace(state, relations=frozenset({state.get_relation(CERTS_ID), left}))
    ctx.run(ctx.on.relation_departed(left, remote_unit=1, departing_unit=1), state)
    assert nb(lxd) == "ssl:10.0.0.1:6641"


def test_ovsdb_cms_broken_unsets_what_the_charm_set(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert nb(lxd)
    out = ctx.run(ctx.on.relation_broken(state.get_relation(CMS_ID)), state)
    assert nb(lxd) is None
    assert out.unit_status == testing.ActiveStatus(ACTIVE)


def test_ovsdb_cms_broken_keeps_a_connection_the_operator_changed(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    lxd.config["network.ovn.northbound_connection"] = "ssl:192.0.2.1:6641"
    ctx.run(ctx.on.relation_broken(state.get_relation(CMS_ID)), state)
    assert nb(lxd) == "ssl:192.0.2.1:6641"


def test_lxd_without_ovn_networks_blocks(
    ctx: testing.Context[Any], host: FakeHost, probes: FakeProbes
) -> None:
    host.fake_lxd = OvnFakeLxd(extensions=())
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert out.unit_status == testing.BlockedStatus(
        "this LXD has no OVN networks (API extension network_type_ovn): set snap-channel "
        "to a newer LXD, or remove the ovsdb-cms relation"
    )
    assert host.fake_lxd.config.get("network.ovn.northbound_connection") is None


def test_ovn_builtin_off_blocks_saying_which_option(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = installed(ctx, legacy(), **{"snap-config-ovn-builtin": False})
    out = changed(ctx, state, cms('"10.0.0.1"'))
    assert out.unit_status == testing.BlockedStatus(
        "ovsdb-cms needs the snap's own OVN tools: juju config lxd snap-config-ovn-builtin=true"
    )


def test_ovn_builtin_is_on_by_default(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, snapd: FakeSnapd
) -> None:
    ctx.run(ctx.on.install(), base())
    assert snapd.get_config("lxd").get("ovn", {}).get("builtin") in (True, "true")


# --- certificates ------------------------------------------------------------


def test_a_certificate_that_does_not_match_its_key_blocks(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, other_key = CA.issue("other")
    out = changed(ctx, installed(ctx, cms('"10.0.0.1"')), legacy(key=other_key))
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("certificates: vault/0 sent unusable TLS material: ")
    assert "does not match" in out.unit_status.message
    assert not files(host).present()
    assert nb(lxd) == "ssl:10.0.0.1:6641"  # from ovsdb-cms alone: the next certificate uses it


def test_a_missing_ca_blocks(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    out = changed(
        ctx, installed(ctx, cms('"10.0.0.1"')), certs({"client.cert": CERT, "client.key": KEY})
    )
    assert out.unit_status == testing.BlockedStatus("certificates: vault/0 sent no CA")


def test_a_provider_that_sent_nothing_yet_waits(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    out = changed(ctx, installed(ctx, cms('"10.0.0.1"')), certs())
    assert out.unit_status == testing.WaitingStatus("waiting for a client certificate from vault")


def test_the_current_interface_sends_a_csr_and_takes_the_signed_certificate(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    state = installed(ctx, certs(), cms('"10.0.0.1"'))
    state = changed(ctx, state, state.get_relation(CERTS_ID))
    sent = dict(local_unit_data(state.get_relation(CERTS_ID)))
    (csr,) = requested_csrs(sent)
    assert "CN=lxd-0" in _subject(csr)
    assert state.unit_status == testing.WaitingStatus(
        "waiting for a client certificate from vault"
    )

    answered = replace(get_relation(state, CERTS_ID), remote_app_data=v4_answer(CA, sent))
    out = changed(ctx, state, answered)
    assert out.unit_status == testing.ActiveStatus(f"{ACTIVE}; ovn northbound reachable (1/1)")
    _, cert, key = files(host).paths
    assert _subject(cert.read_text()) == _subject(csr)
    assert "PRIVATE KEY" in key.read_text()
    assert probes.asked[-1] == ("10.0.0.1", "vault (tls-certificates)")


def test_an_issued_certificate_wins_over_the_legacy_shared_pair(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    state = installed(ctx, legacy(), cms('"10.0.0.1"'))
    state = changed(ctx, state, state.get_relation(CERTS_ID))
    sent = dict(local_unit_data(state.get_relation(CERTS_ID)))
    both = replace(get_relation(state, CERTS_ID), remote_app_data=v4_answer(CA, sent))
    changed(ctx, state, both)
    _, cert, _ = files(host).paths
    assert cert.read_text() != CERT
    assert probes.asked[-1][1] == "vault (tls-certificates)"


def test_rotation_rewrites_the_files(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, cms('"10.0.0.1"')), legacy())
    new_cert, new_key = CA.issue("lxd-0")
    changed(ctx, state, legacy(new_cert, new_key))
    _, cert, key = files(host).paths
    assert (cert.read_text(), key.read_text()) == (new_cert, new_key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_certificates_broken_removes_the_files_and_blocks(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, cms('"10.0.0.1"')), legacy())
    assert files(host).present()
    out = ctx.run(ctx.on.relation_broken(state.get_relation(CERTS_ID)), state)
    assert not files(host).present()
    assert out.unit_status == testing.BlockedStatus(NEEDS_CERTS)


def test_certificates_departed_unit_is_reconciled(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, cms('"10.0.0.1"')), legacy())
    gone = replace(get_relation(state, CERTS_ID), remote_units_data={})
    state = replace(state, relations=frozenset({state.get_relation(CMS_ID), gone}))
    out = ctx.run(ctx.on.relation_departed(gone, remote_unit=0, departing_unit=0), state)
    assert out.unit_status == testing.WaitingStatus("waiting for a client certificate from vault")


def test_certificates_alone_writes_the_files_and_sets_nothing_else(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    out = changed(ctx, installed(ctx), legacy())
    assert files(host).present()
    assert nb(lxd) is None
    assert out.unit_status == testing.ActiveStatus(ACTIVE)


def test_lxd_with_ovn_ssl_config_takes_server_keys_instead_of_files(
    ctx: testing.Context[Any], host: FakeHost, probes: FakeProbes
) -> None:
    host.fake_lxd = lxd = OvnFakeLxd(("network_type_ovn", "ovn_ssl_config"))
    state = changed(ctx, installed(ctx, cms('"10.0.0.1"')), legacy())
    assert lxd.config["network.ovn.client_cert"] == CERT
    assert lxd.config["network.ovn.ca_cert"] == CA.pem
    assert "network.ovn.client_key" in lxd.config
    assert not files(host).present()
    ctx.run(ctx.on.relation_broken(state.get_relation(CERTS_ID)), state)
    assert not any(key.startswith("network.ovn.client") for key in lxd.config)


# --- what the probe says -------------------------------------------------------


def test_a_refused_certificate_blocks(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    probes.answers["10.0.0.1"] = ("refused", "tlsv13 alert certificate required")
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert out.unit_status == testing.BlockedStatus(
        "ovn: ovn-central/0 at 10.0.0.1:6641 refused the client certificate from vault/0 "
        "(tlsv13 alert certificate required): relate lxd:certificates to the CA that signs "
        "ovn-central's"
    )
    assert nb(lxd) == "ssl:10.0.0.1:6641"  # set anyway: the next certificate uses it


def test_a_central_certificate_from_another_ca_blocks(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    probes.answers["10.0.0.1"] = ("untrusted", "unable to get local issuer certificate")
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert out.unit_status == testing.BlockedStatus(
        "ovn: the certificate of ovn-central/0 at 10.0.0.1:6641 is not signed by the CA from "
        "vault/0 (unable to get local issuer certificate)"
    )


def test_an_unreachable_central_waits(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    probes.answers["10.0.0.1"] = ("unreachable", "Connection refused")
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert out.unit_status == testing.WaitingStatus(
        "ovn: central unreachable: ovn-central/0 at 10.0.0.1:6641: Connection refused"
    )


def test_one_reachable_central_unit_is_enough(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    probes.answers["10.0.0.2"] = ("unreachable", "Connection refused")
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"', '"10.0.0.2"'))
    assert out.unit_status == testing.ActiveStatus(f"{ACTIVE}; ovn northbound reachable (1/2)")


def test_something_else_on_the_port_blocks(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    probes.answers["10.0.0.1"] = ("not-ovn", "it does not serve OVN_Northbound")
    out = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert out.unit_status == testing.BlockedStatus(
        "ovn: ovn-central/0 at 10.0.0.1:6641 is not OVN's northbound database"
    )


# --- cost and shape ------------------------------------------------------------


def test_nothing_happens_before_lxd_is_initialised(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    lxd.refuse_preseed = "no"
    out = ctx.run(ctx.on.install(), base(relations={legacy(), cms('"10.0.0.1"')}))
    assert out.unit_status.name == "blocked"
    assert not files(host).present()
    assert probes.asked == []


def test_a_hook_without_certificates_does_not_import_the_tls_library() -> None:
    """The library costs ~90 ms of pydantic per hook; only its relation pays for it."""
    code = (
        "import sys; import charm, lxd_charm.ovn_relation, lxd_charm.ovn_tls; "
        "print('charmlibs.interfaces.tls_certificates' in sys.modules, 'pydantic' in sys.modules)"
    )
    src = Path(ovn_relation.__file__).parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=src, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def _subject(pem: str) -> str:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()
    except ValueError:
        return x509.load_pem_x509_csr(pem.encode()).subject.rfc4514_string()


def test_interface_fields_in_use_are_the_documented_ones() -> None:
    doc = (Path(__file__).parents[4] / "docs/interfaces/ovsdb-cms.md").read_text()
    for key in (ovn_relation.CMS_CLIENT_KEY, ovn_relation.BOUND_ADDRESS_KEY):
        assert f"`{key}`" in doc
    assert "cms-client-bound-address: 10.0.0.5" in doc


# --- in a cluster ----------------------------------------------------------------


@pytest.mark.parametrize("leader", [True, False])
def test_in_a_cluster_every_member_writes_files_and_only_the_leader_sets_lxds_keys(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost, leader: bool
) -> None:
    """LXD 5.0 reads the files on each member; its OVN server keys are cluster-wide."""
    from lxd_charm.config import LxdConfig
    from lxd_charm.machine import Machine
    from lxd_charm.memory import Memory

    state = base(relations={legacy(), cms('"10.0.0.1"')}, leader=leader)
    with ctx(ctx.on.update_status(), state) as manager:
        memory = Memory(initialised=True)
        machine = Machine(host, memory, LxdConfig(mode="cluster"), environ={})
        report = ovn_relation.OvnRelation(manager.charm, machine, None).serve()
        # Checked before the context runs the hook itself on leaving the block.
        assert report.problem is None
        assert report.summary == "ovn northbound reachable (1/1)"
        assert files(host).present()
        assert nb(lxd) == ("ssl:10.0.0.1:6641" if leader else None)
        assert ("northbound" in memory.ovn) is leader
        published = manager.charm.model.get_relation("ovsdb-cms", CMS_ID)
        assert published is not None
        assert published.data[manager.charm.unit]["cms-client-bound-address"] == "10.0.0.5"


# --- a cluster's shared keys across leader changes ---------------------------

PEER_ID = 9
RECORD = ovn_relation.SHARED_RECORD


def serve_as_member(
    ctx: testing.Context[Any],
    host: FakeHost,
    *relations: testing.RelationBase,
    leader: bool = True,
    app_bag: dict[str, str] | None = None,
    ovn_memory: dict[str, str] | None = None,
) -> tuple[ovn_relation.OvnReport, dict[str, str], dict[str, str]]:
    """One cluster member's OVN step: its report, the peer app bag after it, its memory."""
    from lxd_charm.config import LxdConfig
    from lxd_charm.machine import Machine
    from lxd_charm.memory import Memory

    peer = testing.PeerRelation("cluster", id=PEER_ID, local_app_data=app_bag or {})
    state = base(relations={peer, *relations}, leader=leader)
    with ctx(ctx.on.update_status(), state) as manager:
        memory = Memory(initialised=True, ovn=dict(ovn_memory or {}))
        machine = Machine(host, memory, LxdConfig(mode="cluster"), environ={})
        report = ovn_relation.OvnRelation(manager.charm, machine, None).serve()
        relation = manager.charm.model.get_relation("cluster", PEER_ID)
        assert relation is not None
        bag = dict(relation.data[manager.charm.app])
    return report, bag, memory.ovn


def test_the_leader_records_the_shared_keys_where_the_next_leader_reads_them(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, bag, memory = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    assert json.loads(bag[RECORD]) == {"northbound": "ssl:10.0.0.1:6641"}
    assert memory == {"files": "true"}  # the files are this member's own


def test_a_new_leader_unsets_the_connection_an_earlier_leader_set_when_ovsdb_cms_goes(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    """The old leader set it and remembers it; the new one, which never set it, must undo it."""
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    assert nb(lxd) == "ssl:10.0.0.1:6641"
    report, after, _ = serve_as_member(ctx, host, legacy(), app_bag=bag)
    assert nb(lxd) is None
    assert RECORD not in after
    assert report.problem is None


def test_a_new_leader_unsets_it_with_no_ovn_relation_left_at_all(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    _, after, _ = serve_as_member(ctx, host, app_bag=bag)
    assert nb(lxd) is None
    assert RECORD not in after


def test_an_old_leader_that_is_no_longer_leader_leaves_the_shared_keys_alone(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    lxd.config["network.ovn.northbound_connection"] = "ssl:10.0.0.7:6641"  # the new leader's
    serve_as_member(ctx, host, legacy(), leader=False, app_bag=bag)
    assert nb(lxd) == "ssl:10.0.0.7:6641"


def test_the_new_leaders_view_replaces_the_old_one(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    _, after, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.2"'), app_bag=bag)
    assert nb(lxd) == "ssl:10.0.0.2:6641"
    assert json.loads(after[RECORD]) == {"northbound": "ssl:10.0.0.2:6641"}


def test_a_leader_waiting_for_its_own_certificate_still_follows_central(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    """Each unit has its own certificate; where central listens is the same for all."""
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    report, _, _ = serve_as_member(ctx, host, certs(), cms('"10.0.0.2"'), app_bag=bag)
    assert isinstance(report.problem, WaitingError)
    assert nb(lxd) == "ssl:10.0.0.2:6641"


def test_a_leader_that_sees_no_usable_central_address_unsets_what_a_leader_set(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    report, after, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.999"'), app_bag=bag)
    assert isinstance(report.problem, BlockedError)
    assert nb(lxd) is None
    assert RECORD not in after


def test_an_operators_own_connection_is_kept_whoever_leads(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    lxd.config["network.ovn.northbound_connection"] = "ssl:192.0.2.1:6641"
    serve_as_member(ctx, host, legacy(), app_bag=bag)
    assert nb(lxd) == "ssl:192.0.2.1:6641"


def test_what_an_earlier_revision_kept_in_the_leaders_memory_moves_to_the_peer_bag(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    lxd.config["network.ovn.northbound_connection"] = "ssl:10.0.0.1:6641"
    _, after, memory = serve_as_member(
        ctx, host, legacy(), ovn_memory={"northbound": "ssl:10.0.0.1:6641"}
    )
    assert nb(lxd) is None
    assert "northbound" not in memory
    assert RECORD not in after


def test_a_new_leader_unsets_the_tls_server_keys_an_earlier_leader_set(
    ctx: testing.Context[Any], host: FakeHost, probes: FakeProbes
) -> None:
    host.fake_lxd = lxd = OvnFakeLxd(("network_type_ovn", "ovn_ssl_config"))
    _, bag, _ = serve_as_member(ctx, host, legacy(), cms('"10.0.0.1"'))
    assert json.loads(bag[RECORD]) == {"northbound": "ssl:10.0.0.1:6641", "server-keys": "true"}
    serve_as_member(ctx, host, app_bag=bag)
    assert not any(key.startswith("network.ovn.") for key in lxd.config)


# --- the TLS library's own secrets -------------------------------------------


def _private_key_secrets(state: testing.State) -> list[testing.Secret]:
    return [s for s in state.secrets if s.label and "private-key" in s.label]


def secret_ids_tool(
    directory: Path, state: testing.State, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Juju's `secret-ids` hook tool, which the library runs and Scenario lacks: this unit's."""
    ids = "\n".join(s.id for s in state.secrets if s.owner == "unit")
    tool = directory / "secret-ids"
    tool.write_text(f"#!/bin/sh\ncat <<'IDS'\n{ids}\nIDS\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:{os.environ['PATH']}")


def test_certificates_broken_removes_the_librarys_private_key_secret_and_no_other(
    ctx: testing.Context[Any],
    lxd: OvnFakeLxd,
    probes: FakeProbes,
    host: FakeHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine = testing.Secret({"token": "keep me"}, label="not-the-librarys", owner="unit")
    state = replace(installed(ctx, certs(), cms('"10.0.0.1"')), secrets=frozenset({mine}))
    state = changed(ctx, state, state.get_relation(CERTS_ID))
    sent = dict(local_unit_data(state.get_relation(CERTS_ID)))
    answered = replace(get_relation(state, CERTS_ID), remote_app_data=v4_answer(CA, sent))
    state = changed(ctx, state, answered)
    assert state.unit_status.name == "active", state.unit_status.message
    (key_secret,) = _private_key_secrets(state)
    assert key_secret.owner == "unit"
    assert files(host).present()
    assert len(state.secrets) == 3  # ours, the library's key, its certificate

    secret_ids_tool(tmp_path, state, monkeypatch)
    out = ctx.run(ctx.on.relation_broken(state.get_relation(CERTS_ID)), state)
    assert _private_key_secrets(out) == []
    assert [s.label for s in out.secrets] == ["not-the-librarys"]
    assert not files(host).present()
    assert out.unit_status == testing.BlockedStatus(NEEDS_CERTS)


# --- update-status: OVN's part of the status stays true ----------------------

REACHABLE = testing.ActiveStatus(f"{ACTIVE}; ovn northbound reachable (1/1)")
UNREACHABLE = testing.WaitingStatus(
    "ovn: central unreachable: ovn-central/0 at 10.0.0.1:6641: Connection refused"
)


def test_update_status_on_a_healthy_unit_sees_central_go_away(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert state.unit_status == REACHABLE
    probes.answers["10.0.0.1"] = ("unreachable", "Connection refused")
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == UNREACHABLE


def test_update_status_sees_central_come_back(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    probes.answers["10.0.0.1"] = ("unreachable", "Connection refused")
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    assert state.unit_status == UNREACHABLE
    probes.answers.clear()
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == REACHABLE


def test_update_status_with_ovn_unchanged_probes_and_leaves_the_status(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    asked = len(probes.asked)
    config = dict(lxd.config)
    with ctx(ctx.on.update_status(), state) as manager:
        out = manager.run()
        assert manager.charm._found is None  # the status was still true: not decided again
    assert len(probes.asked) == asked + 1
    assert out.unit_status == REACHABLE
    assert lxd.config == config


def test_update_status_sees_a_certificate_that_central_now_refuses(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx, legacy()), cms('"10.0.0.1"'))
    probes.answers["10.0.0.1"] = ("refused", "tlsv13 alert certificate required")
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status.name == "blocked"
    assert "refused the client certificate" in out.unit_status.message


def test_update_status_without_ovsdb_cms_probes_nothing(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = changed(ctx, installed(ctx), legacy())
    out = ctx.run(ctx.on.update_status(), state)
    assert probes.asked == []
    assert out.unit_status == testing.ActiveStatus(ACTIVE)


def test_the_cluster_leaders_update_status_keeps_ovns_part_of_the_status(
    ctx: testing.Context[Any], lxd: OvnFakeLxd, probes: FakeProbes, host: FakeHost
) -> None:
    from lxd_charm.config import LxdConfig
    from lxd_charm.machine import Machine
    from lxd_charm.memory import Memory

    state = base(relations={legacy(), cms('"10.0.0.1"')}, leader=True)

    class Found:
        problem = None
        ovn: ovn_relation.OvnReport | None = None

    found = Found()
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(mode="cluster"), environ={})
        stale = ovn_relation.stale_on_update_status(manager.charm, machine, None, found)
    assert stale is False
    assert found.ovn is not None and found.ovn.summary == "ovn northbound reachable (1/1)"


def test_probes_run_side_by_side_within_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    gate = threading.Event()

    def silent(address: str, material: ovn.TlsMaterial, timeout: float = 0.0) -> ovn.Probe:
        if address != "10.0.0.3":
            gate.wait(5)  # a central unit that never answers
        return ovn.Probe(ovn.northbound_target(address), "reachable")

    monkeypatch.setattr(ovn, "probe_northbound", silent)
    material = ovn.TlsMaterial.from_pem(CA.pem, CERT, KEY, "vault/0")
    started = time.monotonic()
    got = ovn.probe_all({"a/0": "10.0.0.1", "a/1": "10.0.0.2", "a/2": "10.0.0.3"}, material, 0.3)
    took = time.monotonic() - started
    gate.set()
    assert took < 1.0
    assert {unit: probe.kind for unit, probe in got.items()} == {
        "a/0": "unreachable",
        "a/1": "unreachable",
        "a/2": "reachable",
    }
    assert got["a/0"].detail == "no answer in 0.3 s"


@pytest.mark.parametrize(
    ("refusal", "kind"),
    [
        ("Failed to update server config: no available dqlite leader server found", "waiting"),
        ("cannot set 'network.ovn.northbound_connection': unknown key", "blocked"),
    ],
)
def test_lxd_refusing_the_keys_waits_only_while_its_database_settles(
    ctx: testing.Context[Any],
    lxd: OvnFakeLxd,
    probes: FakeProbes,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
    kind: str,
) -> None:
    from lxd_common.errors import LxdApiError

    state = installed(ctx, legacy())
    real = lxd.set_server_config

    def refuse(values: Any, *, current: Any = None) -> list[str]:
        if ovn.NORTHBOUND_KEY in values:
            raise LxdApiError(f"LXD refused setting server config: {refusal}", 500)
        return real(values, current=current)

    monkeypatch.setattr(lxd, "set_server_config", refuse)
    out = changed(ctx, state, cms('"10.0.0.1"'))
    assert out.unit_status.name == kind
    assert out.unit_status.message == f"ovn: LXD refused setting server config: {refusal}"
