"""The LXD charm's real code, driven by ops.testing, against a real LXD daemon.

ops.testing stands in for Juju and `FakeSnapd` for snapd (neither runs
here); everything LXD does is done by a real daemon, found the way the charm
finds it in production: through ``LXD_DIR``.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_common.certs import generate_client_certificate
from lxd_common.errors import LxdUnreachableError
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_on


@pytest.fixture
def unit(daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A charm unit whose machine is ``daemon``: returns a runner for hooks."""
    ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)
    https = testing.Network("https", [testing.BindAddress([testing.Address(daemon.host)])])

    class Unit:
        context = ctx

        def run(
            self, event: str, state: testing.State | None = None, **config: Any
        ) -> testing.State:
            state = state or testing.State(networks={https})
            state = replace(
                state,
                config={**state.config, **config},
                resources=state.resources or frozenset(EMPTY_RESOURCES),
            )
            return ctx.run(getattr(ctx.on, event)(), state)

    return Unit()


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) == 0


def test_initialises_from_defaults(unit: Any, daemon: LxdDaemon) -> None:
    state = unit.run("install", **{"lxd-init-network": False})
    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    lxd = daemon.client()
    assert [p.name for p in lxd.pylxd.storage_pools.all()] == ["default"]
    assert lxd.pylxd.profiles.get("default").devices["root"] == {
        "path": "/",
        "pool": "default",
        "type": "disk",
    }


def test_lxd_requests_are_not_each_sent_to_the_juju_log(unit: Any) -> None:
    """urllib3 logs each request at DEBUG; ops would make each one a `juju-log` call."""
    state = unit.run("install", **{"lxd-init-network": False})
    assert state.unit_status.name == "active"
    logged = [line.message for line in unit.context.juju_log]
    assert any("LXD snap now on" in m for m in logged), logged  # the charm's own records go
    assert not [m for m in logged if '"GET /1.0' in m or "http://localhost" in m], logged


def test_initialises_from_the_operators_preseed_once(unit: Any, daemon: LxdDaemon) -> None:
    preseed = (
        "storage_pools:\n- name: fast\n  driver: dir\n"
        "config:\n  images.auto_update_interval: '0'\n"
    )
    state = unit.run("install", **{"lxd-preseed": preseed})
    lxd = daemon.client()
    assert [p.name for p in lxd.pylxd.storage_pools.all()] == ["fast"]
    assert lxd.server_config()["images.auto_update_interval"] == "0"

    # The operator changes LXD through its API; then someone edits lxd-preseed.
    lxd.set_server_config({"images.auto_update_interval": "12"})
    changed = preseed + "networks: []\n"
    state = unit.run(
        "config_changed", replace(state, config={**state.config, "lxd-preseed": changed})
    )
    assert state.unit_status.name == "blocked"
    assert "lxd-preseed cannot change once LXD is initialised" in state.unit_status.message
    assert lxd.server_config()["images.auto_update_interval"] == "12", "nothing re-applied"
    state = unit.run(
        "config_changed", replace(state, config={**state.config, "lxd-preseed": preseed})
    )
    assert state.unit_status.name == "active"


def test_preseed_lxd_refuses_blocks_and_leaves_lxd_untouched(unit: Any, daemon: LxdDaemon) -> None:
    bad = "storage_pools:\n- name: p\n  driver: no-such-driver\n"
    state = unit.run("install", **{"lxd-preseed": bad})
    assert state.unit_status.name == "blocked"
    assert state.unit_status.message.startswith("LXD refused the preseed")
    assert state.unit_status.message.endswith("fix lxd-preseed")
    assert daemon.client().pylxd.storage_pools.all() == []


def test_https_listener_really_listens_on_the_bound_address(unit: Any, daemon: LxdDaemon) -> None:
    state = unit.run("install", **{"lxd-init-network": False})
    assert not listening(daemon.host, 8443)
    state = unit.run(
        "config_changed", replace(state, config={**state.config, "lxd-listen-https": True})
    )
    assert state.unit_status == testing.ActiveStatus(f"standalone; https on {daemon.host}:8443")
    assert state.opened_ports == {testing.TCPPort(8443)}
    assert daemon.client().server_config()["core.https_address"] == f"{daemon.host}:8443"
    assert listening(daemon.host, 8443)
    pair = generate_client_certificate("listener-check")
    with LxdClient.remote(daemon.address, pair, daemon.server_cert) as remote:
        assert remote.server_info()["auth"] == "untrusted"  # reachable; trust is the actions' job

    state = unit.run(
        "config_changed", replace(state, config={**state.config, "lxd-listen-https": False})
    )
    assert "core.https_address" not in daemon.client().server_config()
    with pytest.raises(LxdUnreachableError):
        LxdClient.remote(daemon.address, pair, daemon.server_cert, timeout=3)


