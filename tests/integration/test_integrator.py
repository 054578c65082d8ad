"""The lxd-integrator on a real controller, trusted with the model's LXD cloud.

One scenario on one model, its steps in order: ``bundles/integrator.yaml``
(the integrator deployed with ``--trust``, related to the test charm in
charms/lxd-requirer, built on the `lxd` interface library) with the charms
packed here. The controller's own cloud must be LXD (``juju bootstrap
localhost``): the integrator then publishes that LXD's servers and trusts
the requirer's certificate there, which the test checks by connecting to
LXD with it; removing the relation takes the trust away again, and
revoking ``juju trust`` blocks the integrator with what to do.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

from lxd_common.certs import fingerprint, generate_client_certificate
from tests.integration.helpers import Juju, bundle_for_test, trusted_by

INTEGRATOR = "lxd-integrator"
REQUIRER = "lxd-requirer"
PAIR = generate_client_certificate("lxd-requirer")


async def _nodes(juju: Juju) -> dict[str, object]:
    return await juju.action_results(f"{REQUIRER}/0", "nodes")


async def test_deploy_integrator_bundle_with_trust(
    juju: Juju, charm_files: dict[str, Path]
) -> None:
    await juju.deploy_bundle(bundle_for_test("integrator", charm_files), trust=True)
    await juju.settle(INTEGRATOR)
    await juju.model.applications[REQUIRER].set_config({"client-certificate": PAIR.certificate})
    await juju.settle(INTEGRATOR, REQUIRER)


async def test_requirer_certificate_is_trusted_on_every_node(juju: Juju, workdir: Path) -> None:
    answer = await _nodes(juju)
    assert answer["trusted"] == "true", answer
    nodes = json.loads(str(answer["nodes"]))
    assert nodes, "the integrator published no LXD node"
    for node in nodes:
        assert urlsplit(node["endpoint"]).scheme == "https"
        assert fingerprint(PAIR.certificate) in node["trusted_certs_fp"]
        address = urlsplit(node["endpoint"]).netloc
        assert await asyncio.to_thread(
            trusted_by, address, PAIR.certificate, PAIR.private_key, workdir
        ), node


async def test_removed_relation_takes_the_trust_away(juju: Juju, workdir: Path) -> None:
    address = urlsplit(json.loads(str((await _nodes(juju))["nodes"]))[0]["endpoint"]).netloc
    await juju.model.applications[INTEGRATOR].destroy_relation(
        "api", f"{REQUIRER}:lxd", block_until_done=True
    )

    async def untrusted() -> bool:
        return not await asyncio.to_thread(
            trusted_by, address, PAIR.certificate, PAIR.private_key, workdir
        )

    await juju.wait_until("the requirer's certificate removed from LXD", untrusted)


async def test_without_trust_the_integrator_says_what_to_do(juju: Juju) -> None:
    app = juju.model.applications[INTEGRATOR]
    await app.set_trusted(False)
    await juju.settle(INTEGRATOR, status="blocked")
    _, message = juju.status_message(f"{INTEGRATOR}/0")
    assert "juju trust" in message, message
    await app.set_trusted(True)
    await juju.settle(INTEGRATOR)
