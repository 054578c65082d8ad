"""The LXD charm in COS: what Prometheus, Grafana and Loki are told, and the trust behind it.

`scrape` holds the pure decisions (which address each job targets, the
jobs' shape, trust entry names); `metrics_endpoint` and `dashboards` are
the Juju side of `metrics-endpoint` and `grafana-dashboard-k8s`, and
`serve` runs them all. The alert rules (`alert_rules.yaml`) and the
dashboard (`dashboard.json`) ship inside this package, so they are in
every built charm. Nothing beyond this module is imported on hooks that
have no COS relation: `charm.py` imports `serve` only when `wanted` says so.

`cosl` is not used: the topology it would give is five keys, and the
dashboard encoding is LZMA and base64 from the standard library, while
importing it (it pulls pydantic) cost about 200 ms per hook when measured
(fresh interpreter with ops: 152 ms without, 355 ms with). This package's
own import adds no measurable time to a hook: the libraries it uses
(cryptography, yaml) are loaded by the charm already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ops

ENDPOINTS = (
    "metrics-endpoint",
    "prometheus-manual",
    "grafana-dashboard-k8s",
    "grafana-dashboard",
    "logging",
    "cos-agent",
)
"""The COS relations this package serves."""


def wanted(model: ops.Model, broken_relation: int | None) -> bool:
    """Whether this hook has COS work: a relation exists, one just broke, or one left a record.

    Checked before anything of this package beyond this module is imported,
    so hooks of charms without COS relations pay nothing for it.
    """
    if broken_relation is not None or any(model.relations[name] for name in ENDPOINTS):
        return True
    peer = model.get_relation("cluster")
    bag = peer.data[model.app] if peer else {}
    records = ("metrics-endpoint-secrets", "prometheus-manual-secrets", "logging-loki-url")
    return any(bag.get(key) for key in records)
