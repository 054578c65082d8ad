"""Every COS relation of this unit, for one hook: the one entry point `charm.py` calls.

Imported only when `lxd_charm.cos.wanted` says the hook has COS work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import ops

from lxd_charm.cos.dashboards import GrafanaDashboards
from lxd_charm.cos.loki import LokiLogging
from lxd_charm.cos.metrics_endpoint import MetricsEndpoint
from lxd_charm.memory import Memory

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient


def serve(
    charm: ops.CharmBase,
    memory: Memory,
    lxd: LxdClient,
    *,
    clustered: bool,
    listeners: Mapping[str, str],
    broken_relation: int | None,
) -> list[str]:
    """Serve each COS relation; returns the problems for the status, first one first."""
    problems = MetricsEndpoint(
        charm, clustered=clustered, listeners=listeners, broken_relation=broken_relation
    ).serve(lxd)
    problems += GrafanaDashboards(charm, broken_relation).serve()
    problems += LokiLogging(
        charm, memory, clustered=clustered, broken_relation=broken_relation
    ).serve(lxd)
    return problems
