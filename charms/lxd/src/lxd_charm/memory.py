"""What a unit remembers across hooks: what it did, and nothing it could ask again.

Juju keeps a charm's stored state with the unit, and a hook that fails
leaves it as it was. Everything the charm can learn again in the next hook
(LXD's members and addresses, the bindings, the last status) is worked out
there instead, so a record can never disagree with the machine. What stays
here is what nobody else can tell the charm: that it initialised LXD and
with which options, the proxy keys it set, snap config waiting for a
reboot, the snap the operator sideloaded (and whether it installed the
resources Juju last gave it), the trust entries it made for `https`
requirers, and the boot it last reconciled in.

The record is plain data (`to_dict` / `from_dict`) so this module stays
free of `ops`: `charm.py` loads it once per hook and saves it once, just
before Juju commits the hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxd_charm.pending import PendingConfig

HttpsRecords = dict[str, dict[str, str]]
"""Fingerprints trusted for `https` requirers: relation id -> requiring unit -> fingerprint."""

LEGACY_FIELDS = ("initialised", "init_options", "proxy", "pending", "sideloaded_snap")
"""The memory an earlier revision of this charm kept in separate stored fields."""


@dataclass
class Memory:
    """The unit's memory of its own past actions.

    Attributes:
        initialised: LXD was initialised (or joined a cluster) by this charm.
        init_options: the `mode` and `lxd-preseed` it was initialised with,
            which the charm refuses to see changed afterwards.
        proxy: the `core.proxy_*` keys it set from the model's proxy, so it
            removes exactly those when the model's proxy is cleared.
        pending: snap config written or queued until the next reboot.
        sideloaded_snap: sha256 of the `lxd-snap` resource it installed.
        https_clients: trust entries it made for standalone `https`
            requirers (a cluster keeps these in its peer application bag,
            so that a new leader inherits them).
        fan_fallback: LXD's refusal of the fan bridge, when this unit
            bootstrapped a cluster on a plain bridge instead (LXD's words, for
            the record: the status reads LXD's networks, `lxd_charm.fan`).
        ovn: what the OVN relations set, so that exactly that is undone
            when they go (see `lxd_charm.ovn_relation`).
        loki_url: the `loki.api.url` it set for a standalone unit's
            `logging` relation, so it unsets exactly that.
        adopted: what this unit found already set up in LXD and adopted
            instead of initialising it ("" when the charm initialised LXD),
            for the log and the operator (see `lxd_charm.adopt`).
        failure_domain: the LXD failure domain this unit last put (or found) on
            its member, so a hook that skips the reconcile (a member's peer
            event, a healthy update-status) notices a zone change without
            asking LXD, and applies it in that hook.
        pool_wait_since: when LXD first refused this unit's join because a
            remote storage pool was not ready for it (`time.time()`; 0 when
            not), so the wait is bounded over all hooks (`cluster_join`).
        reconciled_boot: the boot id of the machine when this unit last
            reconciled, so Juju's `start` right after install and
            config-changed, in the same boot, skips a reconcile that would
            find what theirs found; after a reboot it reconciles.
        resources_applied: the resources Juju had for the unit at its last
            install or upgrade-charm are installed (or, empty, removed).
            Juju changes them only through upgrade-charm (`juju
            attach-resource` runs it), and each `resource-get` syncs with the
            controller, so reconciles fetch them only until this is set.
    """

    initialised: bool = False
    init_options: dict[str, str] = field(default_factory=dict)
    proxy: dict[str, str] = field(default_factory=dict)
    pending: PendingConfig = field(default_factory=PendingConfig)
    sideloaded_snap: str = ""
    https_clients: HttpsRecords = field(default_factory=dict)
    fan_fallback: str = ""
    ovn: dict[str, str] = field(default_factory=dict)
    loki_url: str = ""
    adopted: str = ""
    failure_domain: str = ""
    pool_wait_since: float = 0.0
    reconciled_boot: str = ""
    resources_applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data for Juju's stored state."""
        return {
            "initialised": self.initialised,
            "init_options": dict(self.init_options),
            "proxy": dict(self.proxy),
            "pending": self.pending.to_dict(),
            "sideloaded_snap": self.sideloaded_snap,
            "https_clients": {rel: dict(units) for rel, units in self.https_clients.items()},
            "fan_fallback": self.fan_fallback,
            "ovn": dict(self.ovn),
            "loki_url": self.loki_url,
            "adopted": self.adopted,
            "failure_domain": self.failure_domain,
            "pool_wait_since": self.pool_wait_since,
            "reconciled_boot": self.reconciled_boot,
            "resources_applied": self.resources_applied,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Memory:
        """Inverse of `to_dict`; an empty mapping is a unit that has done nothing yet."""
        pending = data.get("pending")
        clients = data.get("https_clients")
        return cls(
            initialised=bool(data.get("initialised", False)),
            init_options=_strings(data.get("init_options")),
            proxy=_strings(data.get("proxy")),
            pending=PendingConfig.from_dict(pending if isinstance(pending, Mapping) else {}),
            sideloaded_snap=str(data.get("sideloaded_snap") or ""),
            https_clients={
                str(rel): _strings(units)
                for rel, units in (clients.items() if isinstance(clients, Mapping) else ())
            },
            fan_fallback=str(data.get("fan_fallback") or ""),
            ovn=_strings(data.get("ovn")),
            loki_url=str(data.get("loki_url") or ""),
            adopted=str(data.get("adopted") or ""),
            failure_domain=str(data.get("failure_domain") or ""),
            pool_wait_since=_number(data.get("pool_wait_since")),
            reconciled_boot=str(data.get("reconciled_boot") or ""),
            resources_applied=bool(data.get("resources_applied", False)),
        )


CANONICAL_FIELDS = ("lxd_initialized", "lxd_clustered", "config")
"""What the charm operators switch from keeps at the same stored-state handle."""


def from_canonical(stored: Mapping[str, Any], config: Mapping[str, Any]) -> Memory:
    """Memory from the stored state of the charm operators switch from (`juju refresh --switch`).

    That charm records `lxd_initialized` and the options it applied
    (`config`). Where it initialised LXD, the unit starts as one that did,
    with the `mode` and `lxd-preseed` it recorded (the current options where
    it recorded none), so nothing is initialised again and later changes of
    those options are refused as usual.

    Args:
        stored: its fields, by name (absent ones missing or None).
        config: the current options, for what it did not record.
    """
    if not stored.get("lxd_initialized"):
        return Memory()
    theirs = stored.get("config")
    recorded = theirs if isinstance(theirs, Mapping) else {}
    options = {
        name: str(recorded.get(name, config.get(name, default)) or "")
        for name, default in (("mode", "standalone"), ("lxd-preseed", ""))
    }
    clustered = "cluster member" if stored.get("lxd_clustered") else "standalone"
    return Memory(
        initialised=True,
        init_options=options,
        adopted=f"LXD initialised by the earlier charm ({clustered})",
    )


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): str(item) for key, item in value.items()}
