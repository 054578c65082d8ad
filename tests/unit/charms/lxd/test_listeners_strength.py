"""Each decision of `lxd_charm.listeners`, one wrong answer each (pure: no Juju, no LXD).

The server config keys and ports are LXD's own (`core.*_address`, its default
ports), so a plan is compared whole.
"""

from __future__ import annotations

from lxd_charm.listeners import Listener, ListenerPlan, plan_listeners

ALL_ON = {"https": True, "bgp": True, "dns": True, "metrics": True}


def test_every_listener_on_its_bound_address_and_lxds_port() -> None:
    plan = plan_listeners(
        ALL_ON,
        {"https": "10.0.0.1", "bgp": "10.0.1.1", "dns": "fd00:0::53", "metrics": "10.0.2.1"},
    )
    assert plan == ListenerPlan(
        server_config={
            "core.https_address": "10.0.0.1:8443",
            "core.bgp_address": "10.0.1.1:179",
            "core.dns_address": "[fd00::53]:53",
            "core.metrics_address": "10.0.2.1:8444",
        },
        ports=[("tcp", 8443), ("tcp", 179), ("tcp", 53), ("udp", 53), ("tcp", 8444)],
        addresses={
            "https": "10.0.0.1:8443",
            "bgp": "10.0.1.1:179",
            "dns": "[fd00::53]:53",
            "metrics": "10.0.2.1:8444",
        },
        missing=[],
    )


def test_a_listener_switched_off_is_unset_even_with_an_address() -> None:
    plan = plan_listeners({"https": True}, dict.fromkeys(ALL_ON, "10.0.0.1"))
    assert plan == ListenerPlan(
        server_config={
            "core.https_address": "10.0.0.1:8443",
            "core.bgp_address": None,
            "core.dns_address": None,
            "core.metrics_address": None,
        },
        ports=[("tcp", 8443)],
        addresses={"https": "10.0.0.1:8443"},
        missing=[],
    )


def test_a_listener_on_without_an_address_is_missing_and_unset() -> None:
    plan = plan_listeners(ALL_ON, {"https": None, "dns": "", "metrics": "10.0.2.1"})
    assert plan == ListenerPlan(
        server_config={
            "core.https_address": None,
            "core.bgp_address": None,
            "core.dns_address": None,
            "core.metrics_address": "10.0.2.1:8444",
        },
        ports=[("tcp", 8444)],
        addresses={"metrics": "10.0.2.1:8444"},
        missing=["https", "bgp", "dns"],
    )


def test_a_listener_speaks_tcp_unless_told() -> None:
    assert Listener("x", "core.x_address", 1).protocols == ("tcp",)
