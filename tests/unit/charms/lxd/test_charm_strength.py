"""The LXD charm's hook wiring and status, word for word where other tests check a part.

test_charm.py and its siblings drive whole hooks; the tests here pin what a
mutation of charm.py showed untested: the actions' refusals that charm.py
itself makes, each whole, and the branches of the wiring no other test took.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import replace
from typing import Any

import pytest
from ops import testing

from tests.harness.charms import CHARM_DIRS
from tests.harness.fake_host import FakeHost
from tests.unit.charms.lxd.test_charm import installed, run
from tests.unit.charms.lxd.test_https import ALICE, BOB, relation, request
from tests.unit.charms.lxd.test_https_ceiling import serve_under, with_projects


def test_a_token_without_the_https_listener_is_refused_with_the_command(
    ctx: testing.Context[Any],
) -> None:
    state = installed(ctx)
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)
    assert info.value.message == (
        "clients redeem tokens over HTTPS: first run `juju config lxd lxd-listen-https=true`"
    )


@pytest.mark.parametrize("action", ["evacuate", "restore"])
def test_a_standalone_unit_refuses_evacuate_and_restore(
    ctx: testing.Context[Any], action: str
) -> None:
    state = installed(ctx)
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action(action), state)
    assert info.value.message == "only a cluster member can be evacuated or restored"


def test_refresh_with_invalid_options_is_refused(ctx: testing.Context[Any]) -> None:
    state = installed(ctx)
    state = replace(state, config={"mode": "x"})
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action("refresh"), state)
    assert info.value.message == "the charm's options are invalid: see the unit status"


def test_two_refused_requirers_show_the_first_and_how_many_more(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    with_projects(host, "ci", "staging")
    out = serve_under(ctx, relation(request(ALICE.certificate), request(BOB.certificate)))
    assert out.unit_status == testing.BlockedStatus(
        "https relation: client/0 asked for unrestricted access; allowed: ci, staging (+1 more)"
    )


def test_importing_the_charm_quiets_urllib3s_request_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each LXD request would be a `juju-log` hook tool call at DEBUG (see charm.py)."""
    urllib3 = logging.getLogger("urllib3")
    monkeypatch.setattr(urllib3, "level", logging.NOTSET)
    path = CHARM_DIRS["lxd"] / "src" / "charm.py"
    spec = importlib.util.spec_from_file_location("lxd_charm_main_quiet_probe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    assert urllib3.level == logging.INFO


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [
        ("certificates", testing.WaitingStatus("waiting for a client certificate from remote")),
        (
            "ovsdb-cms",
            testing.BlockedStatus(
                "this LXD has no OVN networks (API extension network_type_ovn): set "
                "snap-channel to a newer LXD, or remove the ovsdb-cms relation"
            ),
        ),
    ],
)
def test_a_tls_or_ovn_relation_change_reconciles(
    ctx: testing.Context[Any], endpoint: str, status: testing.WaitingStatus | testing.BlockedStatus
) -> None:
    relation = testing.Relation(endpoint)
    state = replace(
        installed(ctx),
        relations=frozenset({relation}),
        unit_status=testing.MaintenanceStatus("probe"),
    )
    assert ctx.run(ctx.on.relation_changed(relation), state).unit_status == status


@pytest.mark.parametrize("event", ["relation_joined", "relation_changed"])
def test_a_peer_event_on_the_leader_reconciles(ctx: testing.Context[Any], event: str) -> None:
    peer = testing.PeerRelation("cluster", peers_data={1: {}})
    state = replace(
        installed(ctx),
        leader=True,
        relations=frozenset({peer}),
        unit_status=testing.MaintenanceStatus("probe"),
    )
    out = ctx.run(getattr(ctx.on, event)(peer, remote_unit=1), state)
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")


SCRAPERS = "scrapers cannot reach LXD: set lxd-listen-metrics=true (or lxd-listen-https=true)"


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [
        (
            "ceph",
            testing.WaitingStatus(
                "waiting for ceph-mon to send this application's key and monitors"
            ),
        ),
        ("metrics-endpoint", testing.BlockedStatus(f"metrics-endpoint: {SCRAPERS}")),
        ("cos-agent", testing.BlockedStatus(f"cos-agent: {SCRAPERS}")),
        ("logging", testing.ActiveStatus("standalone; no network listener")),
    ],
)
def test_a_ceph_or_cos_relation_change_reconciles(
    ctx: testing.Context[Any],
    endpoint: str,
    status: testing.WaitingStatus | testing.BlockedStatus | testing.ActiveStatus,
) -> None:
    relation = testing.Relation(endpoint)
    state = replace(
        installed(ctx),
        relations=frozenset({relation}),
        unit_status=testing.MaintenanceStatus("probe"),
    )
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    assert out.unit_status == status


