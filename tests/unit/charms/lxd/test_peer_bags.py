"""`lxd_charm.peer_bags`: the two light reads a peer event decides from, each way they can go.

The charm-level tests (test_charm_cluster.py) reach these through whole
hooks; here each read is pinned alone against a stand-in for the model's
peer relation (an object with ``app`` and ``data``, which is all they use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lxd_charm.peer_bags import LEADER_JOINING, LEADER_TOKEN, PEER, deputy_work, holds_join_token


@dataclass(frozen=True)
class Unit:
    name: str


@dataclass
class Relation:
    app: Any
    data: dict[Any, dict[str, str]] = field(default_factory=dict)


class Model:
    """Answers `get_relation` for the peer endpoint only, recording what was asked."""

    def __init__(self, relation: Relation | None) -> None:
        self.relation = relation
        self.asked: list[str] = []

    def get_relation(self, name: str) -> Relation | None:
        self.asked.append(name)
        return self.relation if name == "cluster" else None


APP = "lxd"
ME = Unit("lxd/1")


def peer(app_bag: dict[str, str], unit_bag: dict[str, str] | None = None) -> Model:
    return Model(Relation(APP, {APP: app_bag, ME: unit_bag or {}}))


def test_the_keys_are_the_protocols() -> None:
    assert (PEER, LEADER_JOINING, LEADER_TOKEN) == ("cluster", "leader-joining", "leader-token")


@pytest.mark.parametrize("model", [Model(None), Model(Relation(None))])
def test_without_a_peer_relation_or_its_app_there_is_no_work_and_no_token(model: Model) -> None:
    assert deputy_work(model, ME) is False
    assert holds_join_token(model, ME) is False
    assert model.asked == ["cluster", "cluster"]


@pytest.mark.parametrize(
    ("app_bag", "unit_bag", "work"),
    [
        ({}, {}, False),
        ({LEADER_JOINING: "lxd/0"}, {}, True),  # a leader that is not a member yet
        ({LEADER_JOINING: ""}, {}, False),
        ({}, {LEADER_TOKEN: "secret:abc"}, True),  # this deputy's issued token to withdraw
        ({}, {LEADER_TOKEN: ""}, False),
        ({"lxd/1": "secret:x", "members": "{}"}, {"other": "x"}, False),
    ],
)
def test_a_deputy_has_work_only_for_a_joining_leader_or_its_own_token(
    app_bag: dict[str, str], unit_bag: dict[str, str], work: bool
) -> None:
    assert deputy_work(peer(app_bag, unit_bag), ME) is work


@pytest.mark.parametrize(
    ("app_bag", "holds"),
    [
        ({}, False),
        ({"lxd/1": "secret:abc"}, True),  # a joiner's token, under its name
        ({"lxd/1": ""}, False),
        ({"lxd/2": "secret:abc"}, False),  # another unit's
        ({LEADER_JOINING: "lxd/1"}, True),  # this unit is the leader its deputy serves
        ({LEADER_JOINING: "lxd/0"}, False),
    ],
)
def test_a_join_token_is_held_under_the_units_name_or_as_the_joining_leader(
    app_bag: dict[str, str], holds: bool
) -> None:
    assert holds_join_token(peer(app_bag, {LEADER_TOKEN: "secret:t"}), ME) is holds
