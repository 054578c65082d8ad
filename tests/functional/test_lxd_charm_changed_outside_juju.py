"""What operators change behind the charm's back: the charm's own code on real daemons.

Captured from LXD 5.0.2 here:

- A member's name is the ``server_name`` it bootstrapped or joined with,
  and ``GET /1.0`` keeps answering it (``environment.server_name``) whatever
  the machine is called afterwards, so the hostname no longer finds the
  member. The charm names its member as LXD does once it is one: its
  failure domain is still tended, its actions aim at it, it leaves the
  cluster when its unit goes, and the leader's status keeps its address.
- ``lxc cluster remove`` run on another member resets the removed one to a
  standalone daemon at once: ``server_clustered`` false, ``server_name``
  the host's name, an empty member listing, its ``cluster.https_address``
  kept. Its unit blocks and says how to replace it; the way out it names
  (remove the unit, add one) works, the leader's unit included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.juju_sim import SimUnit
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits

ZONE = "JUJU_AVAILABILITY_ZONE"


class ZonedUnits(LxdUnits):
    """LXD units, each with the availability zone Juju would put in its hook environment."""

    zones: dict[int, str]

    def hook_env(self, unit: SimUnit) -> dict[str, str]:
        return {ZONE: self.zones.get(unit.number, "")}


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ZonedUnits:
    units = ZonedUnits(lxd_pool, tmp_path, monkeypatch)
    units.zones = {}
    return units


def domains(units: LxdUnits) -> dict[str, str]:
    return {m.name: m.failure_domain for m in units.daemon("lxd/0").client().cluster.members()}


def message(units: LxdUnits, unit: str) -> tuple[str, str]:
    got = units.sim.units[unit].state.unit_status
    return got.name, got.message


def test_renamed_machines_keep_their_members_under_the_names_lxd_gave_them(
    lxd_units: ZonedUnits,
) -> None:
    lxd_units.zones = {0: "zone-a", 1: "zone-a", 2: "zone-a"}
    lxd_units.add(3)
    lxd_units.sim.settle()
    lxd_units.assert_formed(3)
    lxd_units.tune("lxd/0", hostname="renamed0")
    lxd_units.tune("lxd/1", hostname="renamed1")
    # What LXD itself says, whatever the machine is called: the name it joined with.
    assert lxd_units.daemon("lxd/1").client().member_name_at_connect == "node1"

    lxd_units.zones = {0: "zone-b", 1: "zone-c", 2: "zone-a"}
    lxd_units.sim.run("lxd/1", lxd_units.sim.on.config_changed())
    lxd_units.sim.run("lxd/0", lxd_units.sim.on.config_changed())
    lxd_units.sim.settle()
    assert domains(lxd_units) == {"node0": "zone-b", "node1": "zone-c", "node2": "zone-a"}
    assert lxd_units.sim.unit_data["lxd/1"]["hostname"] == "node1"
    name, said = message(lxd_units, "lxd/1")
    assert name == "active" and said.startswith("cluster: member node1; cluster on "), said
    address = lxd_units.daemon("lxd/0").address
    lxd_units.sim.run("lxd/0", lxd_units.sim.on.update_status())
    assert message(lxd_units, "lxd/0") == (
        "active",
        f"cluster: 3/3 members online, 3 units; cluster on {address}",
    )

    evacuated = lxd_units.sim.run("lxd/1", lxd_units.sim.on.action("evacuate"))
    assert evacuated is not None and evacuated["member"] == "node1", evacuated
    members = {m.name: m for m in lxd_units.daemon("lxd/0").client().cluster.members()}
    assert members["node1"].status == "Evacuated"
    restored = lxd_units.sim.run("lxd/1", lxd_units.sim.on.action("restore"))
    assert restored is not None and restored["state"] == "restored", restored

    lxd_units.sim.remove_unit("lxd/1")
    lxd_units.sim.settle()
    listed = sorted(m.name for m in lxd_units.daemon("lxd/0").client().cluster.members())
    assert listed == ["node0", "node2"]
    assert not lxd_units.sim.failed_hooks


def test_a_leader_removed_by_hand_blocks_and_the_way_out_it_names_works(
    lxd_units: ZonedUnits,
) -> None:
    lxd_units.add(3)
    lxd_units.sim.settle()
    lxd_units.assert_formed(3)
    lxd_units.daemon("lxd/1").lxc("cluster", "remove", "node0")
    lxd_units.sim.run("lxd/0", lxd_units.sim.on.update_status())
    assert message(lxd_units, "lxd/0") == (
        "blocked",
        "LXD here is no longer a cluster member (it was node0), removed outside Juju: "
        "`juju remove-unit lxd/0`, then `juju add-unit lxd`",
    )
    left = lxd_units.daemon("lxd/0").client().info_at_connect
    assert not left["environment"]["server_clustered"]  # what LXD 5.0.2 did to it

    lxd_units.sim.remove_unit("lxd/0")
    lxd_units.sim.settle()
    lxd_units.add(1)
    lxd_units.sim.settle()
    listed = sorted(m.name for m in lxd_units.daemon("lxd/1").client().cluster.members())
    assert listed == ["node1", "node2", "node3"]
    for unit in ("lxd/1", "lxd/2", "lxd/3"):
        assert message(lxd_units, unit)[0] == "active", (unit, message(lxd_units, unit))
    assert message(lxd_units, "lxd/1")[1].startswith("cluster: 3/3 members online, 3 units")
    assert not lxd_units.sim.failed_hooks
