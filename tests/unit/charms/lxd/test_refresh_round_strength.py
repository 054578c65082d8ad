"""Refresh rounds at their edges: the action's refusals and answers, what is published.

test_refresh_round.py walks the rounds through; these pin the branches a
wrong comparison or a lost check would change without that walk noticing
(found by `tox -e mutation -- lxd_charm/refresh_round.py`).
"""

from __future__ import annotations

from typing import Any

import pytest
from ops import testing

from lxd_common.errors import SnapError
from tests.harness.databags import local_unit_data
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim

from .test_refresh_round import (  # the rounds' simulator and its helpers
    EMPTY_RESOURCES,
    Machine,
    formed,
    refresh,
    sim,  # noqa: F401 (a fixture)
)


def test_the_action_waits_while_the_leader_is_not_a_member_yet(sim: Sim) -> None:  # noqa: F811
    sim.place_unit(None, machine=Machine("node-a", "10.0.0.1"))  # no hook has run yet
    with pytest.raises(testing.ActionFailed) as info:
        sim.run("lxd/0", sim.on.action("refresh"))
    assert info.value.message == "the leader is not a cluster member yet: run it once it is"
    assert "refresh-round" not in sim.app_data


def test_the_action_waits_while_lxds_snap_is_not_there(sim: Sim) -> None:  # noqa: F811
    machines = formed(sim)
    del machines[0].snapd.snaps["lxd"]  # removed behind the charm's back
    with pytest.raises(testing.ActionFailed) as info:
        sim.run("lxd/0", sim.on.action("refresh"))
    assert info.value.message == "waiting for the cluster peer relation and LXD's snap"
    assert "refresh-round" not in sim.app_data


def test_the_action_says_tracked_when_the_round_keeps_each_members_channel(sim: Sim) -> None:  # noqa: F811
    formed(sim)
    sim.config_changed(**{"snap-channel": "auto"})
    sim.settle()
    got = refresh(sim, 0)
    assert got["channel"] == "tracked"
    assert "refresh-channel" not in sim.app_data  # "" is no value in Juju: the key goes


def test_snapd_not_answering_blocks_the_round_saying_so(sim: Sim) -> None:  # noqa: F811
    machines = formed(sim)
    machines[0].snapd.fail_on("installed", SnapError("snapd said no"))
    with pytest.raises(testing.ActionFailed) as info:
        sim.run("lxd/0", sim.on.action("refresh"))
    assert info.value.message == "cannot ask snapd about LXD: snapd said no"


def test_a_standalone_unit_publishes_no_refresh_keys(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    peer = testing.PeerRelation("cluster")
    state = ctx.run(ctx.on.install(), testing.State(relations={peer}, resources=EMPTY_RESOURCES))
    bag = local_unit_data(state.get_relation(peer.id))
    assert "lxd-version" not in bag and "refresh-done" not in bag
    assert snapd.snaps["lxd"].version  # installed, so a version was there to publish


def test_a_member_refreshed_cleanly_carries_no_error_key(sim: Sim) -> None:  # noqa: F811
    formed(sim)
    sim.config_changed(**{"snap-channel": "6/stable"})
    sim.settle()
    for unit in range(3):
        assert sim.unit_data[f"lxd/{unit}"]["refresh-done"] == "1"
        assert "refresh-error" not in sim.unit_data[f"lxd/{unit}"], unit


def test_a_unit_that_joins_later_carries_no_error_key(sim: Sim) -> None:  # noqa: F811
    formed(sim)
    sim.config_changed(**{"snap-channel": "6/stable"})
    sim.settle()
    sim.place_unit(None, machine=Machine("node-d", "10.0.0.4"))
    sim.run_hook("lxd/3", "install")
    sim.settle()
    assert sim.unit_data["lxd/3"]["refresh-done"] == "1"
    assert "refresh-error" not in sim.unit_data["lxd/3"]
