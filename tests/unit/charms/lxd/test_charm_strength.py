"""The LXD charm's hook wiring and status, word for word where other tests check a part.

test_charm.py and its siblings drive whole hooks; the tests here pin what a
mutation of charm.py showed untested: the actions' refusals that charm.py
itself makes, each whole, and the branches of the wiring no other test took.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

import ops
import pytest
from ops import testing

from lxd_common.errors import LxdApiError
from lxd_common.interfaces.lxd_https import ServerInfo
from lxd_common.lxd import decode_join_token
from tests.harness.charms import CHARM_DIRS
from tests.harness.databags import local_app_data, local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.juju_sim import Sim
from tests.unit.charms.lxd.test_charm import installed, run
from tests.unit.charms.lxd.test_charm_cluster import (
    add_unit,
    announce,
    bag_of,
    bootstrapped,
    formed,
    output,
    sim,  # noqa: F401
    token_of,
)
from tests.unit.charms.lxd.test_charm_cluster import run as cluster_run
from tests.unit.charms.lxd.test_charm_state import UNREGISTERED, half_joined
from tests.unit.charms.lxd.test_https import ALICE, BOB, relation, request
from tests.unit.charms.lxd.test_https_ceiling import serve_under, with_projects
from tests.unit.charms.lxd.test_https_relation_strength import answer


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


def test_a_peer_event_on_the_leader_reconciles(ctx: testing.Context[Any]) -> None:
    peer = testing.PeerRelation("cluster", peers_data={1: {}})
    state = replace(
        installed(ctx),
        leader=True,
        relations=frozenset({peer}),
        unit_status=testing.MaintenanceStatus("probe"),
    )
    out = ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)
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


# --- errors from LXD in the middle of a hook --------------------------------------------

SETTLING = "Failed to begin transaction: database is locked"
"""A cluster-database refusal LXD gives while its database settles (a transient marker)."""


def _refuse_server_config(host: FakeHost, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    def refuse(_: Mapping[str, str | None], **__: object) -> list[str]:
        raise LxdApiError(message)

    monkeypatch.setattr(host.fake_lxd, "set_server_config", refuse)


def test_a_transient_lxd_refusal_mid_hook_waits_for_the_cluster_to_settle(
    ctx: testing.Context[Any], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = installed(ctx)
    _refuse_server_config(host, monkeypatch, SETTLING)
    out = run(ctx, "config_changed", state)
    assert out.unit_status == testing.WaitingStatus(f"the LXD cluster is settling: {SETTLING}")


def test_an_unexpected_lxd_refusal_mid_hook_fails_the_hook(
    ctx: testing.Context[Any], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not transient, not mapped to a status: a bug or a surprise, so Juju retries and logs it."""
    state = installed(ctx)
    _refuse_server_config(host, monkeypatch, "Invalid config key")
    with pytest.raises(testing.errors.UncaughtCharmError) as info:
        run(ctx, "config_changed", state)
    assert isinstance(info.value.__cause__, LxdApiError)
    assert str(info.value.__cause__) == "Invalid config key"


def test_update_status_of_a_unit_whose_lxd_stopped_answering_waits(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx)
    assert state.unit_status.name == "active"
    host.fake_lxd.unreachable = True
    out = ctx.run(ctx.on.update_status(), state)
    assert out.unit_status == testing.WaitingStatus(
        "LXD is not answering: cannot reach LXD while testing: connection refused"
    )


# --- update-status on an active leader that moved zone -------------------------------------


