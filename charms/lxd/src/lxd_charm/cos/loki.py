"""The `logging` relation (requires, `loki_push_api`): LXD ships its own logs to Loki.

LXD pushes its lifecycle and logging events to Loki itself once its
`loki.api.url` server key is set (API extension `loki`, LXD 5.x snaps from
5.21 on; Debian's 5.0.2 has no such key, and the unit says so). The first
Loki endpoint a related unit publishes is used, as the base URL LXD wants
(without `/loki/api/v1/push`). A cluster's server keys are cluster-wide, so
its leader sets them; a standalone unit sets its own. The URL the charm set
is remembered (the peer application bag for a cluster, so a new leader
knows it; `Memory` for a standalone unit), so that when the relation goes
the charm unsets exactly what it set and never an operator's own setting.
The interface is docs/interfaces/loki_push_api.md.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Final

import ops

from lxd_charm.memory import Memory

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

RELATION: Final = "logging"
EXTENSION: Final = "loki"
URL_KEY: Final = "loki.api.url"
PUSH_PATH: Final = "/loki/api/v1/push"
RECORD_KEY: Final = "logging-loki-url"
SNAP_CHANNEL_WITH_LOKI: Final = "5.21/stable"


def base_url(endpoint_json: str | None) -> str | None:
    """The base URL from a Loki unit's `endpoint` (JSON `{"url": ...}`); None if unusable."""
    try:
        endpoint = json.loads(endpoint_json or "")
    except json.JSONDecodeError:
        return None
    url = endpoint.get("url") if isinstance(endpoint, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return url.removesuffix("/").removesuffix(PUSH_PATH) or None


def first_endpoint(relations: list[ops.Relation]) -> str | None:
    """The first usable Loki URL, relations and units in a stable order."""
    for relation in sorted(relations, key=lambda r: r.id):
        for unit in sorted(relation.units, key=lambda u: u.name):
            url = base_url(relation.data[unit].get("endpoint"))
            if url:
                return url
    return None


class LokiLogging:
    """The requirer side of every `logging` relation of this unit, for one hook."""

    def __init__(
        self,
        charm: ops.CharmBase,
        memory: Memory,
        *,
        clustered: bool,
        broken_relation: int | None = None,
    ) -> None:
        self._charm = charm
        self._memory = memory
        self._clustered = clustered
        self._broken = broken_relation

    def serve(self, lxd: LxdClient) -> list[str]:
        """Point LXD at Loki, or undo that; returns the problems for the status."""
        charm = self._charm
        if self._clustered and not charm.unit.is_leader():
            return []
        relations = [r for r in charm.model.relations[RELATION] if r.id != self._broken]
        recorded = self._recorded()
        if not relations and not recorded:
            return []
        url = first_endpoint(relations)
        if url and EXTENSION not in lxd.server_info().get("api_extensions", []):
            return [
                f"logging: this LXD has no '{EXTENSION}' API extension: refresh to a snap "
                f"that has it (juju config {charm.app.name} "
                f"snap-channel={SNAP_CHANNEL_WITH_LOKI} or later)"
            ]
        current = lxd.server_config().get(URL_KEY, "")
        if url:
            if current != url:
                lxd.set_server_config({URL_KEY: url})
                logger.info("logging: LXD sends its logs to %s", url)
            self._record(url)
        elif recorded:
            if current == recorded:
                lxd.set_server_config({URL_KEY: None})
                logger.info("logging: LXD no longer sends its logs to %s", recorded)
            self._record("")
        return []

    def _peer_app_bag(self) -> ops.RelationDataContent | None:
        peer = self._charm.model.get_relation("cluster") if self._clustered else None
        return peer.data[self._charm.app] if peer is not None else None

    def _recorded(self) -> str:
        bag = self._peer_app_bag()
        return bag.get(RECORD_KEY, "") if bag is not None else self._memory.loki_url

    def _record(self, url: str) -> None:
        bag = self._peer_app_bag()
        if bag is not None:
            bag[RECORD_KEY] = url
        else:
            self._memory.loki_url = url
