"""`lxd_charm.cos.dashboards`: what Grafana is sent, whole (test_cos_dashboard.py checks content).

The `dashboards` value is compared key by key, including the Juju topology
and the alternative uid Grafana keys the dashboard by (stable across
revisions, so a refresh replaces the dashboard instead of adding a copy),
and both published documents are checked to be the canonical (sorted)
JSON, so the same dashboard is the same bytes on every unit and hook.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ops import testing

from lxd_charm.cos import dashboards
from tests.harness.databags import local_app_data
from tests.harness.fake_host import FakeHost

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
TOPOLOGY = {"model": "m", "model_uuid": "u", "application": "lxd", "unit": "lxd/0"}


def test_the_names() -> None:
    assert (dashboards.RELATION, dashboards.MACHINE) == (
        "grafana-dashboard-k8s",
        "grafana-dashboard",
    )
    assert (dashboards.MANUAL, dashboards.DASHBOARD) == ("prometheus-manual", "dashboard.json")
    assert dashboards.DATASOURCE_VARIABLE == "prometheusds"
    assert dashboards.machine_datasource("prom2") == "prom2 - Juju generated source"


def test_the_dashboards_value_whole_and_canonical() -> None:
    content = '{"b": 1, "a": 2}'
    value = dashboards.dashboards_value("lxd-host", TOPOLOGY, content)
    assert value == json.dumps(json.loads(value), sort_keys=True)
    document = json.loads(value)
    assert document == {
        "templates": {
            "file:dashboard.json": {
                "charm": "lxd-host",
                "content": document["templates"]["file:dashboard.json"]["content"],
                "juju_topology": TOPOLOGY,
                "inject_dropdowns": True,
                "dashboard_alt_uid": "0c3c7f7eb1b2b53a",  # of "lxd-host-file:dashboard.json"
            }
        },
        "uuid": hashlib.sha256(content.encode()).hexdigest(),
    }
    assert dashboards.decode(document["templates"]["file:dashboard.json"]["content"]) == content


def test_the_alt_uid_depends_on_the_charm_only() -> None:
    one = json.loads(dashboards.dashboards_value("lxd-host", TOPOLOGY, "{}"))
    other = json.loads(dashboards.dashboards_value("other", {}, '{"x": 1}'))
    uid = one["templates"]["file:dashboard.json"]["dashboard_alt_uid"]
    assert other["templates"]["file:dashboard.json"]["dashboard_alt_uid"] != uid
    again = json.loads(dashboards.dashboards_value("lxd-host", {}, '{"x": 1}'))
    assert again["templates"]["file:dashboard.json"]["dashboard_alt_uid"] == uid


def grafana() -> testing.Relation:
    return testing.Relation(
        "grafana-dashboard-k8s", interface="grafana_dashboard", remote_app_name="grafana", id=21
    )


def test_the_leader_sends_the_whole_juju_topology(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    uuid = "3f9a5c1e-8d2b-4c6e-9f0a-1b2c3d4e5f60"
    state = testing.State(
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations={grafana()},
        leader=True,
        model=testing.Model(name="lxd-model", uuid=uuid),
    )
    state = ctx.run(ctx.on.install(), state)
    data = json.loads(local_app_data(state.get_relation(21))["dashboards"])
    template = data["templates"]["file:dashboard.json"]
    assert template["juju_topology"] == {
        "model": "lxd-model",
        "model_uuid": uuid,
        "application": "lxd",
        "unit": "lxd/0",
    }
    assert template["dashboard_alt_uid"] == "0c3c7f7eb1b2b53a"


def machine_grafana() -> testing.Relation:
    return testing.Relation(
        "grafana-dashboard", interface="grafana-dashboard", remote_app_name="grafana", id=22
    )


def prometheus2(relation_id: int = 23, app: str = "prom2") -> testing.Relation:
    return testing.Relation(
        "prometheus-manual", interface="prometheus-manual", remote_app_name=app, id=relation_id
    )


def test_the_machine_dashboard_is_canonical_json_on_the_first_source_by_name(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = testing.State(
        config={"lxd-init-network": False, "lxd-listen-https": True},
        networks={testing.Network("https", [testing.BindAddress([testing.Address("10.0.0.5")])])},
        resources=EMPTY,
        relations={machine_grafana(), prometheus2(23, "zprom"), prometheus2(24, "aprom")},
        leader=True,
    )
    state = ctx.run(ctx.on.install(), state)
    bag = local_app_data(state.get_relation(22))
    board = json.loads(bag["dashboard"])
    assert bag["dashboard"] == json.dumps(board, separators=(",", ":"), sort_keys=True)
    expected = dashboards.with_named_datasource(
        dashboards.dashboard_json(), "aprom - Juju generated source"
    )
    assert board == expected
    assert bag["name"] == "LXD"


def test_a_prometheus_manual_relation_being_broken_is_no_source(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """Called directly with the broken relation's id: ops may still list it in some hooks."""
    state = testing.State(
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations={machine_grafana(), prometheus2()},
        leader=True,
    )
    with ctx(ctx.on.update_status(), state) as manager:
        problems = dashboards.GrafanaDashboards(manager.charm, broken_relation=23).serve()
        kept = dashboards.GrafanaDashboards(manager.charm, broken_relation=99).serve()
    assert problems == [
        "grafana-dashboard: the dashboard reads prometheus2's data source: "
        "juju integrate lxd:prometheus-manual prometheus2:manual-jobs"
    ]
    assert kept == []


def test_a_broken_machine_grafana_gets_nothing(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = testing.State(
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations={machine_grafana()},
        leader=True,
    )
    with ctx(ctx.on.update_status(), state) as manager:
        assert dashboards.GrafanaDashboards(manager.charm, broken_relation=22).serve() == []
