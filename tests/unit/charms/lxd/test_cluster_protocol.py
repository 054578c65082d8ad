"""The cluster peer protocol's decisions, as pure functions (no Juju, no LXD)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest

from lxd_charm import cluster
from lxd_charm.cluster import (
    AppView,
    DeputyStep,
    JoinStep,
    ProtocolError,
    Waiting,
    announced,
    compatible,
    deputy,
    hold_first_tokens,
    hold_join_records,
    hold_wait,
    is_hold_wait,
    joining_ahead,
    member_config_for,
    plan_deputy,
    plan_joiner,
    plan_leader,
    plan_leader_join,
    still_holding,
)


def announce(hostname: str, **extra: str) -> dict[str, str]:
    return {"version": "1.0", "hostname": hostname, **extra}


def test_app_view_round_trip() -> None:
    view = AppView(
        members={"lxd/0": "a"},
        member_config=[
            {"entity": "storage-pool", "name": "default", "key": "source", "value": ""}
        ],
        tokens={"lxd/1": "secret:abc"},
        removing={"lxd/2": "c"},
    )
    bag = view.write()
    assert bag["version"] == "1.4" and bag["lxd/1"] == "secret:abc"
    assert AppView.read(bag) == view


def test_app_view_refuses_broken_json() -> None:
    with pytest.raises(ProtocolError, match="members"):
        AppView.read({"members": "{not json"})


def test_all_waiting_units_get_tokens_in_one_plan() -> None:
    app = AppView(members={"lxd/0": "a"})
    units = {f"lxd/{i}": announce(f"h{i}") for i in range(1, 6)}
    plan = plan_leader(app, units, {"a"})
    assert plan.issue == [Waiting(f"lxd/{i}", f"h{i}") for i in range(1, 6)]


def test_a_unit_with_a_usable_token_is_not_reissued() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"})
    assert plan_leader(app, {"lxd/1": announce("b")}, {"a"}).issue == []


def test_an_expired_token_is_reissued() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"})
    plan = plan_leader(app, {"lxd/1": announce("b", **{"expired-token": "secret:1"})}, {"a"})
    assert plan.issue == [Waiting("lxd/1", "b", renewal=True)]


def test_announced_counts_the_leader_and_every_peer_with_a_hostname() -> None:
    units = {"lxd/1": announce("b"), "lxd/2": {}, "lxd/3": announce("d", joined="d")}
    assert announced(units) == 3
    assert announced({}) == 1


@pytest.mark.parametrize(
    ("announced_units", "planned", "held"),
    [(2, 3, ["lxd/1"]), (3, 3, []), (3, 2, [])],
    ids=["one-still-coming", "all-here", "scaling-down"],
)
def test_first_tokens_wait_for_every_planned_unit(
    announced_units: int, planned: int, held: list[str]
) -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/2": "secret:2"})
    units = {"lxd/1": announce("b"), "lxd/2": announce("c", **{"expired-token": "secret:2"})}
    plan = plan_leader(app, units, {"a"})
    hold_first_tokens(plan, announced_units, planned)
    assert [waiting.unit for waiting in plan.held] == held
    issued = [waiting.unit for waiting in plan.issue]
    assert issued == sorted({"lxd/1", "lxd/2"} - set(held))  # a renewal is never held


def test_a_confirmed_join_records_the_member_and_drops_the_token() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"})
    plan = plan_leader(app, {"lxd/1": announce("b", joined="b")}, {"a", "b"})
    assert plan.confirm == {"lxd/1": "b"}
    assert plan.drop_tokens == ["lxd/1"]


# --- a leader holding first tokens, counting the units Juju shows it ---------------------


HOLDING = AppView(members={"lxd/0": "a"})


def test_the_hold_goes_on_while_planned_units_are_still_to_announce() -> None:
    units = {"lxd/1": announce("b"), "lxd/2": {}}
    assert still_holding(HOLDING, units, planned=4) == hold_wait(2, 4)
    assert is_hold_wait(hold_wait(2, 4)) and is_hold_wait(hold_wait(12, 30))


@pytest.mark.parametrize(
    ("app", "units", "planned"),
    [
        (HOLDING, {"lxd/1": announce("b"), "lxd/2": announce("c")}, 3),  # all announced
        (HOLDING, {"lxd/1": announce("b")}, 1),  # scaling down: nothing to hold
        (
            AppView(members={"lxd/0": "a"}, tokens={"lxd/2": "secret:2"}),
            {"lxd/1": announce("b"), "lxd/2": announce("c")},
            4,
        ),
        (AppView(members={"lxd/0": "a"}, removing={"lxd/5": "f"}), {"lxd/1": announce("b")}, 4),
        (AppView(members={"lxd/0": "a"}, leader_joining="lxd/0"), {"lxd/1": announce("b")}, 4),
        (HOLDING, {"lxd/1": announce("a")}, 4),  # the leader's own name: refused
        (HOLDING, {"lxd/1": announce("b"), "lxd/2": announce("b")}, 4),  # one name twice
        (HOLDING, {"lxd/1": {"version": "2.0", "hostname": "b"}}, 4),  # another protocol
        (HOLDING, {"lxd/1": announce("b", joined="b")}, 4),
        (HOLDING, {"lxd/1": announce("b", **{"expired-token": "secret:9"})}, 4),
        (HOLDING, {"lxd/1": announce("b", **{"join-refused": "secret:9"})}, 4),
        (HOLDING, {"lxd/1": announce("b", **{"join-status": "blocked: no disk"})}, 4),
        (AppView(members={"lxd/0": "a", "lxd/1": "b"}), {"lxd/1": announce("b")}, 4),
    ],
    ids=[
        "all-announced",
        "fewer-planned",
        "token-out",
        "removal",
        "leader-joining",
        "members-name",
        "name-twice",
        "other-protocol",
        "joined",
        "expired",
        "refused",
        "join-status",
        "recorded-member",
    ],
)
def test_the_leader_reconciles_whenever_the_bags_give_it_more_than_a_count(
    app: AppView, units: dict[str, dict[str, str]], planned: int
) -> None:
    assert still_holding(app, units, planned) is None


def test_a_hold_wait_is_told_from_other_waits() -> None:
    assert not is_hold_wait(cluster.turn_wait("lxd/1"))
    assert not is_hold_wait(hold_wait(2, 4) + " (+1 more)")
    assert not is_hold_wait("x" + hold_wait(2, 4))


# --- a round's joins are recorded once ------------------------------------------------


ROUND = AppView(
    members={"lxd/0": "a"},
    tokens={"lxd/1": "secret:1", "lxd/2": "secret:2", "lxd/3": "secret:3"},
)


@pytest.mark.parametrize(
    ("lxd_3", "held"),
    [
        (announce("d"), True),  # its turn is still to come
        (announce("d", joined="d"), False),  # the round's last join: record them all
        (announce("d", **{"expired-token": "secret:3"}), True),  # its new token goes out now
        (announce("d", **{"join-refused": "secret:3"}), False),  # gave up its turn
        (announce("d", joined="other"), True),  # said so of another name: not this join
    ],
    ids=["still-to-join", "last-landed", "expired", "refused", "joined-as-another"],
)
def test_joins_are_held_while_another_join_of_the_round_is_under_way(
    lxd_3: dict[str, str], held: bool
) -> None:
    units = {
        "lxd/1": announce("b", joined="b"),
        "lxd/2": announce("c", joined="c"),
        "lxd/3": lxd_3,
    }
    plan = plan_leader(
        ROUND, units, {"a", "b", "c", "d"} if "joined" in lxd_3 else {"a", "b", "c"}
    )
    confirmed = dict(plan.confirm)
    dropped = list(plan.drop_tokens)
    assert {"lxd/1": "b", "lxd/2": "c"}.items() <= confirmed.items()

    kept = hold_join_records(plan, ROUND, units)

    if held:
        assert kept == confirmed
        assert plan.confirm == {}
        assert plan.drop_tokens == [unit for unit in dropped if unit not in confirmed]
    else:
        assert kept == {}
        assert plan.confirm == confirmed
        assert plan.drop_tokens == dropped


def test_joins_are_held_while_this_hook_issues_tokens() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"}, removing={})
    units = {"lxd/1": announce("b", joined="b"), "lxd/2": announce("c")}
    plan = plan_leader(app, units, {"a", "b"})
    assert [waiting.unit for waiting in plan.issue] == ["lxd/2"]
    assert hold_join_records(plan, app, units) == {"lxd/1": "b"}
    assert plan.drop_tokens == []


def test_a_unit_already_recorded_holds_nothing() -> None:
    app = AppView(members={"lxd/0": "a", "lxd/1": "b"}, tokens={"lxd/1": "secret:1"})
    units = {"lxd/1": announce("b", joined="b")}
    plan = plan_leader(app, units, {"a", "b"})
    assert hold_join_records(plan, app, units) == {}
    assert plan.drop_tokens == ["lxd/1"]


def test_a_join_lxd_does_not_know_about_is_not_confirmed() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"})
    plan = plan_leader(app, {"lxd/1": announce("b", joined="b")}, {"a"})
    assert plan.confirm == {}


@pytest.mark.parametrize("lxd_members", [{"a"}, {"a", "a2"}])
def test_hostname_collision(lxd_members: set[str]) -> None:
    app = AppView(members={"lxd/0": "a"})
    units = {"lxd/1": announce("a"), "lxd/2": announce("a2")}
    plan = plan_leader(app, units, lxd_members)
    assert plan.collisions["lxd/1"] == "a"
    assert ("lxd/2" in plan.collisions) == ("a2" in lxd_members)


def test_one_hostname_two_waiting_units_the_token_holder_keeps_it() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/12": "secret:12"})
    units = {"lxd/3": announce("b"), "lxd/12": announce("b"), "lxd/4": announce("b")}
    plan = plan_leader(app, units, {"a"})
    assert plan.issue == []
    assert plan.collisions == {"lxd/3": "b", "lxd/4": "b"}


def test_one_hostname_two_new_units_the_lowest_numbered_gets_the_token() -> None:
    app = AppView(members={"lxd/0": "a"})
    units = {"lxd/10": announce("b"), "lxd/9": announce("b"), "lxd/2": announce("c")}
    plan = plan_leader(app, units, {"a"})
    assert plan.issue == [Waiting("lxd/2", "c"), Waiting("lxd/9", "b")]
    assert plan.collisions == {"lxd/10": "b"}


def test_a_join_in_flight_is_not_a_collision() -> None:
    """LXD lists the member before the unit's `joined` reaches the leader."""
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:b"})
    plan = plan_leader(app, {"lxd/1": announce("b")}, {"a", "b"})
    assert plan.collisions == {} and plan.issue == [] and plan.confirm == {}
    # Without a token of ours for it, the same name is somebody else's member.
    plan = plan_leader(AppView(members={"lxd/0": "a"}), {"lxd/1": announce("b")}, {"a", "b"})
    assert plan.collisions == {"lxd/1": "b"}


