"""`lxd_charm.cluster_peer`: what the peer relation's driver says and does, pinned exactly.

test_charm_cluster.py and its neighbours drive the protocol through the
Juju simulator, hook by hook; the tests here add what those leave open: the
refusals' whole words (the operator reads them), the record's owners, and
the branches of the leader's, the deputy's and the joiner's steps that no
whole-protocol test reached. Pure helpers are tested directly; the rest
through the same simulator (`sim`, tests/harness/juju_sim.py).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import ops
import pytest
from ops import testing

from lxd_charm import cluster
from lxd_charm.cluster_peer import (
    CLUSTER_PORT,
    HALF_JOIN_CLEARS,
    JOIN_STATUS_LENGTH,
    PEER,
    ZONE_VARIABLE,
    ClusterPeer,
    PeerOutcome,
    _has_instances,
    _lost_with_instances,
    _owners,
    owners,
)
from lxd_charm.memory import Memory
from lxd_charm.outcomes import WaitingError
from lxd_common.errors import LxdApiError, MemberHasInstancesError, MemberNotFoundError
from tests.harness.fake_lxd import FakeLxd
from tests.harness.juju_sim import Sim

from .test_charm_cluster import (  # the cluster's simulator and its helpers
    Refuses,
    add_unit,
    announce,
    bag_of,
    bootstrapped,
    cluster_names,
    formed,
    members,
    run,
    sim,  # noqa: F401 (a fixture)
)


def test_the_protocols_constants() -> None:
    """Part of the protocol and of what units read from each other's bags."""
    assert (CLUSTER_PORT, PEER, ZONE_VARIABLE) == (8443, "cluster", "JUJU_AVAILABILITY_ZONE")
    assert (JOIN_STATUS_LENGTH, HALF_JOIN_CLEARS) == (500, 3)


def test_a_departed_units_member_with_instances_names_them_and_the_way_forward() -> None:
    error = MemberHasInstancesError("lxd-1", ["a", "b"])
    assert _has_instances("lxd/1", error) == (
        "cannot remove lxd/1: member 'lxd-1' still holds 2 instance(s) (a, b); move them "
        "first with `juju run lxd/1 evacuate` (`lxc cluster evacuate lxd-1` once the unit "
        "is gone), or delete them"
    )


def test_more_than_five_instances_are_cut_short() -> None:
    five = MemberHasInstancesError("lxd-1", ["a", "b", "c", "d", "e"])
    six = MemberHasInstancesError("lxd-1", ["a", "b", "c", "d", "e", "f"])
    assert "5 instance(s) (a, b, c, d, e);" in _has_instances("lxd/1", five)
    assert "6 instance(s) (a, b, c, d, e, ...);" in _has_instances("lxd/1", six)
    assert "5 instance(s) (a, b, c, d, e);" in _lost_with_instances("lxd/1", five)
    assert "6 instance(s) (a, b, c, d, e, ...);" in _lost_with_instances("lxd/1", six)


def test_an_offline_members_instances_can_only_be_discarded() -> None:
    error = MemberHasInstancesError("lxd-1", ["web"])
    assert _lost_with_instances("lxd/1", error) == (
        "cannot remove lxd/1: its member 'lxd-1' is offline and holds 1 instance(s) (web); "
        "bring its machine back, or discard them with `lxc cluster remove --force lxd-1`"
    )


def test_owners_map_each_member_to_its_unit() -> None:
    app = cluster.AppView(members={"lxd/0": "lxd-0", "lxd/1": "node1"})
    assert _owners(app) == {"lxd-0": "lxd/0", "node1": "lxd/1"}


class _Model:
    def __init__(self, relation: Any) -> None:
        self.relation = relation
        self.asked: list[str] = []

    def get_relation(self, name: str) -> Any:
        self.asked.append(name)
        return self.relation


def test_owners_from_the_model_read_the_application_bag() -> None:
    app = object()
    bag = cluster.AppView(members={"lxd/0": "lxd-0"}).write()
    model = _Model(SimpleNamespace(app=app, data={app: bag}))
    assert owners(cast(ops.Model, model)) == {"lxd-0": "lxd/0"}
    assert model.asked == ["cluster"]


