"""The `metrics-endpoint` relation (provides, `prometheus_scrape`): LXD's metrics for Prometheus.

For each related scraping application the leader makes a client
certificate, keeps it in an application-owned Juju secret (a new leader
finds the same one) and records the secret's id in the peer application
bag. The certificate is trusted as LXD's `metrics` type, so it opens
`/1.0/metrics` and nothing else: by the cluster's leader for the whole
cluster (one trust store), or by every standalone unit in its own LXD.

Each unit tells its peers where it serves metrics and which certificate it
presents there; the leader turns that into the scrape jobs (see
`lxd_charm.cos.scrape`). A relation that goes loses its trust entries and
its secret; a new scraping application is a new relation, so it gets a new
certificate. The interface is docs/interfaces/prometheus_scrape.md.

`prometheus-manual` (the machine prometheus2 charm) is served here too,
with one certificate per related prometheus2 unit instead of one per
application: each has its own secret (recorded under
`scrape.UNIT_SECRETS_KEY`), trust entry and request, and all three go when
that unit departs (docs/interfaces/prometheus-manual.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import ops

from lxd_charm import peer_bags
from lxd_charm.cos import dashboards, scrape
from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.errors import TrustEntryNotFoundError

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

RELATION = "metrics-endpoint"
MANUAL = "prometheus-manual"
"""The machine prometheus2 charm's interface: each unit bag carries a `request_<id>` job."""
AGENT = "cos-agent"
"""The agent subordinate on the same machine (grafana-agent, opentelemetry-collector)."""
LOG_SLOTS: tuple[str, ...] = ()
"""None: the LXD snap declares no slot for the agent's `logs` plug (its daemon's one slot
is `lxd`), so an agent asked for `lxd:logs` fails to connect it. LXD ships its own logs
through the `logging` relation instead (`loki.api.url`)."""
PEER = peer_bags.PEER
SECRET_LABEL = "metrics-endpoint-{}"  # noqa: S105  (a label, not a secret)
UNIT_ADDRESS = "prometheus_scrape_unit_address"
UNIT_NAME = "prometheus_scrape_unit_name"


