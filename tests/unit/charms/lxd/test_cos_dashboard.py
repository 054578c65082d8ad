"""The LXD dashboard (written here) and the `grafana-dashboard-k8s` relation that carries it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops import testing

from lxd_charm.cos import dashboards
from tests.harness.databags import local_app_data
from tests.harness.fake_host import FakeHost
from tests.unit.charms.lxd.test_cos_rules import captured_names, metric_names

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
PROMTOOL = shutil.which("promtool")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dashboards.dashboard_json())
    return data


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def concrete(expr: str) -> str:
    """An expression with the dashboard's variables as Grafana's "All" fills them in."""
    return expr.replace("$unit", ".*").replace("$project", ".*")


def test_every_metric_the_dashboard_queries_is_one_real_lxd_exports() -> None:
    used = set().union(*(metric_names(e) for e in expressions()))
    variables = [v["definition"] for v in dashboard()["templating"]["list"] if "definition" in v]
    used |= set().union(*(metric_names(v) for v in variables))
    assert used <= captured_names(), used - captured_names()
    # What the issue asks to see: instances, CPU, memory, disk and network.
    for family in ("procs", "cpu", "memory", "filesystem", "network"):
        assert any(name.startswith(f"lxd_{family}") for name in used), family


def test_every_panel_is_per_member_and_project_on_the_templated_datasource() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["prometheusds"]["type"] == "datasource"
    assert variables["prometheusds"]["query"] == "prometheus"
    assert {"unit", "project"} <= set(variables)
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${prometheusds}", panel["title"]
        for target in panel["targets"]:
            assert "juju_unit" in target["expr"], panel["title"]
            if "lxd_" in target["expr"]:
                assert 'project=~"$project"' in target["expr"], panel["title"]
                assert "by (juju_unit, project" in target["expr"] or "up{" in target["expr"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: apt-get install prometheus")
def test_promtool_parses_every_query(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query{n}", "expr": concrete(expr)}
        for n, expr in enumerate(expressions())
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_encoding_round_trips() -> None:
    text = dashboards.dashboard_json()
    assert dashboards.decode(dashboards.encode(text)) == text
    assert len(dashboards.encode(text)) < len(text) / 2


# --- the relation ------------------------------------------------------------------


def grafana(relation_id: int = 21) -> testing.Relation:
    return testing.Relation(
        "grafana-dashboard-k8s",
        interface="grafana_dashboard",
        remote_app_name="grafana",
        id=relation_id,
        remote_app_data={"junk": "{{"},
    )


def run(ctx: testing.Context[Any], leader: bool = True) -> testing.State:
    state = testing.State(
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations={grafana()},
        leader=leader,
    )
    state = ctx.run(ctx.on.install(), state)
    return ctx.run(ctx.on.relation_changed(state.get_relation(21), remote_unit=0), state)


def test_the_leader_publishes_the_dashboard(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = run(ctx)
    assert state.unit_status.name == "active", state.unit_status.message
    data = json.loads(local_app_data(state.get_relation(21))["dashboards"])
    [(key, template)] = data["templates"].items()
    assert key == "file:dashboard.json"
    assert template["charm"] == "lxd-host"  # the charm, not the application
    assert template["juju_topology"]["application"] == "lxd"
    assert template["inject_dropdowns"] is True
    assert json.loads(dashboards.decode(template["content"])) == dashboard()
    assert re.fullmatch(r"[0-9a-f]{64}", data["uuid"])


def test_publishing_again_changes_nothing(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = run(ctx)
    again = ctx.run(ctx.on.relation_changed(state.get_relation(21), remote_unit=0), state)
    assert local_app_data(again.get_relation(21)) == local_app_data(state.get_relation(21))


def test_a_unit_that_does_not_lead_publishes_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = run(ctx, leader=False)
    assert "dashboards" not in local_app_data(state.get_relation(21))


# --- grafana-dashboard (machine Grafana) -------------------------------------------


def machine_grafana() -> testing.Relation:
    return testing.Relation(
        "grafana-dashboard", interface="grafana-dashboard", remote_app_name="grafana", id=22
    )


def prometheus2() -> testing.Relation:
    return testing.Relation(
        "prometheus-manual", interface="prometheus-manual", remote_app_name="prom2", id=23
    )


def test_machine_grafana_needs_prometheus_manual_for_its_datasource(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = testing.State(
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations={machine_grafana()},
        leader=True,
    )
    state = ctx.run(ctx.on.install(), state)
    assert state.unit_status == testing.BlockedStatus(
        "grafana-dashboard: the dashboard reads prometheus2's data source: "
        "juju integrate lxd:prometheus-manual prometheus2:manual-jobs"
    )
    assert "dashboard" not in local_app_data(state.get_relation(22))


def test_machine_grafana_gets_the_dashboard_on_prometheus2s_source(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = testing.State(
        config={"lxd-init-network": False, "lxd-listen-https": True},
        networks={testing.Network("https", [testing.BindAddress([testing.Address("10.0.0.5")])])},
        resources=EMPTY,
        relations={machine_grafana(), prometheus2()},
        leader=True,
    )
    state = ctx.run(ctx.on.install(), state)
    assert state.unit_status.name == "active", state.unit_status.message
    bag = local_app_data(state.get_relation(22))
    assert bag["name"] == "LXD"
    board = json.loads(bag["dashboard"])
    assert "${prometheusds}" not in bag["dashboard"]
    assert {v["name"] for v in board["templating"]["list"]} == {"unit", "project"}
    sources = {p["datasource"] for p in board["panels"]}
    assert sources == {"prom2 - Juju generated source"}
    assert [t["expr"] for p in board["panels"] for t in p["targets"]] == expressions()
