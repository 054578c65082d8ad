"""Which LXD listeners to run, on which address, from the Juju bindings.

Each `lxd-listen-<name>` option switches on one listener; the address is the
first one of the space bound to the `<name>` endpoint (so operators choose
networks with Juju spaces, not addresses: options are per application, and
addresses are per unit). Ports are LXD's defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lxd_common.endpoints import host_port


@dataclass(frozen=True)
class Listener:
    """An LXD listener: its server config key, default port and protocols."""

    name: str
    config_key: str
    port: int
    protocols: tuple[str, ...] = ("tcp",)


LISTENERS: Final[dict[str, Listener]] = {
    listener.name: listener
    for listener in (
        Listener("https", "core.https_address", 8443),
        Listener("bgp", "core.bgp_address", 179),
        Listener("dns", "core.dns_address", 53, ("tcp", "udp")),
        Listener("metrics", "core.metrics_address", 8444),
    )
}


@dataclass(frozen=True)
class ListenerPlan:
    """What the server config and the unit's open ports should be."""

    server_config: dict[str, str | None]
    ports: list[tuple[str, int]]
    addresses: dict[str, str]
    missing: list[str]


def plan_listeners(
    enabled: Mapping[str, bool],
    binding_addresses: Mapping[str, str | None],
) -> ListenerPlan:
    """Turn the options and the bound addresses into server config and ports.

    A listener that is switched on but whose endpoint has no address (the
    space has no subnet on this machine) is reported in ``missing`` and left
    off, rather than guessing another address.
    """
    server_config: dict[str, str | None] = {}
    ports: list[tuple[str, int]] = []
    addresses: dict[str, str] = {}
    missing: list[str] = []
    for name, listener in LISTENERS.items():
        address = binding_addresses.get(name)
        if not enabled.get(name):
            server_config[listener.config_key] = None
            continue
        if not address:
            missing.append(name)
            server_config[listener.config_key] = None
            continue
        server_config[listener.config_key] = host_port(
            str(ipaddress.ip_address(address)), listener.port
        )
        addresses[name] = server_config[listener.config_key] or ""
        ports += [(protocol, listener.port) for protocol in listener.protocols]
    return ListenerPlan(server_config, ports, addresses, missing)