def test_owners_without_a_relation_an_application_or_a_readable_bag_are_none() -> None:
    assert owners(cast(ops.Model, _Model(None))) == {}
    assert owners(cast(ops.Model, _Model(SimpleNamespace(app=None, data={})))) == {}
    app = object()
    garbled = _Model(SimpleNamespace(app=app, data={app: {cluster.MEMBERS: "not json"}}))
    assert owners(cast(ops.Model, garbled)) == {}


def test_an_outcome_says_nothing_by_default() -> None:
    assert PeerOutcome() == PeerOutcome(address="", summary="", problem=None)
    assert (PeerOutcome().address, PeerOutcome().summary) == ("", "")


def peer_without_juju(memory: Memory, relation: Any) -> ClusterPeer:
    """A ClusterPeer over stand-ins: any use of the unit, the app or LXD fails loudly."""
    charm = SimpleNamespace(unit=None, app=None, model=_Model(relation))
    machine = SimpleNamespace(host=None, memory=memory)
    return ClusterPeer(cast(ops.CharmBase, charm), cast(Any, machine), environ={})


def test_without_the_peer_relation_the_unit_waits_for_it() -> None:
    peer = peer_without_juju(Memory(), None)
    with pytest.raises(WaitingError) as caught:
        peer.reconcile(cast(Any, None))
    assert str(caught.value) == "waiting for the cluster peer relation"


def test_no_summary_before_membership_or_without_the_relation() -> None:
    relation = SimpleNamespace(app=None, data={}, units=set())
    assert peer_without_juju(Memory(), relation).summary(cast(Any, None)) == ""
    assert peer_without_juju(Memory(initialised=True), None).summary(cast(Any, None)) == ""


# --- through the simulator -------------------------------------------------------------


