"""The machine-COS example bundle names only what the LXD charm really has."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).parents[4]
BUNDLE = REPO / "bundles/cos/machine-cos.yaml"
CHARM = yaml.safe_load((REPO / "charms/lxd/charmcraft.yaml").read_text())


def test_lxd_side_of_every_relation_is_a_real_cos_endpoint() -> None:
    bundle = yaml.safe_load(BUNDLE.read_text())
    ours = [ref for pair in bundle["relations"] for ref in pair if ref.startswith("lxd:")]
    assert ours == ["lxd:cos-agent"]
    assert CHARM["provides"]["cos-agent"]["interface"] == "cos_agent"
    apps = set(bundle["applications"]) | set(bundle["saas"])
    for pair in bundle["relations"]:
        assert {ref.split(":")[0] for ref in pair} <= apps, pair


def test_lxd_options_exist_and_turn_the_metrics_listener_on() -> None:
    lxd = yaml.safe_load(BUNDLE.read_text())["applications"]["lxd"]
    assert set(lxd["options"]) <= set(CHARM["config"]["options"])
    assert lxd["options"]["lxd-listen-metrics"] is True


def test_endpoints_and_interfaces_are_the_upstream_charms() -> None:
    """`juju refresh --switch` from the upstream charm keeps these relations."""
    expected = {
        ("provides", "metrics-endpoint"): "prometheus_scrape",
        ("provides", "grafana-dashboard"): "grafana-dashboard",
        ("provides", "grafana-dashboard-k8s"): "grafana_dashboard",
        ("provides", "prometheus-manual"): "prometheus-manual",
        ("provides", "cos-agent"): "cos_agent",
        ("requires", "logging"): "loki_push_api",
    }
    for (role, endpoint), interface in expected.items():
        assert CHARM[role][endpoint]["interface"] == interface, endpoint
