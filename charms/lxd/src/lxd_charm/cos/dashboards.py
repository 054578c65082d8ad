"""The `grafana-dashboard-k8s` relation (provides, `grafana_dashboard`): the LXD dashboard for COS.

The dashboard is written in this repository (`dashboard.json`, next to this
module) from the metric names real LXD 5.0 exports, templated on the
Prometheus datasource (`${prometheusds}`, the name COS's Grafana fills in).
The leader sends it compressed, as the interface wants, in the application
bag. The interface is docs/interfaces/grafana_dashboard.md.
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
DASHBOARD = "dashboard.json"


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


class GrafanaDashboards:
    """The provider side of every `grafana-dashboard-k8s` relation, for one hook (leader only)."""

    def __init__(self, charm: ops.CharmBase, broken_relation: int | None = None) -> None:
        self._charm = charm
        self._broken = broken_relation

    def serve(self) -> list[str]:
        """Publish the dashboard on every relation; nothing can go wrong that an operator fixes."""
        charm = self._charm
        relations = [r for r in charm.model.relations[RELATION] if r.id != self._broken]
        if not relations or not charm.unit.is_leader():
            return []
        topology = {
            "model": charm.model.name,
            "model_uuid": charm.model.uuid,
            "application": charm.app.name,
            "unit": charm.unit.name,
        }
        value = dashboards_value(charm.meta.name, topology, dashboard_json())
        for relation in relations:
            relation.data[charm.app]["dashboards"] = value
        return []
