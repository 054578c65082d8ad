"""Standalone LXD on a real controller: listeners, actions and the `https` relation.

One scenario on one model, its steps in order: ``bundles/standalone.yaml``
with the charms packed here; LXD's API listening on the address of the space
the `https` endpoint is bound to; every action, including how they fail; a
charm related over `https` (the test charm in charms/https-requirer, built
on the interface library) trusted, restricted, rotated and forgotten.

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

from lxd_common.certs import fingerprint, generate_client_certificate
from tests.integration.helpers import (
    DEPLOY_TIMEOUT,
    Juju,
    bundle_for_test,
    host_port,
    in_space,
    presented_fingerprint,
    trusted_by,
)

HTTPS_SPACE = os.environ.get("LXD_TEST_HTTPS_SPACE")
UNIT = "lxd/0"
REQUIRER = "https-requirer"


async def _https_address(juju: Juju) -> str:
    return host_port(await juju.bind_address(UNIT, "https"), 8443)


async def _trust_entries(juju: Juju) -> list[dict[str, Any]]:
    entries = await juju.lxc_query(UNIT, "/1.0/certificates?recursion=1")
    return [e for e in entries if e.get("type") == "client"]


async def _relation_entries(juju: Juju) -> list[dict[str, Any]]:
    prefix = f"juju-relation-{REQUIRER}/0"
    return [e for e in await _trust_entries(juju) if e["name"].startswith(prefix)]


async def test_deploy_standalone_bundle(juju: Juju, charm_files: dict[str, Path]) -> None:
    bindings = await juju.space_bindings("https")
    await juju.deploy_bundle(bundle_for_test("standalone", charm_files, bindings=bindings))
    await juju.settle("lxd", timeout=DEPLOY_TIMEOUT)
    _, message = juju.status_message(UNIT)
    assert message.startswith("standalone"), message


async def test_lxd_is_initialised_with_the_default_pool_and_bridge(juju: Juju) -> None:
    pool = await juju.lxc_query(UNIT, "/1.0/storage-pools/default")
    assert pool["driver"] == "dir"
    profile = await juju.lxc_query(UNIT, "/1.0/profiles/default")
    assert profile["devices"]["root"]["pool"] == "default"
    assert profile["devices"]["eth0"]["network"] == "lxdbr0"


async def test_api_listens_on_the_https_space_address(juju: Juju) -> None:
    address = await juju.bind_address(UNIT, "https")
    server = await juju.lxc_query(UNIT, "/1.0")
    assert server["config"]["core.https_address"] == host_port(address, 8443)
    if HTTPS_SPACE:
        assert in_space(address, (await juju.spaces())[HTTPS_SPACE]), address
    assert "8443/tcp" in (await juju.exec(UNIT, "opened-ports")).split()


async def test_add_trusted_client_trusts_a_certificate(juju: Juju, workdir: Path) -> None:
    pair = generate_client_certificate("integration-action")
    results = await juju.action_results(
        UNIT, "add-trusted-client", name="integration", cert=pair.certificate, projects="default"
    )
    assert results["fingerprint"] == fingerprint(pair.certificate)
    entry = next(e for e in await _trust_entries(juju) if e["name"] == "integration")
    assert entry["restricted"] is True
    assert entry["projects"] == ["default"]
    address = await _https_address(juju)
    assert await asyncio.to_thread(
        trusted_by, address, pair.certificate, pair.private_key, workdir
    )

    results = await juju.action_results(
        UNIT, "remove-trusted-client", fingerprint=results["fingerprint"][:16]
    )
    assert "integration" not in {e["name"] for e in await _trust_entries(juju)}
    assert not await asyncio.to_thread(
        trusted_by, address, pair.certificate, pair.private_key, workdir
    )


async def test_trust_actions_refuse_bad_input_with_a_reason(juju: Juju) -> None:
    refused = await juju.run_action(UNIT, "add-trusted-client", cert="not a certificate")
    assert not refused.ok
    assert refused.message
    unknown = await juju.run_action(UNIT, "remove-trusted-client", fingerprint="0" * 64)
    assert not unknown.ok
    assert unknown.message


async def test_get_client_token_issues_a_token(juju: Juju) -> None:
    results = await juju.action_results(UNIT, "get-client-token", name="integration-token")
    assert results["token"]
    tokens = json.loads(await juju.lxc(UNIT, "config", "trust", "list-tokens", "--format=json"))
    assert "integration-token" in {t.get("client_name", t.get("ClientName")) for t in tokens}
    await juju.lxc(UNIT, "config", "trust", "revoke-token", "integration-token")


async def test_debug_and_show_pending_config(juju: Juju) -> None:
    debug = await juju.action_results(UNIT, "debug")
    assert "lxd" in debug["buginfo"].lower()
    pending = await juju.action_results(UNIT, "show-pending-config")
    assert pending["pending"] == "nothing pending"


async def test_https_relation_trusts_the_requiring_unit(
    juju: Juju, charm_files: dict[str, Path], workdir: Path
) -> None:
    pair = generate_client_certificate("https-requirer")
    await juju.model.deploy(
        str(charm_files[REQUIRER]),
        application_name=REQUIRER,
        config={"client-certificate": pair.certificate, "projects": "default"},
    )
    await juju.model.integrate("lxd:https", f"{REQUIRER}:lxd")
    await juju.settle("lxd", REQUIRER)

    address = await _https_address(juju)
    answer = await juju.action_results(f"{REQUIRER}/0", "servers")
    (server,) = json.loads(answer["servers"])
    assert server["addresses"] == [address]
    assert server["certificate-fingerprint"] == await asyncio.to_thread(
        presented_fingerprint, address
    )
    (entry,) = await _relation_entries(juju)
    assert entry["fingerprint"] == fingerprint(pair.certificate)
    assert entry["restricted"] is True
    assert entry["projects"] == ["default"]
    assert await asyncio.to_thread(
        trusted_by, address, pair.certificate, pair.private_key, workdir
    )


async def test_rotated_certificate_replaces_the_entry(juju: Juju) -> None:
    rotated = generate_client_certificate("https-requirer-rotated")
    await juju.model.applications[REQUIRER].set_config({"client-certificate": rotated.certificate})

    async def replaced() -> bool:
        entries = await _relation_entries(juju)
        return [e["fingerprint"] for e in entries] == [fingerprint(rotated.certificate)]

    await juju.wait_until("one entry, for the rotated certificate", replaced)


async def test_changed_projects_update_the_restriction(juju: Juju) -> None:
    await juju.cli("config", REQUIRER, "--reset", "projects")

    async def unrestricted() -> bool:
        (entry,) = await _relation_entries(juju)
        return entry["restricted"] is False

    await juju.wait_until("the entry unrestricted", unrestricted)


async def test_listener_off_blocks_and_heals(juju: Juju) -> None:
    app = juju.model.applications["lxd"]
    await app.set_config({"lxd-listen-https": "false"})
    await juju.settle("lxd", status="blocked")
    _, message = juju.status_message(UNIT)
    assert "lxd-listen-https=true" in message
    await app.set_config({"lxd-listen-https": "true"})
    await juju.settle("lxd", REQUIRER)


async def test_removed_relation_removes_the_entry(juju: Juju) -> None:
    await juju.model.applications["lxd"].destroy_relation(
        "https", f"{REQUIRER}:lxd", block_until_done=True
    )

    async def forgotten() -> bool:
        return not await _relation_entries(juju)

    await juju.wait_until("the relation's trust entry removed", forgotten)