def test_other_versions_are_not_served() -> None:
    plan = plan_leader(
        AppView(members={"lxd/0": "a"}), {"lxd/1": {"version": "2.0", "hostname": "b"}}, {"a"}
    )
    assert plan.incompatible == ["lxd/1"] and plan.issue == []
    assert compatible({}) and compatible({"version": "1.7"}) and not compatible({"version": "2.0"})


def test_tokens_of_units_that_left_are_dropped() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/9": "secret:9"})
    assert plan_leader(app, {}, {"a"}).drop_tokens == ["lxd/9"]


def test_units_without_hostname_wait() -> None:
    assert (
        plan_leader(AppView(members={"lxd/0": "a"}), {"lxd/1": {"version": "1.0"}}, {"a"}).issue
        == []
    )


def test_joiner_steps() -> None:
    assert plan_joiner(AppView(), "lxd/1", {}, {}).action == "wait"
    app = AppView(tokens={"lxd/1": "secret:1"})
    assert plan_joiner(app, "lxd/1", {}, {}).secret_id == "secret:1"
    assert plan_joiner(app, "lxd/1", {"expired-token": "secret:1"}, {}).action == "wait"


def test_joiners_holding_tokens_take_turns_by_unit_number() -> None:
    app = AppView(
        members={"lxd/0": "a"},
        tokens={"lxd/2": "secret:2", "lxd/10": "secret:10", "lxd/11": "secret:11"},
    )
    peers = {
        "lxd/0": announce("a"),
        "lxd/2": announce("c"),
        "lxd/10": announce("k"),
        "lxd/11": announce("l"),
    }
    assert plan_joiner(app, "lxd/2", peers["lxd/2"], peers).action == "join"
    waits = plan_joiner(app, "lxd/10", peers["lxd/10"], peers)
    assert waits.action == "wait"
    assert waits.reason == "waiting for lxd/2 to join first: LXD takes one join at a time"
    assert plan_joiner(app, "lxd/11", peers["lxd/11"], peers).reason.startswith(
        "waiting for lxd/2 "
    )
    # lxd/2 joined: lxd/10's turn; lxd/11 waits for lxd/10.
    peers["lxd/2"] = announce("c", joined="c")
    assert plan_joiner(app, "lxd/10", peers["lxd/10"], peers).action == "join"
    assert "lxd/10" in plan_joiner(app, "lxd/11", peers["lxd/11"], peers).reason
    # A unit waiting for a new token is not in the way; update-status goes ahead regardless.
    peers["lxd/10"] = announce("k", **{"expired-token": "secret:10"})
    assert plan_joiner(app, "lxd/11", peers["lxd/11"], peers).action == "join"
    peers["lxd/10"] = announce("k", **{"join-refused": "secret:10"})  # blocked on its machine
    assert plan_joiner(app, "lxd/11", peers["lxd/11"], peers).action == "join"
    peers["lxd/10"] = announce("k")
    impatient = plan_joiner(app, "lxd/11", peers["lxd/11"], peers, take_turn=False)
    assert impatient == JoinStep("join", secret_id="secret:11")


