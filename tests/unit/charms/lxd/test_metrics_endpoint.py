"""The `metrics-endpoint` relation (prometheus_scrape), provider side, hook by hook.

ops.testing plays Juju and Prometheus; the machine is `FakeHost` with its
`FakeLxd`. What is asserted is what a consumer reads (application and unit
bags) and what LXD ends up trusting. The interface is
docs/interfaces/prometheus_scrape.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_common.certs import check_key_matches, fingerprint, generate_client_certificate
from tests.harness.databags import local_app_data, local_unit_data, tracked_content
from tests.harness.fake_host import FakeHost
from tests.harness.juju_sim import Sim, SimUnit
from tests.unit.charms.lxd.test_charm_cluster import Machine, formed, run

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
PEER_CERT = generate_client_certificate("peer-server").certificate
RESERVED_IDS = frozenset({1, 9, 12, 40, 50})
"""Relation ids the COS tests give by hand (see the `sim` fixture)."""


def net(name: str, ip: str) -> testing.Network:
    return testing.Network(name, [testing.BindAddress([testing.Address(ip)])])


def scraper(relation_id: int = 9, app: str = "prometheus", **bags: Any) -> testing.Relation:
    bags.setdefault("remote_units_data", {0: {}})
    return testing.Relation(
        "metrics-endpoint",
        interface="prometheus_scrape",
        remote_app_name=app,
        id=relation_id,
        **bags,
    )


def peers(app: dict[str, str] | None = None, **units: dict[str, str]) -> testing.PeerRelation:
    return testing.PeerRelation(
        "cluster",
        id=1,
        local_app_data=app or {},
        peers_data={int(k.removeprefix("u")): v for k, v in units.items()},
    )


def base(
    *relations: testing.RelationBase,
    metrics: bool = True,
    https: bool = False,
    leader: bool = True,
    **state: Any,
) -> testing.State:
    return testing.State(
        config={
            "lxd-listen-metrics": metrics,
            "lxd-listen-https": https,
            "lxd-init-network": False,
        },
        networks={net("metrics", "10.0.9.5"), net("https", "10.0.0.5")},
        resources=EMPTY,
        relations=set(relations),
        leader=leader,
        **state,
    )


def installed(
    ctx: testing.Context[Any], *relations: testing.RelationBase, **kw: Any
) -> testing.State:
    return ctx.run(ctx.on.install(), base(*relations, **kw))


def changed(
    ctx: testing.Context[Any], state: testing.State, relation_id: int = 9
) -> testing.State:
    rel = state.get_relation(relation_id)
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def jobs_of(state: testing.State, relation_id: int = 9) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(
        local_app_data(state.get_relation(relation_id))["scrape_jobs"]
    )
    return jobs


def metrics_entries(host: FakeHost) -> dict[str, Any]:
    return {e.name: e for e in host.fake_lxd.trust.entries() if e.type == "metrics"}


def secret_ids(state: testing.State) -> dict[str, str]:
    peer = next(r for r in state.relations if r.endpoint == "cluster")
    ids: dict[str, str] = json.loads(local_app_data(peer).get("metrics-endpoint-secrets") or "{}")
    return ids


# --- standalone ------------------------------------------------------------------


def test_a_hook_connects_to_lxd_once_for_all_its_steps_after_the_snap(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """Listeners, the peer relation and COS share one client: pylxd asks `/1.0` per client."""
    state = installed(ctx, scraper(), peers(), https=True)
    before = host.fake_lxd.connections
    state = changed(ctx, state)
    assert state.unit_status.name == "active", state.unit_status.message
    assert jobs_of(state), "the hook served the metrics relation (it reached LXD)"
    assert host.fake_lxd.connections - before == 1


def test_standalone_leader_trusts_a_metrics_certificate_and_publishes_its_job(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers()))
    assert state.unit_status.name == "active", state.unit_status.message

    [job] = jobs_of(state)
    assert job["job_name"] == "lxd-0"
    assert job["metrics_path"] == "/1.0/metrics"
    assert job["scheme"] == "https"
    assert job["static_configs"] == [{"targets": ["10.0.9.5:8444"]}]
    tls = job["tls_config"]
    # Verification of exactly this unit's certificate, not turned off.
    assert tls["ca_file"] == host.fake_lxd.server_pair.certificate
    assert "insecure_skip_verify" not in tls
    check_key_matches(tls["cert_file"], tls["key_file"])
    entry = metrics_entries(host)["juju-metrics-prometheus-9"]
    assert entry.fingerprint == fingerprint(tls["cert_file"])
    assert [e for e in host.fake_lxd.trust.entries() if e.type == "client"] == []

    # The key lives in an application secret (what a new leader finds).
    [secret] = [s for s in state.secrets if s.owner == "app"]
    assert secret.id == secret_ids(state)["9"]
    assert tracked_content(secret)["private-key"] == tls["key_file"]

    app = local_app_data(state.get_relation(9))
    meta = json.loads(app["scrape_metadata"])
    assert meta["application"] == "lxd" and meta["unit"] == "lxd/0"
    assert {"model", "model_uuid", "charm_name"} <= set(meta)
    names = [r["alert"] for g in json.loads(app["alert_rules"])["groups"] for r in g["rules"]]
    assert names == [
        "LXDUnreachable",
        "LXDMemberOffline",
        "LXDStoragePoolNearlyFull",
        "LXDInstanceFailing",
    ]
    unit_bag = local_unit_data(state.get_relation(9))
    assert unit_bag["prometheus_scrape_unit_address"] == "10.0.9.5"
    assert unit_bag["prometheus_scrape_unit_name"] == "lxd/0"


def test_without_the_metrics_listener_jobs_target_the_https_api(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers(), metrics=False, https=True))
    assert state.unit_status.name == "active", state.unit_status.message
    assert jobs_of(state)[0]["static_configs"] == [{"targets": ["10.0.0.5:8443"]}]


def test_neither_listener_blocks_naming_the_option(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers(), metrics=False))
    assert state.unit_status == testing.BlockedStatus(
        "metrics-endpoint: scrapers cannot reach LXD: set lxd-listen-metrics=true "
        "(or lxd-listen-https=true)"
    )
    assert jobs_of(state) == []
    state = replace(state, config={**state.config, "lxd-listen-metrics": True})
    state = ctx.run(ctx.on.config_changed(), state)
    assert state.unit_status.name == "active"
    assert jobs_of(state)[0]["static_configs"] == [{"targets": ["10.0.9.5:8444"]}]


def test_the_same_hook_twice_changes_nothing(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers()))
    again = changed(ctx, state)
    assert jobs_of(again) == jobs_of(state)
    assert again.secrets == state.secrets
    assert list(metrics_entries(host)) == ["juju-metrics-prometheus-9"]


def test_broken_relation_removes_trust_and_secret_and_a_new_scraper_gets_a_new_key(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers()))
    old_cert = jobs_of(state)[0]["tls_config"]["cert_file"]
    state = ctx.run(ctx.on.relation_broken(state.get_relation(9)), state)
    assert metrics_entries(host) == {}
    assert [s for s in state.secrets if s.owner == "app"] == []
    assert secret_ids(state) == {}

    other = scraper(relation_id=12, app="prom2")
    state = replace(state, relations=frozenset({state.get_relation(1), other}))
    state = changed(ctx, state, 12)
    new_cert = jobs_of(state, 12)[0]["tls_config"]["cert_file"]
    assert fingerprint(new_cert) != fingerprint(old_cert)
    assert list(metrics_entries(host)) == ["juju-metrics-prom2-12"]


def test_two_scrapers_each_get_their_own_certificate(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx, scraper(), scraper(relation_id=12, app="prom2"), peers())
    certs = {jobs_of(state, rel)[0]["tls_config"]["cert_file"] for rel in (9, 12)}
    assert len(certs) == 2
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus-9", "juju-metrics-prom2-12"}
    state = ctx.run(ctx.on.relation_broken(state.get_relation(12)), state)
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus-9"}


def test_an_entry_left_by_a_relation_that_is_gone_is_removed(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    leftover = generate_client_certificate("old")
    host.fake_lxd.trust.add(leftover.certificate, "juju-metrics-prometheus-3", kind="metrics")
    operator = generate_client_certificate("operator")
    host.fake_lxd.trust.add(operator.certificate, "grafana-agent", kind="metrics")
    changed(ctx, installed(ctx, scraper(), peers()))
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus-9", "grafana-agent"}


def test_standalone_leader_publishes_one_job_per_unit_verifying_each_own_certificate(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    other = {"metrics-address": "10.0.9.6:8444", "metrics-certificate": PEER_CERT}
    not_yet = {"metrics-address": "", "metrics-certificate": ""}
    garbage = {"metrics-address": "10.0.9.8:8444", "metrics-certificate": "nonsense"}
    state = changed(ctx, installed(ctx, scraper(), peers(u1=other, u2=not_yet, u3=garbage)))
    jobs = {job["job_name"]: job for job in jobs_of(state)}
    assert set(jobs) == {"lxd-0", "lxd-1"}
    assert jobs["lxd-1"]["static_configs"] == [{"targets": ["10.0.9.6:8444"]}]
    assert jobs["lxd-1"]["tls_config"]["ca_file"] == PEER_CERT
    assert jobs["lxd-0"]["tls_config"]["ca_file"] == host.fake_lxd.server_pair.certificate
    client = {job["tls_config"]["cert_file"] for job in jobs.values()}
    assert len(client) == 1, "one certificate per scraping application"


def test_standalone_unit_that_does_not_lead_trusts_the_leaders_certificate(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    pair = generate_client_certificate("prometheus-metrics")
    secret = testing.Secret(
        tracked_content={"certificate": pair.certificate, "private-key": pair.private_key}
    )
    peer = peers({"metrics-endpoint-secrets": json.dumps({"9": secret.id})})
    state = installed(ctx, scraper(), peer, leader=False, secrets={secret})
    state = changed(ctx, state)
    entry = metrics_entries(host)["juju-metrics-prometheus-9"]
    assert entry.fingerprint == fingerprint(pair.certificate)
    assert "scrape_jobs" not in local_app_data(state.get_relation(9))
    peer_out = state.get_relation(1)
    assert local_unit_data(peer_out)["metrics-address"] == "10.0.9.5:8444"
    assert (
        local_unit_data(peer_out)["metrics-certificate"] == host.fake_lxd.server_pair.certificate
    )
    assert local_unit_data(state.get_relation(9))["prometheus_scrape_unit_name"] == "lxd/0"


def test_standalone_unit_trusts_once_the_leaders_secret_arrives_over_the_peer_relation(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers(), leader=False))
    assert metrics_entries(host) == {}
    pair = generate_client_certificate("prometheus-metrics")
    secret = testing.Secret(
        tracked_content={"certificate": pair.certificate, "private-key": pair.private_key}
    )
    peer = peers({"metrics-endpoint-secrets": json.dumps({"9": secret.id})}, u1={})
    state = replace(
        state,
        relations=frozenset({state.get_relation(9), peer}),
        secrets=frozenset({secret}),
        unit_status=testing.ActiveStatus(""),
    )
    state = ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus-9"}


def test_a_new_leader_keeps_the_same_secret_and_republishes(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    first = changed(ctx, installed(ctx, scraper(), peers()))
    [secret] = [s for s in first.secrets if s.owner == "app"]
    cert = jobs_of(first)[0]["tls_config"]["cert_file"]
    # Another unit becomes leader: it sees the application's secret and the peer app bag.
    peer = peers({"metrics-endpoint-secrets": json.dumps({"9": secret.id})})
    fresh = scraper()
    state = installed(ctx, fresh, peer, leader=False, secrets={secret})
    state = replace(state, leader=True)
    state = ctx.run(ctx.on.leader_elected(), state)
    assert jobs_of(state)[0]["tls_config"]["cert_file"] == cert
    assert [s.id for s in state.secrets if s.owner == "app"] == [secret.id]
    assert secret_ids(state) == {"9": secret.id}


@pytest.mark.parametrize(
    "record", ["not json", "[1, 2]", json.dumps({"x": "y", "9": 5}), json.dumps({"9": ""})]
)
def test_a_malformed_record_of_secrets_gets_a_fresh_certificate(
    ctx: testing.Context[Any], host: FakeHost, record: str
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers({"metrics-endpoint-secrets": record})))
    assert state.unit_status.name == "active"
    assert list(secret_ids(state)) == ["9"]
    assert set(metrics_entries(host)) == {"juju-metrics-prometheus-9"}


def test_a_recorded_secret_that_is_gone_is_replaced(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    record = json.dumps({"9": "secret:0000000000000000000a"})
    state = changed(ctx, installed(ctx, scraper(), peers({"metrics-endpoint-secrets": record})))
    assert secret_ids(state)["9"] != "secret:0000000000000000000a"
    assert jobs_of(state)[0]["tls_config"]["cert_file"]


def test_whatever_the_scraper_writes_is_ignored(ctx: testing.Context[Any], host: FakeHost) -> None:
    noisy = scraper(
        remote_app_data={"scrape_jobs": "{{", "alert_rules": "[]"},
        remote_units_data={0: {"prometheus_scrape_unit_address": "evil"}},
    )
    state = changed(ctx, installed(ctx, noisy, peers()))
    assert state.unit_status.name == "active"
    assert jobs_of(state)[0]["static_configs"] == [{"targets": ["10.0.9.5:8444"]}]


def test_no_cos_relation_costs_no_lxd_call_and_writes_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx, peers())
    peer = state.get_relation(1)
    assert "metrics-address" not in local_unit_data(peer)
    assert "metrics-endpoint-secrets" not in local_app_data(peer)


# --- cluster ---------------------------------------------------------------------


@pytest.fixture
def sim(charm_module: ModuleType, host: FakeHost) -> Sim:
    """A cluster-mode application whose units each run on their own fake machine."""
    state_root = host.state_dir

    def on_its_machine(unit: SimUnit) -> None:
        machine: Machine = unit.machine
        host.fake_lxd, host.hostname = machine.lxd, machine.hostname
        host.state_dir = state_root / f"unit-{unit.number}"

    # The Sim's peer relation takes Scenario's next relation id, a counter
    # shared by the whole session: skip the fixed ids the COS tests give
    # their relations, or a scraper could be taken for the peer relation.
    while testing.PeerRelation("cluster").id + 1 in RESERVED_IDS:
        pass
    return Sim(
        charm_module.LxdCharm,
        app="lxd",
        peer="cluster",
        config={"mode": "cluster", "lxd-listen-metrics": True},
        before_hook=on_its_machine,
        networks=lambda unit: [unit.machine.binding, net("metrics", unit.machine.ip)],
        resources=EMPTY,
    )


def relate(sim: Sim, *units: int, rel: testing.Relation | None = None) -> None:
    """Put the scraper relation into these units' states (Juju's relation-created)."""
    for unit in units:
        sim_unit = sim.units[f"lxd/{unit}"]
        others = {r for r in sim_unit.state.relations if r.endpoint != "metrics-endpoint"}
        sim_unit.state = replace(sim_unit.state, relations=frozenset({*others, rel or scraper()}))


def test_cluster_leader_publishes_one_job_over_every_member(sim: Sim, host: FakeHost) -> None:
    machines = formed(sim, 3)
    relate(sim, 0, 1, 2)
    for unit in (1, 2):
        out = run(sim, unit, "config_changed")
        assert "scrape_jobs" not in local_app_data(out.get_relation(9))
        assert local_unit_data(out.get_relation(9))["prometheus_scrape_unit_name"] == f"lxd/{unit}"
    # Members trust nothing themselves: the cluster's store is the leader's.
    assert all(not m.lxd.trust.entries() for m in machines[1:])
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status.name == "active", out.unit_status.message
    [job] = jobs_of(out)
    assert job["job_name"] == "lxd"
    assert job["static_configs"] == [
        {"targets": ["10.0.0.1:8444", "10.0.0.2:8444", "10.0.0.3:8444"]}
    ]
    assert job["tls_config"]["ca_file"] == machines[0].lxd.server_pair.certificate
    [entry] = [e for e in machines[0].lxd.trust.entries() if e.type == "metrics"]
    assert entry.fingerprint == fingerprint(job["tls_config"]["cert_file"])


def test_cluster_leaves_out_a_unit_that_is_not_a_member_yet(sim: Sim, host: FakeHost) -> None:
    formed(sim, 2)
    stranger = Machine("node-x", "10.0.0.9")
    sim.place_unit(
        {"metrics-address": "10.0.0.9:8444", "metrics-certificate": PEER_CERT},
        machine=stranger,
    )
    relate(sim, 0, 1)
    out = run(sim, 1, "config_changed")
    out = run(sim, 0, "relation_changed", 1)
    [job] = jobs_of(out)
    assert job["static_configs"] == [{"targets": ["10.0.0.1:8444", "10.0.0.2:8444"]}]


def test_cluster_leader_change_keeps_the_certificate(sim: Sim, host: FakeHost) -> None:
    machines = formed(sim, 3)
    relate(sim, 0, 1, 2)
    for unit in (1, 2):
        run(sim, unit, "config_changed")
    before = jobs_of(run(sim, 0, "relation_changed", 1))[0]
    secrets_before = set(sim.app_secrets)
    sim.set_leader("lxd/1")
    out = run(sim, 1, "leader_elected")
    after = jobs_of(out)[0]
    assert after["tls_config"]["cert_file"] == before["tls_config"]["cert_file"]
    assert after["static_configs"] == before["static_configs"]
    assert set(sim.app_secrets) == secrets_before
    # The new leader's member trusts it (the fake's stores are per member; LXD's is shared).
    [entry] = [e for e in machines[1].lxd.trust.entries() if e.type == "metrics"]
    assert entry.fingerprint == fingerprint(before["tls_config"]["cert_file"])


def test_cluster_relation_broken_removes_the_entry_and_the_secret(
    sim: Sim, host: FakeHost
) -> None:
    machines = formed(sim, 2)
    relate(sim, 0, 1)
    run(sim, 1, "config_changed")
    out = run(sim, 0, "relation_changed", 1)
    assert [e.type for e in machines[0].lxd.trust.entries()] == ["metrics"]
    assert len(sim.app_secrets) == 1
    sim.run("lxd/0", sim.on.relation_broken(out.get_relation(9)))
    assert machines[0].lxd.trust.entries() == []
    assert "metrics-endpoint-secrets" not in sim.app_data
    assert sim.app_secrets == {}


def test_cluster_member_that_does_not_lead_ignores_peer_changes_for_cos(
    sim: Sim, host: FakeHost
) -> None:
    formed(sim, 2)
    relate(sim, 0, 1)
    run(sim, 1, "config_changed")
    calls = sim.units["lxd/1"].machine.lxd.calls
    run(sim, 1, "relation_changed", 0)
    assert sim.units["lxd/1"].machine.lxd.calls == calls


def test_a_departing_prometheus_unit_keeps_the_applications_certificate(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(remote_units_data={0: {}, 1: {}}), peers()))
    cert = jobs_of(state)[0]["tls_config"]["cert_file"]
    rel = state.get_relation(9)
    state = ctx.run(ctx.on.relation_departed(rel, remote_unit=1, departing_unit=1), state)
    assert jobs_of(state)[0]["tls_config"]["cert_file"] == cert
    assert list(metrics_entries(host)) == ["juju-metrics-prometheus-9"]


def test_charm_py_does_not_import_the_cos_modules_on_every_hook() -> None:
    """Hook start-up: `lxd_charm.cos.serve` and what it imports load only on COS work."""
    code = (
        "import sys, charm; "
        "print(sorted(m for m in sys.modules if m.startswith('lxd_charm.cos.')))"
    )
    src = Path(__file__).parents[4] / "charms/lxd/src"
    common = Path(__file__).parents[4] / "common/src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{common}"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == "[]"
