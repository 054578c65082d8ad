"""Juju availability zones become LXD failure domains: the charm's own code on real daemons.

Captured from LXD 5.0.2 here: a member's failure domain is created by the
first PATCH that names it (no separate step), but LXD 5.0.2 treats that
PATCH as a PUT, so it must carry the member's roles and groups too; an empty
name is refused ("Failure domain name can't be empty"). With three members
all three are database voters whatever their domains; from four on, LXD
keeps three voters and the rest standby, and it did not move roles that
were already assigned when domains changed afterwards.
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
        return {ZONE: self.zones.get(unit.number, "")}  # Juju leaves it empty without a zone


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ZonedUnits:
    units = ZonedUnits(lxd_pool, tmp_path, monkeypatch)
    units.zones = {}
    return units


def listed(units: LxdUnits) -> dict[str, tuple[str, list[str]]]:
    return {
        m.name: (m.failure_domain, m.roles)
        for m in units.daemon("lxd/0").client().cluster.members()
    }


def test_three_members_in_two_zones(lxd_units: ZonedUnits) -> None:
    lxd_units.zones = {0: "zone-a", 1: "zone-b", 2: "zone-b"}
    lxd_units.add(3)
    lxd_units.sim.settle()
    got = listed(lxd_units)
    assert {name: domain for name, (domain, _) in got.items()} == {
        "node0": "zone-a",
        "node1": "zone-b",
        "node2": "zone-b",
    }
    # Three members: LXD makes all three voters, the first one leading the database.
    assert {name: roles for name, (_, roles) in got.items()} == {
        "node0": ["database-leader", "database"],
        "node1": ["database"],
        "node2": ["database"],
    }

    # A zone Juju changes is followed at the unit's next reconcile; no zone is LXD's default.
    lxd_units.zones = {0: "zone-a", 1: "zone-c"}
    lxd_units.sim.run("lxd/1", lxd_units.sim.on.config_changed())
    lxd_units.sim.run("lxd/2", lxd_units.sim.on.config_changed())
    lxd_units.sim.settle()
    got = listed(lxd_units)
    assert got["node1"][0] == "zone-c"
    assert got["node2"][0] == "default"
    assert got["node0"][0] == "zone-a"
    assert not lxd_units.sim.failed_hooks


def test_a_fourth_member_in_a_zone_becomes_a_standby(lxd_units: ZonedUnits) -> None:
    lxd_units.zones = {0: "zone-a", 1: "zone-b", 2: "zone-b", 3: "zone-a"}
    lxd_units.add(4)
    lxd_units.sim.settle()
    got = listed(lxd_units)
    assert {name: domain for name, (domain, _) in got.items()} == {
        "node0": "zone-a",
        "node1": "zone-b",
        "node2": "zone-b",
        "node3": "zone-a",
    }
    voters = sorted(name for name, (_, roles) in got.items() if "database" in roles)
    standbys = sorted(name for name, (_, roles) in got.items() if "database-standby" in roles)
    assert len(voters) == 3 and len(standbys) == 1, got
    # The voters span both zones.
    assert {got[name][0] for name in voters} == {"zone-a", "zone-b"}
    assert not lxd_units.sim.failed_hooks