def test_member_config_uses_this_units_block_device() -> None:
    config = [
        {"entity": "storage-pool", "name": "default", "key": "source", "value": ""},
        {"entity": "storage-pool", "name": "default", "key": "zfs.pool_name", "value": "default"},
    ]
    assert member_config_for(config, "/dev/vdb")[0]["value"] == "/dev/vdb"
    assert member_config_for(config, "/dev/vdb")[1]["value"] == "default"
    assert member_config_for(config, None)[0]["value"] == ""
    assert json.dumps(member_config_for(config, None))


# --- a leader that is not a member yet -----------------------------------------


def test_app_view_carries_the_joining_leader() -> None:
    view = AppView(members={"lxd/0": "a"}, leader_joining="lxd/3")
    assert AppView.read(view.write()).leader_joining == "lxd/3"
    assert AppView(members={"lxd/0": "a"}).write()["leader-joining"] == "", "empty deletes it"


def test_the_deputy_is_the_lowest_numbered_present_member() -> None:
    app = AppView(
        members={"lxd/10": "j", "lxd/2": "b", "lxd/9": "i"},
        removing={"lxd/2": "b"},
        leader_joining="lxd/11",
    )
    # lxd/2 is being removed; numbers compare as numbers, not text.
    assert deputy(app, {"lxd/2", "lxd/9", "lxd/10", "lxd/11"}) == "lxd/9"
    assert deputy(app, {"lxd/10", "lxd/11"}) == "lxd/10"
    assert deputy(app, {"lxd/11"}) is None


