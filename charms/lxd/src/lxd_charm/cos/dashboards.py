"""The LXD dashboard for Grafana: `grafana-dashboard-k8s` (COS) and `grafana-dashboard` (machine).

The dashboard is written in this repository (`dashboard.json`, next to this
module) from the metric names real LXD 5.0 exports, templated on the
Prometheus datasource (`${prometheusds}`, the name COS's Grafana fills in).

- `grafana-dashboard-k8s` (interface `grafana_dashboard`): the leader sends
  it compressed, as the interface wants, in the application bag
  (docs/interfaces/grafana_dashboard.md).
- `grafana-dashboard` (interface `grafana-dashboard`, the machine Grafana
  charm): that Grafana has no datasource variable to fill in, so the
  leader names the source prometheus2 creates for the application related
  on `prometheus-manual` (`<app> - Juju generated source`); without that
  relation there is no source to name, and the unit says so
  (docs/interfaces/grafana-dashboard.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import lzma
from importlib import resources
from typing import Any

import ops

RELATION = "grafana-dashboard-k8s"
MACHINE = "grafana-dashboard"
MANUAL = "prometheus-manual"
DASHBOARD = "dashboard.json"
DATASOURCE_VARIABLE = "prometheusds"


def dashboard_json() -> str:
    """The dashboard as shipped in the charm."""
    return resources.files(__package__).joinpath(DASHBOARD).read_text()


def encode(content: str) -> str:
    """The interface's encoding: LZMA, then base64 (relation data must stay small)."""
    return base64.b64encode(lzma.compress(content.encode())).decode()


def decode(encoded: str) -> str:
    """Inverse of `encode` (what the Grafana side does)."""
    return lzma.decompress(base64.b64decode(encoded)).decode()


def dashboards_value(charm_name: str, topology: dict[str, str], content: str) -> str:
    """The `dashboards` key: one template, and a digest of it.

    The interface asks for a `uuid` that changes when the data does (Juju
    sends no event for data that did not change); a digest of the content
    changes exactly then, so re-publishing the same dashboard is a no-op.
    """
    key = f"file:{DASHBOARD}"
    template: dict[str, Any] = {
        "charm": charm_name,
        "content": encode(content),
        "juju_topology": topology,
        "inject_dropdowns": True,
        "dashboard_alt_uid": hashlib.shake_256(f"{charm_name}-{key}".encode()).hexdigest(8),
    }
    digest = hashlib.sha256(content.encode()).hexdigest()
    return json.dumps({"templates": {key: template}, "uuid": digest}, sort_keys=True)


def with_named_datasource(content: str, datasource: str) -> dict[str, Any]:
    """The dashboard with every `${prometheusds}` reference replaced by one named source."""
    board: dict[str, Any] = json.loads(content)
    templating = board.get("templating", {}).get("list", [])
    board["templating"]["list"] = [v for v in templating if v.get("name") != DATASOURCE_VARIABLE]

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("uid") == f"${{{DATASOURCE_VARIABLE}}}":
                return datasource  # Grafana takes a datasource by name
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    rewritten: dict[str, Any] = rewrite(board)
    return rewritten


def machine_datasource(prometheus_app: str) -> str:
    """The name prometheus2 gives the Grafana source it creates for itself."""
    return f"{prometheus_app} - Juju generated source"


class GrafanaDashboards:
    """The provider side of every `grafana-dashboard-k8s` relation, for one hook (leader only)."""

    def __init__(self, charm: ops.CharmBase, broken_relation: int | None = None) -> None:
        self._charm = charm
        self._broken = broken_relation

    def serve(self) -> list[str]:
        """Publish the dashboard on every relation; returns the problems for the status."""
        charm = self._charm
        if not charm.unit.is_leader():
            return []
        problems = self._serve_machine()
        relations = [r for r in charm.model.relations[RELATION] if r.id != self._broken]
        if not relations:
            return problems
        topology = {
            "model": charm.model.name,
            "model_uuid": charm.model.uuid,
            "application": charm.app.name,
            "unit": charm.unit.name,
        }
        value = dashboards_value(charm.meta.name, topology, dashboard_json())
        for relation in relations:
            relation.data[charm.app]["dashboards"] = value
        return problems

    def _serve_machine(self) -> list[str]:
        model = self._charm.model
        relations = [r for r in model.relations[MACHINE] if r.id != self._broken]
        if not relations:
            return []
        sources = [r.app.name for r in model.relations[MANUAL] if r.id != self._broken and r.app]
        if not sources:
            return [
                f"{MACHINE}: the dashboard reads prometheus2's data source: "
                f"juju integrate {self._charm.app.name}:{MANUAL} prometheus2:manual-jobs"
            ]
        board = with_named_datasource(dashboard_json(), machine_datasource(sorted(sources)[0]))
        data = {
            "name": self._charm.app.name.upper(),
            "dashboard": json.dumps(board, separators=(",", ":"), sort_keys=True),
        }
        for relation in relations:
            relation.data[self._charm.app].update(data)
        return []
