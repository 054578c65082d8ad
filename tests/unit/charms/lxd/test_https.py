"""The `https` relation, provider side, driven by ops.testing against the fake machine."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
from ops import testing

from lxd_charm.https_provider import ClientOutcome, forget, serve_client
from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.interfaces.lxd_https import PROVIDER_SCHEMA, REQUIRER_SCHEMA, ServerInfo
from lxd_common.lxd import TrustStore
from tests.harness.databags import local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeTrust

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
HTTPS_NET = testing.Network("https", [testing.BindAddress([testing.Address("10.0.0.5")])])
ALICE = generate_client_certificate("alice")
BOB = generate_client_certificate("bob")


def request(cert: str, **extra: str) -> dict[str, str]:
    return {"version": "1.0", "certificate": cert, **extra}


def relation(*units: dict[str, str], relation_id: int = 7) -> testing.Relation:
    return testing.Relation(
        "https",
        remote_app_name="client",
        id=relation_id,
        remote_units_data=dict(enumerate(units)),
    )


def base(listen: bool = True, **state: Any) -> testing.State:
    return testing.State(
        config={"lxd-listen-https": listen, "lxd-init-network": False},
        networks={HTTPS_NET},
        resources=EMPTY,
        **state,
    )


def serve(
    ctx: testing.Context[Any], rel: testing.Relation, state: testing.State | None = None
) -> testing.State:
    """Install, then deliver relation-changed for ``rel``."""
    state = state or ctx.run(ctx.on.install(), base(relations={rel}))
    state = replace(state, relations=frozenset({rel}))
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def entries(host: FakeHost) -> dict[str, Any]:
    return {e.name: e for e in host.fake_lxd.trust.entries()}


def test_a_requirers_certificate_is_trusted_and_answered(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    out = serve(ctx, relation(request(ALICE.certificate)))
    entry = entries(host)["juju-relation-client/0"]
    assert entry.fingerprint == fingerprint(ALICE.certificate)
    assert (entry.restricted, entry.projects) == (False, [])
    bag = out.get_relation(7).local_unit_data
    jsonschema.validate(dict(bag), PROVIDER_SCHEMA)
    info = ServerInfo.from_databag(bag)
    assert info is not None
    assert info.addresses == ("10.0.0.5:8443",)
    assert info.certificate_fingerprint == fingerprint(host.fake_lxd.server_pair.certificate)
    assert out.unit_status.name == "active"


@pytest.mark.parametrize(
    ("projects", "restricted", "expected"),
    [(None, False, []), ("default", True, ["default"]), ("a,default", True, ["a", "default"])],
)
def test_projects_restrict_the_entry(
    ctx: testing.Context[Any],
    host: FakeHost,
    projects: str | None,
    restricted: bool,
    expected: list[str],
) -> None:
    if projects and "a" in projects.split(","):
        host.fake_lxd.trust.projects.add("a")
    bag = request(ALICE.certificate, **({} if projects is None else {"projects": projects}))
    jsonschema.validate(bag, REQUIRER_SCHEMA)
    serve(ctx, relation(bag))
    entry = entries(host)["juju-relation-client/0"]
    assert (entry.restricted, entry.projects) == (restricted, expected)


@pytest.mark.parametrize("projects", ["", ","])
def test_a_request_naming_no_project_is_never_trusted(
    ctx: testing.Context[Any], host: FakeHost, projects: str
) -> None:
    """Juju deletes an empty value, so "no project" cannot travel: refused, not unrestricted."""
    out = serve(ctx, relation(request(ALICE.certificate, projects=projects)))
    assert entries(host) == {}
    assert out.unit_status.name == "blocked"
    assert "projects is empty" in out.unit_status.message


def test_autoremove_is_in_the_name(ctx: testing.Context[Any], host: FakeHost) -> None:
    serve(ctx, relation(request(ALICE.certificate, autoremove="true")))
    assert set(entries(host)) == {"juju-relation-client/0:autoremove"}


def test_rotation_leaves_exactly_one_entry(ctx: testing.Context[Any], host: FakeHost) -> None:
    out = serve(ctx, relation(request(ALICE.certificate)))
    serve(ctx, relation(request(BOB.certificate)), out)
    assert [e.fingerprint for e in host.fake_lxd.trust.entries()] == [fingerprint(BOB.certificate)]


def test_changed_projects_update_the_restriction(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    host.fake_lxd.trust.projects.add("ci")
    out = serve(ctx, relation(request(ALICE.certificate, projects="default")))
    serve(ctx, relation(request(ALICE.certificate, projects="ci")), out)
    assert entries(host)["juju-relation-client/0"].projects == ["ci"]


def test_unknown_project_blocks_and_grants_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    out = serve(ctx, relation(request(ALICE.certificate, projects="nosuch")))
    assert entries(host) == {}
    assert out.unit_status.name == "blocked"
    assert "client/0" in out.unit_status.message and "nosuch" in out.unit_status.message


def test_a_bad_unit_does_not_stop_the_others(ctx: testing.Context[Any], host: FakeHost) -> None:
    out = serve(ctx, relation(request(ALICE.private_key), request(BOB.certificate)))
    assert set(entries(host)) == {"juju-relation-client/1"}
    assert out.unit_status.name == "blocked"
    assert "client/0" in out.unit_status.message and "private key" in out.unit_status.message


def test_unsupported_version_is_refused(ctx: testing.Context[Any], host: FakeHost) -> None:
    out = serve(ctx, relation({"version": "2.0", "certificate": ALICE.certificate}))
    assert entries(host) == {}
    assert "unsupported lxd-https version '2.0'" in out.unit_status.message


def test_listener_off_is_reported_and_heals(ctx: testing.Context[Any], host: FakeHost) -> None:
    rel = relation(request(ALICE.certificate))
    off = ctx.run(ctx.on.install(), base(listen=False, relations={rel}))
    off = ctx.run(ctx.on.relation_changed(off.get_relation(7), remote_unit=0), off)
    assert off.unit_status.name == "blocked"
    assert "lxd-listen-https=true" in off.unit_status.message
    bag = local_unit_data(off.get_relation(7))
    assert "addresses" not in bag  # Juju drops empty values: no address to offer
    jsonschema.validate(dict(bag), PROVIDER_SCHEMA)
    on = ctx.run(
        ctx.on.config_changed(), replace(off, config={**off.config, "lxd-listen-https": True})
    )
    assert on.unit_status.name == "active"
    assert local_unit_data(on.get_relation(7))["addresses"] == "10.0.0.5:8443"


def test_departed_unit_and_broken_relation_remove_only_their_entries(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    operator_cert = generate_client_certificate("operator")
    host.fake_lxd.trust.add(operator_cert.certificate, name="operator")
    rel = relation(request(ALICE.certificate), request(BOB.certificate))
    out = serve(ctx, rel)
    assert len(entries(host)) == 3
    out = ctx.run(
        ctx.on.relation_departed(out.get_relation(7), remote_unit=1, departing_unit=1), out
    )
    assert set(entries(host)) == {"operator", "juju-relation-client/0"}
    out = ctx.run(ctx.on.relation_broken(out.get_relation(7)), out)
    assert set(entries(host)) == {"operator"}
    assert out.unit_status.name == "active"


def test_same_relation_event_twice_is_a_no_op(ctx: testing.Context[Any], host: FakeHost) -> None:
    rel = relation(request(ALICE.certificate))
    out = serve(ctx, rel)
    first = dict(host.fake_lxd.trust.by_fingerprint)
    serve(ctx, rel, out)
    assert host.fake_lxd.trust.by_fingerprint == first


# --- serve_client and forget on their own: each decision, one wrong answer each ---


def trusted(*pairs: tuple[Any, str]) -> FakeTrust:
    """A trust store holding these (certificate pair, entry name)s."""
    trust = FakeTrust({"default"})
    for pair, name in pairs:
        trust.add(pair.certificate, name=name)
    return trust


def store(trust: FakeTrust) -> TrustStore:
    """The fake where the provider takes a real store (it behaves as LXD's, see fake_lxd)."""
    return cast("TrustStore", trust)


def test_a_served_unit_that_withdraws_its_certificate_loses_its_entry() -> None:
    trust = trusted((ALICE, "juju-relation-client/0"))
    outcome = serve_client(store(trust), "client/0", {}, recorded=fingerprint(ALICE.certificate))
    assert outcome == ClientOutcome("client/0", fingerprint=None, error=None)
    assert trust.entries() == []


def test_a_unit_that_has_sent_nothing_and_holds_nothing_is_left_alone() -> None:
    trust = trusted((BOB, "operator"))
    assert serve_client(store(trust), "client/0", {}, recorded=None) == ClientOutcome("client/0")
    assert [e.name for e in trust.entries()] == ["operator"]


def test_a_trusted_unit_whose_request_turns_invalid_loses_its_entry() -> None:
    trust = trusted((ALICE, "juju-relation-client/0"))
    outcome = serve_client(
        store(trust),
        "client/0",
        request(ALICE.private_key),
        recorded=fingerprint(ALICE.certificate),
    )
    assert trust.entries() == []
    assert outcome == ClientOutcome(
        "client/0",
        error="client/0: this is a private key, not a certificate; "
        "give the certificate (-----BEGIN CERTIFICATE-----) instead",
    )


def test_a_rotation_that_turns_autoremove_on_leaves_only_the_new_entry() -> None:
    trust = trusted((ALICE, "juju-relation-client/0"))
    outcome = serve_client(
        store(trust),
        "client/0",
        request(BOB.certificate, autoremove="true"),
        recorded=fingerprint(ALICE.certificate),
    )
    assert outcome == ClientOutcome("client/0", fingerprint=fingerprint(BOB.certificate))
    assert [(e.name, e.fingerprint) for e in trust.entries()] == [
        ("juju-relation-client/0:autoremove", fingerprint(BOB.certificate))
    ]


def test_an_entry_of_the_same_name_left_by_an_earlier_attempt_is_replaced() -> None:
    # A hook that added an entry and then failed before recording it: the name finds it.
    trust = trusted((ALICE, "juju-relation-client/0"))
    serve_client(store(trust), "client/0", request(BOB.certificate), recorded=None)
    assert [e.fingerprint for e in trust.entries()] == [fingerprint(BOB.certificate)]


def test_forget_skips_an_entry_that_is_already_gone_and_removes_the_rest() -> None:
    trust = trusted((ALICE, "juju-relation-client/0"), (BOB, "juju-relation-client/1"))
    gone = fingerprint(generate_client_certificate("gone").certificate)
    forget(store(trust), [gone, fingerprint(ALICE.certificate)])
    assert [e.name for e in trust.entries()] == ["juju-relation-client/1"]


def test_a_client_outcome_is_a_value_that_cannot_be_changed() -> None:
    outcome = ClientOutcome("client/0", fingerprint="ab")
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.error = "changed"  # type: ignore[misc]
    assert {outcome, ClientOutcome("client/0", fingerprint="ab")} == {outcome}