def test_a_leader_uses_the_token_its_predecessor_issued_it_first() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/3": "secret:own"})
    step = plan_leader_join(app, "lxd/3", {}, {"lxd/0": {"leader-token": "secret:dep"}})
    assert (step.action, step.secret_id) == ("join", "secret:own")


def test_a_leader_falls_back_to_its_deputys_token() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/3": "secret:own"})
    bags = {"lxd/0": {"leader-token": "secret:dep"}}
    step = plan_leader_join(app, "lxd/3", {"expired-token": "secret:own"}, bags)
    assert (step.action, step.secret_id) == ("join", "secret:dep")
    # ...but not to one it already reported as expired (its own is dropped by then).
    app.tokens.clear()
    step = plan_leader_join(app, "lxd/3", {"expired-token": "secret:dep"}, bags)
    assert step.action == "wait" and "waiting for lxd/0" in step.reason


def test_a_leader_with_no_member_in_sight_waits() -> None:
    step = plan_leader_join(AppView(members={"lxd/0": "a"}), "lxd/3", {}, {})
    assert step.action == "wait"
    assert "waiting for a member unit" in step.reason


def test_only_the_deputy_issues_and_only_when_needed() -> None:
    app = AppView(members={"lxd/0": "a", "lxd/1": "b"}, leader_joining="lxd/3")
    present = {"lxd/0", "lxd/1", "lxd/3"}
    leader = announce("c")
    assert plan_deputy(app, "lxd/0", present, leader, {}) == DeputyStep(issue_for="c")
    assert plan_deputy(app, "lxd/1", present, leader, {}) == DeputyStep()
    # A token on its way is not replaced, unless the leader reports it expired.
    mine = {"leader-token": "secret:t"}
    assert plan_deputy(app, "lxd/0", present, leader, mine) == DeputyStep()
    expired = announce("c", **{"expired-token": "secret:t"})
    assert plan_deputy(app, "lxd/0", present, expired, mine) == DeputyStep(issue_for="c")
    # The leader has not announced its hostname yet: nothing to issue for.
    assert plan_deputy(app, "lxd/0", present, {}, {}) == DeputyStep()


def test_the_deputy_withdraws_its_token_once_the_leader_is_a_member() -> None:
    app = AppView(members={"lxd/0": "a", "lxd/3": "c"})
    step = plan_deputy(app, "lxd/0", {"lxd/0", "lxd/3"}, announce("c"), {"leader-token": "x"})
    assert step == DeputyStep(drop=True)
    assert plan_deputy(app, "lxd/0", {"lxd/0", "lxd/3"}, announce("c"), {}) == DeputyStep()


# --- quorum: the member roles LXD 5.0 reports (captured from real daemons) ---------


@dataclass(frozen=True)
class Listed:
    name: str
    status: str
    roles: list[str]

    @property
    def online(self) -> bool:
        return self.status == "Online"

    @property
    def evacuated(self) -> bool:
        return self.status == "Evacuated"


LEADER = ["database-leader", "database"]
OWNERS = {"m1": "lxd/0", "m2": "lxd/1", "m3": "lxd/2", "m4": "lxd/3", "m5": "lxd/4"}


def three(offline: str = "") -> list[Listed]:
    """Three members: all three are voters."""
    return [
        Listed("m1", "Offline" if offline == "m1" else "Online", LEADER),
        Listed("m2", "Offline" if offline == "m2" else "Online", ["database"]),
        Listed("m3", "Offline" if offline == "m3" else "Online", ["database"]),
    ]


def test_removing_a_voter_of_three_while_another_is_offline_is_refused() -> None:
    said = cluster.removal_refusal(three(offline="m3"), "m2", OWNERS)
    assert said == (
        "not removing m2 (lxd/1): m3 (lxd/2) is offline and the cluster would lose its "
        "quorum; bring m3 back or remove lxd/2 first"
    )


def test_removing_the_offline_voter_itself_keeps_the_quorum() -> None:
    assert cluster.removal_refusal(three(offline="m3"), "m3", OWNERS) is None


def test_removing_a_voter_of_three_all_online_keeps_the_quorum() -> None:
    assert cluster.removal_refusal(three(), "m2", OWNERS) is None


def test_an_offline_member_nobody_owns_is_named_without_a_unit() -> None:
    said = cluster.removal_refusal(three(offline="m3"), "m2", {"m2": "lxd/1"})
    assert said == (
        "not removing m2 (lxd/1): m3 is offline and the cluster would lose its quorum; "
        "bring m3 back"
    )


def test_five_members_after_lxd_replaced_an_offline_voter_can_lose_another() -> None:
    """Captured: LXD demoted the killed voter m3 to no role and promoted standby m4."""
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Online", ["database"]),
        Listed("m3", "Offline", []),
        Listed("m4", "Online", ["database"]),
        Listed("m5", "Online", ["database-standby"]),
    ]
    assert cluster.removal_refusal(listed, "m2", OWNERS) is None
    assert cluster.quorum_problem(listed, OWNERS) is None


