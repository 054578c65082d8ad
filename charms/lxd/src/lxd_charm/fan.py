"""The `fan` binding: which address the cluster's fan overlay is built on.

A cluster's bootstrapping leader builds its bridge as a fan overlay whose
underlay is the /16 of the `fan` space's first IPv4 address
(`lxd_charm.initialise.fan_underlay`), the network `lxd init` offers for
clusters. Every member's address in that space then carries its own slice of
the overlay, so instances on different members reach each other.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from lxd_charm.config import LxdConfig
    from lxd_common.lxd import LxdClient

logger = logging.getLogger(__name__)

BINDING = "fan"


def fan_address(model: ops.Model) -> str | None:
    """The first IPv4 address of the space bound to `fan` on this machine; None without one."""
    try:
        binding = model.get_binding(BINDING)
        network = binding.network if binding is not None else None
    except ops.ModelError:
        return None
    if network is None:
        return None
    candidates = [network.bind_address, *(i.address for i in network.interfaces)]
    for address in candidates:
        if isinstance(address, ipaddress.IPv4Address):
            return str(address)
    return None


NOTE = (
    "; fan unavailable: plain bridge, instances on different members "
    "cannot reach each other (relate OVN)"
)
"""What the active status adds while a cluster's instances are on a plain bridge."""


def fallback_note(refusal: str) -> str:
    """The note for the refusal a bootstrap remembered ('' when there was none)."""
    return NOTE if refusal else ""


def plain_bridge_note(networks: Mapping[str, Mapping[str, str]], bridge: str) -> str:
    """The note when the charm's bridge (``bridge``) is a plain one and no fan bridge exists.

    ``networks`` is LXD's managed networks with their config
    (`LxdClient.managed_networks`), the same on every member: so every
    member says it, not only the leader whose bootstrap fell back.
    """
    if not bridge or bridge not in networks:
        return ""
    if any(config.get("bridge.mode") == "fan" for config in networks.values()):
        return ""
    return NOTE if networks[bridge].get("bridge.mode", "standard") != "fan" else ""


def cluster_note(lxd: LxdClient, config: LxdConfig) -> str:
    """This hook's fan note for a cluster member, read from LXD (one request).

    Only the charm's own default network counts: an operator's preseed
    builds whatever network it says, which is the operator's choice.
    """
    bridge = config.network_bridge
    if config.mode != "cluster" or config.lxd_preseed.strip() or not bridge:
        return ""
    note = plain_bridge_note(lxd.managed_networks(), bridge)
    if note:
        logger.info(
            "fan: %s is a plain bridge (no fan), so instances on different members cannot "
            "reach each other; OVN networks connect them",
            bridge,
        )
    return note
