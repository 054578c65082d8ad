"""An LXD cluster formed, grown and shrunk by Juju on a real controller.

One scenario on the module's model (pytest-operator's ``ops_test``), its
steps in order: ``bundles/cluster.yaml`` (three units, ``mode=cluster``) with
the charms packed here forms one cluster whose members talk on their
`cluster` space address and serve clients on their `https` space address,
each with its `default` pool on its Juju `local` block device; ``juju
add-unit`` joins a fourth member; ``juju remove-unit`` takes one out; and a
member still holding an instance is refused removal (the leader says which
and why) until the instance is gone.

``LXD_TEST_CLUSTER_SPACE`` and ``LXD_TEST_HTTPS_SPACE`` (with ``..._SUBNET``
to create them) bind the endpoints to other spaces, so the test shows the
addresses follow the bindings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pytest_operator.plugin import OpsTest

from tests.integration.helpers import (
    DEPLOY_TIMEOUT,
    bind_address,
    bundle_for_test,
    deploy_bundle,
    host_port,
    in_space,
    leader,
    lxc,
    lxc_query,
    model,
    run_on_unit,
    settle,
    space_bindings,
    spaces,
    status_message,
    storage_location,
    units,
    wait_until,
)

pytestmark = pytest.mark.abort_on_fail  # the steps build on each other

CLUSTER_SPACE = os.environ.get("LXD_TEST_CLUSTER_SPACE")
HTTPS_SPACE = os.environ.get("LXD_TEST_HTTPS_SPACE")
APP = "lxd"
HELD = "held-by-integration-test"


async def _members(ops_test: OpsTest) -> dict[str, dict[str, Any]]:
    """The cluster's members by name, as the leader's LXD lists them."""
    members = await lxc_query(
        ops_test, await leader(ops_test, APP), "/1.0/cluster/members?recursion=1"
    )
    return {m["server_name"]: m for m in members}


async def _member_of(ops_test: OpsTest, unit: str) -> str:
    """The cluster member name of a unit's LXD."""
    server = await lxc_query(ops_test, unit, "/1.0")
    return str(server["environment"]["server_name"])


async def _online_members(ops_test: OpsTest) -> set[str]:
    return {name for name, m in (await _members(ops_test)).items() if m["status"] == "Online"}


async def _members_are_the_units(ops_test: OpsTest) -> bool:
    """True when every unit is an online member, and no one else is a member."""
    expected = {await _member_of(ops_test, unit) for unit in units(ops_test, APP)}
    members = await _members(ops_test)
    return set(members) == expected and all(m["status"] == "Online" for m in members.values())


async def test_deploy_cluster_bundle(ops_test: OpsTest, charm_files: dict[str, Path]) -> None:
    bindings = await space_bindings(ops_test, "cluster", "https")
    await deploy_bundle(ops_test, bundle_for_test("cluster", charm_files, bindings=bindings))
    await settle(ops_test, APP, timeout=DEPLOY_TIMEOUT, wait_for_exact_units=3)


async def test_three_units_form_one_cluster(ops_test: OpsTest) -> None:
    assert len(units(ops_test, APP)) == 3
    assert await _members_are_the_units(ops_test)
    _, message = status_message(ops_test, await leader(ops_test, APP))
    assert "3" in message, message  # the leader counts the members online


async def test_members_use_the_bound_space_addresses(ops_test: OpsTest) -> None:
    members = await _members(ops_test)
    subnets = await spaces(ops_test) if (CLUSTER_SPACE or HTTPS_SPACE) else {}
    for unit in units(ops_test, APP):
        member = members[await _member_of(ops_test, unit)]
        cluster_address = await bind_address(ops_test, unit, "cluster")
        assert urlsplit(member["url"]).netloc == host_port(cluster_address, 8443)
        https_address = await bind_address(ops_test, unit, "https")
        server = await lxc_query(ops_test, unit, "/1.0")
        assert server["config"]["core.https_address"] == host_port(https_address, 8443)
        if CLUSTER_SPACE:
            assert in_space(cluster_address, subnets[CLUSTER_SPACE]), (unit, cluster_address)
        if HTTPS_SPACE:
            assert in_space(https_address, subnets[HTTPS_SPACE]), (unit, https_address)


async def test_each_member_pools_its_juju_block_device(ops_test: OpsTest) -> None:
    for unit in units(ops_test, APP):
        member = await _member_of(ops_test, unit)
        device = await storage_location(ops_test, unit, "local")
        size = int(
            await run_on_unit(
                ops_test, unit, f"lsblk --bytes --nodeps --noheadings -o SIZE {device}"
            )
        )
        pool = await lxc_query(ops_test, unit, f"/1.0/storage-pools/default?target={member}")
        assert pool["driver"] == "zfs"
        resources = await lxc_query(
            ops_test, unit, f"/1.0/storage-pools/default/resources?target={member}"
        )
        # The pool is as big as the Juju volume (less ZFS's overhead), not
        # as big as the root disk it would have used without one.
        assert 0.8 * size <= resources["space"]["total"] <= size, (unit, device, resources)


async def test_add_unit_joins_the_cluster(ops_test: OpsTest) -> None:
    await model(ops_test).applications[APP].add_unit(count=1)
    await settle(ops_test, APP, timeout=DEPLOY_TIMEOUT, wait_for_exact_units=4)
    await wait_until("four online members", lambda: _members_are_the_units(ops_test))
    assert len(await _online_members(ops_test)) == 4


async def test_remove_unit_leaves_the_cluster(ops_test: OpsTest) -> None:
    the_leader = await leader(ops_test, APP)
    leaving = next(u for u in reversed(units(ops_test, APP)) if u != the_leader)
    member = await _member_of(ops_test, leaving)
    await model(ops_test).destroy_unit(leaving)
    # Waits for the unit to be gone from the model as well: until then it
    # still counts among the units the members must match.
    await wait_until(f"{member} gone from the cluster", lambda: _members_are_the_units(ops_test))
    assert member not in await _members(ops_test)
    assert leaving not in units(ops_test, APP)
    await settle(ops_test, APP)


async def test_removal_of_a_member_with_an_instance_is_refused(ops_test: OpsTest) -> None:
    the_leader = await leader(ops_test, APP)
    holding = next(u for u in units(ops_test, APP) if u != the_leader)
    member = await _member_of(ops_test, holding)
    # An empty container needs no image, so no image server either.
    await lxc(ops_test, the_leader, "init", "--empty", HELD, "--target", member)

    await model(ops_test).destroy_unit(holding)

    async def refused() -> bool:
        status, message = status_message(ops_test, the_leader)
        return status == "blocked" and member in message

    await wait_until(f"the leader refusing to remove {member}", refused)
    assert member in await _members(ops_test), "the member must stay until its instance is gone"
    instance = await lxc_query(ops_test, the_leader, f"/1.0/instances/{HELD}")
    assert instance["location"] == member, "the instance must not be touched"

    await lxc(ops_test, the_leader, "delete", HELD)
    await wait_until(f"{member} removed once empty", lambda: _members_are_the_units(ops_test))
    assert member not in await _members(ops_test)
    assert holding not in units(ops_test, APP)
    await settle(ops_test, APP)
