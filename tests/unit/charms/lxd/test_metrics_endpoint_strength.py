"""`lxd_charm.cos.metrics_endpoint` details that test_metrics_endpoint.py leaves open.

The secret's label and the certificate's name, the published documents as
canonical JSON (the same bytes on every hook, so Juju sees no change), the
unit bags without a listener, secrets that lack half the pair or have a
newer revision, a rotated certificate's old trust entry, an entry another
unit removed first, and the cos-agent's own job.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from ops import testing

from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.errors import TrustEntryNotFoundError
from tests.harness.databags import local_app_data, local_unit_data, tracked_content
from tests.harness.fake_host import FakeHost
from tests.unit.charms.lxd.test_metrics_endpoint import (
    changed,
    installed,
    metrics_entries,
    peers,
    scraper,
    secret_ids,
)

NAME = "juju-metrics-prometheus-9"


def canonical(text: str) -> bool:
    return text == json.dumps(json.loads(text), sort_keys=True)


def common_name(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_the_secret_is_labelled_by_relation_and_names_the_scraper(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers()))
    [secret] = [s for s in state.secrets if s.owner == "app"]
    assert secret.label == "metrics-endpoint-9"
    assert common_name(tracked_content(secret)["certificate"]) == "prometheus-metrics"


def test_what_the_leader_publishes_is_canonical_json(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers()))
    app = local_app_data(state.get_relation(9))
    for key in ("scrape_jobs", "scrape_metadata", "alert_rules"):
        assert canonical(app[key]), key


def test_without_a_listener_the_bags_say_nothing_of_an_address(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers(), metrics=False))
    peer_bag = local_unit_data(state.get_relation(1))
    assert "metrics-certificate" not in peer_bag
    assert "metrics-address" not in peer_bag
    unit_bag = local_unit_data(state.get_relation(9))
    assert "prometheus_scrape_unit_address" not in unit_bag
    assert "prometheus_scrape_unit_name" not in unit_bag


@pytest.mark.parametrize("kept", ["certificate", "private-key"])
def test_a_recorded_secret_with_half_the_pair_is_replaced(
    ctx: testing.Context[Any], host: FakeHost, kept: str
) -> None:
    pair = generate_client_certificate("prometheus-metrics")
    content = {"certificate": pair.certificate, "private-key": pair.private_key}
    secret = testing.Secret(tracked_content={kept: content[kept]}, owner="app")
    peer = peers({"metrics-endpoint-secrets": json.dumps({"9": secret.id})})
    state = changed(ctx, installed(ctx, scraper(), peer, secrets={secret}))
    assert state.unit_status.name == "active", state.unit_status.message
    assert secret_ids(state)["9"] != secret.id
    assert fingerprint(pair.certificate) not in {
        e.fingerprint for e in metrics_entries(host).values()
    }
    assert set(metrics_entries(host)) == {NAME}


def test_a_unit_that_does_not_lead_trusts_the_newest_revision(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    old = generate_client_certificate("prometheus-metrics")
    new = generate_client_certificate("prometheus-metrics")
    secret = testing.Secret(
        tracked_content={"certificate": old.certificate, "private-key": old.private_key},
        latest_content={"certificate": new.certificate, "private-key": new.private_key},
    )
    peer = peers({"metrics-endpoint-secrets": json.dumps({"9": secret.id})})
    changed(ctx, installed(ctx, scraper(), peer, leader=False, secrets={secret}))
    assert metrics_entries(host)[NAME].fingerprint == fingerprint(new.certificate)


def test_a_rotated_certificates_old_entry_is_removed(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, scraper(), peers()))
    current = metrics_entries(host)[NAME].fingerprint
    old = generate_client_certificate("prometheus-metrics")
    host.fake_lxd.trust.add(old.certificate, name=NAME, kind="metrics")
    changed(ctx, state)
    assert [(e.name, e.fingerprint) for e in host.fake_lxd.trust.entries()] == [(NAME, current)]


def test_an_entry_another_unit_removed_first_is_skipped(
    ctx: testing.Context[Any], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = generate_client_certificate("a")
    stale = generate_client_certificate("b")
    trust = host.fake_lxd.trust
    trust.add(gone.certificate, name="juju-metrics-old-7", kind="metrics")
    trust.add(stale.certificate, name="juju-metrics-old-8", kind="metrics")
    remove = trust.remove
    gone_fp = fingerprint(gone.certificate)

    def racing(key: str) -> Any:
        if key == gone_fp:
            trust.by_fingerprint.pop(key, None)  # another unit was first
            raise TrustEntryNotFoundError(key)
        return remove(key)

    monkeypatch.setattr(trust, "remove", racing)
    state = changed(ctx, installed(ctx, scraper(), peers()))
    assert state.unit_status.name == "active", state.unit_status.message
    assert set(metrics_entries(host)) == {NAME}


def agent() -> testing.Relation:
    return testing.Relation(
        "cos-agent",
        interface="cos_agent",
        remote_app_name="grafana-agent",
        id=50,
        remote_units_data={0: {}},
    )


def test_the_agents_config_is_canonical_with_this_units_own_job(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = changed(ctx, installed(ctx, agent(), peers()), relation_id=50)
    text = local_unit_data(state.get_relation(50))["config"]
    assert canonical(text)
    [job] = json.loads(text)["metrics_scrape_jobs"]
    assert job["job_name"] == "lxd-0"
    assert job["static_configs"] == [{"targets": ["10.0.9.5:8444"]}]
