"""Serving `ovsdb-cms` and `certificates` with Juju: LXD as a client of OVN central.

`ovsdb-cms` says where OVN's northbound database is (each central unit's
`bound-address`); `certificates` brings the client certificate it demands.
Each hook this module puts the TLS material where LXD reads it, points
LXD's `network.ovn.northbound_connection` at the central units, publishes
this unit's `cms-client-bound-address` (ovn-central opens its firewall to
it), and probes the database with the same certificate, so the status can
say whether OVN is reachable, refuses the certificate, or cannot be reached.
What it set is remembered and undone when a relation goes.

In a cluster, LXD's OVN server keys are cluster-wide: the leader sets them,
from its own view of the relations in this hook, and records what it set in
the peer application bag (`SHARED_RECORD`), not in its unit's memory: the
next leader must be able to undo exactly that when `ovsdb-cms` goes, or
point the key elsewhere, though it never set it itself. A standalone unit
keeps that record in `Memory.ovn`. LXD 5.0 reads the TLS material from files
on each member, so every unit writes its own (remembered per unit). The
interfaces are docs/interfaces/ovsdb-cms.md and docs/interfaces/tls-certificates.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import ops

from lxd_charm import ovn, ovn_tls
from lxd_charm.outcomes import BlockedError, CannotFinishError, WaitingError
from lxd_charm.peer_bags import PEER
from lxd_common.errors import CertificateError, EndpointError, LxdApiError

if TYPE_CHECKING:
    from charmlibs.interfaces.tls_certificates import TLSCertificatesRequiresV4

    from lxd_charm.machine import Machine
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

RELATION: Final = "ovsdb-cms"
CERTIFICATES: Final = ovn_tls.RELATION
CMS_CLIENT_KEY: Final = "cms-client-bound-address"
BOUND_ADDRESS_KEY: Final = "bound-address"
SHARED_RECORD: Final = "ovn-server-config"
"""Peer application bag key: JSON of what the cluster's leaders set in LXD's OVN keys
(`northbound`: the connection; `server-keys`: "true" when the TLS keys were set)."""
_SHARED_ENTRIES: Final = ("northbound", "server-keys")
CA_CHARM: Final = "vault"
"""The certificate authority the OVN charms use, named in the blocked status."""


@dataclass
class OvnReport:
    """What the OVN relations came to in this hook, for the status.

    Attributes:
        problem: why OVN is not usable (blocked: the operator acts; waiting:
            a later hook retries).
        summary: for the active status, e.g. "ovn northbound reachable (1/1)".
        ignored: central units whose data was unusable (named in the summary).
    """

    problem: CannotFinishError | None = None
    summary: str = ""
    ignored: list[str] = field(default_factory=list)

    def status(self) -> ops.StatusBase | None:
        """The unit status OVN needs, or None when it has nothing to say against active."""
        if isinstance(self.problem, WaitingError):
            return ops.WaitingStatus(str(self.problem))
        if self.problem is not None:
            return ops.BlockedStatus(str(self.problem))
        return None

    @property
    def suffix(self) -> str:
        """What to add to the active message."""
        return f"; {self.summary}" if self.summary else ""

    def shown_in(self, status: ops.StatusBase) -> bool:
        """Whether ``status`` (from an earlier hook) still says what this report says."""
        if self.problem is not None:
            return self.status() == status
        return isinstance(status, ops.ActiveStatus) and self.suffix in status.message


class OvnRelation:
    """The requirer side of `ovsdb-cms` and `certificates` for one hook."""

    def __init__(
        self,
        charm: ops.CharmBase,
        machine: Machine,
        tls: TLSCertificatesRequiresV4 | None,
    ) -> None:
        self._charm = charm
        self._model = charm.model
        self._unit = charm.unit
        self._app = charm.app
        self._machine = machine
        self._memory = machine.memory
        self._tls = tls
        self._files = ovn.OvnFiles(machine.host.root)

    def serve(self) -> OvnReport:
        """Converge LXD's OVN settings with the two relations; never raises for them.

        A problem here does not stop the rest of the charm's work, so it is
        returned in the report instead of raised.
        """
        cms = list(self._model.relations.get(RELATION) or [])
        certificates = list(self._model.relations.get(CERTIFICATES) or [])
        if not self._memory.initialised or not (
            cms or certificates or self._memory.ovn or self._recorded_by_a_leader()
        ):
            return OvnReport()
        report = OvnReport()
        try:
            with self._machine.lxd() as lxd:
                self._serve(lxd, cms, certificates, report)
        except CannotFinishError as e:
            logger.warning("ovn: %s", e)
            report.problem = e
        except LxdApiError as e:
            from lxd_common.lxd import transient

            # A cluster database electing passes; anything else LXD refuses needs the operator.
            report.problem = (WaitingError if transient(e) else BlockedError)(f"ovn: {e}")
            logger.warning("ovn: %s", e)
        return report

    def recheck(self) -> OvnReport | None:
        """What OVN says now, from the relations and the probes alone (no LXD call).

        For update-status on a healthy unit, which otherwise only checks that
        LXD answers: central going away, or coming back, must show in the
        status. None when there is nothing to re-check (no `ovsdb-cms`).
        Settings are not touched here: a report that differs from the status
        makes the charm reconcile.
        """
        cms = list(self._model.relations.get(RELATION) or [])
        if not self._memory.initialised or not cms:
            return None
        report = OvnReport()
        try:
            material = ovn_tls.current_material(self._charm, self._tls)
            if material is None:
                raise WaitingError(
                    f"waiting for a client certificate from {ovn_tls.provider_name(self._charm)}"
                )
            self._report_probes(self._central_addresses(cms, report), material, report)
        except CertificateError as e:
            report.problem = BlockedError(f"certificates: {e}")
        except CannotFinishError as e:
            report.problem = e
        return report

    def _serve(
        self,
        lxd: LxdClient,
        cms: Sequence[ops.Relation],
        certificates: Sequence[ops.Relation],
        report: OvnReport,
    ) -> None:
        shared = self._shared_record()
        try:
            self._converge(lxd, cms, certificates, report, shared)
        finally:
            self._save_shared_record(shared)

    def _converge(
        self,
        lxd: LxdClient,
        cms: Sequence[ops.Relation],
        certificates: Sequence[ops.Relation],
        report: OvnReport,
        shared: dict[str, str] | None,
    ) -> None:
        """Northbound first, from `ovsdb-cms` alone; then the TLS material and the probes.

        Where central listens does not depend on this unit's certificate, so
        a leader still waiting for its own (each unit has one) keeps the
        cluster's setting current, and a leader that sees no usable central
        address unsets what a leader set.
        """
        extensions: set[str] = set()
        addresses: dict[str, str] = {}
        if cms:
            self._publish_address(cms)
            extensions = set(lxd.server_info().get("api_extensions") or [])
            self._require_ovn(extensions)
            try:
                addresses = self._central_addresses(cms, report)
            except CannotFinishError:
                self._converge_northbound(lxd, shared, None)
                raise
        self._converge_northbound(
            lxd, shared, ovn.northbound_connection(addresses.values()) if addresses else None
        )
        if not certificates:
            self._remove_material(lxd, shared)
            if cms:
                raise BlockedError(
                    f"{RELATION} needs the certificates relation: juju integrate "
                    f"{self._app.name}:certificates {CA_CHARM} (the certificate authority "
                    "ovn-central uses)"
                )
            return
        if not cms:
            extensions = set(lxd.server_info().get("api_extensions") or [])
        try:
            material = ovn_tls.current_material(self._charm, self._tls)
        except CertificateError as e:
            raise BlockedError(f"certificates: {e}") from None
        if material is None:
            raise WaitingError(
                f"waiting for a client certificate from {ovn_tls.provider_name(self._charm)}"
            )
        self._install_material(lxd, material, extensions, shared)
        if cms:
            self._report_probes(addresses, material, report)

    # --- what the charm set in LXD's cluster-wide keys ----------------------

    def _may_set_cluster_keys(self) -> bool:
        """A standalone unit sets its own; in a cluster the keys are shared, the leader's."""
        return self._machine.config.mode == "standalone" or self._unit.is_leader()

    def _peer_app_bag(self) -> ops.RelationDataContent | None:
        if self._machine.config.mode == "standalone":
            return None
        peer = self._model.get_relation(PEER)
        return peer.data[self._app] if peer is not None else None

    def _recorded_by_a_leader(self) -> bool:
        """Whether a leader recorded OVN keys it set: this leader may have to undo them."""
        if self._machine.config.mode == "standalone" or not self._unit.is_leader():
            return False
        bag = self._peer_app_bag()
        return bool(bag is not None and bag.get(SHARED_RECORD))

    def _shared_record(self) -> dict[str, str] | None:
        """What the charm set in LXD's OVN server keys; None on a unit that must not touch them.

        A cluster's leader reads it from the peer application bag, where
        every leader before it wrote it; what an earlier revision kept in the
        unit's memory (only the leader that set it had it) is carried over.
        """
        if not self._may_set_cluster_keys():
            return None
        bag = self._peer_app_bag()
        if bag is None:
            return self._memory.ovn
        try:
            loaded = json.loads(bag.get(SHARED_RECORD) or "{}")
        except ValueError:
            loaded = {}
        record = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        for entry in _SHARED_ENTRIES:
            if entry in self._memory.ovn:
                record.setdefault(entry, self._memory.ovn.pop(entry))
        return record

    def _save_shared_record(self, record: dict[str, str] | None) -> None:
        bag = self._peer_app_bag()
        if record is None or bag is None:
            return
        value = json.dumps(record, sort_keys=True) if record else ""
        if bag.get(SHARED_RECORD, "") != value:
            bag[SHARED_RECORD] = value

    def _converge_northbound(
        self, lxd: LxdClient, shared: dict[str, str] | None, connection: str | None
    ) -> None:
        """Point LXD at ``connection``, or unset what the charm set when there is none.

        An operator's own value (one no leader set) is left alone.
        """
        if shared is None:
            return
        if connection:
            if lxd.set_server_config({ovn.NORTHBOUND_KEY: connection}):
                logger.info("ovn: LXD's northbound connection is now %s", connection)
            shared["northbound"] = connection
            return
        ours = shared.pop("northbound", None)
        if ours is not None and lxd.server_config().get(ovn.NORTHBOUND_KEY) == ours:
            lxd.set_server_config({ovn.NORTHBOUND_KEY: None})
            logger.info("ovn: no usable %s data; LXD's northbound connection unset", RELATION)

    # --- ovsdb-cms ---------------------------------------------------------

    def _publish_address(self, relations: Sequence[ops.Relation]) -> None:
        address = self._bound_address()
        if address is None:
            return
        value = ovn.cms_client_address(address)
        for relation in relations:
            bag = relation.data[self._unit]
            if bag.get(CMS_CLIENT_KEY) != value:
                bag[CMS_CLIENT_KEY] = value

    def _bound_address(self) -> str | None:
        try:
            binding = self._model.get_binding(RELATION)
            address = binding.network.bind_address if binding else None
        except ops.ModelError:
            address = None
        return str(address) if address else None

    def _require_ovn(self, extensions: set[str]) -> None:
        if ovn.OVN_EXTENSION not in extensions:
            raise BlockedError(
                f"this LXD has no OVN networks (API extension {ovn.OVN_EXTENSION}): "
                f"set snap-channel to a newer LXD, or remove the {RELATION} relation"
            )
        if self._machine.config.snap_config_ovn_builtin is False:
            raise BlockedError(
                f"{RELATION} needs the snap's own OVN tools: "
                f"juju config {self._app.name} snap-config-ovn-builtin=true"
            )

    def _central_addresses(
        self, relations: Sequence[ops.Relation], report: OvnReport
    ) -> dict[str, str]:
        """Each central unit's address, by unit name; unusable ones are named in the report."""
        addresses: dict[str, str] = {}
        bad: list[str] = []
        for relation in relations:
            for unit in sorted(relation.units, key=lambda u: u.name):
                value = relation.data[unit].get(BOUND_ADDRESS_KEY, "")
                if not value:
                    continue
                try:
                    addresses[unit.name] = ovn.parse_bound_address(value)
                except EndpointError as e:
                    logger.warning("ovn: %s sent %s", unit.name, e)
                    bad.append(f"{unit.name} sent {e}")
        report.ignored = bad
        if not addresses:
            if bad:
                raise BlockedError(f"{RELATION}: {bad[0]}; fix ovn-central's bound address")
            raise WaitingError(f"waiting for the {RELATION} units to publish their address")
        return addresses

    # --- certificates --------------------------------------------------------

    def _install_material(
        self,
        lxd: LxdClient,
        material: ovn.TlsMaterial,
        extensions: set[str],
        shared: dict[str, str] | None,
    ) -> None:
        """The material where this LXD reads it: server keys if it has them, else files."""
        if ovn.SSL_CONFIG_EXTENSION in extensions:
            if shared is not None:
                if lxd.set_server_config(material.server_config()):
                    logger.info("ovn: LXD's OVN TLS keys set from %s", material.source)
                shared["server-keys"] = "true"
            return
        try:
            if self._files.write(material):
                logger.info(
                    "ovn: TLS material from %s written to %s",
                    material.source,
                    self._files.directory,
                )
        except OSError as e:
            raise BlockedError(f"cannot write OVN's TLS files: {e}") from None
        self._memory.ovn["files"] = "true"

    def _remove_material(self, lxd: LxdClient, shared: dict[str, str] | None) -> None:
        if self._memory.ovn.pop("files", None) is not None:
            self._files.remove()
            logger.info("ovn: certificates gone; TLS files removed")
        if shared is not None and shared.pop("server-keys", None) is not None:
            lxd.set_server_config(dict.fromkeys(ovn.SSL_SERVER_KEYS.values()))
            logger.info("ovn: certificates gone; LXD's OVN TLS keys unset")

    # --- the status ----------------------------------------------------------

    def _report_probes(
        self, addresses: dict[str, str], material: ovn.TlsMaterial, report: OvnReport
    ) -> None:
        probes = ovn.probe_all(addresses, material)
        kind, unit = ovn.probe_summary(probes)
        probe = probes[unit]
        if kind == "reachable":
            reachable = sum(1 for p in probes.values() if p.kind == "reachable")
            ignored = f", {len(report.ignored)} ignored" if report.ignored else ""
            report.summary = f"ovn northbound reachable ({reachable}/{len(probes)}{ignored})"
            return
        where = f"{unit} at {probe.target}"
        if kind == "refused":
            raise BlockedError(
                f"ovn: {where} refused the client certificate from {material.source} "
                f"({probe.detail}): relate {self._app.name}:certificates to the CA that "
                "signs ovn-central's"
            )
        if kind == "untrusted":
            raise BlockedError(
                f"ovn: the certificate of {where} is not signed by the CA from "
                f"{material.source} ({probe.detail})"
            )
        if kind == "not-ovn":
            raise BlockedError(f"ovn: {where} is not OVN's northbound database")
        raise WaitingError(f"ovn: central unreachable: {where}: {probe.detail}")


def stale_on_update_status(
    charm: ops.CharmBase,
    machine: Machine,
    tls: TLSCertificatesRequiresV4 | None,
    found: Any,
) -> bool:
    """A healthy unit's update-status: whether its status says something OVN no longer does.

    ``found`` is the hook's `Findings` when it has any (the cluster leader's
    member count): the fresh report joins it, so the status keeps OVN's
    part. Otherwise the unit's status stays unless OVN changed, and then the
    charm reconciles in full (which sets everything the status needs).
    """
    if found is not None and found.problem is not None:
        return False
    report = OvnRelation(charm, machine, tls).recheck()
    if report is None:
        return False
    if found is not None:
        found.ovn = report
        return False
    if report.shown_in(charm.unit.status):
        return False
    logger.info(
        "ovn: the status no longer says what OVN does (%s): reconciling",
        report.summary or report.problem,
    )
    return True


__all__ = ["OvnRelation", "OvnReport", "stale_on_update_status"]
