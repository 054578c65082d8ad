"""Standalone LXD on a real controller: listeners, actions and the `https` relation.

One scenario on the module's model (pytest-operator's ``ops_test``), its
steps in order: ``bundles/standalone.yaml`` with the charms packed here;
LXD's API listening on the address of the space the `https` endpoint is
bound to; every action, including how they fail; a charm related over
`https` (the test charm in charms/https-requirer, built on the interface
library) trusted, restricted, rotated and forgotten.

``LXD_TEST_HTTPS_SPACE`` (with ``LXD_TEST_HTTPS_SUBNET``, a subnet of a
second LXD network, to create it) binds `https` to another space, as CI
does, so the test shows the listener follows the binding and not just the
machine's first address.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_operator.plugin import OpsTest

from lxd_common.certs import fingerprint, generate_client_certificate
from tests.integration.helpers import (
    DEPLOY_TIMEOUT,
    action_results,
    bind_address,
    bundle_for_test,
    deploy_bundle,
    host_port,
    in_space,
    lxc,
    lxc_query,
    model,
    presented_fingerprint,
    run_action,
    run_on_unit,
    settle,
    space_bindings,
    spaces,
    status_message,
    trusted_by,
    wait_until,
)

pytestmark = pytest.mark.abort_on_fail  # the steps build on each other

HTTPS_SPACE = os.environ.get("LXD_TEST_HTTPS_SPACE")
UNIT = "lxd/0"
REQUIRER = "https-requirer"


async def _https_address(ops_test: OpsTest) -> str:
    return host_port(await bind_address(ops_test, UNIT, "https"), 8443)


async def _trust_entries(ops_test: OpsTest) -> list[dict[str, Any]]:
    entries = await lxc_query(ops_test, UNIT, "/1.0/certificates?recursion=1")
    return [e for e in entries if e.get("type") == "client"]


async def _relation_entries(ops_test: OpsTest) -> list[dict[str, Any]]:
    prefix = f"juju-relation-{REQUIRER}/0"
    return [e for e in await _trust_entries(ops_test) if e["name"].startswith(prefix)]


async def test_deploy_standalone_bundle(ops_test: OpsTest, charm_files: dict[str, Path]) -> None:
    bindings = await space_bindings(ops_test, "https")
    await deploy_bundle(ops_test, bundle_for_test("standalone", charm_files, bindings=bindings))
    await settle(ops_test, "lxd", timeout=DEPLOY_TIMEOUT)
    _, message = status_message(ops_test, UNIT)
    assert message.startswith("standalone"), message


async def test_lxd_is_initialised_with_the_default_pool_and_bridge(ops_test: OpsTest) -> None:
    pool = await lxc_query(ops_test, UNIT, "/1.0/storage-pools/default")
    assert pool["driver"] == "dir"
    profile = await lxc_query(ops_test, UNIT, "/1.0/profiles/default")
    assert profile["devices"]["root"]["pool"] == "default"
    assert profile["devices"]["eth0"]["network"] == "lxdbr0"


async def test_api_listens_on_the_https_space_address(ops_test: OpsTest) -> None:
    address = await bind_address(ops_test, UNIT, "https")
    server = await lxc_query(ops_test, UNIT, "/1.0")
    assert server["config"]["core.https_address"] == host_port(address, 8443)
    if HTTPS_SPACE:
        assert in_space(address, (await spaces(ops_test))[HTTPS_SPACE]), address
    assert "8443/tcp" in (await run_on_unit(ops_test, UNIT, "opened-ports")).split()


async def test_add_trusted_client_trusts_a_certificate(ops_test: OpsTest) -> None:
    pair = generate_client_certificate("integration-action")
    results = await action_results(
        ops_test,
        UNIT,
        "add-trusted-client",
        name="integration",
        cert=pair.certificate,
        projects="default",
    )
    assert results["fingerprint"] == fingerprint(pair.certificate)
    entry = next(e for e in await _trust_entries(ops_test) if e["name"] == "integration")
    assert entry["restricted"] is True
    assert entry["projects"] == ["default"]
    address = await _https_address(ops_test)
    assert await asyncio.to_thread(
        trusted_by, address, pair.certificate, pair.private_key, ops_test.tmp_path
    )

    results = await action_results(
        ops_test, UNIT, "remove-trusted-client", fingerprint=results["fingerprint"][:16]
    )
    assert "integration" not in {e["name"] for e in await _trust_entries(ops_test)}
    assert not await asyncio.to_thread(
        trusted_by, address, pair.certificate, pair.private_key, ops_test.tmp_path
    )


async def test_trust_actions_refuse_bad_input_with_a_reason(ops_test: OpsTest) -> None:
    refused = await run_action(ops_test, UNIT, "add-trusted-client", cert="not a certificate")
    assert not refused.ok
    assert refused.message
    unknown = await run_action(ops_test, UNIT, "remove-trusted-client", fingerprint="0" * 64)
    assert not unknown.ok
    assert unknown.message


async def test_get_client_token_issues_a_token(ops_test: OpsTest) -> None:
    results = await action_results(ops_test, UNIT, "get-client-token", name="integration-token")
    assert results["token"]
    tokens = json.loads(
        await lxc(ops_test, UNIT, "config", "trust", "list-tokens", "--format=json")
    )
    assert "integration-token" in {t.get("client_name", t.get("ClientName")) for t in tokens}
    await lxc(ops_test, UNIT, "config", "trust", "revoke-token", "integration-token")


async def test_debug_and_show_pending_config(ops_test: OpsTest) -> None:
    debug = await action_results(ops_test, UNIT, "debug")
    assert "lxd" in debug["buginfo"].lower()
    pending = await action_results(ops_test, UNIT, "show-pending-config")
    assert pending["pending"] == "nothing pending"


async def test_https_relation_trusts_the_requiring_unit(
    ops_test: OpsTest, charm_files: dict[str, Path]
) -> None:
    pair = generate_client_certificate("https-requirer")
    await model(ops_test).deploy(
        str(charm_files[REQUIRER]),
        application_name=REQUIRER,
        config={"client-certificate": pair.certificate, "projects": "default"},
    )
    await model(ops_test).integrate("lxd:https", f"{REQUIRER}:lxd")
    await settle(ops_test, "lxd", REQUIRER)

    address = await _https_address(ops_test)
    answer = await action_results(ops_test, f"{REQUIRER}/0", "servers")
    (server,) = json.loads(answer["servers"])
    assert server["addresses"] == [address]
    assert server["certificate-fingerprint"] == await asyncio.to_thread(
        presented_fingerprint, address
    )
    (entry,) = await _relation_entries(ops_test)
    assert entry["fingerprint"] == fingerprint(pair.certificate)
    assert entry["restricted"] is True
    assert entry["projects"] == ["default"]
    assert await asyncio.to_thread(
        trusted_by, address, pair.certificate, pair.private_key, ops_test.tmp_path
    )


async def test_rotated_certificate_replaces_the_entry(ops_test: OpsTest) -> None:
    rotated = generate_client_certificate("https-requirer-rotated")
    await (
        model(ops_test)
        .applications[REQUIRER]
        .set_config({"client-certificate": rotated.certificate})
    )

    async def replaced() -> bool:
        entries = await _relation_entries(ops_test)
        return [e["fingerprint"] for e in entries] == [fingerprint(rotated.certificate)]

    await wait_until("one entry, for the rotated certificate", replaced)


async def test_changed_projects_update_the_restriction(ops_test: OpsTest) -> None:
    await ops_test.juju("config", REQUIRER, "--reset", "projects", check=True)

    async def unrestricted() -> bool:
        (entry,) = await _relation_entries(ops_test)
        return entry["restricted"] is False

    await wait_until("the entry unrestricted", unrestricted)


async def test_listener_off_blocks_and_heals(ops_test: OpsTest) -> None:
    app = model(ops_test).applications["lxd"]
    await app.set_config({"lxd-listen-https": "false"})
    await settle(ops_test, "lxd", status="blocked")
    _, message = status_message(ops_test, UNIT)
    assert "lxd-listen-https=true" in message
    await app.set_config({"lxd-listen-https": "true"})
    await settle(ops_test, "lxd", REQUIRER)


async def test_removed_relation_removes_the_entry(ops_test: OpsTest) -> None:
    await (
        model(ops_test)
        .applications["lxd"]
        .destroy_relation("https", f"{REQUIRER}:lxd", block_until_done=True)
    )

    async def forgotten() -> bool:
        return not await _relation_entries(ops_test)

    await wait_until("the relation's trust entry removed", forgotten)