def test_five_members_with_two_voters_offline_refuse_removing_a_third() -> None:
    """Before LXD rebalances (or with no standby online), roles decide, not counts."""
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Offline", ["database"]),
        Listed("m3", "Online", ["database"]),
        Listed("m4", "Offline", ["database-standby"]),
        Listed("m5", "Offline", ["database-standby"]),
    ]
    # 2 of 3 voters online: a quorum now, but removing m3 leaves m1 alone with m2.
    assert cluster.quorum_problem(listed, OWNERS) is None
    assert cluster.removal_refusal(listed, "m3", OWNERS) == (
        "not removing m3 (lxd/2): m2 (lxd/1) is offline and the cluster would lose its "
        "quorum; bring m2 back or remove lxd/1 first"
    )
    # Removing a standby never changes the voters.
    assert cluster.removal_refusal(listed, "m4", OWNERS) is None


def test_an_online_standby_replaces_a_leaving_voter() -> None:
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Online", ["database"]),
        Listed("m3", "Offline", ["database"]),
        Listed("m4", "Online", ["database-standby"]),
    ]
    # m2 leaves, m4 is promoted: m1 and m4 online of m1, m3, m4.
    assert cluster.removal_refusal(listed, "m2", OWNERS) is None


def test_quorum_is_lost_with_half_the_voters_or_fewer_online() -> None:
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Offline", ["database"]),
        Listed("m3", "Offline", ["database"]),
    ]
    assert cluster.quorum_problem(listed, OWNERS) == (
        "the cluster database has lost its quorum: m2 (lxd/1), m3 (lxd/2) offline "
        "(1/3 database members online); bring them back"
    )
    assert cluster.quorum_problem(three(offline="m2"), OWNERS) is None


def test_every_offline_member_is_named_for_the_status() -> None:
    assert cluster.offline_members(three(), OWNERS) is None
    assert cluster.offline_members(three(offline="m1"), OWNERS) == (
        "m1 (lxd/0) is offline: bring it back, or remove the unit"
    )


# --- each decision of the join protocol, one wrong answer each ---------------------


def test_a_lower_numbered_peer_without_a_token_does_not_block_a_joiner() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/5": "secret:5"})
    peers = {"lxd/0": announce("a"), "lxd/2": announce("c"), "lxd/5": announce("f")}
    assert plan_joiner(app, "lxd/5", peers["lxd/5"], peers) == JoinStep(
        "join", secret_id="secret:5"
    )


def test_a_lower_numbered_member_holding_a_stale_token_does_not_block_a_joiner() -> None:
    app = AppView(members={"lxd/0": "a", "lxd/2": "c"}, tokens={"lxd/2": "s2", "lxd/5": "s5"})
    peers = {"lxd/2": announce("c"), "lxd/5": announce("f")}
    assert plan_joiner(app, "lxd/5", peers["lxd/5"], peers) == JoinStep("join", secret_id="s5")


def test_a_higher_numbered_peer_never_blocks_a_joiner() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/3": "s3", "lxd/4": "s4"})
    peers = {"lxd/3": announce("c"), "lxd/4": announce("d")}
    assert joining_ahead(app, "lxd/3", peers) is None
    assert joining_ahead(app, "lxd/4", peers) == "lxd/3"
    # the same number is the unit itself: not ahead of itself
    assert joining_ahead(app, "lxd/3", {"lxd/3": announce("c")}) is None


def test_the_joiner_waiting_for_its_first_token_says_so() -> None:
    step = plan_joiner(AppView(), "lxd/1", announce("b"), {})
    assert step == JoinStep("wait", reason="waiting for the leader to issue a join token")
    app = AppView(tokens={"lxd/1": "secret:1"})
    step = plan_joiner(app, "lxd/1", announce("b", **{"expired-token": "secret:1"}), {})
    assert step == JoinStep(
        "wait", reason="waiting for the leader to replace an expired join token"
    )
    # An older report names another token: this one is usable.
    step = plan_joiner(app, "lxd/1", announce("b", **{"expired-token": "secret:0"}), {})
    assert step == JoinStep("join", secret_id="secret:1")


def test_a_leader_does_not_join_before_its_deputy_publishes_a_token() -> None:
    app = AppView(members={"lxd/0": "a"}, leader_joining="lxd/3")
    reported = {"expired-token": "secret:old"}
    choices: list[dict[str, dict[str, str]]] = [{"lxd/0": {}}, {"lxd/0": {"leader-token": ""}}]
    for bags in choices:
        step = plan_leader_join(app, "lxd/3", reported, bags)
        assert step == JoinStep(
            "wait",
            reason="this leader is not a member yet: waiting for lxd/0 to issue its join token",
        )
        assert plan_leader_join(app, "lxd/3", {}, bags).action == "wait"


def test_a_leader_with_no_member_in_sight_says_what_it_waits_for() -> None:
    step = plan_leader_join(AppView(members={"lxd/0": "a"}), "lxd/3", {}, {})
    assert step == JoinStep(
        "wait",
        reason="this leader is not a member yet: waiting for a member unit to issue "
        "its join token",
    )


def test_a_leaders_own_token_it_reported_expired_is_not_used_again() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/3": "secret:own"})
    bags = {"lxd/0": {"leader-token": "secret:dep"}}
    step = plan_leader_join(app, "lxd/3", {"expired-token": "secret:own"}, bags)
    assert step == JoinStep("join", secret_id="secret:dep")
    # the deputy (lxd/0) is the member present; the leader itself counts as present
    step = plan_leader_join(AppView(members={"lxd/3": "c"}), "lxd/3", {}, {})
    assert step.action == "wait"


