"""A requirer written against Canonical's lxd-integrator keeps working with ours.

Canonical's integrator documents its relation data in its README (provider:
`version` "1.0" and `nodes`, a list of `{endpoint, name, trusted_certs_fp}`;
requirer: `client_certificates`, a list of PEM certificates; "when a
certificate has been processed by the provides side, it should be
available in the `registered_certificates` list on the relation"), and its
provider writes `version` and `nodes` in its *unit* bag only. A requirer
written from that reads the bag of the provider unit that triggered its
hook. `CanonicalStyleRequirer` below is such a requirer, written for this
test from that documentation (no code of Canonical's is used): it is run
against the unit bag our integrator really publishes.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Callable
from typing import Any

import ops
import pytest
from ops import testing

from lxd_common.certs import CertificatePair
from tests.harness.databags import local_unit_data

REQUIRER_META = {"name": "myapp", "requires": {"lxd": {"interface": "lxd"}}}


class CanonicalStyleRequirer(ops.CharmBase):
    """Sends its certificate; connects once the provider unit says it is trusted.

    It reads only what Canonical's README documents, from the remote unit's
    bag, the way a requirer of Canonical's integrator must (nothing is in its
    application bag), and fingerprints its certificate as Canonical's
    integrator does (SHA-256 of the DER, lowercase hex).
    """

    CERTIFICATE = ""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        framework.observe(self.on.lxd_relation_joined, self._on_joined)
        framework.observe(self.on.lxd_relation_changed, self._on_changed)

    def _on_joined(self, event: ops.RelationJoinedEvent) -> None:
        event.relation.data[self.unit]["client_certificates"] = json.dumps([self.CERTIFICATE])

    def _on_changed(self, event: ops.RelationChangedEvent) -> None:
        assert event.unit is not None
        data = event.relation.data[event.unit]
        if data.get("version", "") != "1.0":
            self.unit.status = ops.BlockedStatus(f"unsupported version {data.get('version')}")
            return
        nodes = json.loads(data.get("nodes", "[]"))
        fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(self.CERTIFICATE)).hexdigest()
        trusted = [node for node in nodes if fp in node["trusted_certs_fp"]]
        registered = json.loads(data.get("registered_certificates", "[]"))
        if not trusted or self.CERTIFICATE not in registered:
            self.unit.status = ops.WaitingStatus("waiting for the certificate to be trusted")
            return
        endpoints = ", ".join(f"{node['name']}={node['endpoint']}" for node in trusted)
        self.unit.status = ops.ActiveStatus(f"LXD at {endpoints}")


@pytest.fixture
def integrator(charm_type: Any) -> testing.Context[Any]:
    return testing.Context(charm_type, app_name="lxd-integrator", app_trusted=True)


def published_unit_bag(
    integrator: testing.Context[Any],
    cloud_spec: Callable[..., testing.CloudSpec],
    sent: list[str],
    *,
    leader: bool = True,
) -> dict[str, str]:
    """Our integrator's unit bag after a requirer unit sent ``sent``."""
    relation = testing.Relation(
        "api",
        remote_app_name="myapp",
        remote_units_data={0: {"client_certificates": json.dumps(sent)}},
    )
    state = testing.State(
        leader=leader,
        relations={relation},
        model=testing.Model(type="lxd", cloud_spec=cloud_spec()),
    )
    out = integrator.run(integrator.on.relation_changed(relation, remote_unit=0), state)
    return dict(local_unit_data(out.get_relation(relation.id)))


def requirer_status(certificate: str, provider_unit_bag: dict[str, str]) -> tuple[str, str]:
    """Run the Canonical-style requirer's relation-changed on our provider unit's bag.

    Returns:
        The status it set: its name and message.
    """

    class Requirer(CanonicalStyleRequirer):
        CERTIFICATE = certificate

    ctx = testing.Context(Requirer, meta=REQUIRER_META)
    relation = testing.Relation(
        "lxd",
        remote_app_name="lxd-integrator",
        remote_app_data={},  # Canonical's requirers never look there
        remote_units_data={0: provider_unit_bag},
    )
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0), testing.State(relations={relation})
    )
    return out.unit_status.name, out.unit_status.message


def test_a_canonical_style_requirer_connects_from_the_unit_bag(
    integrator: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    certs: list[CertificatePair],
) -> None:
    lxd.cluster_of(3)
    bag = published_unit_bag(integrator, cloud_spec, [certs[0].certificate])

    status = requirer_status(certs[0].certificate, bag)

    assert status == (
        "active",
        "LXD at m1=https://10.0.0.1:8443, m2=https://10.0.0.2:8443, m3=https://10.0.0.3:8443",
    )


def test_a_canonical_style_requirer_waits_while_its_certificate_is_not_trusted(
    integrator: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    certs: list[CertificatePair],
) -> None:
    bag = published_unit_bag(integrator, cloud_spec, [certs[0].certificate])

    assert requirer_status(certs[1].certificate, bag) == (
        "waiting",
        "waiting for the certificate to be trusted",
    ), "another unit's trust is not this one's"


def test_registered_certificates_lists_exactly_what_lxd_trusts(
    integrator: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    certs: list[CertificatePair],
) -> None:
    sent = [certs[1].certificate, certs[0].certificate, certs[0].certificate]
    bag = published_unit_bag(integrator, cloud_spec, sent)
    assert json.loads(bag["registered_certificates"]) == sorted(
        {certs[0].certificate, certs[1].certificate}
    )
    assert "PRIVATE KEY" not in bag["registered_certificates"]
    # A non-leader registers nothing itself: until the leader has, nothing is registered.
    assert "registered_certificates" not in published_unit_bag(
        integrator, cloud_spec, [certs[2].certificate], leader=False
    )
