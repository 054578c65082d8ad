"""Serving the `https` relation with Juju: which units to trust, where to answer.

`lxd_charm.https_provider` trusts one requiring unit's certificate; this
module walks the relations, keeps the record of what was trusted for whom
(so that departed units and broken relations lose exactly their entries),
and publishes the connection details. The interface is
docs/interfaces/lxd-https.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import ops

from lxd_charm import https_provider
from lxd_charm.memory import HttpsRecords, Memory
from lxd_common.interfaces.lxd_https import ServerInfo

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

RELATION = "https"
RECORDS_KEY = "https-clients"

Records = HttpsRecords


class HttpsRelation:
    """The provider side of every `https` relation of this unit, for one hook.

    Each standalone unit serves its own LXD, and answers in its unit
    databag. A cluster's trust store is shared, so its leader serves for all
    members and answers once, in the application databag, with every
    member's address.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        memory: Memory,
        *,
        clustered: bool,
        listeners: Mapping[str, str],
        ceiling: frozenset[str] | None = None,
    ) -> None:
        self._unit = charm.unit
        self._app = charm.app
        self._model = charm.model
        self._memory = memory
        self._clustered = clustered
        self._listeners = listeners
        self._ceiling = ceiling

    def serve(
        self,
        lxd: LxdClient,
        departing_unit: str | None = None,
        broken_relation: int | None = None,
    ) -> list[str]:
        """Trust each requiring unit's certificate and tell it how to connect.

        Returns the problems to show in the status: one requiring unit's
        problem does not stop the others. Entries recorded for units or
        relations that are gone are removed.
        """
        if not self._memory.initialised or (self._clustered and not self._unit.is_leader()):
            return []
        relations = [r for r in self._model.relations[RELATION] if r.id != broken_relation]
        recorded = self._records()
        if not relations and not recorded:
            return []  # nothing related, nothing left to clean up
        problems: list[str] = []
        try:
            live = {relation.id for relation in relations}
            for relation_id in [rel for rel in recorded if int(rel) not in live]:
                https_provider.forget(lxd.trust, recorded.pop(relation_id).values())
            info = self._server_info(lxd) if relations else None
            for relation in relations:
                clients = recorded.setdefault(str(relation.id), {})
                problems += self._serve_relation(lxd, relation, clients, departing_unit)
                if info is not None:
                    answer_bag = self._app if self._clustered else self._unit
                    answer = info.to_databag()
                    if self._ceiling is not None and not clients:
                        # Under the operator's ceiling, a relation none of whose units is
                        # trusted gets no answer at all (an empty value deletes the key).
                        answer = dict.fromkeys(answer, "")
                    relation.data[answer_bag].update(answer)
        finally:
            self._save_records(recorded)
        if relations and not self._clustered and "https" not in self._listeners:
            problems.insert(
                0,
                f"clients cannot connect: juju config {self._app.name} lxd-listen-https=true",
            )
        return problems

    def _serve_relation(
        self,
        lxd: LxdClient,
        relation: ops.Relation,
        clients: dict[str, str],
        departing_unit: str | None,
    ) -> list[str]:
        """Serve one relation's units; returns their problems."""
        present = {u.name for u in relation.units if u.name != departing_unit}
        for gone in sorted(set(clients) - present):
            https_provider.forget(lxd.trust, [clients.pop(gone)])
        problems = []
        for unit in _sorted_units(relation, present):
            outcome = https_provider.serve_client(
                lxd.trust, unit.name, relation.data[unit], clients.get(unit.name), self._ceiling
            )
            if outcome.fingerprint:
                clients[unit.name] = outcome.fingerprint
            else:
                clients.pop(unit.name, None)
            if outcome.error:
                problems.append(outcome.error)
        return problems

    def _peer_app_bag(self) -> ops.RelationDataContent | None:
        """Where a cluster keeps its records; None for a standalone unit.

        The peer application databag, so that a new leader can remove what
        the previous one added.
        """
        peer = self._model.get_relation("cluster") if self._clustered else None
        return peer.data[self._app] if peer is not None else None

    def _records(self) -> Records:
        bag = self._peer_app_bag()
        if bag is not None:
            data: Records = json.loads(bag.get(RECORDS_KEY) or "{}")
            return data
        return {rel: dict(units) for rel, units in self._memory.https_clients.items()}

    def _save_records(self, records: Records) -> None:
        kept = {rel: units for rel, units in records.items() if units}
        bag = self._peer_app_bag()
        if bag is not None:
            bag[RECORDS_KEY] = json.dumps(kept, sort_keys=True) if kept else ""
        else:
            self._memory.https_clients = kept

    def _server_info(self, lxd: LxdClient) -> ServerInfo:
        """The answer: the certificate LXD presents, and where to connect.

        Standalone: this unit's HTTPS listener (none while it is off).
        Clustered: every member's API address, which every member serves.
        """
        environment = lxd.server_info()["environment"]
        if self._clustered:
            addresses = tuple(m.url.removeprefix("https://") for m in lxd.cluster.members())
        else:
            address = self._listeners.get("https")
            addresses = (address,) if address else ()
        return ServerInfo(
            certificate=environment["certificate"],
            certificate_fingerprint=environment["certificate_fingerprint"],
            addresses=addresses,
        )


def _sorted_units(relation: ops.Relation, present: set[str]) -> Iterator[ops.Unit]:
    return (u for u in sorted(relation.units, key=lambda u: u.name) if u.name in present)
