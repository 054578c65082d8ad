"""Unit tests of lxd_charm.maintenance: what the evacuate/restore actions decide and report.

The fake cluster behaves as LXD 5.0.2 did on real daemons (see
tests/functional/test_lxd_charm_maintenance.py): instances move to members
that are up, those whose ``cluster.evacuate`` is ``stop`` stay, stopped.
"""

from __future__ import annotations

import dataclasses

import pytest

from lxd_charm import maintenance
from lxd_charm.actions import ActionError
from lxd_common.lxd import Placement
from tests.harness.fake_lxd import FakeLxd

OWNERS = {"m1": "lxd/0", "m2": "lxd/1", "m3": "lxd/2"}


def cluster_of(count: int) -> FakeLxd:
    """Members m1..m<count>, every one a database voter, as LXD has three members."""
    lxd = FakeLxd()
    lxd.cluster.enable("m1", "10.0.0.1:8443")
    database = lxd.cluster._database()
    for n in range(2, count + 1):
        lxd.cluster._add_member(database, f"m{n}", f"10.0.0.{n}:8443", ["database"])
    lxd.cluster.name = "m1"  # one daemon answers for all: m1's
    return lxd


def test_moves_name_where_each_instance_went() -> None:
    before = {
        "a": Placement("m2", "Running"),
        "b": Placement("m2", "Stopped"),
        "c": Placement("m2", "Running"),
        "x": Placement("m1", "Running"),
    }
    after = {
        "a": Placement("m1", "Running"),
        "b": Placement("m3", "Stopped"),
        "c": Placement("m2", "Stopped"),
        "x": Placement("m1", "Running"),
    }
    assert maintenance.moves("m2", before, after) == {
        "a": "m2 -> m1 (Running)",
        "b": "m2 -> m3 (Stopped)",
        "c": "stays on m2 (Stopped)",
    }


def test_moves_on_restore_report_what_came_back_and_what_is_gone() -> None:
    before = {"a": Placement("m1", "Running"), "gone": Placement("m2", "Stopped")}
    after = {"a": Placement("m2", "Running")}
    assert maintenance.moves("m2", before, after) == {
        "a": "m1 -> m2 (Running)",
        "gone": "gone",
    }


def test_evacuate_moves_instances_and_keeps_those_set_to_stop() -> None:
    lxd = cluster_of(3)
    lxd.cluster.launch("web", target="m2")
    lxd.cluster.launch("pinned", target="m2")
    lxd.cluster._database().stay_on_evacuation.add(("default", "pinned"))
    got = maintenance.evacuate(lxd, "m2", "auto", OWNERS)  # type: ignore[arg-type]
    assert got["state"] == "evacuated"
    assert got["instances"] == "pinned: stays on m2 (Stopped)\nweb: m2 -> m3 (Running)"
    assert lxd.cluster.member("m2").evacuated


def test_evacuate_with_no_instances_says_none() -> None:
    lxd = cluster_of(3)
    got = maintenance.evacuate(lxd, "m3", "auto", OWNERS)  # type: ignore[arg-type]
    assert got == {
        "member": "m3",
        "mode": "auto",
        "state": "evacuated",
        "instances": "none",
        "count": "0",
    }


def test_evacuating_an_evacuated_member_changes_nothing() -> None:
    lxd = cluster_of(3)
    lxd.cluster.evacuate("m2")
    calls = lxd.calls
    got = maintenance.evacuate(lxd, "m2", "auto", OWNERS)  # type: ignore[arg-type]
    assert got["state"] == "already evacuated: run restore to undo"
    assert lxd.calls == calls + 1  # the listing only


def test_an_offline_member_cannot_be_evacuated() -> None:
    lxd = cluster_of(3)
    lxd.cluster.set_status("m2", "Offline")
    with pytest.raises(ActionError, match="m2 is offline: LXD can only evacuate"):
        maintenance.evacuate(lxd, "m2", "auto", OWNERS)  # type: ignore[arg-type]


def test_a_name_that_is_not_a_member_cannot_be_evacuated() -> None:
    lxd = cluster_of(3)
    with pytest.raises(ActionError, match="m9 is not a member of the cluster"):
        maintenance.evacuate(lxd, "m9", "auto", OWNERS)  # type: ignore[arg-type]


def test_the_quorum_rule_refuses_before_lxd_is_asked_to_evacuate() -> None:
    lxd = cluster_of(3)
    lxd.cluster.launch("web", target="m3")
    lxd.cluster.evacuate("m2")
    with pytest.raises(ActionError, match=r"not evacuating m3 \(lxd/2\): m2 \(lxd/1\)"):
        maintenance.evacuate(lxd, "m3", "auto", OWNERS)  # type: ignore[arg-type]
    assert lxd.cluster.instances_on("m3") == ["web"]


@pytest.mark.parametrize("mode", ["stop", "migrate"])
def test_modes_are_refused_where_lxd_ignores_them(mode: str) -> None:
    lxd = cluster_of(3)
    lxd.cluster.launch("web", target="m2")
    with pytest.raises(ActionError, match=f"mode={mode} cannot be honoured"):
        maintenance.evacuate(lxd, "m2", mode, OWNERS)  # type: ignore[arg-type]
    assert not lxd.cluster.member("m2").evacuated


def test_restore_brings_instances_back() -> None:
    lxd = cluster_of(3)
    lxd.cluster.launch("web", target="m2")
    lxd.cluster.evacuate("m2")
    got = maintenance.restore(lxd, "m2")  # type: ignore[arg-type]
    assert got["state"] == "restored"
    assert got["instances"] == "web: m1 -> m2 (Running)"
    assert lxd.cluster.member("m2").online


def test_restore_of_a_member_that_is_not_evacuated_does_nothing() -> None:
    lxd = cluster_of(3)
    got = maintenance.restore(lxd, "m2")  # type: ignore[arg-type]
    assert got["state"] == "not evacuated: nothing to restore"


def test_restore_of_a_name_that_is_not_a_member_fails() -> None:
    with pytest.raises(ActionError, match="m9 is not a member"):
        maintenance.restore(cluster_of(2), "m9")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["auto", "stop", "migrate"])
def test_params_take_lxds_modes(mode: str) -> None:
    assert maintenance.EvacuateParams(mode=mode).mode == mode


@pytest.mark.parametrize("mode", ["", "live", "AUTO"])
def test_params_refuse_other_modes(mode: str) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        maintenance.EvacuateParams(mode=mode)


def test_default_mode_is_auto() -> None:
    assert dataclasses.asdict(maintenance.EvacuateParams()) == {"mode": "auto"}
