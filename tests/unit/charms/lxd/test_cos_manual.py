"""`prometheus-manual` (the machine prometheus2 charm): one metrics certificate per related unit.

What prometheus2 reads is the interface layer's request/response shape
(charms.reactive `RequesterEndpoint`/`ResponderEndpoint`): every key
`request_<id>` in each LXD unit's bag, a JSON object with `request_id`,
`job_name`, `job_data`, `ca_cert`, `client_cert` and `client_key`, read by
EVERY prometheus2 unit. So each prometheus2 unit gets its own request, its
own certificate (an application secret) and its own `metrics` trust entry,
and a departed unit loses all three while the others keep theirs.
The interface is docs/interfaces/prometheus-manual.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from ops import testing

from lxd_charm.cos import scrape
from lxd_common.certs import check_key_matches, fingerprint, generate_client_certificate
from tests.harness.databags import local_app_data, local_unit_data, tracked_content
from tests.harness.fake_host import FakeHost
from tests.harness.juju_sim import Sim
from tests.unit.charms.lxd.test_charm_cluster import formed, run
from tests.unit.charms.lxd.test_metrics_endpoint import (
    installed,
    metrics_entries,
    peers,
    relate,
    sim,  # noqa: F401  (the cluster fixture)
)

REL = 40


def manual(*units: int, relation_id: int = REL) -> testing.Relation:
    """prometheus2 on `manual-jobs`, with these units (each writes junk we must ignore)."""
    return testing.Relation(
        "prometheus-manual",
        interface="prometheus-manual",
        remote_app_name="prometheus2",
        id=relation_id,
        remote_units_data={n: {"junk": "{{"} for n in units or (0,)},
    )


def requests_in(bag: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    return {k: json.loads(v) for k, v in bag.items() if k.startswith("request_")}


def requests_of(state: testing.State) -> dict[str, dict[str, Any]]:
    return requests_in(local_unit_data(state.get_relation(REL)))


def by_remote_unit(requests: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requests by the prometheus2 unit they are for (the request id's tail)."""
    return {f"prometheus2/{r['request_id'].rsplit('_', 1)[-1]}": r for r in requests.values()}


def strip_model(requests: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        unit: {k: v for k, v in r.items() if k != "request_id"}
        for unit, r in by_remote_unit(requests).items()
    }


def unit_record(state: testing.State) -> dict[str, str]:
    peer = next(r for r in state.relations if r.endpoint == "cluster")
    record: dict[str, str] = json.loads(local_app_data(peer).get(scrape.UNIT_SECRETS_KEY) or "{}")
    return record


def app_secrets(state: testing.State) -> dict[str, testing.Secret]:
    return {s.id: s for s in state.secrets if s.owner == "app"}


def with_units(state: testing.State, *units: int) -> testing.State:
    """Juju's relation-list after units joined or departed: the relation has exactly these."""
    rel = state.get_relation(REL)
    assert isinstance(rel, testing.Relation)
    data = {n: {"junk": "{{"} for n in units}
    others = {r for r in state.relations if r.id != REL}
    return replace(state, relations=frozenset({*others, replace(rel, remote_units_data=data)}))


def joined_two(ctx: testing.Context[Any]) -> testing.State:
    state = installed(ctx, manual(0, 1), peers())
    return ctx.run(ctx.on.relation_changed(state.get_relation(REL), remote_unit=0), state)


# --- standalone ------------------------------------------------------------------


