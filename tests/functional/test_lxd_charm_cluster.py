"""Cluster mode: the charms' own code forms, grows and shrinks real LXD clusters.

Each unit is simulated (`juju_sim`: Juju's peer-relation and secret rules over
ops.testing) and drives its own real LXD daemon on its own loopback address.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from ops import testing

from lxd_common.certs import generate_client_certificate
from lxd_common.interfaces.lxd_https import PROVIDER_SCHEMA, ServerInfo
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LxdUnits:
    return LxdUnits(lxd_pool, tmp_path, monkeypatch)


def members(units: LxdUnits, unit: str = "lxd/0") -> list[str]:
    return sorted(m.name for m in units.daemon(unit).client().cluster.members())


def statuses(units: LxdUnits) -> dict[str, tuple[str, str]]:
    return {
        name: (unit.state.unit_status.name, unit.state.unit_status.message)
        for name, unit in units.sim.units.items()
    }


def test_three_units_form_a_cluster(lxd_units: LxdUnits) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    lxd_units.assert_formed(3)
    app = lxd_units.sim.app_data
    assert not [key for key in app if "/" in key], "every join token was cleaned up"
    # Only the leader counts: the others skip peer events, so their count would go stale.
    assert statuses(lxd_units)["lxd/2"][1].startswith("cluster: member node2; cluster on ")
    # No join token ever went into relation data.
    everything = json.dumps([lxd_units.sim.app_data, lxd_units.sim.unit_data])
    assert 'secret":' not in everything and "eyJ" not in everything


def token_rounds(units: LxdUnits, since: int = 0) -> list[tuple[str, str]]:
    """The hooks, from hook number ``since``, in which the leader added join-token secrets."""
    rounds = sorted({hook for hook, owner in units.sim.secrets_added if owner == "app"})
    return [units.sim.hooks[hook] for hook in rounds if hook >= since]


def test_scale_up_to_five_then_down_to_three(lxd_units: LxdUnits) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    # Units that arrive together get their tokens in one leader hook (planned units).
    assert [unit for unit, _ in token_rounds(lxd_units)] == ["lxd/0"]
    before = len(lxd_units.sim.hooks)
    lxd_units.add(2)
    lxd_units.sim.settle()
    assert members(lxd_units) == ["node0", "node1", "node2", "node3", "node4"]
    assert [unit for unit, _ in token_rounds(lxd_units, since=before)] == ["lxd/0"]
    lxd_units.sim.remove_unit("lxd/4")
    lxd_units.sim.remove_unit("lxd/3")
    lxd_units.sim.settle()
    assert members(lxd_units) == ["node0", "node1", "node2"]
    assert set(json.loads(lxd_units.sim.app_data["members"])) == {"lxd/0", "lxd/1", "lxd/2"}


def test_removal_is_refused_while_an_instance_lives_on_the_member(
    lxd_units: LxdUnits, busybox_image: Path
) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    leader = lxd_units.daemon("lxd/0")
    leader.import_image(busybox_image)
    leader.lxc("launch", "busybox", "precious", "--target", "node2")

    lxd_units.sim.remove_unit("lxd/2")
    lxd_units.sim.settle()
    status, message = statuses(lxd_units)["lxd/0"]
    assert status == "blocked"
    assert "lxd/2" in message and "node2" in message and "precious" in message
    assert members(lxd_units) == ["node0", "node1", "node2"]
    assert leader.client().pylxd.instances.get("precious").status == "Running"

    leader.lxc("stop", "precious", "--force")
    leader.lxc("move", "precious", "--target", "node0")
    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert members(lxd_units) == ["node0", "node1"]
    assert statuses(lxd_units)["lxd/0"][0] == "active"


def test_a_new_leader_finishes_a_join(lxd_units: LxdUnits) -> None:
    lxd_units.add(2)
    lxd_units.sim.settle()
    lxd_units.add(1)
    lxd_units.sim.set_leader("lxd/1")
    lxd_units.sim.settle()
    assert members(lxd_units, "lxd/1") == ["node0", "node1", "node2"]
    assert statuses(lxd_units)["lxd/2"][0] == "active"


def test_a_leader_that_is_not_a_member_joins_through_a_deputy(lxd_units: LxdUnits) -> None:
    """Leadership lands on a unit before any token was issued for it.

    It cannot issue tokens without a member's LXD, so the lowest-numbered
    member issues its token (a secret of its own, granted to the leader),
    then withdraws it once the leader has joined.
    """
    lxd_units.add(2)
    lxd_units.sim.settle()
    lxd_units.add(1)
    lxd_units.sim.set_leader("lxd/2")
    lxd_units.sim.settle()
    assert members(lxd_units, "lxd/2") == ["node0", "node1", "node2"]
    app = lxd_units.sim.app_data
    assert json.loads(app["members"]) == {"lxd/0": "node0", "lxd/1": "node1", "lxd/2": "node2"}
    assert "leader-joining" not in app
    assert all("leader-token" not in bag for bag in lxd_units.sim.unit_data.values())
    assert statuses(lxd_units)["lxd/2"][0] == "active"
    assert statuses(lxd_units)["lxd/2"][1].startswith("cluster: 3/3 members online, 3 units")
    # The new leader leads: the next unit joins through it.
    lxd_units.add(1)
    lxd_units.sim.settle()
    assert members(lxd_units, "lxd/3") == ["node0", "node1", "node2", "node3"]


def test_a_hostname_collision_is_refused_and_named(lxd_units: LxdUnits) -> None:
    lxd_units.add(2)
    lxd_units.sim.settle()
    lxd_units.add(1, hostname="node1")
    lxd_units.sim.settle()
    status, message = statuses(lxd_units)["lxd/0"]
    assert status == "blocked"
    assert "lxd/2 wants to join as 'node1'" in message
    assert members(lxd_units) == ["node0", "node1"]
    assert statuses(lxd_units)["lxd/2"] == (
        "waiting",
        "waiting for the leader to issue a join token",
    )


def test_https_relation_on_a_cluster_trusts_on_every_member(lxd_units: LxdUnits) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    pair = generate_client_certificate("cluster-client")
    relation = testing.Relation(
        "https",
        remote_app_name="ci",
        remote_units_data={0: {"version": "1.0", "certificate": pair.certificate}},
    )
    leader = lxd_units.sim.units["lxd/0"]
    leader.state = replace(leader.state, relations=frozenset({*leader.state.relations, relation}))
    lxd_units.sim.run("lxd/0", lxd_units.sim.on.relation_changed(relation, remote_unit=0))

    answer = lxd_units.sim.units["lxd/0"].state.get_relation(relation.id).local_app_data
    jsonschema.validate(dict(answer), PROVIDER_SCHEMA)
    info = ServerInfo.from_databag(answer)
    assert info is not None
    assert sorted(info.addresses) == sorted(d.address for d in lxd_units.daemons.values())
    for address in info.addresses:
        with LxdClient.remote(address, pair, info.certificate) as remote:
            remote.require_trusted()

    # Leadership moves; the new leader removes what the old one trusted.
    lxd_units.sim.set_leader("lxd/1")
    lxd_units.sim.settle()
    new_leader = lxd_units.sim.units["lxd/1"]
    new_leader.state = replace(
        new_leader.state, relations=frozenset({*new_leader.state.relations, relation})
    )
    lxd_units.sim.run("lxd/1", lxd_units.sim.on.relation_broken(relation))
    for address in info.addresses:
        with LxdClient.remote(address, pair, info.certificate) as remote:
            assert not remote.trusted


def test_removing_the_leader_unit_removes_its_member(lxd_units: LxdUnits) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    lxd_units.sim.remove_unit("lxd/0")
    lxd_units.sim.settle()
    assert members(lxd_units, "lxd/1") == ["node1", "node2"]
    assert set(json.loads(lxd_units.sim.app_data["members"])) == {"lxd/1", "lxd/2"}
