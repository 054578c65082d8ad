"""An LXD cluster formed, grown and shrunk by Juju on a real controller.

One scenario on one model, its steps in order: ``bundles/cluster.yaml`` (three
units, ``mode=cluster``) with the charms packed here forms one cluster whose
members talk on their `cluster` space address and serve clients on their
`https` space address, each with its `default` pool on its Juju `local`
block device; ``juju add-unit`` joins a fourth member; ``juju remove-unit``
takes one out; and a member still holding an instance is refused removal
(the leader says which and why) until the instance is gone.

``LXD_TEST_CLUSTER_SPACE`` and ``LXD_TEST_HTTPS_SPACE`` (with ``..._SUBNET``
to create them) bind the endpoints to other spaces, so the test shows the
addresses follow the bindings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.integration.helpers import (
    DEPLOY_TIMEOUT,
    Juju,
    bundle_for_test,
    host_port,
    in_space,
)

CLUSTER_SPACE = os.environ.get("LXD_TEST_CLUSTER_SPACE")
HTTPS_SPACE = os.environ.get("LXD_TEST_HTTPS_SPACE")
APP = "lxd"
HELD = "held-by-integration-test"


async def _members(juju: Juju) -> dict[str, dict[str, Any]]:
    """The cluster's members by name, as the leader's LXD lists them."""
    leader = await juju.leader(APP)
    members = await juju.lxc_query(leader, "/1.0/cluster/members?recursion=1")
    return {m["server_name"]: m for m in members}


async def _member_of(juju: Juju, unit: str) -> str:
    """The cluster member name of a unit's LXD."""
    server = await juju.lxc_query(unit, "/1.0")
    return str(server["environment"]["server_name"])


async def _online_members(juju: Juju) -> set[str]:
    return {name for name, m in (await _members(juju)).items() if m["status"] == "Online"}


async def _members_are_the_units(juju: Juju) -> bool:
    """True when every unit is an online member, and no one else is a member."""
    expected = {await _member_of(juju, unit) for unit in juju.units(APP)}
    members = await _members(juju)
    return set(members) == expected and all(m["status"] == "Online" for m in members.values())


async def test_deploy_cluster_bundle(juju: Juju, charm_files: dict[str, Path]) -> None:
    bindings = await juju.space_bindings("cluster", "https")
    await juju.deploy_bundle(bundle_for_test("cluster", charm_files, bindings=bindings))
    await juju.settle(APP, timeout=DEPLOY_TIMEOUT, wait_for_exact_units=3)


async def test_three_units_form_one_cluster(juju: Juju) -> None:
    assert len(juju.units(APP)) == 3
    assert await _members_are_the_units(juju)
    leader = await juju.leader(APP)
    _, message = juju.status_message(leader)
    assert "3" in message, message  # the leader counts the members online


async def test_members_use_the_bound_space_addresses(juju: Juju) -> None:
    members = await _members(juju)
    spaces = await juju.spaces() if (CLUSTER_SPACE or HTTPS_SPACE) else {}
    for unit in juju.units(APP):
        member = members[await _member_of(juju, unit)]
        cluster_address = await juju.bind_address(unit, "cluster")
        assert urlsplit(member["url"]).netloc == host_port(cluster_address, 8443)
        https_address = await juju.bind_address(unit, "https")
        server = await juju.lxc_query(unit, "/1.0")
        assert server["config"]["core.https_address"] == host_port(https_address, 8443)
        if CLUSTER_SPACE:
            assert in_space(cluster_address, spaces[CLUSTER_SPACE]), (unit, cluster_address)
        if HTTPS_SPACE:
            assert in_space(https_address, spaces[HTTPS_SPACE]), (unit, https_address)


async def test_each_member_pools_its_juju_block_device(juju: Juju) -> None:
    for unit in juju.units(APP):
        member = await _member_of(juju, unit)
        device = await juju.storage_location(unit, "local")
        size = int(await juju.exec(unit, f"lsblk --bytes --nodeps --noheadings -o SIZE {device}"))
        pool = await juju.lxc_query(unit, f"/1.0/storage-pools/default?target={member}")
        assert pool["driver"] == "zfs"
        resources = await juju.lxc_query(
            unit, f"/1.0/storage-pools/default/resources?target={member}"
        )
        # The pool is as big as the Juju volume (less ZFS's overhead), not
        # as big as the root disk it would have used without one.
        assert 0.8 * size <= resources["space"]["total"] <= size, (unit, device, resources)


async def test_add_unit_joins_the_cluster(juju: Juju) -> None:
    await juju.model.applications[APP].add_unit(count=1)
    await juju.settle(APP, timeout=DEPLOY_TIMEOUT, wait_for_exact_units=4)
    await juju.wait_until("four online members", _members_are_the_units)
    assert len(await _online_members(juju)) == 4


async def test_remove_unit_leaves_the_cluster(juju: Juju) -> None:
    leader = await juju.leader(APP)
    leaving = next(u for u in reversed(juju.units(APP)) if u != leader)
    member = await _member_of(juju, leaving)
    await juju.model.destroy_unit(leaving)
    # Waits for the unit to be gone from the model as well: until then it
    # still counts among the units the members must match.
    await juju.wait_until(f"{member} gone from the cluster", _members_are_the_units)
    assert member not in await _members(juju)
    assert leaving not in juju.units(APP)
    await juju.settle(APP)


async def test_removal_of_a_member_with_an_instance_is_refused(juju: Juju) -> None:
    leader = await juju.leader(APP)
    holding = next(u for u in juju.units(APP) if u != leader)
    member = await _member_of(juju, holding)
    # An empty container needs no image, so no image server either.
    await juju.lxc(leader, "init", "--empty", HELD, "--target", member)

    await juju.model.destroy_unit(holding)

    async def refused() -> bool:
        status, message = juju.status_message(leader)
        return status == "blocked" and member in message

    await juju.wait_until(f"the leader refusing to remove {member}", refused)
    assert member in await _members(juju), "the member must stay until its instance is gone"
    instance = await juju.lxc_query(leader, f"/1.0/instances/{HELD}")
    assert instance["location"] == member, "the instance must not be touched"

    await juju.lxc(leader, "delete", HELD)
    await juju.wait_until(f"{member} removed once empty", _members_are_the_units)
    assert member not in await _members(juju)
    assert holding not in juju.units(APP)
    await juju.settle(APP)