def test_a_standalone_peer_change_serves_cos_when_the_peer_event_had_nothing_to_do(
    ctx: testing.Context[Any],
) -> None:
    """A member that skips the peer event still reads a peer's data for COS when standalone."""
    peer = testing.PeerRelation("cluster", peers_data={1: {}})
    metrics = testing.Relation("metrics-endpoint")
    active = testing.ActiveStatus("standalone; no network listener")
    state = replace(
        installed(ctx), leader=False, relations=frozenset({peer, metrics}), unit_status=active
    )
    out = ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)
    assert out.unit_status == testing.BlockedStatus(f"metrics-endpoint: {SCRAPERS}")


def test_the_trust_actions_are_wired(
    ctx: testing.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each action reaches its function with its parameters (the functions: test_actions.py)."""
    from lxd_charm import actions

    monkeypatch.setattr(
        actions, "add_trusted_client", lambda lxd, params: {"added": params.cert_url}
    )
    monkeypatch.setattr(
        actions, "remove_trusted_client", lambda lxd, params: {"removed": params.fingerprint}
    )
    state = installed(ctx)
    ctx.run(ctx.on.action("add-trusted-client", params={"cert-url": "https://h/c.crt"}), state)
    assert ctx.action_results == {"added": "https://h/c.crt"}
    ctx.run(ctx.on.action("remove-trusted-client", params={"fingerprint": "ab" * 32}), state)
    assert ctx.action_results == {"removed": "ab" * 32}
    monkeypatch.setattr(
        actions, "get_client_token", lambda lxd, params: {"token-for": params.name}
    )
    state = replace(state, config={**state.config, "lxd-listen-https": True})
    ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)
    assert ctx.action_results == {"token-for": "ci"}


def test_a_standalone_peer_change_without_cos_leaves_the_status(
    ctx: testing.Context[Any],
) -> None:
    """Nothing to serve: the skipped peer event stays skipped (no reconcile, no status)."""
    peer = testing.PeerRelation("cluster", peers_data={1: {}})
    shown = testing.ActiveStatus("standalone; as the last hook left it")
    state = replace(installed(ctx), leader=False, relations=frozenset({peer}), unit_status=shown)
    assert ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state).unit_status == shown


def test_update_status_of_an_uninitialised_active_unit_asks_lxd_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    host.fake_lxd.unreachable = True
    host.lxd_missing = True
    shown = testing.ActiveStatus("as the last hook left it")
    out = ctx.run(ctx.on.update_status(), testing.State(unit_status=shown))
    assert out.unit_status == shown


def test_a_cluster_members_skipped_peer_change_does_not_serve_cos(
    ctx: testing.Context[Any],
) -> None:
    """In a cluster only the leader acts on peers' data for COS; a member's status stays."""
    peer = testing.PeerRelation("cluster", peers_data={1: {}})
    metrics = testing.Relation("metrics-endpoint")
    shown = testing.ActiveStatus("cluster; as the last hook left it")
    state = installed(ctx)
    state = replace(
        state,
        config={**state.config, "mode": "cluster"},
        leader=False,
        relations=frozenset({peer, metrics}),
        unit_status=shown,
    )
    assert ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state).unit_status == shown


def test_two_keys_waiting_for_a_reboot_are_named_sorted(ctx: testing.Context[Any]) -> None:
    state = installed(ctx)
    config = {"snap-config-lxcfs-pidfd": True, "snap-config-lxcfs-loadavg": True}
    out = run(ctx, "config_changed", replace(state, config=config))
    assert out.unit_status == testing.BlockedStatus(
        "reboot to apply snap config lxcfs.loadavg, lxcfs.pidfd (see show-pending-config)"
    )


def test_a_listener_without_an_address_blocks_naming_the_way_out(
    ctx: testing.Context[Any],
) -> None:
    state = installed(ctx)
    state = replace(
        state,
        config={**state.config, "lxd-listen-https": True},
        networks=frozenset({testing.Network("https", bind_addresses=[])}),
    )
    out = run(ctx, "config_changed", state)
    assert out.unit_status == testing.BlockedStatus(
        "no address for the https endpoint: bind it to a space with a subnet on this "
        "machine, or turn lxd-listen-https off"
    )


@pytest.mark.parametrize("leader", [False, True])
def test_in_a_cluster_only_the_leader_reconciles_for_https(
    ctx: testing.Context[Any], leader: bool
) -> None:
    """Set to cluster after a standalone install: a reconcile would refuse the mode change."""
    https = testing.Relation("https")
    shown = testing.ActiveStatus("cluster; as the last hook left it")
    state = installed(ctx)
    state = replace(
        state,
        config={**state.config, "mode": "cluster"},
        leader=leader,
        relations=frozenset({https}),
        unit_status=shown,
    )
    out = ctx.run(ctx.on.relation_changed(https, remote_unit=0), state)
    if leader:
        assert out.unit_status == testing.BlockedStatus(
            "mode cannot change once LXD is initialised: set it back to 'standalone' "
            "(juju config <app> mode=...)"
        )
    else:
        assert out.unit_status == shown