def test_lxd_refusing_the_units_zone_as_failure_domain_blocks_the_member(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, b = formed(sim, 2)

    def refuse(name: str, domain: str) -> bool:
        raise LxdApiError("Failed to update cluster member: invalid failure domain")

    monkeypatch.setattr(b.lxd.cluster, "set_failure_domain", refuse)
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az 1")
    out = run(sim, 1, "config_changed")
    assert out.unit_status == testing.BlockedStatus(
        "LXD refused failure domain 'az 1' for node-b (Failed to update cluster member: "
        "invalid failure domain): check the unit's availability zone"
    )


def test_a_transient_refusal_of_the_failure_domain_is_a_wait(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, b = formed(sim, 2)

    def settling(name: str, domain: str) -> bool:
        raise LxdApiError("Failed to update cluster member: database is locked")

    monkeypatch.setattr(b.lxd.cluster, "set_failure_domain", settling)
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az1")
    out = run(sim, 1, "config_changed")
    assert out.unit_status.name == "waiting"
    assert "database is locked" in out.unit_status.message
    assert "check the unit's availability zone" not in out.unit_status.message


def test_a_removal_the_database_is_not_ready_for_waits_and_is_retried(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _, _ = formed(sim, 3)
    remove = a.lxd.cluster.remove_member

    def settling(name: str) -> None:
        raise LxdApiError("Failed to leave the cluster: server has lost leadership")

    monkeypatch.setattr(a.lxd.cluster, "remove_member", settling)
    sim.remove_unit("lxd/2")
    out = run(sim, 0, "relation_departed", 2)
    assert out.unit_status == testing.WaitingStatus(
        "removing node-c (lxd/2) waits for the cluster database: Failed to leave the "
        "cluster: server has lost leadership"
    )
    assert json.loads(sim.app_data["removing"]) == {"lxd/2": "node-c"}
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    monkeypatch.setattr(a.lxd.cluster, "remove_member", remove)
    run(sim, 0, "update_status")
    assert cluster_names(a) == ["node-a", "node-b"]
    assert "removing" not in sim.app_data


def test_a_removal_lxd_refuses_for_good_fails_the_hook(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _, _ = formed(sim, 3)

    def refuse(name: str) -> None:
        raise LxdApiError("Failed to remove member: a bug")

    monkeypatch.setattr(a.lxd.cluster, "remove_member", refuse)
    sim.remove_unit("lxd/2")
    with pytest.raises(testing.errors.UncaughtCharmError, match="a bug"):
        run(sim, 0, "relation_departed", 2)


def test_an_application_bag_that_is_not_the_protocols_blocks(sim: Sim) -> None:  # noqa: F811
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2")
    sim.app_data["members"] = "not json"
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status == testing.BlockedStatus(
        "cluster relation: the 'members' field is not valid JSON"
    )


def test_a_long_refusal_goes_in_the_joiners_bag_cut_to_a_status_line(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    words = "Failed to initialize member: " + "x" * 1000
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", Refuses(words))
        out = run(sim, 1, "relation_changed", 0)
    said = f"blocked: {out.unit_status.message}"
    assert said.startswith(f"blocked: LXD refused the join ({words}")
    assert bag_of(sim, 1)["join-status"] == said[:500]


def test_a_token_whose_content_cannot_be_read_is_waited_for(sim: Sim) -> None:  # noqa: F811
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    sim.set_secret_content(sim.app_data["lxd/1"], {"not-the-token": "x"})
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status == testing.WaitingStatus("waiting for access to the join token")
    assert bag_of(sim, 1)["join-status"] == "waiting for access to the join token"


# --- a leader that is not a member yet, and its deputy ------------------------------------


def test_a_new_leader_that_is_no_member_joins_on_its_deputys_token(sim: Sim) -> None:  # noqa: F811
    a, b = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    sim.set_leader("lxd/2")
    out = run(sim, 2, "leader_elected")
    assert out.unit_status == testing.WaitingStatus(
        "this leader is not a member yet: waiting for lxd/0 to issue its join token"
    )
    assert sim.app_data["leader-joining"] == "lxd/2"
    assert "joined" not in bag_of(sim, 2)

    run(sim, 1, "relation_changed", 2)  # not the deputy: issues nothing
    assert "leader-token" not in bag_of(sim, 1)
    assert b.lxd.cluster.join_tokens() == []
    run(sim, 0, "relation_changed", 2)  # the deputy (lowest-numbered member) issues
    secret_id = bag_of(sim, 0)["leader-token"]
    assert [t.server_name for t in a.lxd.cluster.join_tokens()] == ["node-c"]
    assert sim.secret_exists(secret_id)

    out = run(sim, 2, "relation_changed", 0)
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.3:8443"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/2": "node-c"}
    assert "leader-joining" not in sim.app_data
    assert bag_of(sim, 2)["joined"] == "node-c"

    run(sim, 0, "relation_changed", 2)  # the deputy withdraws its token
    assert "leader-token" not in bag_of(sim, 0)
    assert not sim.secret_exists(secret_id)


def test_a_new_leader_joins_on_the_token_its_predecessor_issued_it(sim: Sim) -> None:  # noqa: F811
    a, _ = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)  # the old leader issues lxd/2's token
    issued = sim.app_data["lxd/2"]
    sim.set_leader("lxd/2")
    out = run(sim, 2, "leader_elected")
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.3:8443"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    assert "leader-joining" not in sim.app_data
    assert "lxd/2" not in sim.app_data
    assert not sim.secret_exists(issued)
    run(sim, 0, "relation_changed", 2)
    assert "leader-token" not in bag_of(sim, 0)


def test_a_deputy_refuses_a_leader_whose_hostname_a_member_uses(sim: Sim) -> None:  # noqa: F811
    a, _ = formed(sim, 2)
    add_unit(sim, 2, "node-b", "10.0.0.3", announce("node-b"))
    sim.set_leader("lxd/2")
    run(sim, 2, "leader_elected")
    out = run(sim, 0, "relation_changed", 2)
    assert out.unit_status == testing.BlockedStatus(
        "the leader lxd/2 wants to join as 'node-b', which another member already uses: "
        "give that machine another hostname"
    )
    assert "leader-token" not in bag_of(sim, 0)
    assert a.lxd.cluster.join_tokens() == []


# --- removals and replaced machines -------------------------------------------------------


def test_a_departed_units_member_removed_by_hand_is_forgotten(sim: Sim) -> None:  # noqa: F811
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.remove_member("node-c")  # the operator was first
    sim.remove_unit("lxd/2")
    out = run(sim, 0, "relation_departed", 2)
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "removing" not in sim.app_data
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def lost_member_announced_again(sim: Sim) -> Any:  # noqa: F811
    """node-z: an unreachable member no unit owns, whose name a new unit lxd/2 announces."""
    a, _ = formed(sim, 2)
    database = a.lxd.cluster._database()
    FakeLxd().cluster._add_member(database, "node-z", "10.0.0.26:8443", [])
    a.lxd.cluster.set_status("node-z", "Offline", "No heartbeat for 30s")
    add_unit(sim, 2, "node-z", "10.0.0.3")
    run(sim, 2, "relation_changed", 0)
    return a


def test_a_replaced_machine_the_database_is_not_ready_to_remove_waits(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = lost_member_announced_again(sim)
    remove = a.lxd.cluster.remove_lost_member

    def settling(name: str) -> None:
        raise LxdApiError("Failed to remove member: context deadline exceeded")

    monkeypatch.setattr(a.lxd.cluster, "remove_lost_member", settling)
    out = run(sim, 0, "relation_changed", 2)
    assert out.unit_status == testing.WaitingStatus(
        "removing node-z waits for the cluster database: Failed to remove member: context "
        "deadline exceeded"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-z"]
    assert not sim.app_data.get("lxd/2")
    monkeypatch.setattr(a.lxd.cluster, "remove_lost_member", remove)
    run(sim, 0, "update_status")
    assert cluster_names(a) == ["node-a", "node-b"]
    assert sim.app_data.get("lxd/2")


def test_a_replaced_machine_lxd_refuses_for_good_fails_the_hook(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = lost_member_announced_again(sim)

    def refuse(name: str) -> None:
        raise LxdApiError("Failed to remove member: a bug")

    monkeypatch.setattr(a.lxd.cluster, "remove_lost_member", refuse)
    with pytest.raises(testing.errors.UncaughtCharmError, match="a bug"):
        run(sim, 0, "relation_changed", 2)


def test_a_replaced_machine_already_gone_gets_its_token_at_once(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = lost_member_announced_again(sim)
    remove = a.lxd.cluster.remove_lost_member

    def gone_first(name: str) -> None:
        remove(name)  # removed by hand a moment before
        raise MemberNotFoundError(f"no cluster member is called {name!r}")

    monkeypatch.setattr(a.lxd.cluster, "remove_lost_member", gone_first)
    run(sim, 0, "relation_changed", 2)
    assert cluster_names(a) == ["node-a", "node-b"]
    assert sim.app_data.get("lxd/2")
    assert [t.server_name for t in a.lxd.cluster.join_tokens()] == ["node-z"]


def test_a_replaced_machine_with_instances_blocks_naming_them(sim: Sim) -> None:  # noqa: F811
    a = lost_member_announced_again(sim)
    a.lxd.cluster.launch("web", target="node-z")
    out = run(sim, 0, "relation_changed", 2)
    assert out.unit_status == testing.BlockedStatus(
        "lxd/2 wants to join as 'node-z', whose old member is offline, owned by no unit and "
        "holds 1 instance(s) (web): bring its machine back, or discard them with "
        "`lxc cluster remove --force node-z`"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-z"]
    assert not sim.app_data.get("lxd/2")  # no token while the old member stays
    assert a.lxd.cluster.join_tokens() == []


def test_a_cluster_binding_without_an_address_blocks(sim: Sim) -> None:  # noqa: F811
    formed(sim, 2)
    unbound = testing.Network("cluster", [])
    out = run(sim, 1, "config_changed", networks=frozenset({unbound}))
    assert out.unit_status == testing.BlockedStatus(
        "no address for the cluster endpoint: bind it to a space"
    )


def test_an_evacuated_departed_member_is_removed_without_force(sim: Sim) -> None:  # noqa: F811
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.evacuate("node-c")
    sim.remove_unit("lxd/2")
    run(sim, 0, "relation_departed", 2)
    assert cluster_names(a) == ["node-a", "node-b"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}


# --- a join refused over what an earlier join left ----------------------------------------

LEFTOVER_POOL = (
    "LXD refused the preseed: Error: Failed to join cluster: Failed to initialize member: "
    'Failed to update storage pool "local": Pool source cannot be changed when not in '
    "pending state"
)


class RefusesTimes:
    """join_cluster refusing with LXD's words the first ``times`` calls, then joining."""

    def __init__(self, lxd: FakeLxd, times: int) -> None:
        self.join = lxd.join_cluster
        self.times = times
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise LxdApiError(LEFTOVER_POOL)
        self.join(*args, **kwargs)


def test_a_join_refused_over_a_leftover_pool_clears_it_and_joins_at_once(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    second.lxd.pool_volumes = {"local": []}
    joins = RefusesTimes(second.lxd, HALF_JOIN_CLEARS)
    monkeypatch.setattr(second.lxd, "join_cluster", joins)
    run(sim, 1, "relation_changed", 0)
    assert joins.calls == HALF_JOIN_CLEARS + 1
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert cluster_names(a) == ["node-a", "node-b"]
    assert second.lxd.pool_volumes == {}


def test_a_join_refused_over_leftovers_more_often_than_cleared_blocks(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    joins = RefusesTimes(second.lxd, HALF_JOIN_CLEARS + 1)
    monkeypatch.setattr(second.lxd, "join_cluster", joins)
    out = run(sim, 1, "relation_changed", 0)
    assert joins.calls == HALF_JOIN_CLEARS + 1
    assert out.unit_status == testing.BlockedStatus(
        "LXD refused the join (Failed to initialize member: Failed to update storage pool "
        '"local": Pool source cannot be changed when not in pending state): fix this '
        "machine or the charm's settings; the join is retried on the next hook"
    )
    assert bag_of(sim, 1)["join-refused"] == sim.app_data["lxd/1"]


def test_a_member_that_leads_again_ends_the_wait_for_a_deputy(sim: Sim) -> None:  # noqa: F811
    a, _ = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    sim.set_leader("lxd/2")
    run(sim, 2, "leader_elected")
    assert sim.app_data["leader-joining"] == "lxd/2"
    sim.set_leader("lxd/0")
    run(sim, 0, "leader_elected")
    assert "leader-joining" not in sim.app_data
    assert [t.server_name for t in a.lxd.cluster.join_tokens()] == ["node-c"]
    assert sim.app_data.get("lxd/2")  # a plain waiting unit again: the leader's token


# --- what each hook asks, and what it leaves in the bags ----------------------------------


def test_a_members_hook_reads_its_own_member_once(sim: Sim) -> None:  # noqa: F811
    """The member read for its failure domain is the one its status summary uses."""
    _, b = formed(sim, 2)
    reads = b.lxd.cluster.member_reads
    out = run(sim, 1, "config_changed")
    assert out.unit_status == testing.ActiveStatus(
        "cluster: member node-b; cluster on 10.0.0.2:8443"
    )
    assert b.lxd.cluster.member_reads == reads + 1


def test_below_quorum_a_departure_removes_nothing_and_says_why(sim: Sim) -> None:  # noqa: F811
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-b", "Offline", "No heartbeat for 30s")
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.remove_unit("lxd/2")
    out = run(sim, 0, "relation_departed", 2)
    assert out.unit_status == testing.BlockedStatus(
        "the cluster database has lost its quorum: node-b (lxd/1), node-c (lxd/2) offline "
        "(1/3 database members online); bring them back"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    assert json.loads(sim.app_data["removing"]) == {"lxd/2": "node-c"}


def test_a_departed_units_unreadable_token_is_skipped_and_dropped(sim: Sim) -> None:  # noqa: F811
    a, _ = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    add_unit(sim, 3, "node-d", "10.0.0.4", announce("node-d"))
    run(sim, 0, "relation_changed", 2)  # tokens for lxd/2 and lxd/3
    run(sim, 3, "relation_changed", 0)  # lxd/3 joins; the leader has not confirmed it yet
    garbled = sim.app_data["lxd/2"]
    sim.set_secret_content(garbled, {"not-the-token": "x"})
    sim.remove_unit("lxd/2")
    sim.remove_unit("lxd/3")
    run(sim, 0, "relation_departed", 3)
    assert cluster_names(a) == ["node-a", "node-b"]  # lxd/3's join was found and undone
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "lxd/3" not in sim.app_data
    run(sim, 0, "relation_departed", 2)
    assert "lxd/2" not in sim.app_data
    assert not sim.secret_exists(garbled)


def test_a_unit_that_departs_before_its_join_is_confirmed_leaves_no_token(
    sim: Sim,  # noqa: F811
) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    issued = sim.app_data["lxd/1"]
    run(sim, 1, "relation_changed", 0)
    sim.remove_unit("lxd/1")
    out = run(sim, 0, "relation_departed", 1)
    assert cluster_names(first) == ["node-a"]
    assert "lxd/1" not in sim.app_data
    assert "removing" not in sim.app_data
    assert not sim.secret_exists(issued)
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 1/1 members online, 1 units; cluster on 10.0.0.1:8443"
    )


def test_the_replaced_machines_old_records_go_in_the_hook_that_removes_it(
    sim: Sim,  # noqa: F811
) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.launch("web", target="node-c")
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.remove_unit("lxd/2")
    run(sim, 0, "relation_departed", 2)
    assert json.loads(sim.app_data["removing"]) == {"lxd/2": "node-c"}
    add_unit(sim, 3, "node-c", "10.0.0.9")
    run(sim, 3, "relation_changed", 0)
    run(sim, 0, "relation_changed", 3)  # refused: the old member still holds "web"
    assert json.loads(sim.app_data["removing"]) == {"lxd/2": "node-c"}
    assert members(sim)["lxd/2"] == "node-c"
    a.lxd.cluster.delete_instance("web")
    run(sim, 0, "relation_changed", 3)
    assert cluster_names(a) == ["node-a", "node-b"]
    assert "removing" not in sim.app_data
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert sim.app_data.get("lxd/3")


def test_a_member_without_a_recorded_cluster_address_is_not_taken_for_a_moved_binding(
    sim: Sim,  # noqa: F811
) -> None:
    _, b = formed(sim, 2)
    del b.lxd.config["cluster.https_address"]
    out = run(sim, 1, "config_changed")
    assert out.unit_status == testing.ActiveStatus(
        "cluster: member node-b; cluster on 10.0.0.2:8443"
    )


def test_a_replaced_machine_removed_after_its_departed_units_removal_waited_clears_its_records(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    remove = a.lxd.cluster.remove_lost_member
    calls: list[str] = []

    def settling_once(name: str) -> None:
        calls.append(name)
        if len(calls) == 1:  # the departed unit's removal: the database is busy
            raise LxdApiError("Failed to remove member: database is locked")
        remove(name)

    add_unit(sim, 3, "node-c", "10.0.0.9")
    run(sim, 3, "relation_changed", 0)  # announces the old hostname
    sim.remove_unit("lxd/2")
    monkeypatch.setattr(a.lxd.cluster, "remove_lost_member", settling_once)
    run(sim, 0, "relation_departed", 2)
    assert calls == ["node-c", "node-c"]  # the removal waited; the replacement went ahead
    assert cluster_names(a) == ["node-a", "node-b"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "removing" not in sim.app_data
    assert sim.app_data.get("lxd/3")


def test_a_leader_whose_join_on_its_deputys_token_is_refused_still_asks_its_deputy(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    formed(sim, 2)
    third = add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    sim.set_leader("lxd/2")
    run(sim, 2, "leader_elected")
    run(sim, 0, "relation_changed", 2)  # the deputy issues
    monkeypatch.setattr(third.lxd, "join_cluster", Refuses("Failed to initialize member: no"))
    out = run(sim, 2, "relation_changed", 0)
    assert out.unit_status.name == "blocked"
    assert sim.app_data["leader-joining"] == "lxd/2"


def test_a_new_leader_whose_join_on_its_predecessors_token_is_refused_asks_no_deputy(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    formed(sim, 2)
    third = add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)  # the old leader issues lxd/2's token
    sim.set_leader("lxd/2")
    monkeypatch.setattr(third.lxd, "join_cluster", Refuses("Failed to initialize member: no"))
    out = run(sim, 2, "leader_elected")
    assert out.unit_status.name == "blocked"
    assert "leader-joining" not in sim.app_data


def test_a_refusal_for_this_machine_over_no_leftover_clears_nothing(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    full = (
        "LXD refused the preseed: Error: Failed to join cluster: Failed to initialize "
        "member: the disk is full"
    )
    monkeypatch.setattr(second.lxd, "join_cluster", Refuses(full))
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status == testing.BlockedStatus(
        "LXD refused the join (Failed to initialize member: the disk is full): fix this "
        "machine or the charm's settings; the join is retried on the next hook"
    )