def test_model_proxy_reaches_lxd_and_is_undone(
    unit: Any, daemon: LxdDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUJU_CHARM_HTTPS_PROXY", "http://proxy.internal:3128")
    state = unit.run("install", **{"lxd-init-network": False})
    assert daemon.client().server_config()["core.proxy_https"] == "http://proxy.internal:3128"
    monkeypatch.delenv("JUJU_CHARM_HTTPS_PROXY")
    unit.run("config_changed", state)
    assert "core.proxy_https" not in daemon.client().server_config()


def test_same_hook_twice_changes_nothing_in_lxd(unit: Any, daemon: LxdDaemon) -> None:
    state = unit.run("install", **{"lxd-init-network": False, "lxd-listen-https": True})
    before = daemon.client().server_info()
    again = unit.run("config_changed", state)
    after = daemon.client().server_info()
    assert after["config"] == before["config"]
    assert again.unit_status == state.unit_status


def test_every_listener_lxd_knows(unit: Any, daemon: LxdDaemon) -> None:
    networks = {
        testing.Network(name, [testing.BindAddress([testing.Address(daemon.host)])])
        for name in ("https", "bgp", "dns", "metrics")
    }
    options = {f"lxd-listen-{name}": True for name in ("https", "bgp", "dns", "metrics")}
    state = unit.run(
        "install", testing.State(networks=networks), **options, **{"lxd-init-network": False}
    )
    assert state.unit_status.name == "active", state.unit_status.message
    config = daemon.client().server_config()
    assert config["core.https_address"] == f"{daemon.host}:8443"
    assert config["core.bgp_address"] == f"{daemon.host}:179"
    assert config["core.dns_address"] == f"{daemon.host}:53"
    assert config["core.metrics_address"] == f"{daemon.host}:8444"
    assert listening(daemon.host, 8444)
    assert state.opened_ports == {
        testing.TCPPort(8443),
        testing.TCPPort(179),
        testing.TCPPort(53),
        testing.UDPPort(53),
        testing.TCPPort(8444),
    }


def test_actions_manage_the_real_trust_store(unit: Any, daemon: LxdDaemon) -> None:
    state = unit.run("install", **{"lxd-init-network": False})
    with pytest.raises(testing.ActionFailed, match="lxd-listen-https=true"):
        unit.context.run(unit.context.on.action("get-client-token", params={"name": "ci"}), state)
    state = unit.run(
        "config_changed", replace(state, config={**state.config, "lxd-listen-https": True})
    )
    ctx = unit.context
    lxd = daemon.client()
    lxd.pylxd.projects.create("team")
    pair = generate_client_certificate("operator-laptop")
    mangled = pair.certificate.replace("\n", " ")  # as a shell may pass it

    ctx.run(
        ctx.on.action("add-trusted-client", params={"cert": mangled, "projects": "team"}), state
    )
    fingerprint = ctx.action_results["fingerprint"]
    entry = lxd.trust.find(fingerprint)
    assert entry is not None
    assert (entry.name, entry.restricted, entry.projects) == ("operator-laptop", True, ["team"])

    with pytest.raises(testing.ActionFailed, match="private key"):
        ctx.run(ctx.on.action("add-trusted-client", params={"cert": pair.private_key}), state)

    ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)
    assert ctx.action_results["token"]

    ctx.run(
        ctx.on.action("remove-trusted-client", params={"fingerprint": fingerprint.upper()}), state
    )
    assert lxd.trust.find(fingerprint) is None


def test_actions_fail_cleanly_when_lxd_is_down(unit: Any, daemon: LxdDaemon) -> None:
    state = unit.run("install", **{"lxd-init-network": False, "lxd-listen-https": True})
    daemon.stop()
    ctx = unit.context
    with pytest.raises(testing.ActionFailed, match="LXD"):
        ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)
