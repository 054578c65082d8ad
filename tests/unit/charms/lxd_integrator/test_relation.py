"""The `api` relation (`lxd` interface v1.0): nodes published, certificates (un)registered."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from ops import testing

import lxd_integrator.connection
from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.errors import LxdApiError, LxdUnreachableError
from lxd_common.interfaces.lxd import (
    MAX_CERTIFICATES_PER_UNIT,
    PROVIDER_SCHEMA,
    ProviderData,
)
from lxd_common.lxd import LxdClient
from tests.harness.databags import local_app_data, local_unit_data

MODEL_UUID = "5a1f03c2-8d3e-4b7a-9c1d-2e3f4a5b6c7d"
PREFIX = "lxd-integrator:5a1f03c2:"


@pytest.fixture
def ctx(charm_type: Any) -> testing.Context[Any]:
    # The application's name in the bundles (the charm is lxd-cloud-integrator).
    return testing.Context(charm_type, app_name="lxd-integrator", app_trusted=True)


@pytest.fixture
def state(cloud_spec: Callable[..., testing.CloudSpec]) -> Callable[..., testing.State]:
    """A trusted leader (by default) with the given relations."""

    def make(*relations: testing.Relation, leader: bool = True, **kwargs: Any) -> testing.State:
        return testing.State(
            leader=leader,
            relations=relations,
            model=testing.Model(type="lxd", uuid=MODEL_UUID, cloud_spec=cloud_spec()),
            **kwargs,
        )

    return make


def api(
    *unit_certs: list[str] | str, relation_id: int | None = None, app: str = "myapp"
) -> testing.Relation:
    """An `api` relation whose remote unit N sends `unit_certs[N]` (a raw string is sent as is)."""
    units = {
        n: {"client_certificates": certs if isinstance(certs, str) else json.dumps(certs)}
        for n, certs in enumerate(unit_certs)
    }
    kwargs: dict[str, Any] = {} if relation_id is None else {"id": relation_id}
    return testing.Relation("api", remote_app_name=app, remote_units_data=units, **kwargs)


def nodes(bag: Mapping[str, str]) -> list[dict[str, Any]]:
    published: list[dict[str, Any]] = json.loads(bag["nodes"])
    return published


def out(state: testing.State, relation: testing.Relation) -> testing.Relation:
    return state.get_relation(relation.id)  # type: ignore[return-value]


# --- nodes ---------------------------------------------------------------------------


def test_one_server_is_published_in_app_and_unit_bags(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    validate_databag: Callable[..., None],
) -> None:
    relation = api([certs[0].certificate])
    result = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), state(relation))
    rel = out(result, relation)
    fp = fingerprint(certs[0].certificate)
    expected = [{"name": "lxd0", "endpoint": "https://10.0.0.1:8443", "trusted_certs_fp": [fp]}]
    for bag in (local_app_data(rel), local_unit_data(rel)):
        assert bag["version"] == "1.0"
        assert nodes(bag) == expected
        assert "errors" not in bag
        validate_databag(bag, PROVIDER_SCHEMA)
    assert result.unit_status == testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")


def test_three_members_are_published(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    validate_databag: Callable[..., None],
) -> None:
    lxd.cluster_of(3)
    relation = api([certs[0].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    rel = out(result, relation)
    fp = fingerprint(certs[0].certificate)
    assert nodes(rel.local_app_data) == [
        {"name": f"m{i}", "endpoint": f"https://10.0.0.{i}:8443", "trusted_certs_fp": [fp]}
        for i in (1, 2, 3)
    ]
    assert local_unit_data(rel)["nodes"] == local_app_data(rel)["nodes"]
    validate_databag(rel.local_app_data, PROVIDER_SCHEMA)
    assert result.unit_status == testing.ActiveStatus(
        "LXD cluster of 3 members at https://10.0.0.1:8443"
    )


def test_nodes_are_published_before_any_certificate_arrives(
    ctx: testing.Context[Any], lxd: Any, state: Callable[..., testing.State]
) -> None:
    relation = testing.Relation("api", remote_units_data={0: {}})
    result = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), state(relation))
    assert nodes(out(result, relation).local_app_data) == [
        {"name": "lxd0", "endpoint": "https://10.0.0.1:8443", "trusted_certs_fp": []}
    ]


def test_a_non_leader_publishes_its_unit_bag_and_leaves_the_trust_store_alone(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate, certs[1].certificate])
    lxd.trust.put(certs[1].certificate, f"{PREFIX}{relation.id}:myapp/0")
    result = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0), state(relation, leader=False)
    )
    rel = out(result, relation)
    assert rel.local_app_data == {}
    # Accurate: only what the trust store holds (the leader adds the other one).
    assert nodes(rel.local_unit_data)[0]["trusted_certs_fp"] == [fingerprint(certs[1].certificate)]
    assert "trust.add" not in lxd.calls and "trust.remove" not in lxd.calls


# --- certificates --------------------------------------------------------------------


def test_each_units_certificates_are_trusted_under_its_name(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api(
        [certs[0].certificate, certs[1].certificate], [certs[2].certificate], relation_id=7
    )
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=1), state(relation))
    assert lxd.client_entries() == {
        fingerprint(certs[0].certificate): f"{PREFIX}7:myapp/0",
        fingerprint(certs[1].certificate): f"{PREFIX}7:myapp/0",
        fingerprint(certs[2].certificate): f"{PREFIX}7:myapp/1",
    }
    assert all(not e.restricted for e in lxd.trust.by_fingerprint.values())
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == sorted(
        fingerprint(c.certificate) for c in certs[:3]
    )


def test_trusted_certs_fp_is_per_relation(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    one = api([certs[0].certificate], relation_id=1, app="one")
    two = api([certs[1].certificate], relation_id=2, app="two")
    result = ctx.run(ctx.on.relation_changed(one, remote_unit=0), state(one, two))
    assert nodes(out(result, one).local_app_data)[0]["trusted_certs_fp"] == [
        fingerprint(certs[0].certificate)
    ]
    assert nodes(out(result, two).local_app_data)[0]["trusted_certs_fp"] == [
        fingerprint(certs[1].certificate)
    ]
    assert lxd.client_entries() == {
        fingerprint(certs[0].certificate): f"{PREFIX}1:one/0",
        fingerprint(certs[1].certificate): f"{PREFIX}2:two/0",
    }


def test_a_certificate_no_longer_sent_is_removed(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate, certs[1].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert len(lxd.client_entries()) == 2
    changed = dataclasses.replace(
        out(first, relation),
        remote_units_data={0: {"client_certificates": json.dumps([certs[1].certificate])}},
    )
    result = ctx.run(
        ctx.on.relation_changed(changed, remote_unit=0),
        dataclasses.replace(first, relations=frozenset({changed})),
    )
    fp = fingerprint(certs[1].certificate)
    assert lxd.client_entries() == {fp: f"{PREFIX}{relation.id}:myapp/0"}
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == [fp]


def test_a_unit_that_stops_sending_loses_its_certificates(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    emptied = dataclasses.replace(out(first, relation), remote_units_data={0: {}})
    result = ctx.run(
        ctx.on.relation_changed(emptied, remote_unit=0),
        dataclasses.replace(first, relations=frozenset({emptied})),
    )
    assert lxd.client_entries() == {}
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == []


def test_a_departing_unit_loses_its_certificates_others_keep_theirs(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate], [certs[1].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert len(lxd.client_entries()) == 2
    result = ctx.run(
        ctx.on.relation_departed(out(first, relation), remote_unit=1, departing_unit=1), first
    )
    fp = fingerprint(certs[0].certificate)
    assert lxd.client_entries() == {fp: f"{PREFIX}{relation.id}:myapp/0"}
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == [fp]


def test_a_broken_relation_loses_all_its_certificates(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    gone = api([certs[0].certificate], [certs[1].certificate], relation_id=1, app="gone")
    stays = api([certs[2].certificate], relation_id=2, app="stays")
    first = ctx.run(ctx.on.relation_changed(gone, remote_unit=0), state(gone, stays))
    assert len(lxd.client_entries()) == 3
    ctx.run(ctx.on.relation_broken(out(first, gone)), first)
    assert lxd.client_entries() == {fingerprint(certs[2].certificate): f"{PREFIX}2:stays/0"}


def test_a_certificate_two_units_share_survives_one_departing(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    shared = certs[0].certificate
    relation = api([shared], [shared])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    fp = fingerprint(shared)
    assert lxd.client_entries() == {fp: f"{PREFIX}{relation.id}:myapp/0"}
    result = ctx.run(
        ctx.on.relation_departed(out(first, relation), remote_unit=0, departing_unit=0), first
    )
    assert lxd.client_entries() == {fp: f"{PREFIX}{relation.id}:myapp/1"}, "renamed, kept"
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == [fp]


def test_entries_it_did_not_create_are_left_alone(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    lxd.trust.put(certs[0].certificate, "operator-added")
    lxd.trust.put(certs[1].certificate, "lxd-integrator:0badf00d:3:other/0")  # other model
    lxd.trust.put(certs[2].certificate, "other-integrator:5a1f03c2:3:x/0")  # other app
    relation = api([certs[0].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert lxd.client_entries() == {
        fingerprint(certs[0].certificate): "operator-added",
        fingerprint(certs[1].certificate): "lxd-integrator:0badf00d:3:other/0",
        fingerprint(certs[2].certificate): "other-integrator:5a1f03c2:3:x/0",
    }
    # Already trusted by someone else: reported as trusted, never removed by us.
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == [
        fingerprint(certs[0].certificate)
    ]
    emptied = dataclasses.replace(out(result, relation), remote_units_data={0: {}})
    ctx.run(
        ctx.on.relation_changed(emptied, remote_unit=0),
        dataclasses.replace(result, relations=frozenset({emptied})),
    )
    assert fingerprint(certs[0].certificate) in lxd.client_entries()


def test_entries_of_a_relation_that_is_gone_are_cleaned_up(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    lxd.trust.put(certs[3].certificate, f"{PREFIX}99:ghost/0")
    relation = api([certs[0].certificate])
    ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert fingerprint(certs[3].certificate) not in lxd.client_entries()


def test_reconciling_twice_changes_nothing(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate], [certs[1].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    lxd.calls.clear()
    second = ctx.run(ctx.on.relation_changed(out(first, relation), remote_unit=1), first)
    assert [c for c in lxd.calls if c in ("trust.add", "trust.update", "trust.remove")] == []
    assert local_app_data(out(second, relation)) == local_app_data(out(first, relation))


# --- bad input from a requiring unit ------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("not json", "client_certificates is not valid JSON"),
        ('{"a": 1}', "client_certificates must be a JSON list of PEM certificates, not a object"),
        (json.dumps(["hello"]), "certificate 1 of 1: no PEM markers found"),
        (json.dumps([42]), "certificate 1 of 1 is a JSON number, not PEM text"),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    validate_databag: Callable[..., None],
    sent: str,
    reason: str,
) -> None:
    relation = api(sent, [certs[1].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    rel = out(result, relation)
    errors = json.loads(local_app_data(rel)["errors"])
    assert list(errors) == ["myapp/0"]
    assert errors["myapp/0"].startswith(reason)
    validate_databag(rel.local_app_data, PROVIDER_SCHEMA)
    # The other unit is still served.
    assert lxd.client_entries() == {
        fingerprint(certs[1].certificate): f"{PREFIX}{relation.id}:myapp/1"
    }
    assert isinstance(result.unit_status, testing.BlockedStatus)
    assert result.unit_status.message.startswith(f"ignored certificates from myapp/0: {reason}")


def test_a_private_key_is_refused_and_never_logged(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = certs[0].private_key
    relation = api([key], [certs[1].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert result.unit_status == testing.BlockedStatus(
        "ignored certificates from myapp/0: certificate 1 of 1: this is a private key, not a "
        "certificate; give the certificate (-----BEGIN CERTIFICATE-----) instead"
    )
    assert fingerprint(certs[1].certificate) in lxd.client_entries()
    key_body = key.splitlines()[1]
    logged = caplog.text + "".join(str(line) for line in ctx.juju_log)
    assert key_body not in logged
    assert "PRIVATE KEY-----" not in logged
    assert certs[1].certificate.splitlines()[1] not in logged


def test_a_certificate_with_its_key_attached_is_refused(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    bundle = certs[0].certificate + certs[0].private_key
    relation = api([bundle])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert "holds a private key as well as a certificate" in result.unit_status.message
    assert lxd.client_entries() == {}


def test_ten_thousand_certificates_are_refused_others_served(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    flood = json.dumps([certs[0].certificate] * 10_000)
    small_flood = json.dumps(["x"] * 10_000)
    relation = api(flood, small_flood, [certs[1].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=2), state(relation))
    errors = json.loads(local_app_data(out(result, relation))["errors"])
    assert errors["myapp/0"].startswith(f"client_certificates is {len(flood)} characters long")
    assert errors["myapp/1"] == (
        f"10000 certificates sent; at most {MAX_CERTIFICATES_PER_UNIT} are accepted per unit"
    )
    assert lxd.client_entries() == {
        fingerprint(certs[1].certificate): f"{PREFIX}{relation.id}:myapp/2"
    }
    assert result.unit_status.message.startswith(
        "ignored certificates from myapp/0 (and 1 more units)"
    )


def test_twenty_certificates_are_accepted(
    ctx: testing.Context[Any], lxd: Any, state: Callable[..., testing.State]
) -> None:
    many = [
        generate_client_certificate(f"c{i}").certificate for i in range(MAX_CERTIFICATES_PER_UNIT)
    ]
    relation = api(many)
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert len(lxd.client_entries()) == MAX_CERTIFICATES_PER_UNIT
    assert result.unit_status == testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")


def test_a_unit_turning_bad_loses_what_it_had(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert lxd.client_entries()
    bad = dataclasses.replace(
        out(first, relation), remote_units_data={0: {"client_certificates": "[1"}}
    )
    ctx.run(
        ctx.on.relation_changed(bad, remote_unit=0),
        dataclasses.replace(first, relations=frozenset({bad})),
    )
    assert lxd.client_entries() == {}


def test_a_members_server_certificate_is_refused(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    lxd.trust.put(certs[0].certificate, "m9", "server")
    relation = api([certs[0].certificate, certs[1].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    fp = fingerprint(certs[0].certificate)
    assert lxd.trust.by_fingerprint[fp].name == "m9"
    errors = json.loads(local_app_data(out(result, relation))["errors"])
    assert errors == {
        "myapp/0": f"certificate {fp[:12]} is LXD's own server certificate, "
        "not a client certificate"
    }
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == [
        fingerprint(certs[1].certificate)
    ]


def test_a_certificate_lxd_refuses_is_reported_for_its_unit(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    lxd.refuse_additions = True
    relation = api([certs[0].certificate])
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    fp = fingerprint(certs[0].certificate)
    errors = json.loads(local_app_data(out(result, relation))["errors"])
    assert errors["myapp/0"].startswith(f"certificate {fp[:12]}: LXD refused")
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == []


def test_errors_clear_once_the_unit_behaves(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api("garbage")
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert "errors" in local_app_data(out(first, relation))
    fixed = dataclasses.replace(
        out(first, relation),
        remote_units_data={0: {"client_certificates": json.dumps([certs[0].certificate])}},
    )
    result = ctx.run(
        ctx.on.relation_changed(fixed, remote_unit=0),
        dataclasses.replace(first, relations=frozenset({fixed})),
    )
    assert "errors" not in local_app_data(out(result, relation))
    assert result.unit_status == testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")


# --- update-status ----------------------------------------------------------------------


def test_update_status_only_lists_members_when_nothing_changed(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    lxd.cluster_of(3)
    relation = api([certs[0].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    lxd.calls.clear()
    result = ctx.run(ctx.on.update_status(), first)
    assert lxd.calls == ["server_info", "cluster.members"]
    assert local_app_data(out(result, relation)) == local_app_data(out(first, relation))
    assert result.unit_status == testing.ActiveStatus(
        "LXD cluster of 3 members at https://10.0.0.1:8443"
    )


def test_update_status_keeps_reporting_refused_units(
    ctx: testing.Context[Any], lxd: Any, state: Callable[..., testing.State]
) -> None:
    relation = api("garbage")
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    result = ctx.run(ctx.on.update_status(), first)
    assert result.unit_status == first.unit_status
    assert isinstance(result.unit_status, testing.BlockedStatus)


def test_update_status_refreshes_nodes_when_membership_changes(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    validate_databag: Callable[..., None],
) -> None:
    lxd.cluster_of(3)
    relation = api([certs[0].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    lxd.members.pop()  # m3 leaves the cluster
    result = ctx.run(ctx.on.update_status(), first)
    rel = out(result, relation)
    fp = fingerprint(certs[0].certificate)
    for bag in (rel.local_app_data, rel.local_unit_data):
        assert [(n["name"], n["trusted_certs_fp"]) for n in nodes(bag)] == [
            ("m1", [fp]),
            ("m2", [fp]),
        ]
        validate_databag(bag, PROVIDER_SCHEMA)
    assert result.unit_status == testing.ActiveStatus(
        "LXD cluster of 2 members at https://10.0.0.1:8443"
    )


def test_update_status_finishes_a_reconcile_that_failed(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate])
    lxd.reachable = False
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert first.unit_status == testing.BlockedStatus(
        "cannot reach LXD at https://10.0.0.1:8443: connection refused"
    )
    assert out(first, relation).local_app_data == {}
    lxd.reachable = True
    result = ctx.run(ctx.on.update_status(), first)
    assert fingerprint(certs[0].certificate) in lxd.client_entries()
    assert nodes(out(result, relation).local_app_data)[0]["trusted_certs_fp"] == [
        fingerprint(certs[0].certificate)
    ]


def test_published_data_reads_back_with_the_shared_model(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    lxd.cluster_of(2)
    relation = api([certs[0].certificate], "nope")
    result = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    data = ProviderData.from_databag(out(result, relation).local_app_data)
    assert data is not None
    assert [n.endpoint for n in data.nodes] == ["https://10.0.0.1:8443", "https://10.0.0.2:8443"]
    assert data.trusted_fingerprints() == {fingerprint(certs[0].certificate)}
    assert set(data.errors) == {"myapp/1"}


def test_update_status_on_a_non_leader_catches_up_with_the_leader(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate])
    first = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0), state(relation, leader=False)
    )
    assert nodes(out(first, relation).local_unit_data)[0]["trusted_certs_fp"] == []
    lxd.trust.put(certs[0].certificate, f"{PREFIX}{relation.id}:myapp/0")  # the leader's work
    lxd.calls.clear()
    result = ctx.run(ctx.on.update_status(), first)
    assert lxd.calls == ["server_info", "trust.entries"]
    assert nodes(out(result, relation).local_unit_data)[0]["trusted_certs_fp"] == [
        fingerprint(certs[0].certificate)
    ]


def test_lxd_going_away_mid_hook_is_finished_on_update_status(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relation = api([certs[0].certificate])

    def gone() -> None:
        raise LxdUnreachableError(
            "cannot reach LXD while listing certificates: ('Connection aborted.', "
            "ConnectionResetError(104, 'Connection reset by peer'))"
        )

    monkeypatch.setattr(lxd.trust, "entries", gone)
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert first.unit_status == testing.BlockedStatus(
        "cannot reach LXD at https://10.0.0.1:8443: connection reset by peer"
    )
    monkeypatch.undo()
    monkeypatch.setattr(LxdClient, "remote", lxd.remote)
    monkeypatch.setattr(lxd_integrator.connection, "CONNECT_WAIT", 0.0)
    result = ctx.run(ctx.on.update_status(), first)
    assert fingerprint(certs[0].certificate) in lxd.client_entries()
    assert result.unit_status == testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")


def test_lxd_refusing_a_removal_fails_the_hook(
    ctx: testing.Context[Any],
    lxd: Any,
    state: Callable[..., testing.State],
    certs: list[CertificatePair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lxd.trust.put(certs[0].certificate, f"{PREFIX}99:ghost/0")

    def refuse(_: str) -> None:
        raise LxdApiError("LXD refused removing trusted certificate: database is locked", 500)

    monkeypatch.setattr(lxd.trust, "remove", refuse)
    with pytest.raises(testing.errors.UncaughtCharmError, match="database is locked"):
        ctx.run(ctx.on.update_status(), state())
