"""LXD's one-time initialisation: the operator's preseed, or sensible defaults.

LXD is configured through its own API once it runs, by operators and by other
tools, so the charm initialises it exactly once and never re-applies a
preseed on top of what happened since (see `InitRecord`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxd_common.lxd import parse_preseed

#: Drivers that can build a pool on a raw block device (the Juju `local` storage).
BLOCK_DRIVERS = frozenset({"btrfs", "lvm", "zfs"})
POOL_NAME = "default"
FAN_NETWORK = "lxdfan0"
"""The fan bridge's name, as `lxd init` names it for a cluster."""

#: Juju's model proxy settings, as the charm's environment carries them.
PROXY_ENV = {
    "JUJU_CHARM_HTTP_PROXY": "core.proxy_http",
    "JUJU_CHARM_HTTPS_PROXY": "core.proxy_https",
    "JUJU_CHARM_NO_PROXY": "core.proxy_ignore_hosts",
}


class InitError(ValueError):
    """The options cannot produce a working initial configuration."""


def default_preseed(
    storage_driver: str,
    network: str,
    block_device: str | None = None,
    fan_underlay: str | None = None,
) -> dict[str, Any]:
    """The preseed used when the operator gives none.

    One storage pool called `default` (on the Juju `local` block device when
    attached) and one managed bridge, both wired into the default profile,
    so `lxc launch` works straight after deployment. With ``fan_underlay``
    (a cluster's bootstrap) the bridge is a fan overlay on that /16 instead,
    called `lxdfan0` as `lxd init` calls it, so that instances on different
    members reach each other.

    Raises:
        InitError: a block device is attached but the driver cannot use one.
    """
    preseed: dict[str, Any] = {}
    devices: dict[str, dict[str, str]] = {}
    if storage_driver:
        pool: dict[str, Any] = {"name": POOL_NAME, "driver": storage_driver}
        if block_device:
            if storage_driver not in BLOCK_DRIVERS:
                raise InitError(
                    f"lxd-init-storage-driver={storage_driver} cannot use the attached block "
                    f"device {block_device}: set one of {', '.join(sorted(BLOCK_DRIVERS))}"
                )
            pool["config"] = {"source": block_device}
        preseed["storage_pools"] = [pool]
        devices["root"] = {"type": "disk", "path": "/", "pool": POOL_NAME}
    if network and fan_underlay:
        preseed["networks"] = [
            {
                "name": FAN_NETWORK,
                "type": "bridge",
                "config": {"bridge.mode": "fan", "fan.underlay_subnet": fan_underlay},
            }
        ]
        devices["eth0"] = {"type": "nic", "name": "eth0", "network": FAN_NETWORK}
    elif network:
        preseed["networks"] = [
            {
                "name": network,
                "type": "bridge",
                "config": {"ipv4.address": "auto", "ipv6.address": "auto"},
            }
        ]
        devices["eth0"] = {"type": "nic", "name": "eth0", "network": network}
    if devices:
        preseed["profiles"] = [{"name": "default", "devices": devices}]
    return preseed


def initial_preseed(
    operator_preseed: str,
    storage_driver: str,
    network: str,
    block_device: str | None,
    proxy: Mapping[str, str],
    fan_underlay: str | None = None,
) -> dict[str, Any]:
    """The complete preseed for first initialisation, proxy settings included.

    The operator's own preseed wins over the proxy settings for any key it
    sets itself, and over the fan (``fan_underlay``, see `default_preseed`).
    """
    if operator_preseed.strip():
        preseed = parse_preseed(operator_preseed)
    else:
        preseed = default_preseed(storage_driver, network, block_device, fan_underlay)
    if proxy:
        config = dict(preseed.get("config") or {})
        for key, value in proxy.items():
            config.setdefault(key, value)
        preseed["config"] = config
    return preseed


def fan_underlay(address: str | None) -> str | None:
    """The fan's underlay: the /16 holding the fan space's first IPv4 address.

    None without an IPv4 address (the fan overlays IPv4 only).
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version != 4:
        return None
    return str(ipaddress.ip_network(f"{ip}/16", strict=False))


def fan_refused(error: str) -> bool:
    """Whether LXD's refusal of a preseed is its refusal of the fan bridge.

    LXD names the network it failed to create (5.0.2 on a kernel without
    fan support: ``Failed to create local member network "lxdfan0" in
    project "default": Failed to run: ip link set dev lxdfan0-mtu mtu 1350:
    ... (Cannot find device "lxdfan0-mtu")``).
    """
    return f'network "{FAN_NETWORK}"' in error or f"{FAN_NETWORK}-mtu" in error


def proxy_settings(env: Mapping[str, str]) -> dict[str, str]:
    """LXD's `core.proxy_*` keys mirroring the model's proxy, from the hook environment."""
    return {key: env[var] for var, key in PROXY_ENV.items() if env.get(var)}


@dataclass(frozen=True)
class ImmutableChange:
    """An option that changed after initialisation, where a change is refused."""

    option: str
    initial: str
    current: str

    def message(self) -> str:
        """The blocked status text: what changed and how to undo it."""
        shown = self.initial if len(self.initial) <= 40 else self.initial[:37] + "..."
        return (
            f"{self.option} cannot change once LXD is initialised: "
            f"set it back to {shown!r} (juju config <app> {self.option}=...)"
        )


def immutable_changes(
    initial: Mapping[str, str], current: Mapping[str, str]
) -> list[ImmutableChange]:
    """Options set at initialisation whose value now differs."""
    return [
        ImmutableChange(option, initial[option], current.get(option, ""))
        for option in sorted(initial)
        if current.get(option, "") != initial[option]
    ]