def test_leftover_tokens_of_members_are_dropped() -> None:
    app = AppView(members={"lxd/0": "a", "lxd/1": "b"}, tokens={"lxd/1": "secret:1"})
    plan = plan_leader(app, {"lxd/1": announce("b", joined="b")}, {"a", "b"})
    assert plan.drop_tokens == ["lxd/1"]
    assert plan == cluster.LeaderPlan(drop_tokens=["lxd/1"])
    # a member without a token: nothing to drop, nothing else to do
    app = AppView(members={"lxd/0": "a", "lxd/1": "b"})
    assert plan_leader(app, {"lxd/1": announce("b", joined="b")}, {"a", "b"}) == (
        cluster.LeaderPlan()
    )


def test_a_confirmed_unit_without_a_token_is_confirmed_not_a_collision() -> None:
    app = AppView(members={"lxd/0": "a"})
    plan = plan_leader(app, {"lxd/1": announce("b", joined="b")}, {"a", "b"})
    assert plan == cluster.LeaderPlan(confirm={"lxd/1": "b"})


def test_a_unit_joined_under_another_members_name_is_a_collision() -> None:
    app = AppView(members={"lxd/0": "a"})
    plan = plan_leader(app, {"lxd/1": announce("a", joined="a")}, {"a"})
    assert plan == cluster.LeaderPlan(collisions={"lxd/1": "a"})
    # joined under a name it did not announce: not confirmed
    plan = plan_leader(app, {"lxd/1": announce("b", joined="x")}, {"a", "b"})
    assert plan.confirm == {}


def test_an_incompatible_unit_is_reported_and_nothing_else() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"})
    plan = plan_leader(app, {"lxd/1": {"version": "2.0", "hostname": "b"}}, {"a"})
    assert plan == cluster.LeaderPlan(incompatible=["lxd/1"])


def test_a_hostname_claimed_by_a_token_holder_is_not_given_to_a_lower_unit() -> None:
    # lxd/7 holds a token for "b"; lxd/3 announced "b" later: lxd/3 collides.
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/7": "secret:7"})
    units = {"lxd/3": announce("b"), "lxd/7": announce("b")}
    plan = plan_leader(app, units, {"a"})
    assert plan == cluster.LeaderPlan(collisions={"lxd/3": "b"})
    # a member's token does not claim the hostname its bag still announces
    app = AppView(members={"lxd/0": "a", "lxd/7": "z"}, tokens={"lxd/7": "secret:7"})
    plan = plan_leader(app, units, {"a", "z"})
    assert plan.issue == [Waiting("lxd/3", "b")]
    # nor does a token holder that has announced no hostname yet
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/7": "secret:7"})
    plan = plan_leader(app, {"lxd/3": announce("b"), "lxd/7": {"version": "1.0"}}, {"a"})
    assert plan.issue == [Waiting("lxd/3", "b")]


def test_a_deputy_never_issues_for_a_leader_that_has_joined() -> None:
    app = AppView(members={"lxd/0": "a"}, leader_joining="lxd/3")
    present = {"lxd/0", "lxd/3"}
    joined = announce("c", joined="c")
    assert plan_deputy(app, "lxd/0", present, joined, {}) == DeputyStep()
    assert plan_deputy(app, "lxd/0", present, joined, {"leader-token": "t"}) == DeputyStep()
    # `joined` naming another hostname is not this leader's join
    other = announce("c", joined="x")
    assert plan_deputy(app, "lxd/0", present, other, {}) == DeputyStep(issue_for="c")


def test_a_unit_that_is_not_the_deputy_withdraws_its_token() -> None:
    app = AppView(members={"lxd/0": "a", "lxd/1": "b"}, leader_joining="lxd/3")
    present = {"lxd/0", "lxd/1", "lxd/3"}
    step = plan_deputy(app, "lxd/1", present, announce("c"), {"leader-token": "t"})
    assert step == DeputyStep(drop=True)


def test_a_deputy_not_listed_as_present_still_counts_itself() -> None:
    app = AppView(members={"lxd/0": "a"}, leader_joining="lxd/3")
    assert plan_deputy(app, "lxd/0", {"lxd/3"}, announce("c"), {}) == DeputyStep(issue_for="c")


def test_the_joining_leader_is_never_its_own_deputy() -> None:
    app = AppView(members={"lxd/1": "b", "lxd/3": "c"}, leader_joining="lxd/1")
    assert deputy(app, {"lxd/1", "lxd/3"}) == "lxd/3"


def test_the_app_view_writes_its_maps_in_one_order_whatever_the_insertion_order() -> None:
    """Juju fires relation-changed on every new value: the same view must write the same text."""
    one = AppView(members={"lxd/2": "c", "lxd/0": "a"}, removing={"lxd/3": "d", "lxd/1": "b"})
    other = AppView(members={"lxd/0": "a", "lxd/2": "c"}, removing={"lxd/1": "b", "lxd/3": "d"})
    assert one.write() == other.write()
    assert one.write()["members"] == '{"lxd/0": "a", "lxd/2": "c"}'
    assert one.write()["removing"] == '{"lxd/1": "b", "lxd/3": "d"}'
    assert AppView().write()["removing"] == "", "nothing being removed deletes the key"


