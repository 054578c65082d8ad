"""The cluster peer protocol's decisions, as pure functions (no Juju, no LXD)."""

from __future__ import annotations

import json

import pytest

from lxd_charm.cluster import (
    AppView,
    ProtocolError,
    Waiting,
    compatible,
    member_config_for,
    plan_joiner,
    plan_leader,
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
    assert bag["version"] == "1.0" and bag["lxd/1"] == "secret:abc"
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
    assert plan.issue == [Waiting("lxd/1", "b")]


def test_a_confirmed_join_records_the_member_and_drops_the_token() -> None:
    app = AppView(members={"lxd/0": "a"}, tokens={"lxd/1": "secret:1"})
    plan = plan_leader(app, {"lxd/1": announce("b", joined="b")}, {"a", "b"})
    assert plan.confirm == {"lxd/1": "b"}
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
    assert plan_joiner(AppView(), "lxd/1", {}).action == "wait"
    app = AppView(tokens={"lxd/1": "secret:1"})
    assert plan_joiner(app, "lxd/1", {}).secret_id == "secret:1"
    assert plan_joiner(app, "lxd/1", {"expired-token": "secret:1"}).action == "wait"


def test_member_config_uses_this_units_block_device() -> None:
    config = [
        {"entity": "storage-pool", "name": "default", "key": "source", "value": ""},
        {"entity": "storage-pool", "name": "default", "key": "zfs.pool_name", "value": "default"},
    ]
    assert member_config_for(config, "/dev/vdb")[0]["value"] == "/dev/vdb"
    assert member_config_for(config, "/dev/vdb")[1]["value"] == "default"
    assert member_config_for(config, None)[0]["value"] == ""
    assert json.dumps(member_config_for(config, None))