class MetricsEndpoint:
    """The provider side of every `metrics-endpoint` relation of this unit, for one hook."""

    def __init__(
        self,
        charm: ops.CharmBase,
        *,
        clustered: bool,
        listeners: Mapping[str, str],
        broken_relation: int | None = None,
    ) -> None:
        self._charm = charm
        self._unit = charm.unit
        self._app = charm.app
        self._model = charm.model
        self._clustered = clustered
        self._listeners = listeners
        self._broken = broken_relation

    def serve(self, lxd: LxdClient) -> list[str]:
        """Publish, trust and clean up; returns the problems for the status.

        `metrics-endpoint` and `cos-agent` relations get one certificate per
        related application; `prometheus-manual` one per related unit (each
        prometheus2 unit), made, kept and trusted the same way.
        """
        scrapers = [r for r in self._model.relations[RELATION] if r.id != self._broken]
        manual = [r for r in self._model.relations[MANUAL] if r.id != self._broken]
        agents = [r for r in self._model.relations[AGENT] if r.id != self._broken]
        relations = scrapers + agents
        peer = self._model.get_relation(PEER)
        problems: list[str] = []
        certificate = address = ""
        if relations or manual:
            certificate = lxd.server_info()["environment"]["certificate"]
            try:
                address = scrape.metrics_address(self._listeners)
            except scrape.NoListenerError as e:
                endpoint = next(r.name for r in [*relations, *manual])
                problems.append(f"{endpoint}: {e}")
            self._tell_where(peer, scrapers, address, certificate)
        leader = self._unit.is_leader()
        app_bag = peer.data[self._app] if peer else {}
        ids = scrape.secret_ids(app_bag.get(scrape.SECRETS_KEY))
        unit_ids = scrape.unit_secret_ids(app_bag.get(scrape.UNIT_SECRETS_KEY))
        pairs = [(r, unit.name) for r in manual for unit in sorted(r.units, key=_unit_key)]
        if leader:
            ids = self._keep_secrets(peer, relations, ids)
            unit_ids = self._keep_unit_secrets(peer, pairs, unit_ids)
        clients = {r.id: self._client(ids.get(r.id)) for r in relations}
        unit_clients = {(r.id, u): self._client(unit_ids.get((r.id, u))) for r, u in pairs}
        if leader or not self._clustered:
            self._trust(lxd, relations, clients, pairs, unit_clients)
        if leader:
            for relation in scrapers:
                client = clients.get(relation.id)
                if client is not None:
                    self._publish(peer, relation, client, certificate)
        for relation in manual:
            units = {u: unit_clients.get((relation.id, u)) for r, u in pairs if r is relation}
            self._publish_manual(peer, relation, units, address, certificate)
        for relation in agents:
            self._publish_agent(relation, clients.get(relation.id), address, certificate)
        return problems

    # --- cos-agent: this unit's own job, for the agent on its machine -----------

    def _publish_agent(
        self,
        relation: ops.Relation,
        client: scrape.ClientCertificate | None,
        address: str,
        certificate: str,
    ) -> None:
        """Every unit, cluster member or not, hands its own listener to its own agent."""
        jobs = []
        if client is not None and address:
            target = scrape.Target(self._unit.name, address, certificate)
            # The agents hand jobs to their scraper unchanged: contents go inline.
            jobs = scrape.scrape_jobs(
                self._app.name, [target], client, clustered=False, inline=True
            )
        config = {
            "metrics_alert_rules": scrape.alert_rules(),
            "log_alert_rules": {},
            "dashboards": [dashboards.encode(dashboards.dashboard_json())],
            "metrics_scrape_jobs": jobs,
            "log_slots": list(LOG_SLOTS),
        }
        relation.data[self._unit]["config"] = json.dumps(config, sort_keys=True)

    # --- prometheus-manual: a request in a unit bag -----------------------------

    def _publish_manual(
        self,
        peer: ops.Relation | None,
        relation: ops.Relation,
        clients: Mapping[str, scrape.ClientCertificate | None],
        address: str,
        certificate: str,
    ) -> None:
        """One request per prometheus2 unit: this unit's job (standalone) or the cluster's.

        Every prometheus2 unit reads every request in this bag (the interface
        has no way to address one), so each request names the unit whose
        certificate it carries, and a departed unit's request goes with its
        trust entry. A cluster member that does not lead clears what it may
        have sent as leader, so prometheus2 never scrapes the cluster twice.
        """
        bag = relation.data[self._unit]
        stale = {key for key in bag if key.startswith("request_")}
        requests: dict[str, str] = {}
        if address and (self._unit.is_leader() or not self._clustered):
            if self._clustered:
                bags: dict[str, Mapping[str, str]] = {self._unit.name: _own_bag(peer, self._unit)}
                if peer is not None:
                    bags.update({unit.name: peer.data[unit] for unit in peer.units})
                targets, _ = scrape.targets_from_peers(bags)
                addresses = [t.address for t in targets if t.certificate == certificate]
                ours, job_name = self._app.name, self._app.name
            else:
                addresses = [address]
                ours, job_name = self._unit.name.replace("/", "_"), self._unit.name
            for remote_unit, client in clients.items():
                if client is None:
                    continue
                request_id = f"{self._model.name}_{ours}_{remote_unit.replace('/', '_')}"
                key, value = scrape.manual_request(
                    request_id, job_name, addresses or [address], certificate, client
                )
                requests[key] = value
        for key in stale - set(requests):
            del bag[key]
        bag.update(requests)

    # --- each unit: where it serves -------------------------------------------

    def _tell_where(
        self,
        peer: ops.Relation | None,
        relations: list[ops.Relation],
        address: str,
        certificate: str,
    ) -> None:
        """This unit's listener, to its peers (for the leader's jobs) and to scrapers.

        The unit bag's address lets the consumer label each target with the
        unit it belongs to.
        """
        if peer is not None:
            peer.data[self._unit].update(
                {
                    scrape.ADDRESS_KEY: address,
                    scrape.CERTIFICATE_KEY: certificate if address else "",
                }
            )
        for relation in relations:
            relation.data[self._unit].update(
                {
                    UNIT_ADDRESS: scrape.host_of(address) if address else "",
                    UNIT_NAME: self._unit.name if address else "",
                }
            )

    # --- the leader: one secret per scraping application ----------------------

    def _keep_secrets(
        self, peer: ops.Relation | None, relations: list[ops.Relation], ids: dict[int, str]
    ) -> dict[int, str]:
        live = {r.id for r in relations}
        for relation_id in [rel for rel in ids if rel not in live]:
            with contextlib.suppress(ops.SecretNotFoundError, ops.ModelError):
                # Already gone is fine: hooks are retried.
                self._model.get_secret(id=ids[relation_id]).remove_all_revisions()
            del ids[relation_id]
        for relation in relations:
            if relation.id in ids and self._client(ids[relation.id]) is not None:
                continue
            name = f"{relation.app.name}-metrics" if relation.app else "metrics"
            pair = generate_client_certificate(name)
            secret = self._app.add_secret(
                {"certificate": pair.certificate, "private-key": pair.private_key},
                label=SECRET_LABEL.format(relation.id),
                description=f"metrics-only LXD client certificate for {name}",
            )
            ids[relation.id] = str(secret.id)  # set by Juju on creation
            logger.info("metrics-endpoint: new metrics certificate for relation %d", relation.id)
        if peer is not None:
            peer.data[self._app][scrape.SECRETS_KEY] = scrape.dump_secret_ids(ids)
        return ids

    def _keep_unit_secrets(
        self,
        peer: ops.Relation | None,
        pairs: list[tuple[ops.Relation, str]],
        ids: dict[tuple[int, str], str],
    ) -> dict[tuple[int, str], str]:
        """One secret per related prometheus2 unit; a departed unit's secret is removed."""
        live = {(r.id, unit) for r, unit in pairs}
        for gone in [p for p in ids if p not in live]:
            with contextlib.suppress(ops.SecretNotFoundError, ops.ModelError):
                self._model.get_secret(id=ids[gone]).remove_all_revisions()
            del ids[gone]
        for relation, unit in pairs:
            if (relation.id, unit) in ids and self._client(ids[relation.id, unit]) is not None:
                continue
            name = f"{unit.replace('/', '-')}-metrics"
            pair = generate_client_certificate(name)
            secret = self._app.add_secret(
                {"certificate": pair.certificate, "private-key": pair.private_key},
                label=SECRET_LABEL.format(f"{relation.id}-{unit.replace('/', '-')}"),
                description=f"metrics-only LXD client certificate for {unit}",
            )
            ids[relation.id, unit] = str(secret.id)
            logger.info("prometheus-manual: new metrics certificate for %s", unit)
        if peer is not None:
            peer.data[self._app][scrape.UNIT_SECRETS_KEY] = scrape.dump_unit_secret_ids(ids)
        return ids

    def _client(self, secret_id: str | None) -> scrape.ClientCertificate | None:
        if not secret_id:
            return None
        try:
            content = self._model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError):
            return None
        certificate, key = content.get("certificate", ""), content.get("private-key", "")
        return scrape.ClientCertificate(certificate, key) if certificate and key else None

    # --- trust: the leader for a cluster, every standalone unit for itself ----

    def _trust(
        self,
        lxd: LxdClient,
        relations: list[ops.Relation],
        clients: Mapping[int, scrape.ClientCertificate | None],
        pairs: list[tuple[ops.Relation, str]],
        unit_clients: Mapping[tuple[int, str], scrape.ClientCertificate | None],
    ) -> None:
        """Trust what is wanted, and remove what no relation (or no unit) wants any more.

        An entry of a live relation whose name is not expected belongs to a
        prometheus2 unit that departed. Expected names do not depend on the
        secret being readable this hook, so a unit waiting for the leader's
        secret never drops an entry that is still in use.
        """
        wanted: dict[str, str] = {}
        expected: set[str] = set()
        named = [
            (scrape.trust_name(r.app.name, r.id), clients.get(r.id))
            for r in relations
            if r.app is not None
        ]
        named += [
            (scrape.unit_trust_name(unit, r.id), unit_clients.get((r.id, unit)))
            for r, unit in pairs
        ]
        for name, client in named:
            expected.add(name)
            if client is None:
                continue
            lxd.trust.add(client.certificate, name=name, kind="metrics")
            wanted[name] = fingerprint(client.certificate)
        live = {r.id for r in relations}
        live |= {r.id for r in self._model.relations[MANUAL] if r.id != self._broken}
        ours = [(e.name, e.fingerprint) for e in lxd.trust.entries() if e.type == "metrics"]
        stale = scrape.stale_entries(ours, live)
        stale += [fp for name, fp in ours if name in wanted and fp != wanted[name]]
        stale += [
            fp
            for name, fp in ours
            if scrape.relation_of(name) in live and name not in expected and fp not in stale
        ]
        for fp in stale:
            try:
                removed = lxd.trust.remove(fp)
            except TrustEntryNotFoundError:
                continue
            logger.info("metrics-endpoint: removed trust entry %s", removed.name)

    # --- the leader: the jobs ------------------------------------------------------

    def _publish(
        self,
        peer: ops.Relation | None,
        relation: ops.Relation,
        client: scrape.ClientCertificate,
        own_certificate: str,
    ) -> None:
        bags: dict[str, Mapping[str, str]] = {self._unit.name: _own_bag(peer, self._unit)}
        if peer is not None:
            bags.update({unit.name: peer.data[unit] for unit in peer.units})
        targets, _waiting = scrape.targets_from_peers(bags)
        if self._clustered:
            # Members present the cluster's certificate; a unit that does not
            # (not joined yet) is left out until it does.
            targets = [t for t in targets if t.certificate == own_certificate]
        jobs = scrape.scrape_jobs(self._app.name, targets, client, clustered=self._clustered)
        topology = scrape.topology(
            self._model.name,
            self._model.uuid,
            self._app.name,
            self._unit.name,
            self._charm.meta.name,
        )
        relation.data[self._app].update(
            {
                "scrape_jobs": json.dumps(jobs, sort_keys=True),
                "scrape_metadata": json.dumps(topology, sort_keys=True),
                "alert_rules": json.dumps(scrape.alert_rules(), sort_keys=True),
            }
        )


def _own_bag(peer: ops.Relation | None, unit: ops.Unit) -> Mapping[str, str]:
    return peer.data[unit] if peer is not None else {}


def _unit_key(unit: ops.Unit) -> tuple[str, int]:
    app, _, number = unit.name.rpartition("/")
    return app, int(number) if number.isdigit() else -1
