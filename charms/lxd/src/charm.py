#!/usr/bin/env python3
"""Juju charm for LXD, standalone or clustered.

This module wires Juju events to handlers and decides the unit status. The
logic lives in the `lxd_charm` package (charm-specific; the two relations'
Juju sides are `lxd_charm.cluster_peer` and `lxd_charm.https_relation`) and
in `lxd_common` (shared with the lxd-integrator charm).

Every hook that can change something runs the same idempotent `_reconcile`,
which brings the machine in line with the options: snap, snap config,
one-time initialisation, proxy, listeners, kernel settings. Juju retries
hooks, and operators change several options at once, so converging from
whatever state the machine is in is simpler and safer than reacting to
individual changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import ops

import lxd_charm.host
from lxd_charm import actions
from lxd_charm.cluster_peer import ClusterPeer, MemberRecord
from lxd_charm.config import LxdConfig
from lxd_charm.host import Host
from lxd_charm.https_relation import HttpsRelation, ServingRecord
from lxd_charm.initialise import (
    InitError,
    immutable_changes,
    initial_preseed,
    proxy_settings,
)
from lxd_charm.listeners import plan_listeners
from lxd_charm.outcomes import BlockedError, WaitingError, blocked_on
from lxd_charm.pending import PendingConfig, boot_id
from lxd_common.errors import (
    LxdApiError,
    LxdCommonError,
    LxdError,
    LxdNotFoundError,
    LxdUnreachableError,
    PreseedError,
    SideloadError,
    SnapError,
    SysctlError,
)
from lxd_common.lxd import LxdClient, transient
from lxd_common.snap import select_resource, split_pending

logger = logging.getLogger(__name__)

ACTION_LXD_WAIT = 10.0


class LxdCharm(ops.CharmBase):
    """Deploys LXD on a machine, as an independent server or a cluster member."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._stored.set_default(
            initialised=False,
            init_options={},
            proxy={},
            pending={},
            problem="",
            problem_kind="",
            sideloaded_snap="",
            listener_addresses={},
            https_clients={},
            https_problems=[],
            cluster_address="",
            cluster_summary="",
        )
        self.host: Host = lxd_charm.host.make_host()  # the one seam tests replace
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.local_storage_attached,
        ):
            framework.observe(event, self._on_change)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on.leader_elected, self._on_change)
        framework.observe(self.on.secret_changed, self._on_change)
        framework.observe(self.on.cluster_relation_joined, self._on_peer_change)
        framework.observe(self.on.cluster_relation_changed, self._on_peer_change)
        framework.observe(self.on.cluster_relation_departed, self._on_cluster_departed)
        framework.observe(self.on.https_relation_changed, self._on_https_changed)
        framework.observe(self.on.https_relation_departed, self._on_https_departed)
        framework.observe(self.on.https_relation_broken, self._on_https_broken)
        framework.observe(self.on.add_trusted_client_action, self._on_add_trusted_client)
        framework.observe(self.on.remove_trusted_client_action, self._on_remove_trusted_client)
        framework.observe(self.on.get_client_token_action, self._on_get_client_token)
        framework.observe(self.on.debug_action, self._on_debug)
        framework.observe(self.on.show_pending_config_action, self._on_show_pending_config)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    # --- hooks -------------------------------------------------------------

    def _on_change(self, _: ops.EventBase) -> None:
        """Any event that may change what the machine should look like."""
        self._reconcile()

    def _on_peer_change(self, event: ops.RelationEvent) -> None:
        """Peer data changed: only the leader and units still joining have work.

        A member that is not the leader has nothing to do with its peers'
        data (unless a leader that is not a member yet needs its help), and
        skipping the full reconcile there keeps cluster formation close to
        the cost of the joins themselves (see docs/benchmarks.md).
        """
        if (
            self._stored.initialised
            and not self.unit.is_leader()
            and not self._stored.problem
            and not self._cluster_peer().deputy_work()
        ):
            return
        self._reconcile()

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        """Finish work an earlier hook could not, and notice a reboot.

        Otherwise this hook only checks that LXD answers (one API call),
        because it runs every few minutes on every unit.
        """
        if self._stored.problem or self._reboot_happened():
            # Also the way out of waits on other units that may never end: join
            # tokens held for planned units, a join turn that does not come.
            self._reconcile(stop_waiting_on_peers=True)
            return
        if not self._stored.initialised:
            return
        try:
            with self.host.lxd() as lxd:
                clustered = self.config.get("mode") == "cluster"
                if clustered:
                    self._stored.cluster_summary = self._cluster_peer().summary(lxd)
                if not (clustered and self.unit.is_leader()):
                    lxd.server_info()  # the leader's member count already asked LXD
        except LxdError as e:
            self._set_problem("waiting", f"LXD is not answering: {e}")

    def _on_https_changed(self, _: ops.RelationChangedEvent) -> None:
        self._serve_https()

    def _on_https_departed(self, event: ops.RelationDepartedEvent) -> None:
        departing = event.departing_unit.name if event.departing_unit else None
        self._serve_https(departing_unit=departing)

    def _on_https_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._serve_https(broken_relation=event.relation.id)

    def _on_cluster_departed(self, event: ops.RelationDepartedEvent) -> None:
        """A unit is leaving: its member leaves the cluster through the leader."""
        departing = event.departing_unit
        if departing is None or departing == self.unit or not self.unit.is_leader():
            return
        self._reconcile(departing_unit=departing.name)

    def _on_add_trusted_client(self, event: ops.ActionEvent) -> None:
        params = event.load_params(actions.AddTrustedClientParams, errors="fail")
        self._run_action(event, lambda lxd: actions.add_trusted_client(lxd, params))

    def _on_remove_trusted_client(self, event: ops.ActionEvent) -> None:
        params = event.load_params(actions.RemoveTrustedClientParams, errors="fail")
        self._run_action(event, lambda lxd: actions.remove_trusted_client(lxd, params))

    def _on_get_client_token(self, event: ops.ActionEvent) -> None:
        params = event.load_params(actions.GetClientTokenParams, errors="fail")
        if not self.config.get("lxd-listen-https"):
            # LXD only issues tokens it can tell clients where to use.
            event.fail(
                f"clients redeem tokens over HTTPS: first run "
                f"`juju config {self.app.name} lxd-listen-https=true`"
            )
            return
        self._run_action(event, lambda lxd: actions.get_client_token(lxd, params))

    def _on_debug(self, event: ops.ActionEvent) -> None:
        try:
            event.set_results(actions.collect_debug_info())
        except actions.ActionError as e:
            event.fail(str(e))

    def _on_show_pending_config(self, event: ops.ActionEvent) -> None:
        pending = PendingConfig.from_dict(self._stored.pending)
        event.set_results(actions.show_pending_config(pending.all_changes()))

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        """The one place the unit status is decided, from what this and earlier hooks found."""
        event.add_status(self._status())

    def _status(self) -> ops.StatusBase:
        """The first of: bad config, a recorded problem, a pending reboot, work left, or active."""
        try:
            config = self.load_config(LxdConfig)
        except ValueError as e:
            return ops.BlockedStatus(str(e))
        if self._stored.problem:
            if self._stored.problem_kind == "waiting":
                return ops.WaitingStatus(self._stored.problem)
            return ops.BlockedStatus(self._stored.problem)
        pending = PendingConfig.from_dict(self._stored.pending)
        if pending.waiting:
            keys = ", ".join(sorted(pending.all_changes()))
            return ops.BlockedStatus(
                f"reboot to apply snap config {keys} (see show-pending-config)"
            )
        if not self._stored.initialised:
            return ops.MaintenanceStatus("initialising LXD")
        problems = list(self._stored.https_problems)
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            return ops.BlockedStatus(f"https relation: {problems[0]}{more}")
        return ops.ActiveStatus(self._summary(config))

    # --- reconciliation ----------------------------------------------------

    def _reconcile(
        self, departing_unit: str | None = None, *, stop_waiting_on_peers: bool = False
    ) -> None:
        """Bring the machine in line with the options; record what stopped it.

        Problems the operator must fix become a blocked status, transient
        ones a waiting status; both are retried by the next hook. Nothing is
        half-applied: each step either completes or leaves its part as it was.
        What the leader could not do for other units is reported only after
        this machine's own steps, which it does not hold up.
        """
        try:
            config = self.load_config(LxdConfig)
        except ValueError as e:
            logger.warning("invalid config, doing nothing until it is fixed: %s", e)
            return
        try:
            self._refuse_immutable_changes(config)
            self._sideload()
            self._ensure_snap(config)
            self._apply_snap_config(config)
            cluster_problem = None
            with self._lxd() as lxd:
                if config.mode == "standalone":
                    self._initialise(lxd, config)
                else:
                    cluster_problem = self._cluster_peer().reconcile(
                        lxd, departing_unit, stop_waiting_on_peers=stop_waiting_on_peers
                    )
                if self._stored.initialised:
                    self._undo_cleared_proxy(lxd)
                    self._apply_listeners(lxd, config)
            self._apply_kernel_settings(config)
            self._serve_https()
            if cluster_problem is not None:
                raise cluster_problem
        except BlockedError as e:
            self._set_problem("blocked", str(e))
        except WaitingError as e:
            self._set_problem("waiting", str(e))
        except LxdApiError as e:
            if not transient(e):
                raise  # unexpected: fail the hook, so Juju retries it and the log shows why
            self._set_problem("waiting", f"the LXD cluster is settling: {e}")
        else:
            self._set_problem("", "")

    def _refuse_immutable_changes(self, config: LxdConfig) -> None:
        if not self._stored.initialised:
            return
        current = {"mode": config.mode, "lxd-preseed": config.lxd_preseed}
        changes = immutable_changes(dict(self._stored.init_options), current)
        if changes:
            raise BlockedError(changes[0].message())

    def _sideload(self) -> None:
        """Install attached debug builds; an empty file detaches them."""
        snap_file = self._resource("lxd-snap", "snap")
        if snap_file is not None:
            digest = _sha256(snap_file)
            if digest != self._stored.sideloaded_snap:
                with blocked_on(SnapError, "cannot install the lxd-snap resource"):
                    self.host.snap.install_snap_file(snap_file)
                self._stored.sideloaded_snap = digest
        elif self._stored.sideloaded_snap:
            logger.info("lxd-snap resource detached: going back to the store's LXD")
            self._stored.sideloaded_snap = ""
        binary = self._resource("lxd-binary", "binary")
        with blocked_on(SnapError, "cannot use the lxd-binary resource"):
            if binary is not None:
                self.host.snap.install_debug_binary(binary, self.host.debug_binary)
            else:
                self.host.snap.remove_debug_binary(self.host.debug_binary)

    def _resource(self, name: str, kind: str) -> Path | None:
        try:
            path = self.model.resources.fetch(name)
        except (ops.ModelError, NameError):
            return None  # not attached: nothing to sideload
        workdir = self.host.sideload_dir / kind
        workdir.mkdir(parents=True, exist_ok=True)
        with blocked_on(SideloadError, f"cannot use the {name} resource"):
            return select_resource(path, "snap" if kind == "snap" else "binary", workdir=workdir)

    def _ensure_snap(self, config: LxdConfig) -> None:
        if self._stored.sideloaded_snap:
            return  # the operator's own snap stays until the resource is detached
        with blocked_on(SnapError, "cannot install LXD"):
            if self.host.snap.ensure(config.snap_channel):
                logger.info("LXD snap now on %s", config.snap_channel)

    def _apply_snap_config(self, config: LxdConfig) -> None:
        """Live keys now; `lxcfs.*` keys take effect at the next boot (see `pending`)."""
        snap = self.host.snap
        pending = PendingConfig.from_dict(self._stored.pending)
        current_boot = boot_id(self.host.root)
        with blocked_on(SnapError, "cannot apply snap config"):
            if pending.rebooted(current_boot):
                logger.info("rebooted: applying queued snap config %s", sorted(pending.queued))
                snap.set_config(pending.queued)
                pending = PendingConfig()
            changes = snap.config_changes(config.snap_config())
            if not self._stored.initialised:
                snap.set_config(changes)  # nothing runs yet: LXCFS can take it now
            else:
                live, needs_reboot = split_pending(changes)
                if needs_reboot:
                    snap.set_config({key: changes[key] for key in needs_reboot})
                    pending.reboot_keys.update({key: changes[key] for key in needs_reboot})
                    pending.boot = pending.boot or current_boot
                if pending.waiting:
                    pending.queued = {key: changes[key] for key in live}
                else:
                    snap.set_config({key: changes[key] for key in live})
        self._stored.pending = pending.to_dict()

    def _reboot_happened(self) -> bool:
        pending = PendingConfig.from_dict(self._stored.pending)
        return pending.waiting and pending.rebooted(boot_id(self.host.root))

    def _initialise(
        self, lxd: LxdClient, config: LxdConfig, extra: dict[str, Any] | None = None
    ) -> None:
        """Apply the first preseed (the operator's or the defaults), exactly once."""
        if self._stored.initialised:
            return
        proxy = proxy_settings(os.environ)
        try:
            preseed = initial_preseed(
                config.lxd_preseed,
                config.lxd_init_storage,
                config.lxd_init_network,
                self._local_block_device(),
                proxy,
            )
            for key, value in (extra or {}).items():
                preseed[key] = {**preseed.get(key, {}), **value} if key == "config" else value
            lxd.apply_preseed(preseed)
        except (InitError, PreseedError) as e:
            raise BlockedError(str(e)) from None
        except LxdApiError as e:
            option = "lxd-preseed" if config.lxd_preseed.strip() else "lxd-init-*"
            raise BlockedError(f"{e}: fix {option}") from None
        self._stored.initialised = True
        self._stored.init_options = {"mode": config.mode, "lxd-preseed": config.lxd_preseed}
        self._stored.proxy = proxy
        logger.info(
            "LXD initialised (%s)", "operator preseed" if config.lxd_preseed else "defaults"
        )

    def _undo_cleared_proxy(self, lxd: LxdClient) -> None:
        """Unset the proxy keys we set, once the model's proxy is cleared."""
        applied = dict(self._stored.proxy)
        if not applied or proxy_settings(os.environ):
            return
        current = lxd.server_config()
        lxd.set_server_config(
            {key: None for key, value in applied.items() if current.get(key) == value}
        )
        self._stored.proxy = {}

    def _apply_listeners(self, lxd: LxdClient, config: LxdConfig) -> None:
        plan = plan_listeners(config.listeners(), self._binding_addresses(config))
        server_config = dict(plan.server_config)
        if self._stored.cluster_address and not server_config.get("core.https_address"):
            # A cluster member serves the API on its cluster address anyway, and LXD
            # (5.0) closes that shared listener when core.https_address is unset.
            server_config["core.https_address"] = self._stored.cluster_address
        lxd.set_server_config(server_config)
        self.unit.set_ports(*(ops.Port(protocol, port) for protocol, port in plan.ports))  # type: ignore[arg-type]
        self._stored.listener_addresses = plan.addresses
        if plan.missing:
            names = ", ".join(plan.missing)
            raise BlockedError(
                f"no address for the {names} endpoint: bind it to a space with a subnet "
                "on this machine, or turn lxd-listen-" + plan.missing[0] + " off"
            )

    def _binding_addresses(self, config: LxdConfig) -> dict[str, str | None]:
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
        return addresses

    def _apply_kernel_settings(self, config: LxdConfig) -> None:
        with blocked_on(SysctlError, "cannot apply kernel settings"):
            self.host.sysctl(self.app.name).apply(config.sysctl_tuning)
            self.host.hardening().apply(config.kernel_hardening)

    # --- relations ---------------------------------------------------------

    def _cluster_peer(self) -> ClusterPeer:
        def bootstrap(lxd: LxdClient, extra: dict[str, Any]) -> None:
            self._initialise(lxd, self.load_config(LxdConfig), extra)

        return ClusterPeer(
            self,
            self.host,
            cast("MemberRecord", self._stored),
            bootstrap=bootstrap,
            joined=self._record_joined,
            block_device=self._local_block_device(),
        )

    def _record_joined(self) -> None:
        config = self.load_config(LxdConfig)
        self._stored.initialised = True
        self._stored.init_options = {"mode": config.mode, "lxd-preseed": config.lxd_preseed}

    def _serve_https(
        self, departing_unit: str | None = None, broken_relation: int | None = None
    ) -> None:
        try:
            config = self.load_config(LxdConfig)
        except ValueError:
            return
        HttpsRelation(
            self,
            cast("ServingRecord", self._stored),
            clustered=config.mode == "cluster",
            connect=self._lxd,
        ).serve(departing_unit=departing_unit, broken_relation=broken_relation)

    # --- helpers -----------------------------------------------------------

    @contextlib.contextmanager
    def _lxd(self) -> Iterator[LxdClient]:
        """The local daemon; not answering is a wait, not a failure."""
        try:
            client = self.host.lxd()
        except LxdNotFoundError as e:
            raise WaitingError(f"LXD is not installed yet: {e}") from None
        except LxdUnreachableError as e:
            raise WaitingError(f"LXD is not answering: {e}") from None
        with client:
            try:
                yield client
            except LxdUnreachableError as e:
                raise WaitingError(f"LXD stopped answering: {e}") from None

    def _run_action(
        self, event: ops.ActionEvent, run: Callable[[LxdClient], dict[str, Any]]
    ) -> None:
        """Run an action against the local LXD; any failure is an action failure."""
        try:
            self.host.lxd_wait = ACTION_LXD_WAIT
            with self.host.lxd() as lxd:
                event.set_results(run(lxd))
        except actions.ActionError as e:
            event.fail(str(e))
        except LxdCommonError as e:
            event.fail(f"LXD: {e}")

    def _local_block_device(self) -> str | None:
        storages = self.model.storages.get("local") or []
        for storage in storages:
            with contextlib.suppress(ops.ModelError):
                return str(storage.location)
        return None

    def _set_problem(self, kind: str, message: str) -> None:
        if message:
            logger.warning("%s: %s", kind, message)
        self._stored.problem = message
        self._stored.problem_kind = kind

    def _summary(self, config: LxdConfig) -> str:
        listeners = dict(self._stored.listener_addresses)
        mode: str = config.mode
        if config.mode == "cluster" and self._stored.cluster_summary:
            mode = f"cluster: {self._stored.cluster_summary}"
        if self._stored.cluster_address:
            listeners = {"cluster": self._stored.cluster_address, **listeners}
        if not listeners:
            return f"{mode}; no network listener"
        shown = ", ".join(f"{name} on {address}" for name, address in sorted(listeners.items()))
        return f"{mode}; {shown}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    ops.main(LxdCharm)