def test_each_prometheus2_unit_gets_its_own_request_certificate_and_trust_entry(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = joined_two(ctx)
    assert state.unit_status.name == "active", state.unit_status.message
    requests = requests_of(state)
    assert set(requests) == {
        f"request_{state.model.name}_lxd_0_prometheus2_0",
        f"request_{state.model.name}_lxd_0_prometheus2_1",
    }
    for key, request in requests.items():
        assert key == f"request_{request['request_id']}"
        assert request["job_name"] == "lxd/0"
        job = request["job_data"]
        assert job["metrics_path"] == "/1.0/metrics" and job["scheme"] == "https"
        assert job["static_configs"] == [{"targets": ["10.0.9.5:8444"]}]
        # prometheus2 replaces the placeholder with the file it writes `ca_cert` to.
        assert job["tls_config"]["ca_file"] == "__ca_file__"
        assert "insecure_skip_verify" not in job["tls_config"]
        assert request["ca_cert"] == host.fake_lxd.server_pair.certificate
        check_key_matches(request["client_cert"], request["client_key"])

    mine = by_remote_unit(requests)
    assert mine["prometheus2/0"]["client_cert"] != mine["prometheus2/1"]["client_cert"]
    entries = metrics_entries(host)
    assert set(entries) == {"juju-metrics-prometheus2-0-40", "juju-metrics-prometheus2-1-40"}
    for unit in (0, 1):
        entry = entries[f"juju-metrics-prometheus2-{unit}-40"]
        assert entry.fingerprint == fingerprint(mine[f"prometheus2/{unit}"]["client_cert"])
    assert [e for e in host.fake_lxd.trust.entries() if e.type == "client"] == []

    # Each key is kept in its own application secret, recorded per unit for the next leader.
    record = unit_record(state)
    assert set(record) == {"40:prometheus2/0", "40:prometheus2/1"}
    secrets = app_secrets(state)
    for unit in (0, 1):
        content = tracked_content(secrets[record[f"40:prometheus2/{unit}"]])
        assert content["private-key"] == mine[f"prometheus2/{unit}"]["client_key"]
    assert "scrape_jobs" not in local_app_data(state.get_relation(REL))


def test_a_departed_unit_loses_its_certificate_and_the_other_keeps_its_own(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = joined_two(ctx)
    before = requests_of(state)
    kept = by_remote_unit(before)["prometheus2/0"]
    record = unit_record(state)

    state = with_units(state, 0)
    rel = state.get_relation(REL)
    state = ctx.run(ctx.on.relation_departed(rel, remote_unit=1, departing_unit=1), state)
    after = requests_of(state)
    assert by_remote_unit(after) == {"prometheus2/0": kept}, "the other request is untouched"
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus2-0-40"}
    assert metrics_entries(host)["juju-metrics-prometheus2-0-40"].fingerprint == fingerprint(
        kept["client_cert"]
    )
    assert unit_record(state) == {"40:prometheus2/0": record["40:prometheus2/0"]}
    assert set(app_secrets(state)) == {record["40:prometheus2/0"]}


def test_a_joining_unit_gets_a_new_certificate_and_the_others_are_unchanged(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = joined_two(ctx)
    before = by_remote_unit(requests_of(state))
    state = with_units(state, 0, 1, 2)
    state = ctx.run(ctx.on.relation_joined(state.get_relation(REL), remote_unit=2), state)
    after = by_remote_unit(requests_of(state))
    assert set(after) == {"prometheus2/0", "prometheus2/1", "prometheus2/2"}
    assert {u: after[u] for u in before} == before
    assert len({r["client_cert"] for r in after.values()}) == 3
    assert len(metrics_entries(host)) == 3


def test_relation_broken_removes_every_units_entry_request_and_secret(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = joined_two(ctx)
    state = ctx.run(ctx.on.relation_broken(state.get_relation(REL)), state)
    assert metrics_entries(host) == {}
    assert app_secrets(state) == {}
    assert unit_record(state) == {}


def test_the_same_hook_twice_changes_nothing(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = joined_two(ctx)
    again = ctx.run(ctx.on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    assert requests_of(again) == requests_of(state)
    assert again.secrets == state.secrets
    assert len(metrics_entries(host)) == 2


def test_a_new_leader_keeps_each_units_secret_and_the_same_requests(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    first = joined_two(ctx)
    requests = requests_of(first)
    record = unit_record(first)
    # Another standalone unit becomes leader: it sees the app's secrets and the record.
    secrets = set(app_secrets(first).values())
    peer = peers({scrape.UNIT_SECRETS_KEY: json.dumps(record)})
    state = installed(ctx, manual(0, 1), peer, leader=False, secrets=secrets)
    state = ctx.run(ctx.on.leader_elected(), replace(state, leader=True))
    # The same request for each unit (the model's name aside: a new State, a new model).
    assert strip_model(requests_of(state)) == strip_model(requests)
    assert unit_record(state) == record
    assert set(app_secrets(state)) == set(record.values())


def test_standalone_unit_that_does_not_lead_trusts_each_units_certificate(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    pairs = {n: generate_client_certificate(f"prometheus2-{n}-metrics") for n in (0, 1)}
    secrets = {
        n: testing.Secret(
            tracked_content={"certificate": p.certificate, "private-key": p.private_key}
        )
        for n, p in pairs.items()
    }
    record = {f"40:prometheus2/{n}": s.id for n, s in secrets.items()}
    peer = peers({scrape.UNIT_SECRETS_KEY: json.dumps(record)})
    state = installed(ctx, manual(0, 1), peer, leader=False, secrets=set(secrets.values()))
    state = ctx.run(ctx.on.relation_changed(state.get_relation(REL), remote_unit=0), state)
    entries = metrics_entries(host)
    for n, pair in pairs.items():
        assert entries[f"juju-metrics-prometheus2-{n}-40"].fingerprint == fingerprint(
            pair.certificate
        )
    mine = by_remote_unit(requests_of(state))
    assert {u: r["client_cert"] for u, r in mine.items()} == {
        f"prometheus2/{n}": p.certificate for n, p in pairs.items()
    }
    assert unit_record(state) == record, "only the leader writes the record"


def test_a_unit_waiting_for_the_leaders_secret_keeps_the_entry_in_use(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """An unreadable secret this hook is not a departure: the entry stays."""
    pair = generate_client_certificate("prometheus2-0-metrics")
    host.fake_lxd.trust.add(pair.certificate, "juju-metrics-prometheus2-0-40", kind="metrics")
    record = {"40:prometheus2/0": "secret:0000000000000000000b"}
    peer = peers({scrape.UNIT_SECRETS_KEY: json.dumps(record)})
    state = installed(ctx, manual(0), peer, leader=False)
    ctx.run(ctx.on.relation_changed(state.get_relation(REL), remote_unit=0), state)
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus2-0-40"}


def test_a_per_application_entry_from_before_is_replaced_by_per_unit_ones(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """What an earlier version left (one entry and secret for the application) is cleaned."""
    old = generate_client_certificate("prometheus2-metrics")
    host.fake_lxd.trust.add(old.certificate, "juju-metrics-prometheus2-40", kind="metrics")
    secret = testing.Secret(
        tracked_content={"certificate": old.certificate, "private-key": old.private_key},
        owner="app",
    )
    peer = peers({"metrics-endpoint-secrets": json.dumps({"40": secret.id})})
    state = installed(ctx, manual(0), peer, secrets={secret})
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus2-0-40"}
    assert secret.id not in app_secrets(state)
    peer_out = next(r for r in state.relations if r.endpoint == "cluster")
    assert "metrics-endpoint-secrets" not in local_app_data(peer_out)


@pytest.mark.parametrize(
    "record",
    [
        "not json",
        "[1]",
        json.dumps({"40": "secret:x"}),
        json.dumps({"x:prometheus2/0": "secret:x"}),
        json.dumps({"40:prometheus2/0": 5}),
        json.dumps({"40:prometheus2/0": ""}),
    ],
)
def test_a_malformed_record_gets_fresh_certificates(
    ctx: testing.Context[Any], host: FakeHost, record: str
) -> None:
    state = installed(ctx, manual(0), peers({scrape.UNIT_SECRETS_KEY: record}))
    assert state.unit_status.name == "active", state.unit_status.message
    assert list(unit_record(state)) == ["40:prometheus2/0"]
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus2-0-40"}


def test_unit_secret_ids_reads_only_well_formed_entries() -> None:
    raw = json.dumps(
        {"40:prometheus2/0": "secret:a", "41:p/1": "secret:b", "7": "secret:c", "8:x": "s"}
    )
    assert scrape.unit_secret_ids(raw) == {
        (40, "prometheus2/0"): "secret:a",
        (41, "p/1"): "secret:b",
    }
    assert scrape.unit_secret_ids(None) == {}
    assert scrape.dump_unit_secret_ids({}) == ""
    ids = {(41, "p/1"): "secret:b", (40, "prometheus2/0"): "secret:a"}
    assert scrape.unit_secret_ids(scrape.dump_unit_secret_ids(ids)) == ids


def test_unit_trust_names_carry_the_relation_id() -> None:
    name = scrape.unit_trust_name("prometheus2/12", 40)
    assert name == "juju-metrics-prometheus2-12-40"
    assert scrape.relation_of(name) == 40


def test_without_a_listener_it_blocks_and_sends_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx, manual(0), peers(), metrics=False)
    assert state.unit_status == testing.BlockedStatus(
        "prometheus-manual: scrapers cannot reach LXD: set lxd-listen-metrics=true "
        "(or lxd-listen-https=true)"
    )
    assert requests_of(state) == {}


# --- cluster ---------------------------------------------------------------------


def test_cluster_leader_sends_one_request_per_unit_over_every_member(
    sim: Sim,  # noqa: F811
    host: FakeHost,
) -> None:
    machines = formed(sim, 2)
    relate(sim, 0, 1, rel=manual(0, 1))
    unit1 = sim.units["lxd/1"]
    stale = replace(manual(0, 1), local_unit_data={"request_old": "{}"})
    unit1.state = replace(
        unit1.state,
        relations=frozenset(
            {*(r for r in unit1.state.relations if r.endpoint != "prometheus-manual"), stale}
        ),
    )
    out1 = run(sim, 1, "config_changed")
    assert requests_of(out1) == {}, "a member that does not lead sends nothing"
    out0 = run(sim, 0, "relation_changed", 1)
    requests = by_remote_unit(requests_of(out0))
    assert set(requests) == {"prometheus2/0", "prometheus2/1"}
    for request in requests.values():
        assert request["job_name"] == "lxd"
        assert request["request_id"].split("_")[1] == "lxd"
        assert request["job_data"]["static_configs"] == [
            {"targets": ["10.0.0.1:8444", "10.0.0.2:8444"]}
        ]
    entries = {e.name: e for e in machines[0].lxd.trust.entries() if e.type == "metrics"}
    assert set(entries) == {"juju-metrics-prometheus2-0-40", "juju-metrics-prometheus2-1-40"}
    assert not machines[1].lxd.trust.entries(), "the cluster's store is the leader's"


def test_cluster_leader_change_keeps_each_units_certificate(
    sim: Sim,  # noqa: F811
    host: FakeHost,
) -> None:
    formed(sim, 2)
    relate(sim, 0, 1, rel=manual(0, 1))
    run(sim, 1, "config_changed")
    before = by_remote_unit(requests_of(run(sim, 0, "relation_changed", 1)))
    secrets = set(sim.app_secrets)
    sim.set_leader("lxd/1")
    after = by_remote_unit(requests_of(run(sim, 1, "leader_elected")))
    assert {u: r["client_cert"] for u, r in after.items()} == {
        u: r["client_cert"] for u, r in before.items()
    }
    assert set(sim.app_secrets) == secrets
    out0 = run(sim, 0, "config_changed")
    assert requests_of(out0) == {}, "the old leader withdraws its requests"
