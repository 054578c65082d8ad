"""The `fan` binding: which address the cluster's fan overlay is built on.

A cluster's bootstrapping leader builds its bridge as a fan overlay whose
underlay is the /16 of the `fan` space's first IPv4 address
(`lxd_charm.initialise.fan_underlay`), the network `lxd init` offers for
clusters. Every member's address in that space then carries its own slice of
the overlay, so instances on different members reach each other.
"""

from __future__ import annotations

import ipaddress

import ops

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


def fallback_note(refusal: str) -> str:
    """What the active status adds when the cluster got a plain bridge instead of the fan."""
    if not refusal:
        return ""
    return (
        "; no fan on this kernel: plain bridge, instances on different members "
        "cannot reach each other (relate OVN)"
    )
