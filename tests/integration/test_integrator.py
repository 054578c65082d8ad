"""The lxd-integrator on a real controller, trusted with the model's LXD cloud.

One scenario on the module's model (pytest-operator's ``ops_test``), its
steps in order: ``bundles/integrator.yaml`` (the integrator deployed with
``--trust``, related to the test charm in charms/lxd-requirer, built on the
`lxd` interface library) with the charms packed here. The controller's own
cloud must be LXD (``juju bootstrap localhost``): the integrator then
publishes that LXD's servers and trusts the requirer's certificate there,
which the test checks by connecting to LXD with it; removing the relation
takes the trust away again, and revoking ``juju trust`` blocks the
integrator with what to do.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pytest_operator.plugin import OpsTest

from lxd_common.certs import fingerprint, generate_client_certificate
from tests.integration.helpers import (
    action_results,
    bundle_for_test,
    deploy_bundle,
    model,
    settle,
    status_message,
    trusted_by,
    wait_until,
)

pytestmark = pytest.mark.abort_on_fail  # the steps build on each other

INTEGRATOR = "lxd-integrator"
REQUIRER = "lxd-requirer"
PAIR = generate_client_certificate("lxd-requirer")


async def _nodes(ops_test: OpsTest) -> dict[str, object]:
    return await action_results(ops_test, f"{REQUIRER}/0", "nodes")


async def test_deploy_integrator_bundle_with_trust(
    ops_test: OpsTest, charm_files: dict[str, Path]
) -> None:
    await deploy_bundle(ops_test, bundle_for_test("integrator", charm_files), trust=True)
    await settle(ops_test, INTEGRATOR)
    requirer = model(ops_test).applications[REQUIRER]
    await requirer.set_config({"client-certificate": PAIR.certificate})
    await settle(ops_test, INTEGRATOR, REQUIRER)


async def test_requirer_certificate_is_trusted_on_every_node(ops_test: OpsTest) -> None:
    answer = await _nodes(ops_test)
    assert answer["trusted"] == "true", answer
    nodes = json.loads(str(answer["nodes"]))
    assert nodes, "the integrator published no LXD node"
    for node in nodes:
        assert urlsplit(node["endpoint"]).scheme == "https"
        assert fingerprint(PAIR.certificate) in node["trusted_certs_fp"]
        address = urlsplit(node["endpoint"]).netloc
        assert await asyncio.to_thread(
            trusted_by, address, PAIR.certificate, PAIR.private_key, ops_test.tmp_path
        ), node


async def test_removed_relation_takes_the_trust_away(ops_test: OpsTest) -> None:
    address = urlsplit(json.loads(str((await _nodes(ops_test))["nodes"]))[0]["endpoint"]).netloc
    await (
        model(ops_test)
        .applications[INTEGRATOR]
        .destroy_relation("api", f"{REQUIRER}:lxd", block_until_done=True)
    )

    async def untrusted() -> bool:
        return not await asyncio.to_thread(
            trusted_by, address, PAIR.certificate, PAIR.private_key, ops_test.tmp_path
        )

    await wait_until("the requirer's certificate removed from LXD", untrusted)


async def test_without_trust_the_integrator_says_what_to_do(ops_test: OpsTest) -> None:
    app = model(ops_test).applications[INTEGRATOR]
    await app.set_trusted(False)
    await settle(ops_test, INTEGRATOR, status="blocked")
    _, message = status_message(ops_test, f"{INTEGRATOR}/0")
    assert "juju trust" in message, message
    await app.set_trusted(True)
    await settle(ops_test, INTEGRATOR)
