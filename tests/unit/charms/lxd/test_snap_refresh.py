"""The refresh-round decisions (`lxd_charm.snap_refresh`), without Juju, LXD or snapd."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lxd_charm import snap_refresh
from lxd_charm.snap_refresh import Progress, Round, next_round, progress, refusal


@dataclass(frozen=True)
class Member:
    """What the quorum rules read of a member (as `ClusterMember` has it)."""

    name: str
    online: bool = True
    roles: list[str] = field(default_factory=lambda: ["database"])
    evacuated: bool = False


OWNERS = {"node-a": "lxd/0", "node-b": "lxd/1", "node-c": "lxd/2"}
MEMBERS = {unit: member for member, unit in OWNERS.items()}


def bag(version: str = "", done: str = "", error: str = "") -> dict[str, str]:
    values = {"lxd-version": version, "refresh-done": done, "refresh-error": error}
    return {key: value for key, value in values.items() if value}


# --- the round in the application bag -------------------------------------------------


def test_a_round_reads_back_what_it_writes() -> None:
    written = Round(3, "5.21/stable").write()
    assert written == {"refresh-round": "3", "refresh-channel": "5.21/stable"}
    assert snap_refresh.read_round(written) == Round(3, "5.21/stable")
    assert snap_refresh.read_round({"refresh-round": "2"}) == Round(2, "")
    assert snap_refresh.read_round({}) is None
    assert snap_refresh.read_round({"refresh-round": "x"}) is None


# --- when the leader starts one ------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "wanted", "tracked", "expected"),
    [
        (None, "5.21/stable", "5.21/stable", None),  # where the cluster is
        (None, "5.21", "5.21/stable", None),  # the same channel, spelled short
        (None, "6/stable", "5.21/stable", Round(1, "6/stable")),
        (None, "6", "5.21/stable", Round(1, "6/stable")),
        (Round(4, "6/stable"), "6/stable", "5.21/stable", None),  # a round for it exists
        (Round(4, "6/stable"), "6/candidate", "6/stable", Round(5, "6/candidate")),
        (Round(4, ""), "6/stable", "6/stable", None),  # an action's round: the tracked channel
        (None, "auto", "5.21/stable", None),  # auto names no channel
        (Round(2, "6/stable"), "auto", "6/stable", None),
        (None, "6/stable", "", Round(1, "6/stable")),  # a file-installed leader
    ],
)
def test_a_channel_change_starts_the_next_round(
    current: Round | None, wanted: str, tracked: str, expected: Round | None
) -> None:
    assert next_round(current, wanted, tracked) == expected


@pytest.mark.parametrize(
    ("current", "wanted", "expected"),
    [
        (None, "5.21/stable", Round(1, "5.21/stable")),
        (Round(7, "6/stable"), "6", Round(8, "6/stable")),
        (None, "auto", Round(1, "")),  # the tracked channel's newest revision
        (Round(2, "6/edge"), "auto", Round(3, "6/edge")),
    ],
)
def test_the_action_always_starts_a_round(
    current: Round | None, wanted: str, expected: Round
) -> None:
    assert next_round(current, wanted, "5.21/stable", asked=True) == expected


# --- the quorum rules ----------------------------------------------------------------------


def test_a_round_starts_when_every_member_is_up() -> None:
    members = [Member("node-a"), Member("node-b"), Member("node-c", evacuated=True)]
    assert refusal(members, OWNERS, Round(1, "6/stable")) is None


def test_a_member_offline_refuses_the_round_and_names_it() -> None:
    members = [Member("node-a"), Member("node-b"), Member("node-c", online=False)]
    assert refusal(members, OWNERS, Round(2, "6/stable")) == (
        "not starting refresh round 2 to 6/stable: node-c (lxd/2) is offline: bring it "
        "back, or remove the unit. A refresh restarts LXD on every member, and refreshed "
        "members wait until all run the same version"
    )


def test_a_database_without_its_majority_refuses_the_round() -> None:
    members = [Member("node-a"), Member("node-b", online=False), Member("node-c", online=False)]
    why = refusal(members, OWNERS, Round(1, ""))
    assert why is not None
    assert why.startswith(
        "not starting refresh round 1 to the tracked channel: the cluster database has "
        "lost its quorum: node-b (lxd/1), node-c (lxd/2) offline"
    )


def test_an_offline_standby_also_refuses_the_round() -> None:
    """Not a voter, but its LXD would lag behind and the others would wait for it."""
    members = [Member(f"n{i}") for i in range(3)] + [
        Member("n3", online=False, roles=["database-standby"])
    ]
    why = refusal(members, {}, Round(1, "6/stable"))
    assert why is not None and "n3 is offline" in why


# --- who still refreshes ----------------------------------------------------------------


def test_due_until_the_bag_says_the_round() -> None:
    assert snap_refresh.due(Round(2), {"refresh-done": "1"})
    assert snap_refresh.due(Round(2), {})
    assert not snap_refresh.due(Round(2), {"refresh-done": "2"})
    assert not snap_refresh.due(None, {})


@pytest.mark.parametrize(
    ("snap", "lxd"),
    [("5.21.3-c5ae129", "5.21.3"), ("5.0.2", "5.0.2"), ("6.1", "6.1"), ("git-abc", "git-abc")],
)
def test_short_version_is_lxds_own(snap: str, lxd: str) -> None:
    assert snap_refresh.short_version(snap) == lxd


# --- the leader's account ----------------------------------------------------------------


def test_one_member_behind_is_named_with_those_waiting_for_it() -> None:
    bags = {
        "lxd/0": bag("5.21.3", "1"),
        "lxd/1": bag("5.21.1"),
        "lxd/2": bag("5.21.3", "1"),
    }
    assert progress(Round(1, "5.21/stable"), bags, MEMBERS) == Progress(
        "refreshing to 5.21.3: node-b still on 5.21.1, 2 members waiting for it"
    )


def test_one_failed_member_and_one_pending_member_are_named_alone() -> None:
    failed = {"lxd/0": bag("6.1", "2"), "lxd/1": bag("6.1", "1", "snapd's words")}
    assert progress(Round(2, "6/stable"), failed, MEMBERS) == Progress(
        "refresh round 2 to 6/stable: node-b (lxd/1) failed: snapd's words", blocked=True
    )
    pending = {"lxd/0": bag("6.1", "2"), "lxd/1": bag("6.1", "1")}
    found = progress(Round(2, "6/stable"), pending, MEMBERS)
    assert found is not None and found.blocked is False
    assert found.message == "refresh round 2 to 6/stable: waiting for node-b (lxd/1)"


def test_members_behind_on_different_versions_are_each_named() -> None:
    bags = {"lxd/0": bag("6.1"), "lxd/1": bag("5.21.1"), "lxd/2": bag("5.0.2")}
    assert progress(None, bags, MEMBERS) == Progress(
        "refreshing to 6.1: node-c still on 5.0.2, node-b on 5.21.1, 1 member waiting for them"
    )


def test_version_order_is_numeric() -> None:
    bags = {"lxd/0": bag("5.9"), "lxd/1": bag("5.21")}
    found = progress(None, bags, MEMBERS)
    assert found is not None and found.message.startswith("refreshing to 5.21: node-a still")


def test_a_failed_member_blocks_with_snapds_words_before_anything_else() -> None:
    bags = {
        "lxd/0": bag("5.21.3", "2"),
        "lxd/1": bag("5.21.1", "1", 'cannot refresh "lxd": download failed'),
        "lxd/2": bag("5.21.1", "1", "another error"),
    }
    assert progress(Round(2, "5.21/stable"), bags, MEMBERS) == Progress(
        'refresh round 2 to 5.21/stable: node-b (lxd/1) failed: cannot refresh "lxd": '
        "download failed (+1 more)",
        blocked=True,
    )


def test_an_error_from_an_earlier_round_is_not_this_rounds() -> None:
    bags = {"lxd/0": bag("6.1", "3"), "lxd/1": bag("6.1", "3", "old words")}
    assert progress(Round(3, "6/stable"), bags, MEMBERS) is None


def test_same_versions_with_units_not_done_wait_for_them() -> None:
    bags = {"lxd/0": bag("6.1", "4"), "lxd/1": bag("6.1", "3"), "lxd/2": bag("6.1")}
    assert progress(Round(4), bags, MEMBERS) == Progress(
        "refresh round 4 to the tracked channel: waiting for node-b (lxd/1) (+1 more)"
    )


def test_nothing_to_say_once_every_member_is_done_and_alike() -> None:
    bags = {unit: bag("6.1", "4") for unit in MEMBERS}
    assert progress(Round(4), bags, MEMBERS) is None
    assert progress(None, bags, MEMBERS) is None


def test_units_that_are_not_members_do_not_count() -> None:
    bags = {"lxd/0": bag("6.1", "1"), "lxd/5": bag("5.0.2")}
    assert progress(Round(1), bags, MEMBERS) is None
    assert progress(Round(1), {"lxd/5": bag("5.0.2")}, MEMBERS) is None
