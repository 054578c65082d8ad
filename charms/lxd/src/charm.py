#!/usr/bin/env python3
"""Juju charm for LXD, standalone or clustered.

This module wires Juju events to handlers and decides the unit status. The
handlers gather what Juju knows (options, resources, bindings, storage) and
hand it to the `lxd_charm` modules, which act: `machine` on this machine,
`cluster_peer` and `https_relation` on the two relations.

Every hook that can change something runs the same idempotent `_reconcile`,
which brings the machine in line with the options: snap, snap config,
one-time initialisation, proxy, listeners, kernel settings, then the
relations. Juju retries hooks, and operators change several options at
once, so converging from whatever state the machine is in is simpler and
safer than reacting to individual changes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ops

import lxd_charm.adopt
import lxd_charm.cos
import lxd_charm.host
from lxd_charm import ovn_tls, peer_bags
from lxd_charm.config import LxdConfig
from lxd_charm.memory import CANONICAL_FIELDS, LEGACY_FIELDS, Memory, from_canonical
from lxd_charm.outcomes import BlockedError, CannotFinishError, WaitingError
from lxd_common.errors import LxdApiError, LxdCommonError, LxdError

# The relation modules, the actions and the LXD client stack are imported in the
# handlers that use them: Juju starts a process per hook, and a member's peer
# event that only reads two databag keys must not pay for pylxd or cryptography.
if TYPE_CHECKING:
    from lxd_charm.listeners import ListenerPlan
    from lxd_charm.machine import Machine, Resources
    from lxd_charm.ovn_relation import OvnReport
    from lxd_charm.refresh_round import RefreshReport
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)
# urllib3 logs every HTTP request at DEBUG, and ops forwards every record to
# Juju as a `juju-log` call (a hook tool process each): LXD's requests would
# be most of a hook's tool calls. Its warnings (retries, pool full) still go.
logging.getLogger("urllib3").setLevel(logging.INFO)

ACTION_LXD_WAIT = 10.0
_RELATION_KINDS = ("joined", "changed", "departed", "broken")


@dataclass
class Findings:
    """What this hook found out, for the status it ends with.

    Attributes:
        problem: what stopped the hook's work.
        https_problems: requiring units the `https` relation could not serve.
        cluster_summary: the cluster's state (see `ClusterPeer.summary`).
        listeners: where LXD listens, by listener name (`cluster` included).
        ceph_problem: what the `ceph` relation is waiting or blocked on.
        ovn: what the `ovsdb-cms` and `certificates` relations came to.
        cos_problems: what keeps the COS relations from working (`lxd_charm.cos`).
        refresh: this unit's part in the cluster's refresh rounds (`lxd_charm.refresh_round`).
        fan_note: the plain-bridge note, read from LXD (`lxd_charm.fan.cluster_note`).
    """

    problem: CannotFinishError | None = None
    https_problems: list[str] = field(default_factory=list)
    cluster_summary: str = ""
    listeners: dict[str, str] = field(default_factory=dict)
    ceph_problem: CannotFinishError | None = None
    ovn: OvnReport | None = None
    cos_problems: list[str] = field(default_factory=list)
    refresh: RefreshReport | None = None
    fan_note: str = ""


class LxdCharm(ops.CharmBase):
    """Deploys LXD on a machine, as an independent server or a cluster member."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._stored.set_default(memory={})
        self.memory = self._load_memory()
        self.host = lxd_charm.host.make_host()  # the one seam tests replace
        self._found: Findings | None = None
        """None until the hook looks at anything; then the status is decided from it."""
        self._ovn_tls = ovn_tls.attach(self)  # before the observers below: it sends the CSR
        for event in (
            self.on.install,
            self.on.config_changed,
            self.on.local_storage_attached,
            self.on.leader_elected,
            self.on.secret_changed,
            # OVN: lxd_charm.ovn_relation reconciles after these.
            *(getattr(self.on["ovsdb-cms"], f"relation_{kind}") for kind in _RELATION_KINDS),
            *(
                getattr(self.on["certificates"], f"relation_{kind}")
                for kind in _RELATION_KINDS[1:]
            ),
        ):
            framework.observe(event, self._on_change)
        framework.observe(self.on.start, self._on_start)
        framework.observe(self.on.upgrade_charm, self._on_upgrade_charm)
        framework.observe(self.on.update_status, self._on_update_status)
        # Not cluster_relation_joined: Juju runs relation-changed for the same unit
        # right after it, and that hook (with the unit's data) does the work.
        framework.observe(self.on.cluster_relation_changed, self._on_peer_change)
        framework.observe(self.on.cluster_relation_departed, self._on_cluster_departed)
        framework.observe(self.on.https_relation_changed, self._on_https_changed)
        framework.observe(self.on.https_relation_departed, self._on_https_departed)
        framework.observe(self.on.https_relation_broken, self._on_https_broken)
        for ceph_event in (
            self.on.ceph_relation_created,
            self.on.ceph_relation_joined,
            self.on.ceph_relation_changed,
            self.on.ceph_relation_departed,
            self.on.ceph_relation_broken,
        ):
            framework.observe(ceph_event, self._on_change)
        self._cos_broken: int | None = None
        for endpoint in lxd_charm.cos.ENDPOINTS:
            for kind in ("joined", "changed", "departed", "broken"):
                framework.observe(
                    getattr(self.on[endpoint], f"relation_{kind}"), self._on_cos_change
                )
        # After _on_peer_change: a peer's metrics address, or the leader's record of keys.
        framework.observe(self.on.cluster_relation_changed, self._on_cos_change)
        framework.observe(self.on.add_trusted_client_action, self._on_add_trusted_client)
        framework.observe(self.on.remove_trusted_client_action, self._on_remove_trusted_client)
        framework.observe(self.on.get_client_token_action, self._on_get_client_token)
        framework.observe(self.on.debug_action, self._on_debug)
        framework.observe(self.on.show_pending_config_action, self._on_show_pending_config)
        framework.observe(self.on.evacuate_action, self._on_evacuate)
        framework.observe(self.on.restore_action, self._on_restore)
        framework.observe(self.on.refresh_action, self._on_refresh)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(framework.on.pre_commit, self._on_pre_commit)

    # --- hooks -------------------------------------------------------------

    def _on_change(self, _: ops.EventBase) -> None:
        """Any event that may change what the machine should look like."""
        self._reconcile()

    def _on_upgrade_charm(self, _: ops.UpgradeCharmEvent) -> None:
        """A new charm revision, or new resources: `juju attach-resource` runs this hook.

        The only hook after install in which Juju can have other resources
        for the unit, so the reconcile fetches them again (see `_reconcile`).
        """
        self.memory.resources_applied = False
        self._reconcile()

    def _on_start(self, _: ops.StartEvent) -> None:
        """Juju starts the unit: right after install and config-changed, and after every boot.

        In the boot this unit last reconciled in, with that reconcile's
        outcome still standing (active, or a joiner's wait the databags
        still give), a reconcile would find what the hooks just before found:
        at deployment, `start` follows `config-changed` with nothing in
        between. After a reboot, or when the last reconcile left work
        undone, it reconciles.
        """
        from lxd_charm.pending import boot_id

        same_boot = self.memory.reconciled_boot == boot_id(self.host.root)
        if same_boot and (
            isinstance(self.unit.status, ops.ActiveStatus) or self._joiner_still_waiting()
        ):
            return
        self._reconcile()

    def _on_peer_change(self, event: ops.RelationEvent) -> None:
        """Peer data changed: only the leader and units with work left have anything to do.

        A member that is not the leader has nothing to do with its peers'
        data (unless a leader that is not a member yet needs its help), and
        skipping the full reconcile there keeps cluster formation close to
        the cost of the joins themselves (see docs/benchmarks.md). A unit
        whose last hook did not finish (Juju still shows it not active)
        takes the chance to try again.
        """
        if (
            self.memory.initialised
            and not self.unit.is_leader()
            and isinstance(self.unit.status, ops.ActiveStatus)
            and not self._peer_has_deputy_work()
            and not self._zone_moved()
        ):
            return
        if self._joiner_still_waiting() or self._leader_still_holding(event.relation):
            return
        self._reconcile()

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        """Finish work an earlier hook could not, and notice a reboot.

        Otherwise this hook only checks that LXD answers: connecting is one
        request (the leader also counts the members), because it runs every
        few minutes on every unit. That request's answer also says whether a
        member still is one (`lxc cluster remove` elsewhere makes it a
        standalone daemon): one that is not reconciles, which says what to do.
        With `ovsdb-cms`, OVN's central units are probed too (bounded, no LXD
        call), so OVN's part of the status stays true.
        """
        machine = self._machine_or_none()
        if machine is None or not isinstance(self.unit.status, ops.ActiveStatus):
            # Also the way out of waits on other units that may never end: join
            # tokens held for planned units, a join turn that does not come.
            self._reconcile(stop_waiting_on_peers=True)
            return
        if machine.reboot_happened() or self._zone_moved():
            self._reconcile(stop_waiting_on_peers=True)
            return
        if not self.memory.initialised:
            return
        left_cluster = False
        try:
            with self.host.lxd() as lxd:
                if machine.config.mode == "cluster" and not lxd.member_name_at_connect:
                    # Removed from the cluster outside Juju: the reconcile says what to do.
                    left_cluster = True
                elif machine.config.mode == "cluster" and self.unit.is_leader():
                    # The leader's member count is the one that goes stale; counting it
                    # is the only LXD call.
                    from lxd_charm import fan
                    from lxd_charm.cluster_peer import ClusterPeer

                    peer = ClusterPeer(self, machine)
                    members = lxd.cluster.members()
                    name = peer.member_name(lxd)
                    own = next((m for m in members if m.name == name), None)
                    plan = self._listener_plan(machine.config)
                    address = own.url.removeprefix("https://") if own else ""
                    self._found = Findings(
                        problem=peer.health(members),
                        cluster_summary=peer.summary(lxd, members),
                        listeners=_with_cluster(plan.addresses, address),
                        fan_note=fan.NOTE if fan.NOTE in self.unit.status.message else "",
                    )
                # Otherwise connecting was the check: the client asked LXD for /1.0.
        except LxdError as e:
            self._found = Findings(problem=WaitingError(f"LXD is not answering: {e}"))
        if left_cluster:
            self._reconcile(stop_waiting_on_peers=True)
            return
        if self.model.relations.get("ovsdb-cms"):  # OVN's part of the status is re-checked
            from lxd_charm.ovn_relation import stale_on_update_status

            if stale_on_update_status(self, machine, self._ovn_tls, self._found):
                self._reconcile()

    def _on_https_changed(self, _: ops.RelationChangedEvent) -> None:
        self._reconcile_for_https()

    def _on_https_departed(self, event: ops.RelationDepartedEvent) -> None:
        departing = event.departing_unit.name if event.departing_unit else None
        self._reconcile_for_https(https_departing=departing)

    def _on_https_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._reconcile_for_https(broken_https=event.relation.id)

    def _on_cos_change(self, event: ops.RelationEvent) -> None:
        """A COS relation changed, or a peer did (unless this hook already reconciled)."""
        broken = event.relation.id if isinstance(event, ops.RelationBrokenEvent) else None
        if self._found is not None:
            return
        if event.relation.name == "cluster" and self._is_cluster():
            return  # only standalone units act on a peer's data (the leader's secrets)
        if not lxd_charm.cos.wanted(self.model, broken):  # a hook tool call per COS endpoint
            return
        self._cos_broken = broken
        self._reconcile()

    def _on_cluster_departed(self, event: ops.RelationDepartedEvent) -> None:
        """A unit is leaving: its member leaves the cluster through the leader."""
        departing = event.departing_unit
        if departing is None or departing == self.unit or not self.unit.is_leader():
            return
        self._reconcile(departing_unit=departing.name)

    def _on_add_trusted_client(self, event: ops.ActionEvent) -> None:
        from lxd_charm import actions

        params = event.load_params(actions.AddTrustedClientParams, errors="fail")
        self._run_action(event, lambda lxd: actions.add_trusted_client(lxd, params))

    def _on_remove_trusted_client(self, event: ops.ActionEvent) -> None:
        from lxd_charm import actions

        params = event.load_params(actions.RemoveTrustedClientParams, errors="fail")
        self._run_action(event, lambda lxd: actions.remove_trusted_client(lxd, params))

    def _on_get_client_token(self, event: ops.ActionEvent) -> None:
        from lxd_charm import actions

        params = event.load_params(actions.GetClientTokenParams, errors="fail")
        machine = self._machine_or_none()
        if machine is not None and not machine.config.lxd_listen_https:
            # LXD only issues tokens it can tell clients where to use.
            event.fail(
                f"clients redeem tokens over HTTPS: first run "
                f"`juju config {self.app.name} lxd-listen-https=true`"
            )
            return
        self._run_action(event, lambda lxd: actions.get_client_token(lxd, params))

    def _on_debug(self, event: ops.ActionEvent) -> None:
        from lxd_charm import actions

        try:
            event.set_results(actions.collect_debug_info())
        except actions.ActionError as e:
            event.fail(str(e))

    def _on_show_pending_config(self, event: ops.ActionEvent) -> None:
        from lxd_charm import actions

        event.set_results(actions.show_pending_config(self.memory.pending.all_changes()))

    def _on_evacuate(self, event: ops.ActionEvent) -> None:
        from lxd_charm import maintenance
        from lxd_charm.cluster_peer import member_name, owners

        mode = event.load_params(maintenance.EvacuateParams, errors="fail").mode
        hostname, names = self.host.hostname, owners(self.model)
        self._run_member_action(
            event,
            lambda lxd: maintenance.evacuate(lxd, member_name(lxd, hostname), mode, names),
        )

    def _on_restore(self, event: ops.ActionEvent) -> None:
        from lxd_charm import maintenance
        from lxd_charm.cluster_peer import member_name

        hostname = self.host.hostname
        self._run_member_action(
            event, lambda lxd: maintenance.restore(lxd, member_name(lxd, hostname))
        )

    def _on_refresh(self, event: ops.ActionEvent) -> None:
        """Refresh LXD: this unit when standalone; a round of every member from the leader."""
        from lxd_charm import actions
        from lxd_charm.refresh_round import RefreshRound

        machine = self._machine_or_none()
        if machine is None:
            event.fail("the charm's options are invalid: see the unit status")
            return
        try:
            if machine.config.mode == "cluster":
                results = RefreshRound(self, machine).start_for_action()
            else:
                results = actions.refresh_standalone(
                    machine.host.snap, machine.config, self.memory
                )
        except (actions.ActionError, CannotFinishError) as e:
            event.fail(str(e))
            return
        self._reconcile()  # a leader refreshes in its round at once, as every member does
        event.set_results(results | actions.snap_version(machine.host.snap))

    def _run_member_action(
        self, event: ops.ActionEvent, run: Callable[[LxdClient], dict[str, Any]]
    ) -> None:
        """A maintenance action on this unit's member, then the status that says so."""
        if not (self._is_cluster() and self.memory.initialised):
            event.fail("only a cluster member can be evacuated or restored")
            return
        self._run_action(event, run)
        self._reconcile()

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        """The one place the unit status is decided, from what this hook found.

        A hook that looked at nothing (a member's peer event it had no part
        in, a healthy unit's update-status) sets no status, so Juju keeps
        the last one: that hook learnt nothing that could change it.
        """
        if self._found is not None:
            event.add_status(self._status(self._found))

    def _on_pre_commit(self, _: ops.EventBase) -> None:
        """The unit's memory is saved once per hook, just before Juju commits it."""
        self._stored.memory = self.memory.to_dict()

    def _status(self, found: Findings) -> ops.StatusBase:
        """The first of: a problem, a pending reboot, work left, unserved requirers, or active."""
        if found.refresh is not None and (refreshing := found.refresh.status(found.problem)):
            return refreshing  # a refresh round explains a wait (LXD waiting for the others)
        if isinstance(found.problem, WaitingError):
            return ops.WaitingStatus(str(found.problem))
        if found.problem is not None:
            return ops.BlockedStatus(str(found.problem))
        pending = self.memory.pending
        if pending.waiting:
            keys = ", ".join(sorted(pending.all_changes()))
            return ops.BlockedStatus(
                f"reboot to apply snap config {keys} (see show-pending-config)"
            )
        if not self.memory.initialised:
            return ops.MaintenanceStatus("initialising LXD")
        if found.https_problems:
            problems = found.https_problems
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            return ops.BlockedStatus(f"https relation: {problems[0]}{more}")
        if found.ceph_problem is not None:
            waiting = isinstance(found.ceph_problem, WaitingError)
            return (ops.WaitingStatus if waiting else ops.BlockedStatus)(str(found.ceph_problem))
        if found.ovn is not None and (ovn_status := found.ovn.status()) is not None:
            return ovn_status
        if found.cos_problems:
            return ops.BlockedStatus(found.cos_problems[0])
        from lxd_charm.machine import active_message

        return ops.ActiveStatus(
            active_message(self._mode(), found.cluster_summary, found.listeners)
            + (found.ovn.suffix if found.ovn is not None else "")
            + found.fan_note
        )

    # --- reconciliation ----------------------------------------------------

    def _reconcile(
        self,
        departing_unit: str | None = None,
        *,
        https_departing: str | None = None,
        broken_https: int | None = None,
        stop_waiting_on_peers: bool = False,
    ) -> None:
        """Bring the machine in line with the options; record what stopped it.

        Problems the operator must fix become a blocked status, transient
        ones a waiting status; both are retried by the next hook. Nothing is
        half-applied: each step either completes or leaves its part as it was.
        What the leader could not do for other units is reported only after
        this machine's own steps, which it does not hold up.
        """
        from lxd_charm import fan, ovn_relation
        from lxd_charm.ceph_relation import CephRelation
        from lxd_charm.cluster_peer import ClusterPeer, PeerOutcome
        from lxd_charm.machine import require_listener_addresses
        from lxd_charm.pending import boot_id
        from lxd_charm.refresh_round import RefreshRound
        from lxd_common.lxd import transient

        found = self._found = Findings()
        self.memory.reconciled_boot = boot_id(self.host.root)
        try:
            machine = self._machine()
            config = machine.config
            machine.refuse_immutable_changes()
            # Fetched at install and upgrade-charm, and again until they are in place.
            resources = None if self.memory.resources_applied else self._resources()
            if resources is not None:
                machine.sideload_snap(resources)
            machine.ensure_snap()
            if resources is not None:
                machine.sideload_binary(resources)
                self.memory.resources_applied = True
            found.refresh = RefreshRound(self, machine).take_part()
            if adopted := machine.adopt_existing(self._peer_app_data()):
                self.unit.status = ops.MaintenanceStatus(f"adopted the existing LXD: {adopted}")
            self._drop_plain_tokens()
            machine.apply_snap_config()
            ceph = CephRelation(self, machine, clustered=config.mode == "cluster")
            found.ceph_problem = ceph.write_files()  # before LXD: a joining member needs them
            peer = PeerOutcome()
            with machine.lxd() as lxd:
                if config.mode == "standalone":
                    machine.initialise(lxd)
                else:
                    peer = ClusterPeer(self, machine).reconcile(
                        lxd, departing_unit, stop_waiting_on_peers=stop_waiting_on_peers
                    )
                    found.cluster_summary = peer.summary
                if self.memory.initialised:
                    machine.undo_cleared_proxy(lxd)
                    plan = self._listener_plan(config)
                    machine.apply_listeners(lxd, plan, peer.address)
                    self.unit.set_ports(*(ops.Port(proto, port) for proto, port in plan.ports))  # type: ignore[arg-type]
                    found.listeners = _with_cluster(plan.addresses, peer.address)
                    found.fan_note = fan.cluster_note(lxd, config)
                    require_listener_addresses(plan)
                machine.apply_kernel_settings(self.app.name)
                # The relations below connect through `machine.lxd()` too: inside this
                # block they share its connection (one `GET /1.0` a hook, not one a step).
                found.https_problems = self._serve_https(
                    machine, found.listeners, https_departing, broken_https
                )
                found.ceph_problem = found.ceph_problem or ceph.serve()
                found.ovn = ovn_relation.OvnRelation(self, machine, self._ovn_tls).serve()
                found.cos_problems = self._serve_cos(machine, found.listeners)
            if peer.problem is not None:
                raise peer.problem
        except CannotFinishError as e:
            logger.warning("%s: %s", "waiting" if isinstance(e, WaitingError) else "blocked", e)
            found.problem = e
        except LxdApiError as e:
            if not transient(e):
                raise  # unexpected: fail the hook, so Juju retries it and the log shows why
            found.problem = WaitingError(f"the LXD cluster is settling: {e}")
            logger.warning("waiting: %s", found.problem)

    def _reconcile_for_https(
        self, *, https_departing: str | None = None, broken_https: int | None = None
    ) -> None:
        """An `https` requirer changed; in a cluster only the leader serves (for every member)."""
        if self._is_cluster() and not self.unit.is_leader():
            return
        self._reconcile(https_departing=https_departing, broken_https=broken_https)

    def _serve_https(
        self,
        machine: Machine,
        listeners: dict[str, str],
        departing_unit: str | None,
        broken_relation: int | None,
    ) -> list[str]:
        if not self.memory.initialised:
            return []
        from lxd_charm.https_relation import HttpsRelation

        relation = HttpsRelation(
            self,
            self.memory,
            clustered=machine.config.mode == "cluster",
            listeners=listeners,
            ceiling=machine.config.https_project_ceiling(),
        )
        with machine.lxd() as lxd:
            return relation.serve(
                lxd, departing_unit=departing_unit, broken_relation=broken_relation
            )

    def _serve_cos(self, machine: Machine, listeners: dict[str, str]) -> list[str]:
        if not self.memory.initialised or not lxd_charm.cos.wanted(self.model, self._cos_broken):
            return []
        # Imported here: hooks of a unit without COS relations never load it.
        from lxd_charm.cos.serve import serve

        with machine.lxd() as lxd:
            return serve(
                self,
                self.memory,
                lxd,
                clustered=machine.config.mode == "cluster",
                listeners=listeners,
                broken_relation=self._cos_broken,
            )

    # --- what Juju knows ---------------------------------------------------

    @functools.cached_property
    def _config(self) -> LxdConfig | ValueError:
        """The options, loaded once per hook; the error says what to fix."""
        try:
            return self.load_config(LxdConfig)
        except ValueError as e:
            return e

    def _machine(self) -> Machine:
        """This machine for this hook; invalid options block until fixed."""
        from lxd_charm import fan
        from lxd_charm.machine import Machine

        config = self._config
        if isinstance(config, ValueError):
            raise BlockedError(str(config))
        return Machine(
            self.host,
            self.memory,
            config,
            environ=os.environ,
            block_device=self._local_block_device(),
            joining=config.mode == "cluster"
            and not self.memory.initialised
            and peer_bags.holds_join_token(self.model, self.unit),
            fan_address=fan.fan_address(self.model) if self._bootstraps_cluster(config) else None,
        )

    def _bootstraps_cluster(self, config: LxdConfig) -> bool:
        """Only a cluster's first initialisation asks for the fan binding (one hook tool call)."""
        return config.mode == "cluster" and not self.memory.initialised and self.unit.is_leader()

    def _machine_or_none(self) -> Machine | None:
        try:
            return self._machine()
        except BlockedError:
            return None

    def _is_cluster(self) -> bool:
        return self._mode() == "cluster"

    def _mode(self) -> str:
        config = self._config
        return "standalone" if isinstance(config, ValueError) else config.mode

    def _joiner_still_waiting(self) -> bool:
        """A unit waiting for its join token or its turn, whose wait this event did not change.

        Its last reconcile said why it waits in its status, and left its
        bag's `join-status` empty (the leader tells these waits from the bags,
        `cluster.JoinStep`): when the databags give the same reason now, a
        reconcile would only repeat that, after asking snapd and LXD again
        (six requests). A unit waiting for its turn whose status names a unit
        ahead that has joined since only names the next one: it still waits
        for its turn, as its last reconcile found. Its token, its turn, or a
        wait of any other kind reconciles; update-status reconciles a waiting
        unit anyway. Reads databags only (no pylxd, see test_hook_startup).
        """
        if self.memory.initialised or self.unit.is_leader() or not self._is_cluster():
            return False
        status = self.unit.status
        if not isinstance(status, ops.WaitingStatus) or self._peer_has_deputy_work():
            return False
        from lxd_charm import cluster, mixed

        peer = self.model.get_relation(peer_bags.PEER)
        if peer is None or peer.app is None:
            return False
        bags = {unit.name: peer.data[unit] for unit in peer.units}
        if mixed.assess(peer.data[peer.app], bags).holds(leader=False):
            return False
        try:
            app = cluster.AppView.read(peer.data[peer.app])
        except cluster.ProtocolError:
            return False
        mine = peer.data[self.unit]
        step = cluster.plan_joiner(app, self.unit.name, mine, bags)
        if step.action != "wait" or mine.get(cluster.JOIN_STATUS, ""):
            return False
        if step.reason == status.message:
            return True
        if cluster.is_turn_wait(step.reason) and cluster.is_turn_wait(status.message):
            self._found = Findings(problem=WaitingError(step.reason))  # names the next unit
            return True
        return False

    def _leader_still_holding(self, peer: ops.Relation) -> bool:
        """The leader holding first tokens back, whose hold this event did not end.

        Juju shows the leader the units deployed with it one
        ``relation-changed`` at a time, and its tokens wait until every
        planned unit has announced itself (`cluster.hold_first_tokens`): all
        but the last of those hooks would reconcile only to count again.
        When its last reconcile ended holding, and the databags say the
        hold goes on with nothing else to do (`cluster.still_holding`),
        only the count in its status changes. Reads databags and goal-state
        only (no pylxd, see test_hook_startup).
        """
        from lxd_charm import cluster, mixed

        if not (self.memory.initialised and self.unit.is_leader() and self._is_cluster()):
            return False
        status = self.unit.status
        if not isinstance(status, ops.WaitingStatus) or not cluster.is_hold_wait(status.message):
            return False
        if self._peer_has_deputy_work():
            return False
        bags = {unit.name: peer.data[unit] for unit in peer.units}
        # A refresh from the earlier charm (a bag of either kind): the reconcile's rules decide.
        earlier = mixed.assess(peer.data[self.app], bags)
        if earlier.earlier_units or earlier.earlier_app:
            return False
        try:
            app = cluster.AppView.read(peer.data[self.app])
        except cluster.ProtocolError:
            return False
        wait = cluster.still_holding(app, bags, self.app.planned_units())
        if wait is None:
            return False
        self._found = Findings(problem=WaitingError(wait))
        return True

    def _peer_has_deputy_work(self) -> bool:
        return peer_bags.deputy_work(self.model, self.unit) or peer_bags.refresh_due(
            self.model, self.unit
        )

    def _zone_moved(self) -> bool:
        """Juju moved this member's unit to another zone since its failure domain was set.

        Nothing recorded yet (a member before its first reconcile of this
        revision: upgrade-charm reconciles) is no move.
        """
        if not (self.memory.failure_domain and self._is_cluster()):
            return False
        from lxd_charm.cluster import failure_domain

        zone = os.environ.get("JUJU_AVAILABILITY_ZONE")
        return failure_domain(zone) != self.memory.failure_domain

    def _resources(self) -> Resources:
        from lxd_charm.machine import Resources

        return Resources(
            lxd_snap=self._resource("lxd-snap"), lxd_binary=self._resource("lxd-binary")
        )

    def _resource(self, name: str) -> Path | None:
        try:
            return self.model.resources.fetch(name)
        except (ops.ModelError, NameError):
            return None  # not attached: nothing to sideload

    def _listener_plan(self, config: LxdConfig) -> ListenerPlan:
        from lxd_charm.listeners import plan_listeners

        addresses: dict[str, str | None] = {}
        for name, enabled in config.listeners().items():
            if not enabled:
                continue
            try:
                binding = self.model.get_binding(name)
                address = binding.network.bind_address if binding else None
            except ops.ModelError:
                address = None
            addresses[name] = str(address) if address else None
        return plan_listeners(config.listeners(), addresses)

    def _local_block_device(self) -> str | None:
        storages = self.model.storages.get("local") or []
        for storage in storages:
            with contextlib.suppress(ops.ModelError):
                return str(storage.location)
        return None

    def _load_memory(self) -> Memory:
        memory = self._stored.memory
        if not memory:
            if getattr(self._stored, "lxd_initialized", None) is not None:
                # Written by the charm operators switch from (same class name, same handle).
                theirs = {name: getattr(self._stored, name, None) for name in CANONICAL_FIELDS}
                return from_canonical(theirs, dict(self.config))
            # Written by an earlier revision of this charm, one stored field each.
            memory = {name: getattr(self._stored, name, None) for name in LEGACY_FIELDS}
            memory["https_clients"] = getattr(self._stored, "https_clients", None)
        return Memory.from_dict(memory)

    def _drop_plain_tokens(self) -> None:
        """The leader deletes join tokens the earlier charm left in plain peer data."""
        relation = self.model.get_relation("cluster")
        if relation is None or not self.unit.is_leader():
            return
        for key in lxd_charm.adopt.plain_tokens(relation.data[self.app]):
            logger.warning("removed the plain join token for %s from the peer data", key)
            relation.data[self.app][key] = ""

    def _peer_app_data(self) -> Mapping[str, str]:
        """The peer relation's application data ({} before the relation exists)."""
        relation = self.model.get_relation("cluster")
        return relation.data[self.app] if relation is not None else {}

    # --- actions -----------------------------------------------------------

    def _run_action(
        self, event: ops.ActionEvent, run: Callable[[LxdClient], dict[str, Any]]
    ) -> None:
        """Run an action against the local LXD: the one place its failures are mapped.

        An `ActionError` or an error of `lxd_common` fails the action with its
        message; anything else is a bug and fails the hook with a traceback.
        """
        from lxd_charm.actions import ActionError

        try:
            self.host.lxd_wait = ACTION_LXD_WAIT
            with self.host.lxd() as lxd:
                event.set_results(run(lxd))
        except ActionError as e:
            event.fail(str(e))
        except LxdCommonError as e:
            event.fail(f"LXD: {e}")


def _with_cluster(listeners: dict[str, str], cluster_address: str) -> dict[str, str]:
    """The listeners to show, with a member's cluster address first among them."""
    return {"cluster": cluster_address, **listeners} if cluster_address else dict(listeners)


if __name__ == "__main__":
    ops.main(LxdCharm)