def test_a_leader_that_moved_zone_stops_holding_tokens_for_silent_units(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its update-status reconciles as a waiting unit's does: it gives up waits that may not end.

    Units added while the leader shows active (its next peer event has not
    run yet): one announced, one still silent. A plain reconcile would hold
    the first token until every planned unit announced itself.
    """
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az1")
    bootstrapped(sim)
    assert output(sim, 0).unit_status.name == "active"
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3")  # planned, silent
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az2")
    out = cluster_run(sim, 0, "update_status")
    assert decode_join_token(token_of(sim, 1)).server_name == "node-b"
    assert "lxd/2" not in sim.app_data
    assert out.unit_status == testing.WaitingStatus(
        "1/3 units are members; lxd/1 is not: joining with its token (+1 more)"
    )


def test_a_leader_that_is_no_member_yet_serves_no_https_requirer(
    sim: Sim,  # noqa: F811
) -> None:
    """Its LXD is not the cluster's yet: trusting a requirer there would be lost at the join."""
    formed(sim, 2)
    third = add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    unit = sim.units["lxd/2"]
    https = relation(request(ALICE.certificate))
    unit.state = replace(unit.state, relations=frozenset({*unit.state.relations, https}))
    sim.set_leader("lxd/2")
    out = cluster_run(sim, 2, "leader_elected")
    assert out.unit_status == testing.WaitingStatus(
        "this leader is not a member yet: waiting for lxd/0 to issue its join token"
    )
    assert third.lxd.trust.entries() == []
    assert local_app_data(out.get_relation(https.id)) == {}


def _half_joined_with_a_token(sim: Sim, host: FakeHost) -> None:  # noqa: F811
    """lxd/1 (node-b) holds the leader's token, and its LXD died half way through a join."""
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    cluster_run(sim, 0, "relation_changed", 1)  # issues its token
    host.lxd_not_found = True
    half_joined(host, reason=UNREGISTERED)


def test_a_joiner_whose_lxd_died_half_way_through_its_join_is_reset_and_joins(
    sim: Sim,  # noqa: F811
    host: FakeHost,
) -> None:
    """The unit holds a token and never was a member: the half-written database is ours to undo."""
    _half_joined_with_a_token(sim, host)
    out = cluster_run(sim, 1, "relation_changed", 0)
    assert host.lxd_restarts == 1
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert out.unit_status.name == "active"


def test_a_listener_whose_network_get_fails_blocks_as_one_without_an_address(
    ctx: testing.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`network-get` refuses a binding Juju has no network config for; the hook goes on."""
    state = installed(ctx)

    def refuse(self: ops.Model, name: str) -> ops.Binding:
        raise ops.ModelError(f'ERROR no network config found for binding "{name}"')

    monkeypatch.setattr(ops.Model, "get_binding", refuse)
    out = run(
        ctx, "config_changed", replace(state, config={**state.config, "lxd-listen-https": True})
    )
    assert out.unit_status == testing.BlockedStatus(
        "no address for the https endpoint: bind it to a space with a subnet on this "
        "machine, or turn lxd-listen-https off"
    )


def test_a_healthy_leaders_update_status_shows_its_cluster_address_without_the_scheme(
    sim: Sim,  # noqa: F811
) -> None:
    formed(sim, 2)
    out = cluster_run(sim, 0, "update_status", unit_status=testing.ActiveStatus("last hook"))
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def test_a_leader_missing_from_its_own_listing_shows_no_cluster_address(
    sim: Sim,  # noqa: F811
) -> None:
    """Its member gone from the listing (the fake's shared database): no address of a member.

    Whether the status should then say more than the listing's count is
    the cluster's health check (`ClusterPeer.health`), not asserted here.
    """
    first, _ = formed(sim, 2)
    database = first.lxd.cluster.database
    assert database is not None
    del database.members["node-a"]
    out = cluster_run(sim, 0, "update_status", unit_status=testing.ActiveStatus("last hook"))
    assert "cluster on" not in out.unit_status.message
    assert out.unit_status.message.startswith("cluster: 1/1 members online, 2 units")


def test_a_hook_that_found_nothing_wrong_before_initialisation_is_not_active(
    ctx: testing.Context[Any], charm_module: ModuleType
) -> None:
    """The last guard of `_status`: no path reaches it today, and none may show active there.

    Every reconcile that leaves LXD uninitialised records why (a join waits, a
    preseed is refused); this pins what the status says should one not.
    """
    quiet = testing.State(unit_status=testing.ActiveStatus("as the last hook left it"))
    with ctx(ctx.on.update_status(), quiet) as manager:  # a hook that looks at nothing
        charm = manager.charm
        assert not charm.memory.initialised
        status = charm._status(charm_module.Findings())
    assert status == ops.MaintenanceStatus("initialising LXD")


def test_an_action_waits_for_lxd_less_than_a_hook_does(
    ctx: testing.Context[Any], host: FakeHost, charm_module: ModuleType
) -> None:
    """An operator waits at the terminal: an action gives LXD a short wait, not the hook's."""
    from lxd_charm.host import LXD_WAIT_SECONDS

    state = installed(ctx)
    assert getattr(host, "lxd_wait", LXD_WAIT_SECONDS) == LXD_WAIT_SECONDS
    entry = host.fake_lxd.trust.add(ALICE.certificate, name="alice")
    ctx.run(
        ctx.on.action("remove-trusted-client", params={"fingerprint": entry.fingerprint}), state
    )
    assert host.lxd_wait == charm_module.ACTION_LXD_WAIT < LXD_WAIT_SECONDS


def test_a_peer_event_that_reconciled_does_not_reconcile_again_for_cos(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """`cluster-relation-changed` has two observers; the second sees the first's work done."""
    peer = testing.PeerRelation("cluster", peers_data={1: {}})
    base = replace(installed(ctx), leader=True, unit_status=testing.MaintenanceStatus("probe"))

    def connections_of_a_peer_change(*others: testing.RelationBase) -> int:
        before = host.fake_lxd.connections
        state = replace(base, relations=frozenset({peer, *others}))
        ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)
        return host.fake_lxd.connections - before

    alone = connections_of_a_peer_change()
    assert alone >= 1
    assert connections_of_a_peer_change(testing.Relation("metrics-endpoint")) == alone


def test_a_cluster_leader_answers_https_requirers_for_the_application(
    sim: Sim,  # noqa: F811
) -> None:
    """In a cluster the answer is the application's (every member's address), not the unit's."""
    formed(sim, 2)
    unit = sim.units["lxd/0"]
    https = relation(request(ALICE.certificate))
    unit.state = replace(unit.state, relations=frozenset({*unit.state.relations, https}))
    out = cluster_run(sim, 0, "config_changed")
    served = out.get_relation(https.id)
    assert ServerInfo.from_databag(local_app_data(served)) is not None
    assert answer(local_unit_data(served)) == {}


def test_a_cluster_unit_without_a_token_never_resets_a_half_joined_lxd(
    sim: Sim,  # noqa: F811
    host: FakeHost,
) -> None:
    """No join of this unit could have written that database: someone else's, left alone."""
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2")  # in the relation, no token for it yet
    host.lxd_not_found = True
    half_joined(host, reason=UNREGISTERED)
    out = cluster_run(sim, 1, "relation_changed", 0)
    assert host.lxd_restarts == 0
    assert (host.lxd_dir / "database" / "global").is_dir()
    assert out.unit_status == testing.BlockedStatus(
        f"LXD cannot start: {UNREGISTERED}. Its local database describes a cluster membership "
        "the cluster does not have, and this unit was not joining a cluster, so the charm does "
        f"not reset it: move any instances away, remove {host.lxd_dir / 'database'}, then "
        "restart LXD"
    )


def test_a_unit_set_to_standalone_before_it_joined_never_resets_a_half_joined_lxd(
    sim: Sim,  # noqa: F811
    host: FakeHost,
) -> None:
    """Its token is from the cluster it is no longer to join: only a cluster join resets."""
    _half_joined_with_a_token(sim, host)
    out = cluster_run(sim, 1, "config_changed", config={"mode": "standalone"})
    assert host.lxd_restarts == 0
    assert out.unit_status.name == "blocked"
    assert "this unit was not joining a cluster" in out.unit_status.message


# --- what a hook does not pay for ----------------------------------------------------------


def test_a_reconcile_without_cos_relations_does_not_load_the_cos_package(
    ctx: testing.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hooks of a unit without COS relations never import what serves them (start-up cost)."""
    state = installed(ctx)
    monkeypatch.delitem(sys.modules, "lxd_charm.cos.serve", raising=False)
    out = run(ctx, "config_changed", state)
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")
    assert "lxd_charm.cos.serve" not in sys.modules


@pytest.mark.parametrize(
    ("mode", "leader", "initialised", "asked"),
    [
        ("cluster", True, False, True),  # the bootstrap: the fan bridge's underlay
        ("standalone", True, False, False),
        ("cluster", False, False, False),  # a joiner takes the cluster's networks
        ("cluster", True, True, False),  # bootstrapped already
    ],
)
def test_only_a_clusters_bootstrap_asks_for_the_fan_binding(
    ctx: testing.Context[Any],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    leader: bool,
    initialised: bool,
    asked: bool,
) -> None:
    """`network-get fan` is a hook tool call: only the hook that may build the fan pays it."""
    from lxd_charm import fan

    calls: list[ops.Model] = []

    def fan_address(model: ops.Model) -> str | None:
        calls.append(model)
        return None

    memory = {"initialised": initialised, "init_options": {"mode": mode, "lxd-preseed": ""}}
    stored = testing.StoredState("_stored", owner_path="LxdCharm", content={"memory": memory})
    monkeypatch.setattr(fan, "fan_address", fan_address)
    run(
        ctx,
        "config_changed",
        testing.State(config={"mode": mode}, leader=leader, stored_states={stored}),
    )
    assert bool(calls) is asked