def test_an_empty_app_bag_reads_as_an_empty_view() -> None:
    assert AppView.read({}) == AppView()
    assert AppView.read({}).leader_joining == ""


def test_the_steps_default_to_saying_nothing() -> None:
    assert (JoinStep("wait").secret_id, JoinStep("wait").reason) == ("", "")
    assert (DeputyStep().issue_for, DeputyStep().drop) == ("", False)


@pytest.mark.parametrize(
    "value",
    [Waiting("lxd/1", "b"), JoinStep("join", secret_id="s"), DeputyStep(issue_for="c")],
    ids=["waiting", "join-step", "deputy-step"],
)
def test_decisions_are_values_that_cannot_change_after_the_fact(value: object) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.unit = "changed"  # type: ignore[attr-defined]
    assert hash(value) == hash(dataclasses.replace(value))  # type: ignore[type-var]


def test_member_config_without_a_suggested_value_is_empty() -> None:
    config = [{"entity": "network", "name": "lxdbr0", "key": "parent"}]
    assert member_config_for(config, "/dev/vdb") == [
        {"entity": "network", "name": "lxdbr0", "key": "parent", "value": ""}
    ]


def test_exactly_half_the_voters_online_is_not_a_quorum() -> None:
    listed = [Listed("m1", "Online", LEADER), Listed("m2", "Offline", ["database"])]
    assert cluster.quorum_problem(listed, OWNERS) == (
        "the cluster database has lost its quorum: m2 (lxd/1) offline "
        "(1/2 database members online); bring them back"
    )
    assert cluster.quorum_problem([], OWNERS) is None


def test_lxd_promotes_one_standby_for_a_leaving_voter_not_two() -> None:
    """Two voters (one offline) and two online standbys: m2 leaving leaves m1 and one standby."""
    listed = [
        Listed("m1", "Offline", ["database"]),
        Listed("m2", "Online", LEADER),
        Listed("m4", "Online", ["database-standby"]),
        Listed("m5", "Online", ["database-standby"]),
    ]
    assert cluster.removal_refusal(listed, "m2", OWNERS) == (
        "not removing m2 (lxd/1): m1 (lxd/0) is offline and the cluster would lose its "
        "quorum; bring m1 back or remove lxd/0 first"
    )


# --- maintenance: evacuation, the leader's count, failure domains (1.4) -------------
# LXD 5.0 lists an evacuated member as "Evacuated" and keeps its database role while its
# daemon runs; once the daemon stops it demotes it and promotes an online standby (captured).


def test_an_evacuated_voter_still_counts_for_the_database_quorum() -> None:
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Evacuated", ["database"]),
        Listed("m3", "Evacuated", ["database"]),
    ]
    assert cluster.quorum_problem(listed, OWNERS) is None


def test_evacuated_members_are_not_reported_offline() -> None:
    listed = [*three()[:2], Listed("m3", "Evacuated", ["database"])]
    assert cluster.offline_members(listed, OWNERS) is None
    listed.append(Listed("m4", "Offline", ["database-standby"]))
    assert cluster.offline_members(listed, OWNERS) == (
        "m4 (lxd/3) is offline: bring it back, or remove the unit"
    )


def test_evacuating_one_voter_of_three_is_allowed() -> None:
    assert cluster.evacuation_refusal(three(), "m2", OWNERS) is None


def test_evacuating_a_second_voter_of_three_is_refused() -> None:
    listed = [*three()[:2], Listed("m3", "Evacuated", ["database"])]
    assert cluster.evacuation_refusal(listed, "m2", OWNERS) == (
        "not evacuating m2 (lxd/1): m3 (lxd/2) is already evacuated or offline, and taking "
        "m2 down too would cost the cluster its database quorum (1/3 database members "
        "left); restore or bring back m3 first"
    )


def test_an_offline_voter_counts_as_down_for_an_evacuation() -> None:
    assert cluster.evacuation_refusal(three(offline="m1"), "m3", OWNERS) == (
        "not evacuating m3 (lxd/2): m1 (lxd/0) is already evacuated or offline, and taking "
        "m3 down too would cost the cluster its database quorum (1/3 database members "
        "left); restore or bring back m1 first"
    )


def test_an_online_standby_lets_a_second_voter_be_evacuated() -> None:
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Online", ["database"]),
        Listed("m3", "Evacuated", ["database"]),
        Listed("m4", "Online", ["database-standby"]),
    ]
    # m2 and m3 down, m4 promoted: m1 and m4 of three voters.
    assert cluster.evacuation_refusal(listed, "m2", OWNERS) is None
    # An evacuated standby cannot be promoted.
    listed[3] = Listed("m4", "Evacuated", ["database-standby"])
    assert cluster.evacuation_refusal(listed, "m2", OWNERS) is not None


def test_a_member_that_does_not_vote_is_not_refused_for_the_quorum() -> None:
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Offline", ["database"]),
        Listed("m3", "Offline", ["database"]),
        Listed("m4", "Online", ["database-standby"]),
    ]
    assert cluster.evacuation_refusal(listed, "m4", OWNERS) is None


