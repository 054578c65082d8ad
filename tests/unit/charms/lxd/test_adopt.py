"""`lxd_charm.adopt` alone: the whole refusal, and the peer bag's shapes it must read or ignore.

test_migration_state.py has the adoption table and the hooks; these pin
what it leaves loose: the refusal's exact words, a `members` value that is
JSON but not a map, values that are not strings, and the order of the plain
tokens the leader deletes.
"""

from __future__ import annotations

import json

import pytest

from lxd_charm.adopt import adoption, members_of, plain_tokens
from lxd_charm.outcomes import BlockedError
from lxd_common.lxd import ExistingSetup


def test_standalone_on_a_cluster_member_is_refused_in_so_many_words() -> None:
    with pytest.raises(BlockedError) as info:
        adoption(ExistingSetup(storage_pools=("local",), cluster_member="m1"), "standalone", {})
    assert str(info.value) == (
        "LXD here is already member m1 of an LXD cluster, but mode=standalone: set "
        "mode=cluster to manage that cluster with this application, or remove the member "
        "from its cluster by hand (lxc cluster remove m1 on another member)"
    )


def test_standalone_adopts_anything_initialised_that_is_no_member() -> None:
    assert adoption(ExistingSetup(profiles=("default",)), "standalone", {"lxd/0": "m1"}) is True


def test_cluster_mode_adopts_a_member_the_map_names_under_any_unit() -> None:
    found = ExistingSetup(cluster_member="m2")
    assert adoption(found, "cluster", {"lxd/0": "m1", "lxd/5": "m2"}) is True
    assert adoption(found, "cluster", {"m2": "m1"}) is False  # a unit's name is not a member's


@pytest.mark.parametrize("value", ["[]", '"m1"', "3", "null", "{", ""])
def test_a_members_value_that_is_no_map_counts_as_none(value: str) -> None:
    assert members_of({"members": value}) == {}


def test_members_are_read_as_text_whatever_json_gave() -> None:
    assert members_of({"members": json.dumps({"lxd/0": 7, "lxd/1": "m1"})}) == {
        "lxd/0": "7",
        "lxd/1": "m1",
    }


def test_plain_tokens_are_sorted_unit_keys_with_values_that_are_no_secret_ids() -> None:
    bag = {
        "lxd/10": "eyJ0b2tlbiI6MTB9",
        "lxd/2": "eyJ0b2tlbiI6Mn0=",
        "lxd/3": "secret:abc",
        "lxd/4": "",
        "leader-joining": "lxd/0",  # no "/" in the key: not a unit's
        "version": "1.4",
    }
    assert plain_tokens(bag) == ["lxd/10", "lxd/2"]
