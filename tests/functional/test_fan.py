"""The fan network at a cluster's bootstrap, on this machine's real kernel and a real LXD.

Debian's kernel has no fan support, so LXD refuses the fan bridge; the
charm must then bootstrap the cluster on a plain bridge and say so. On a
kernel with fan support (Ubuntu's) the same test checks the fan bridge
instead. The fan binding is this machine's first global IPv4 address, as
Juju would bind it (LXD wants the underlay to hold one of the host's
addresses); the bridge gets a name of its own per test run, because bridges
live in the host's one network namespace, shared with other daemons.

The plain bridge is the charm's default (`ipv4.address: auto`). LXD picks
the subnet by probing random 10.x.y.0/24 for an answer on port 22 and to
ping; a sandbox whose network answers every TCP connection makes every
subnet look taken, and LXD then refuses the plain bridge too, in words of
its own (`AUTO_SUBNET_REFUSAL`). The test accepts that outcome only with
those words, after the fan's own refusal: the fallback itself was taken.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
from pathlib import Path

import pytest
from ops import testing

from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_on

FAN_REFUSAL_WORDS = 'Failed to create local member network "lxdfan0"'
AUTO_SUBNET_REFUSAL = "Failed to automatically find an unused IPv4 subnet"


def host_ipv4() -> str | None:
    """This machine's first global IPv4 address, if it has one."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        words = line.split()
        if "inet" in words:
            return str(ipaddress.ip_interface(words[words.index("inet") + 1]).ip)
    return None


def network(name: str, ip: str) -> testing.Network:
    return testing.Network(name, [testing.BindAddress([testing.Address(ip)])])


def test_bootstrap_without_fan_support_falls_back_to_a_plain_bridge(
    daemon: LxdDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fan_ip = host_ipv4() or daemon.host
    bridge = f"fb{os.getpid() % 100000}"
    ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)
    state = testing.State(
        leader=True,
        config={"mode": "cluster", "lxd-init-network-bridge": bridge},
        relations={testing.PeerRelation("cluster", id=1)},
        networks={network("cluster", daemon.host), network("fan", fan_ip)},
        resources=frozenset(EMPTY_RESOURCES),
    )
    try:
        out = ctx.run(ctx.on.install(), state)
        lxd = daemon.client()
        # What the charm logged: through juju-log, in-process or as a dispatch process.
        refusals = [
            line.message for line in ctx.juju_log if "cannot build the fan bridge" in line.message
        ]
        if out.unit_status.name == "blocked":  # this sandbox: no free subnet for "auto"
            (refusal,) = refusals
            assert FAN_REFUSAL_WORDS in refusal
            assert f'Failed to create local member network "{bridge}"' in out.unit_status.message
            assert AUTO_SUBNET_REFUSAL in out.unit_status.message
            assert not lxd.cluster.enabled  # LXD rolled the whole preseed back
            logging.getLogger(__name__).warning("fan: %s; then: %s", refusal, out.unit_status)
            return
        assert lxd.cluster.enabled
        managed = {n.name: n for n in lxd.pylxd.networks.all() if n.managed and n.type == "bridge"}
        profile = lxd.pylxd.profiles.get("default")
        assert out.unit_status.name == "active", out.unit_status.message
        if "lxdfan0" in managed:  # a kernel with fan support
            assert managed["lxdfan0"].config["bridge.mode"] == "fan"
            assert profile.devices["eth0"]["network"] == "lxdfan0"
            return
        assert list(managed) == [bridge]
        assert managed[bridge].config.get("bridge.mode", "standard") == "standard"
        assert profile.devices["eth0"]["network"] == bridge
        assert out.unit_status.message.endswith(
            "; fan unavailable: plain bridge, instances on different members "
            "cannot reach each other (relate OVN)"
        )
        (refusal,) = refusals
        assert FAN_REFUSAL_WORDS in refusal
    finally:
        daemon.lxc("profile", "device", "remove", "default", "eth0", check=False)
        daemon.lxc("network", "delete", bridge, check=False)


def test_the_note_is_read_from_a_real_lxds_networks(daemon: LxdDaemon) -> None:
    """What every member reads each hook: LXD's managed networks, with their config.

    The bridge gets fixed addresses: this sandbox refuses "auto" (see above).
    """
    from lxd_charm.fan import NOTE, plain_bridge_note

    bridge = f"fn{os.getpid() % 100000}"
    lxd = daemon.client()
    created = daemon.lxc(
        "network",
        "create",
        bridge,
        "ipv4.address=10.251.7.1/24",
        "ipv6.address=none",
        check=False,
    )
    try:
        assert created.returncode == 0, created.stderr
        networks = lxd.managed_networks()
        assert list(networks) == [bridge]  # the host's own interfaces are not managed
        assert networks[bridge]["ipv4.address"] == "10.251.7.1/24"
        assert "bridge.mode" not in networks[bridge]  # LXD lists no default: "standard"
        assert plain_bridge_note(networks, bridge) == NOTE
    finally:
        daemon.lxc("network", "delete", bridge, check=False)