def test_the_only_voter_with_no_standby_is_refused() -> None:
    listed = [Listed("m1", "Online", LEADER), Listed("m2", "Online", [])]
    assert cluster.evacuation_refusal(listed, "m1", OWNERS) == (
        "not evacuating m1 (lxd/0): it is the cluster's only database member up and no "
        "standby could take its place; add members first"
    )


def test_evacuating_with_nowhere_for_the_instances_to_go_is_refused_unless_stop() -> None:
    listed = [
        Listed("m1", "Online", []),
        Listed("m2", "Evacuated", []),
    ]
    assert cluster.evacuation_refusal(listed, "m1", {}) == (
        "not evacuating m1: no other member is online to take its instances (LXD would stop "
        "them); restore or bring back another member first"
    )
    assert cluster.evacuation_refusal(listed, "m1", {}, mode="stop") is None


def test_evacuating_a_member_that_is_not_listed_is_refused() -> None:
    assert cluster.evacuation_refusal(three(), "m9", OWNERS) == (
        "m9 is not a member of this cluster"
    )


def test_the_leaders_count_names_evacuated_members() -> None:
    assert cluster.leader_summary(three(), 3) == "3/3 members online, 3 units"
    listed = [three()[0], Listed("m3", "Evacuated", ["database"]), Listed("m2", "Evacuated", [])]
    assert cluster.leader_summary(listed, 3) == (
        "1/3 members online, 2 evacuated (m2, m3), 3 units"
    )


def test_a_members_own_line_says_it_is_evacuated() -> None:
    assert cluster.member_summary("node1", False) == "member node1"
    assert cluster.member_summary("node1", True) == (
        "member node1 is evacuated: run the restore action to take instances again"
    )


@pytest.mark.parametrize(
    ("zone", "domain"),
    [
        ("zone-a", "zone-a"),
        (" az2 ", "az2"),
        ("", "default"),
        ("  ", "default"),
        (None, "default"),
    ],
)
def test_failure_domain_follows_the_zone(zone: str | None, domain: str) -> None:
    assert cluster.failure_domain(zone) == domain


def test_version_1_4_stays_compatible_with_1_x() -> None:
    assert cluster.VERSION == "1.4"
    assert cluster.compatible({"version": "1.3"}) and cluster.compatible({"version": "1.0"})
    assert not cluster.compatible({"version": "2.0"})


# --- replaced machines and members no unit owns ------------------------------------


def test_a_unit_announcing_a_stale_members_name_replaces_it() -> None:
    app = cluster.AppView(members={"lxd/0": "m1", "lxd/2": "m3"})
    units = {"lxd/1": {"version": "1.4", "hostname": "m3"}}
    plan = cluster.plan_leader(app, units, {"m1", "m3"}, stale={"m3"})
    assert plan.replacing == {"lxd/1": "m3"}
    assert plan.collisions == {} and plan.issue == []


def test_without_stale_the_same_name_is_a_collision() -> None:
    app = cluster.AppView(members={"lxd/0": "m1", "lxd/2": "m3"})
    units = {"lxd/1": {"version": "1.4", "hostname": "m3"}}
    plan = cluster.plan_leader(app, units, {"m1", "m3"})
    assert plan.collisions == {"lxd/1": "m3"} and plan.replacing == {}


def test_two_units_announcing_one_stale_name_the_lowest_replaces_it() -> None:
    app = cluster.AppView(members={"lxd/0": "m1"})
    units = {
        "lxd/4": {"version": "1.4", "hostname": "m3"},
        "lxd/3": {"version": "1.4", "hostname": "m3"},
    }
    plan = cluster.plan_leader(app, units, {"m1", "m3"}, stale={"m3"})
    assert plan.replacing == {"lxd/3": "m3"}
    assert plan.collisions == {"lxd/4": "m3"}


def test_stale_members_are_offline_and_owned_by_no_unit_present() -> None:
    listed = [
        Listed("m1", "Online", LEADER),
        Listed("m2", "Offline", ["database"]),
        Listed("m3", "Offline", []),
        Listed("m4", "Evacuated", []),
    ]
    assert cluster.stale_members(listed, {"m1": "lxd/0", "m2": "lxd/1"}) == {"m3"}


def test_unowned_members_are_those_nobody_records_or_announces() -> None:
    listed = [*three(), Listed("m9", "Online", [])]
    assert cluster.unowned_members(listed, {"m1", "m2", "m3"}) == ["m9"]
    assert cluster.unowned_members(listed, {"m1", "m2", "m3", "m9"}) == []


def test_the_leaders_count_names_unowned_members() -> None:
    assert cluster.leader_summary(three(), 2, ["m3"]) == (
        "3/3 members online, 2 units; owned by no unit: m3"
    )


def test_a_lost_member_with_instances_names_them_and_the_discarding_command() -> None:
    assert cluster.lost_member_refusal("lxd/5", "m3", ["web", "ci/db"]) == (
        "lxd/5 wants to join as 'm3', whose old member is offline, owned by no unit and "
        "holds 2 instance(s) (web, ci/db): bring its machine back, or discard them with "
        "`lxc cluster remove --force m3`"
    )
