"""The integrator's hook wiring, each decision of charm.py with one wrong answer it must not give.

Found by mutation testing (docs/mutation.md): the `remove` hook's log, the
`pending` mark that makes update-status finish an interrupted registration
even when the published nodes look current, a unit bag that does not parse,
the auth type of a credential-less cloud spec, and urllib3's log level.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ops import testing

import lxd_integrator.connection
from lxd_common.certs import CertificatePair, fingerprint
from lxd_common.errors import LxdUnreachableError
from lxd_common.lxd import LxdClient
from tests.unit.charms.lxd_integrator.test_relation import (  # noqa: F401 - fixtures
    api,
    ctx,
    out,
    state,
)

REPO = Path(__file__).resolve().parents[4]


def test_the_remove_hook_says_there_is_nothing_on_disk_to_delete(
    ctx: testing.Context[Any],  # noqa: F811
) -> None:
    ctx.run(ctx.on.remove(), testing.State())
    assert [line.message for line in ctx.juju_log if line.level == "INFO"] == [
        "remove: no key files to delete (each hook's client removes its own)"
    ]


def test_update_status_finishes_a_registration_interrupted_after_the_nodes_were_published(
    ctx: testing.Context[Any],  # noqa: F811
    lxd: Any,
    state: Callable[..., testing.State],  # noqa: F811
    certs: list[CertificatePair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The nodes in the bags are current, so only the `pending` mark says work is left."""
    relation = api([certs[0].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    assert fingerprint(certs[0].certificate) in lxd.client_entries()
    served = out(first, relation)
    more = dataclasses.replace(
        served,
        remote_units_data={0: {"client_certificates": json.dumps([certs[1].certificate])}},
    )

    def gone() -> None:
        raise LxdUnreachableError("cannot reach LXD while listing certificates: reset")

    monkeypatch.setattr(lxd.trust, "entries", gone)
    second = ctx.run(
        ctx.on.relation_changed(more, remote_unit=0),
        dataclasses.replace(first, relations=frozenset({more})),
    )
    assert second.unit_status.name == "blocked"
    monkeypatch.undo()
    monkeypatch.setattr(LxdClient, "remote", lxd.remote)
    monkeypatch.setattr(lxd_integrator.connection, "CONNECT_WAIT", 0.0)
    third = ctx.run(ctx.on.update_status(), second)
    assert third.unit_status.name == "active", (third.unit_status, lxd.calls, lxd.client_entries())
    assert fingerprint(certs[1].certificate) in lxd.client_entries()


def test_update_status_republishes_over_a_unit_bag_that_does_not_parse(
    ctx: testing.Context[Any],  # noqa: F811
    lxd: Any,
    state: Callable[..., testing.State],  # noqa: F811
    certs: list[CertificatePair],
) -> None:
    relation = api([certs[0].certificate])
    first = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state(relation))
    served = out(first, relation)
    broken = dataclasses.replace(served, local_unit_data={"nodes": "not json"})
    result = ctx.run(
        ctx.on.update_status(), dataclasses.replace(first, relations=frozenset({broken}))
    )
    assert result.unit_status == testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")
    republished = out(result, relation).local_unit_data
    assert republished is not None and republished["nodes"] != "not json"


def test_a_status_is_decided_over_a_unit_bag_that_does_not_parse(
    ctx: testing.Context[Any],  # noqa: F811
    lxd: Any,
    state: Callable[..., testing.State],  # noqa: F811
    certs: list[CertificatePair],
) -> None:
    """Reading what was refused skips a bag it cannot read (it would otherwise crash)."""
    good = api([certs[0].certificate], relation_id=7)
    garbled = dataclasses.replace(
        api([certs[1].certificate], relation_id=8, app="other"),
        local_unit_data={"nodes": "not json"},
    )
    result = ctx.run(ctx.on.relation_changed(good, remote_unit=0), state(good, garbled))
    assert result.unit_status == testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")


def test_a_cloud_spec_without_a_credential_is_not_called_a_trust_password_one(
    charm_type: Any,
) -> None:
    trusted = testing.Context(charm_type, app_name="lxd-integrator", app_trusted=True)
    spec = testing.CloudSpec(type="lxd", name="localhost", endpoint="https://10.0.0.1:8443")
    result = trusted.run(
        trusted.on.config_changed(),
        testing.State(model=testing.Model(type="lxd", cloud_spec=spec)),
    )
    assert result.unit_status == testing.BlockedStatus(
        "trusted lxd credential lacks endpoint or client certificate: set lxd-endpoint, "
        "lxd-client-cert, lxd-client-key-secret, lxd-server-cert"
    )


def test_importing_the_integrator_quiets_urllib3s_request_records() -> None:
    """Each record ops would forward as a `juju-log` call: one per LXD request."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "charms/lxd-integrator/src"), str(REPO / "common/src")]
        ),
    }
    code = "import logging, charm; print(logging.getLogger('urllib3').level)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "20"  # INFO
