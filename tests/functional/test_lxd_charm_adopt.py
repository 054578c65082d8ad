"""Adopting an LXD someone else initialised, on a real daemon.

The daemon is set up by hand first (a storage pool, devices on the default
profile: what `lxd init`, cloud-init or MAAS leave), then the charm is
installed on it with its default options. It must take LXD as it is:
create nothing, apply no preseed, record it as initialised, and refuse a
later `lxd-preseed` as for an LXD it initialised itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_common.lxd import ExistingSetup
from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_on


def stored_memory(state: testing.State) -> dict[str, Any]:
    return dict(state.get_stored_state("_stored", owner_path="LxdCharm").content["memory"])


def initialise_by_hand(daemon: LxdDaemon) -> None:
    """What an operator does with `lxc` before Juju sees the machine (no network:
    bridges are host-wide, and other daemons run on this machine)."""
    api = daemon.client().pylxd
    api.storage_pools.create({"name": "tank", "driver": "dir"})
    profile = api.profiles.get("default")
    profile.devices = {"root": {"type": "disk", "path": "/", "pool": "tank"}}
    profile.save()


def test_a_daemon_nobody_initialised_shows_nothing(daemon: LxdDaemon) -> None:
    # Captured from LXD 5.0.2: a fresh daemon lists the host's interfaces as
    # unmanaged networks and a default profile without devices.
    lxd = daemon.client()
    assert lxd.pylxd.networks.all(), "the host's own interfaces are listed"
    assert lxd.existing_setup() == ExistingSetup()
    assert not lxd.existing_setup().initialised


def test_a_daemon_initialised_by_hand_is_adopted(
    daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialise_by_hand(daemon)
    before = daemon.client().existing_setup()
    assert before == ExistingSetup(storage_pools=("tank",), profiles=("default",))
    ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)

    state = ctx.run(ctx.on.install(), testing.State(resources=frozenset(EMPTY_RESOURCES)))

    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    said = "adopted the existing LXD: storage pools tank; profiles with devices default"
    assert testing.MaintenanceStatus(said) in ctx.unit_status_history
    lxd = daemon.client()
    assert lxd.existing_setup() == before, "no default pool, no lxdbr0: nothing initialised"
    assert lxd.pylxd.profiles.get("default").devices == {
        "root": {"type": "disk", "path": "/", "pool": "tank"}
    }
    memory = stored_memory(state)
    assert memory["initialised"] is True
    assert memory["init_options"] == {"mode": "standalone", "lxd-preseed": ""}
    assert memory["adopted"] == "storage pools tank; profiles with devices default"

    # The next hook does not look again, and a preseed is refused as usual.
    again = ctx.run(ctx.on.config_changed(), state)
    assert again.unit_status == testing.ActiveStatus("standalone; no network listener")
    preseed = "storage_pools:\n- name: other\n  driver: dir\n"
    refused = ctx.run(
        ctx.on.config_changed(),
        testing.State(
            config={"lxd-preseed": preseed},
            resources=state.resources,
            stored_states=state.stored_states,
        ),
    )
    assert refused.unit_status.name == "blocked"
    assert "lxd-preseed" in refused.unit_status.message
    assert lxd.existing_setup() == before


def test_standalone_on_a_cluster_member_blocks_saying_what_to_do(
    daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.client().cluster.enable(daemon.name, daemon.address)
    ctx = lxd_charm_on(daemon, tmp_path, monkeypatch)

    state = ctx.run(ctx.on.install(), testing.State(resources=frozenset(EMPTY_RESOURCES)))

    assert state.unit_status == testing.BlockedStatus(
        f"LXD here is already member {daemon.name} of an LXD cluster, but mode=standalone: "
        "set mode=cluster to manage that cluster with this application, or remove the "
        f"member from its cluster by hand (lxc cluster remove {daemon.name} on another member)"
    )
    assert stored_memory(state)["initialised"] is False
    lxd = daemon.client()
    assert lxd.cluster.server_name == daemon.name, "still a member: the charm left nothing"
    assert lxd.existing_setup().storage_pools == ()
