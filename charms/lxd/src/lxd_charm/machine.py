"""The steps that bring this machine in line with the options, free of `ops`.

`charm.py` gathers what only Juju can tell (the options, resource files, the
addresses of bound spaces, the Juju storage device) and hands it over as
plain data; each step here then acts on the machine through the `Host` and
records what it did in the unit's `Memory`. Every step is idempotent and
either completes or leaves its part as it was, raising `BlockedError` or
`WaitingError` (`lxd_charm.outcomes`) to say why it could not finish.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxd_charm import adopt, half_join
from lxd_charm.config import LxdConfig
from lxd_charm.host import Host
from lxd_charm.initialise import (
    InitError,
    fan_refused,
    fan_underlay,
    immutable_changes,
    initial_preseed,
    proxy_settings,
)
from lxd_charm.listeners import ListenerPlan
from lxd_charm.memory import Memory
from lxd_charm.outcomes import BlockedError, WaitingError, blocked_on
from lxd_charm.pending import PendingConfig, boot_id
from lxd_common.errors import (
    LxdApiError,
    LxdNotFoundError,
    LxdUnreachableError,
    PreseedError,
    SideloadError,
    SnapError,
    SysctlError,
    TrustEntryNotFoundError,
)
from lxd_common.snap import select_resource, split_pending

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

CLUSTER_ADDRESS_KEY = "cluster.https_address"


@dataclass(frozen=True)
class Resources:
    """The attached resource files (None: not attached)."""

    lxd_snap: Path | None = None
    lxd_binary: Path | None = None


class Machine:
    """This unit's machine for one hook: its options, its memory, and the host it acts on."""

    def __init__(
        self,
        host: Host,
        memory: Memory,
        config: LxdConfig,
        *,
        environ: Mapping[str, str],
        block_device: str | None = None,
        joining: bool = False,
        fan_address: str | None = None,
    ) -> None:
        """Gather what the steps act on.

        Args:
            host: the machine.
            memory: what this unit remembers doing.
            config: the options.
            environ: the hook's environment (the model's proxy settings).
            block_device: the Juju `local` storage device, if attached.
            joining: the leader issued this unit a join token it has not
                joined with yet, so local cluster state LXD cannot start
                from can only come from that join.
            fan_address: the fan space's first IPv4 address, when this unit
                bootstraps a cluster (the fan bridge's underlay is its /16).
        """
        self.host = host
        self.memory = memory
        self.config = config
        self._environ = environ
        self._block_device = block_device
        self._joining = joining
        self._fan_address = fan_address
        self._open: LxdClient | None = None
        """The connection of the outermost `lxd()` block, while one is open."""
        self._config_seen: dict[str, str] | None = None
        """The open connection's server config as it read it to connect, while that holds
        (see `server_config`)."""

    @property
    def block_device(self) -> str | None:
        """The Juju `local` storage device, where one is attached."""
        return self._block_device

    # --- LXD ---------------------------------------------------------------

    @contextlib.contextmanager
    def lxd(self) -> Iterator[LxdClient]:
        """The local daemon; not answering is a wait, failing to start is explained.

        A daemon that cannot start because a cluster join died half-way is
        reset and started again when that loses nothing (see `half_join`).

        Inside an outer ``with machine.lxd()``, the outer connection is
        yielded again: every connection costs a ``GET /1.0`` (pylxd reads it
        to connect), and a hook's steps after the snap's (the peer relation,
        listeners, https, Ceph, OVN, COS) share one. Steps before it (the
        snap, a refresh, its config) may restart LXD, so they connect on
        their own, waiting for the daemon to answer.
        """
        if self._open is not None:
            try:
                yield self._open
            except LxdUnreachableError as e:  # said in this step, as its own connection would
                raise WaitingError(f"LXD stopped answering: {e}") from None
            return
        try:
            client = self.host.lxd()
        except (LxdNotFoundError, LxdUnreachableError) as e:
            client = self._recover_or_explain(e)
        with client:
            self._open = client
            self._config_seen = (
                client.server_config(client.info_at_connect) if self.memory.initialised else None
            )
            try:
                yield client
            except LxdUnreachableError as e:
                raise WaitingError(f"LXD stopped answering: {e}") from None
            finally:
                self._open = None  # what it read stays behind, but only answers for it

    def server_config(self, lxd: LxdClient) -> dict[str, str]:
        """LXD's server config: as the hook's connection read it to connect, while that holds.

        pylxd reads ``GET /1.0`` (which holds the server config) to connect,
        and a reconcile used to read it twice more: for the cluster address
        check (`ClusterPeer`) and for the listeners' diff (`apply_listeners`).
        The connection's own answer serves both, because within one hook
        only this charm changes what they compare, and it is not used after
        the charm could have changed it:

        - it is kept only for a connection opened on an initialised LXD, so
          that no first initialisation (a preseed, a cluster bootstrap or
          join, each of which sets server keys) runs on it: they run only
          on an LXD not initialised yet;
        - the steps here that write server config (`initialise`,
          `undo_cleared_proxy`, `apply_listeners`) and `record_initialised`
          drop it, so whatever asks after them reads LXD again.

        Other units' hooks change only cluster-wide keys, never the member's
        own addresses compared here; an operator's ``lxc config set`` during
        the hook races the charm with or without the extra read. Any other
        connection (or none open) reads LXD.
        """
        if lxd is self._open and self._config_seen is not None:
            return dict(self._config_seen)
        return lxd.server_config()

    def _recover_or_explain(self, error: LxdNotFoundError | LxdUnreachableError) -> LxdClient:
        """Tell "not installed", "not running" and "cannot start" apart; undo a half join."""
        with blocked_on(SnapError, "cannot ask snapd about LXD"):
            installed = self.host.snap.installed() is not None
        if not installed:
            raise WaitingError(f"LXD is not installed yet: {error}") from None
        reason = half_join.start_failure(self.host.lxd_log)
        if reason is None:
            if isinstance(error, LxdNotFoundError):
                raise WaitingError(f"LXD is not running yet: {error}") from None
            raise WaitingError(f"LXD is not answering: {error}") from None
        lxd_dir = self.host.lxd_dir
        if not half_join.half_joined(reason) or self.memory.initialised:
            raise BlockedError(f"LXD cannot start: {reason} (see {self.host.lxd_log})") from None
        instances = half_join.instances_on_disk(lxd_dir)
        if instances or not self._joining:
            held = (
                f"it holds instances ({', '.join(instances)})"
                if instances
                else ("this unit was not joining a cluster")
            )
            raise BlockedError(
                f"LXD cannot start: {reason}. Its local database describes a cluster "
                f"membership the cluster does not have, and {held}, so the charm does not "
                f"reset it: move any instances away, remove {lxd_dir / 'database'}, then "
                "restart LXD"
            ) from None
        try:
            reset = half_join.reset_unregistered_member(lxd_dir)
        except (OSError, ValueError) as e:
            raise BlockedError(f"LXD cannot start: {reason}; resetting it failed: {e}") from None
        logger.warning(
            "LXD could not start (%s) after a cluster join that never finished: removed %s "
            "and restarting it, to join again",
            reason,
            ", ".join(reset.removed),
        )
        with blocked_on(SnapError, "cannot restart LXD"):
            self.host.restart_lxd()
        try:
            return self.host.lxd()
        except (LxdNotFoundError, LxdUnreachableError) as e:
            raise WaitingError(f"LXD is restarting after a reset: {e}") from None

    def clear_half_join(self, lxd: LxdClient, refusal: str) -> list[str]:
        """Delete what an unfinished join left (pools, its own trust entry), to join again.

        Only on a machine that is not a member, holds no instance, and whose
        pools hold no volume; returns what was deleted.

        Raises:
            BlockedError: something is in the way that the charm must not delete.
        """
        pools = half_join.pools_named(refusal)
        certificates = half_join.leftover_certificates(refusal)
        instances = lxd.instance_names()
        volumes = {pool: lxd.storage_pool_volumes(pool) for pool in pools}
        member = lxd.cluster.server_name
        if member or instances or any(volumes.values()) or not (pools or certificates):
            held = ", ".join(f"{p}: {', '.join(v)}" for p, v in volumes.items() if v)
            undo = [f"lxc storage delete {' '.join(pools)}"] if pools else []
            undo += [f"lxc config trust remove {fp}" for _, fp in certificates]
            raise BlockedError(
                f"LXD refused the join ({refusal}): an earlier join left this machine "
                f"half-done, and it holds instances or volumes ({', '.join(instances)}"
                f"{'; ' + held if held else ''}), so the charm does not clear it: move them "
                f"away, then {' and '.join(undo) or 'lxc storage delete <pool>'}"
            )
        cleared = []
        for pool in pools:
            lxd.delete_storage_pool(pool)
            cleared.append(f"storage pool {pool}")
        for name, fingerprint in certificates:
            with contextlib.suppress(TrustEntryNotFoundError):  # gone already: fine
                lxd.trust.remove(fingerprint)
            cleared.append(f"trust entry {name}")
        logger.warning("an unfinished cluster join left %s behind: deleted", ", ".join(cleared))
        return cleared

    # --- before LXD runs ---------------------------------------------------

    def refuse_immutable_changes(self) -> None:
        """Options LXD was initialised with cannot change: blocked until undone."""
        if not self.memory.initialised:
            return
        current = {"mode": self.config.mode, "lxd-preseed": self.config.lxd_preseed}
        changes = immutable_changes(self.memory.init_options, current)
        if changes:
            raise BlockedError(changes[0].message())

    def sideload_snap(self, resources: Resources) -> None:
        """Install an attached snap build; an empty or detached resource goes back to the store.

        Before `ensure_snap`, which leaves a sideloaded snap alone.
        """
        snap_file = self._unpacked(resources.lxd_snap, "lxd-snap", "snap")
        if snap_file is not None:
            digest = _sha256(snap_file)
            if digest != self.memory.sideloaded_snap:
                with blocked_on(SnapError, "cannot install the lxd-snap resource"):
                    self.host.snap.install_snap_file(snap_file)
                self.memory.sideloaded_snap = digest
        elif self.memory.sideloaded_snap:
            logger.info("lxd-snap resource detached: going back to the store's LXD")
            self.memory.sideloaded_snap = ""

    def sideload_binary(self, resources: Resources) -> None:
        """Run an attached debug build of LXD, or the snap's own again when there is none.

        After `ensure_snap`: the build goes into the snap's directory, and
        LXD restarts onto it, so on a fresh machine the snap comes first.
        """
        binary = self._unpacked(resources.lxd_binary, "lxd-binary", "binary")
        with blocked_on(SnapError, "cannot use the lxd-binary resource"):
            if binary is not None:
                self.host.snap.install_debug_binary(binary, self.host.debug_binary)
            else:
                self.host.snap.remove_debug_binary(self.host.debug_binary)

    def _unpacked(self, path: Path | None, name: str, kind: str) -> Path | None:
        """The file to install from a resource (a tarball holds it); None for an empty one."""
        if path is None:
            return None
        workdir = self.host.sideload_dir / kind
        workdir.mkdir(parents=True, exist_ok=True)
        with blocked_on(SideloadError, f"cannot use the {name} resource"):
            return select_resource(path, "snap" if kind == "snap" else "binary", workdir=workdir)

    def ensure_snap(self) -> None:
        """The LXD snap on the configured channel (unless the operator sideloaded one).

        In the `+` cohort and with snapd's automatic refreshes held where
        `snap-cohort` / `snap-hold` say (in cluster mode, by default). A
        cluster member moves to another channel only in a refresh round
        (`lxd_charm.refresh_round`), with every other member: refreshed on
        its own, its LXD would wait for the rest.
        """
        if self.memory.sideloaded_snap:
            return  # the operator's own snap stays until the resource is detached
        config = self.config
        member = config.mode == "cluster" and self.memory.initialised
        with blocked_on(SnapError, "cannot install LXD"):
            if self.host.snap.ensure(
                config.snap_channel, cohort=config.snap_in_cohort(), refresh=not member
            ):
                logger.info("LXD snap now on %s", config.snap_channel)
        with blocked_on(SnapError, "cannot hold snapd's automatic refreshes of LXD"):
            self.host.snap.set_hold(config.snap_held())

    def apply_snap_config(self) -> None:
        """Live keys now; `lxcfs.*` keys take effect at the next boot (see `pending`)."""
        snap = self.host.snap
        pending = copy.deepcopy(self.memory.pending)  # kept only if every change went through
        current_boot = boot_id(self.host.root)
        with blocked_on(SnapError, "cannot apply snap config"):
            if pending.rebooted(current_boot):
                logger.info("rebooted: applying queued snap config %s", sorted(pending.queued))
                snap.set_config(pending.queued)
                pending = PendingConfig()
            changes = snap.config_changes(self.config.snap_config())
            if not self.memory.initialised:
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
        self.memory.pending = pending

    def reboot_happened(self) -> bool:
        """Whether the machine rebooted since snap config was queued for a reboot."""
        pending = self.memory.pending
        return pending.waiting and pending.rebooted(boot_id(self.host.root))

    # --- LXD's own configuration ---------------------------------------------

    def adopt_existing(self, peer_app_data: Mapping[str, str]) -> str:
        """Adopt an LXD someone else initialised, before anything would initialise it.

        Asks LXD what exists (only while this unit's memory says nothing was
        initialised): where anything does, records it as initialised with
        the current `mode` and `lxd-preseed`, so no preseed is applied and
        later changes of either are refused. ``peer_app_data`` is the peer
        relation's application data (its `members` map says which cluster
        is this application's).

        Returns:
            What was adopted, for the log and the status ("" when nothing).

        Raises:
            BlockedError: the `mode` contradicts what LXD is (`lxd_charm.adopt`).
        """
        if self.memory.initialised:
            return ""
        own_connection = self._open is None
        with self.lxd() as lxd:
            # A connection opened just now says whether LXD is a cluster member in
            # the answer it read to connect; an outer block's may be older: ask.
            found = lxd.existing_setup(lxd.info_at_connect if own_connection else None)
        if not adopt.adoption(found, self.config.mode, adopt.members_of(peer_app_data)):
            return ""
        self.record_initialised()
        self.memory.adopted = found.describe()
        logger.warning(
            "LXD was already initialised (%s): adopted it as it is, without applying a preseed",
            self.memory.adopted,
        )
        return self.memory.adopted

    def initialise(self, lxd: LxdClient, extra: Mapping[str, Any] | None = None) -> None:
        """Apply the first preseed (the operator's or the defaults), exactly once.

        ``extra`` adds to it: the cluster protocol's bootstrap settings. A
        cluster's bootstrap (``extra`` with a ``cluster`` section) builds a
        fan bridge on the `fan` space; where LXD cannot (a kernel without
        fan support), it falls back to a plain bridge and remembers why.
        """
        if self.memory.initialised:
            return
        config = self.config
        proxy = proxy_settings(self._environ)
        bootstrap = bool(extra and "cluster" in extra)
        underlay = fan_underlay(self._fan_address) if bootstrap else None
        try:
            try:
                self._apply_initial(lxd, proxy, extra, underlay)
            except LxdApiError as e:
                if underlay is None or config.lxd_preseed.strip() or not fan_refused(str(e)):
                    raise
                logger.warning(
                    "LXD cannot build the fan bridge (%s): a plain bridge instead, so instances "
                    "on different members cannot reach each other (OVN can connect them)",
                    e,
                )
                self._apply_initial(lxd, proxy, extra, None)
                self.memory.fan_fallback = str(e)
        except (InitError, PreseedError) as e:
            raise BlockedError(str(e)) from None
        except LxdApiError as e:
            option = "lxd-preseed" if config.lxd_preseed.strip() else "lxd-init-*"
            raise BlockedError(f"{e}: fix {option}") from None
        self.record_initialised()
        self.memory.proxy = proxy
        logger.info(
            "LXD initialised (%s)", "operator preseed" if config.lxd_preseed else "defaults"
        )

    def _apply_initial(
        self,
        lxd: LxdClient,
        proxy: Mapping[str, str],
        extra: Mapping[str, Any] | None,
        underlay: str | None,
    ) -> None:
        config = self.config
        preseed = initial_preseed(
            config.lxd_preseed,
            config.storage_driver,
            config.network_bridge,
            self._block_device,
            proxy,
            underlay,
        )
        for key, value in (extra or {}).items():
            preseed[key] = {**preseed.get(key, {}), **value} if key == "config" else value
        lxd.apply_preseed(preseed)

    def record_initialised(self) -> None:
        """Remember that LXD runs with these options (after a preseed, or a cluster join)."""
        self._config_seen = None  # a preseed or a join set server keys: read them again
        self.memory.initialised = True
        self.memory.init_options = {
            "mode": self.config.mode,
            "lxd-preseed": self.config.lxd_preseed,
        }

    def undo_cleared_proxy(self, lxd: LxdClient) -> None:
        """Unset the proxy keys we set, once the model's proxy is cleared."""
        applied = dict(self.memory.proxy)
        if not applied or proxy_settings(self._environ):
            return
        current = self.server_config(lxd)
        lxd.set_server_config(
            {key: None for key, value in applied.items() if current.get(key) == value},
            current=current,
        )
        self._config_seen = None  # what it unset is no longer as the connection read it
        self.memory.proxy = {}

    def apply_listeners(self, lxd: LxdClient, plan: ListenerPlan, cluster_address: str) -> None:
        """LXD's listeners as planned (those without an address stay off).

        ``cluster_address`` is this member's cluster address ("" when standalone).
        """
        server_config = dict(plan.server_config)
        if cluster_address and not server_config.get("core.https_address"):
            # A cluster member serves the API on its cluster address anyway, and LXD
            # (5.0) closes that shared listener when core.https_address is unset.
            server_config["core.https_address"] = cluster_address
        lxd.set_server_config(server_config, current=self.server_config(lxd))
        self._config_seen = None  # what it set is no longer as the connection read it

    # --- the kernel ------------------------------------------------------------

    def apply_kernel_settings(self, app_name: str) -> None:
        """Kernel tuning (sysctl) and hardening, each on or off as the options say."""
        with blocked_on(SysctlError, "cannot apply kernel settings"):
            self.host.sysctl(app_name).apply(self.config.sysctl_tuning)
            self.host.hardening().apply(self.config.kernel_hardening)


def require_listener_addresses(plan: ListenerPlan) -> None:
    """A listener switched on without an address to listen on blocks, naming the way out."""
    if plan.missing:
        names = ", ".join(plan.missing)
        raise BlockedError(
            f"no address for the {names} endpoint: bind it to a space with a subnet "
            "on this machine, or turn lxd-listen-" + plan.missing[0] + " off"
        )


def active_message(mode: str, cluster_summary: str, listeners: Mapping[str, str]) -> str:
    """The active status: the mode (with the cluster's state), then where LXD listens."""
    shown_mode = f"cluster: {cluster_summary}" if mode == "cluster" and cluster_summary else mode
    if not listeners:
        return f"{shown_mode}; no network listener"
    shown = ", ".join(f"{name} on {address}" for name, address in sorted(listeners.items()))
    return f"{shown_mode}; {shown}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
