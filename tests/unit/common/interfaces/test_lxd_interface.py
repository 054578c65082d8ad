"""The `lxd` interface: models, schemas, the document that shows them, and `LxdRequirer`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import ops
import pytest
import yaml
from ops import testing

from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.interfaces.lxd import (
    MAX_CERTIFICATES_FIELD_CHARS,
    MAX_CERTIFICATES_PER_UNIT,
    PROVIDER_SCHEMA,
    REQUIRER_SCHEMA,
    InterfaceError,
    LxdRequirer,
    Node,
    ProviderData,
    RequirerData,
    schemas_as_json,
)
from tests.harness.databags import local_unit_data

DOC = Path(__file__).resolve().parents[4] / "interfaces/lxd/v1/README.md"
PAIRS = [generate_client_certificate(f"requirer-{i}") for i in range(3)]
CERT, OTHER, THIRD = (p.certificate for p in PAIRS)
FP, OTHER_FP = fingerprint(CERT), fingerprint(OTHER)


def validate(bag: Mapping[str, str], schema: Mapping[str, Any]) -> None:
    """A databag against a schema, JSON-encoded fields against their `contentSchema`."""
    jsonschema.validate(dict(bag), schema)
    for key, spec in schema["properties"].items():
        if key in bag and spec.get("contentMediaType") == "application/json":
            jsonschema.validate(json.loads(bag[key]), spec["contentSchema"])


def provider_bag(*fps: str, errors: dict[str, str] | None = None) -> dict[str, str]:
    nodes = [
        Node("m1", "https://10.0.0.1:8443", fps),
        Node("m2", "https://[2001:db8::2]:8443", fps),
    ]
    return ProviderData(tuple(nodes), errors or {}).to_databag()


# --- the document ------------------------------------------------------------------------


def test_the_document_shows_the_schemas_the_code_uses() -> None:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert json.loads(blocks[0]) == json.loads(schemas_as_json()), (
        "paste `python -m lxd_charms_interfaces.lxd` into interfaces/lxd/v1/README.md"
    )


def test_the_documents_example_follows_the_schemas() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    example = yaml.safe_load(block)
    provider = example["provider"]
    for bag in [provider["application-data"], *provider["unit-data"].values()]:
        validate(bag, PROVIDER_SCHEMA)
        data = ProviderData.from_databag(bag)
        assert data is not None and len(data.nodes) == 2
        assert set(data.errors) == {"myapp/1"}
    for bag in example["requirer"]["unit-data"].values():
        validate(bag, REQUIRER_SCHEMA)


def test_the_document_follows_the_house_format() -> None:
    text = DOC.read_text()
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    for heading in ("Usage", "Direction", "Behaviour", "Provider", "Requirer", "Relation Data"):
        assert heading in headings
    assert "```mermaid" in text


# --- provider data --------------------------------------------------------------------


def test_provider_data_round_trip() -> None:
    bag = provider_bag(OTHER_FP, FP, errors={"app/3": "nope"})
    validate(bag, PROVIDER_SCHEMA)
    assert bag["version"] == "1.0", "plain text, as upstream writes it"
    data = ProviderData.from_databag(bag)
    assert data is not None
    assert data.to_databag() == bag
    assert data.trusted_fingerprints() == {FP, OTHER_FP}
    assert data.errors == {"app/3": "nope"}


def test_no_errors_means_the_key_is_deleted() -> None:
    bag = provider_bag()
    assert bag["errors"] == ""  # Juju deletes keys set to ""
    validate({k: v for k, v in bag.items() if v}, PROVIDER_SCHEMA)


def test_upstream_provider_data_is_read() -> None:
    # What upstream's integrator writes in its unit bag (fingerprints as a JSON string, even).
    bag = {
        "version": "1.0",
        "nodes": json.dumps(
            [{"endpoint": "https://10.10.10.10:8443", "name": "node-1", "trusted_certs_fp": "[]"}]
        ),
    }
    validate({"version": "1.0", "nodes": bag["nodes"].replace('"[]"', "[]")}, PROVIDER_SCHEMA)
    data = ProviderData.from_databag(bag)
    assert data == ProviderData((Node("node-1", "https://10.10.10.10:8443"),))


def test_nothing_published_yet() -> None:
    assert ProviderData.from_databag({}) is None
    assert ProviderData.from_databag({"version": "1.0"}) is None


def test_trusted_means_trusted_on_every_node() -> None:
    data = ProviderData((Node("a", "https://a:8443", (FP,)), Node("b", "https://b:8443", ())))
    assert data.trusted_fingerprints() == frozenset()
    assert ProviderData(()).trusted_fingerprints() == frozenset()


@pytest.mark.parametrize(
    ("bag", "error"),
    [
        ({"version": "2.0", "nodes": "[]"}, "unsupported lxd version '2.0'"),
        ({"nodes": "[]"}, "unsupported lxd version ''"),
        ({"version": "1.0", "nodes": "[{"}, "nodes is not valid JSON"),
        ({"version": "1.0", "nodes": "{}"}, "nodes must be a JSON list, not a object"),
        ({"version": "1.0", "nodes": "[1]"}, "each node must be a JSON object, not a number"),
        ({"version": "1.0", "nodes": '[{"endpoint": "https://a:1"}]'}, "a node has no name"),
        ({"version": "1.0", "nodes": '[{"name": "a"}]'}, "node 'a' has no endpoint"),
        (
            {"version": "1.0", "nodes": '[{"name": "a", "endpoint": "unix:///x"}]'},
            "node 'a': unsupported scheme",
        ),
        (
            {"version": "1.0", "nodes": '[{"name": "a", "endpoint": "a", "trusted_certs_fp": 3}]'},
            "trusted_certs_fp of node 'a' must be a list of strings",
        ),
        (
            {"version": "1.0", "nodes": "[]", "errors": "[]"},
            "errors must be a JSON object of unit names to messages",
        ),
    ],
)
def test_malformed_provider_data(bag: dict[str, str], error: str) -> None:
    with pytest.raises(InterfaceError, match=re.escape(error)):
        ProviderData.from_databag(bag)


def test_endpoints_are_normalised_on_reading() -> None:
    bag = {"version": "1.0", "nodes": '[{"name": "a", "endpoint": "10.0.0.1"}]'}
    data = ProviderData.from_databag(bag)
    assert data is not None and data.nodes[0].endpoint == "https://10.0.0.1:8443"


# --- requirer data ----------------------------------------------------------------------


def test_requirer_data_round_trip() -> None:
    request = RequirerData.from_pems([CERT, OTHER, CERT])
    assert [c.fingerprint for c in request.client_certificates] == [FP, OTHER_FP]
    bag = request.to_databag()
    validate(bag, REQUIRER_SCHEMA)
    assert RequirerData.from_databag(bag) == request
    assert "BEGIN" not in repr(request)


def test_upstream_requirer_data_is_read() -> None:
    bag = {"client_certificates": json.dumps([CERT.strip()])}
    validate(bag, REQUIRER_SCHEMA)
    assert RequirerData.from_databag(bag).fingerprints == {FP}


def test_nothing_sent_yet() -> None:
    assert RequirerData.from_databag({}) == RequirerData()
    assert RequirerData.from_databag({"client_certificates": " "}) == RequirerData()
    assert RequirerData.from_databag({"client_certificates": "[]"}) == RequirerData()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("[", "client_certificates is not valid JSON"),
        ("[" * 100_000, "client_certificates is not valid JSON"),
        ('"x"', "must be a JSON list of PEM certificates, not a string"),
        ("[null]", "certificate 1 of 1 is a JSON null, not PEM text"),
        (json.dumps(["garbage"]), "certificate 1 of 1: no PEM markers found"),
        (json.dumps([CERT, PAIRS[0].private_key]), "certificate 2 of 2: this is a private key"),
        (json.dumps([CERT + OTHER]), "certificate 1 of 1: expected exactly one certificate"),
        (json.dumps(["x"] * 21), "21 certificates sent; at most 20 are accepted per unit"),
        (
            json.dumps([CERT] * 10_000),
            f"characters long; at most {MAX_CERTIFICATES_PER_UNIT} certificates",
        ),
    ],
)
def test_malformed_requirer_data(value: str, error: str) -> None:
    with pytest.raises(InterfaceError, match=re.escape(error)) as raised:
        RequirerData.from_databag({"client_certificates": value})
    assert "PRIVATE KEY-----" not in str(raised.value)
    assert "MII" not in str(raised.value)


def test_the_size_limit_leaves_room_for_twenty_certificates() -> None:
    bag = RequirerData.from_pems([CERT] * 1).to_databag()
    assert (
        len(bag["client_certificates"]) * MAX_CERTIFICATES_PER_UNIT < MAX_CERTIFICATES_FIELD_CHARS
    )


# --- LxdRequirer --------------------------------------------------------------------------


class RequirerCharm(ops.CharmBase):
    """A charm that consumes the lxd interface through the library."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = LxdRequirer(self, "lxd", certificates=[CERT])


META = {"name": "consumer", "requires": {"lxd": {"interface": "lxd"}}}


@pytest.fixture
def ctx() -> testing.Context[RequirerCharm]:
    return testing.Context(RequirerCharm, meta=META)


def test_certificates_are_sent_on_joining(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd")
    state = ctx.run(ctx.on.relation_joined(relation), testing.State(relations={relation}))
    bag = local_unit_data(state.get_relation(relation.id))
    validate(bag, REQUIRER_SCHEMA)
    assert json.loads(bag["client_certificates"]) == [CERT.strip() + "\n"]


def test_update_sends_new_certificates(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd")
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr:
        mgr.charm.lxd.update([OTHER, THIRD])
        state = mgr.run()
    sent = RequirerData.from_databag(state.get_relation(relation.id).local_unit_data)
    assert sent.fingerprints == {OTHER_FP, fingerprint(THIRD)}


def test_bad_own_certificates_raise(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd")
    with (
        ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr,
        pytest.raises(InterfaceError, match="private key"),
    ):
        mgr.charm.lxd.update([PAIRS[0].private_key])


def test_nothing_before_the_provider_answers(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd", remote_units_data={0: {}})
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr:
        assert mgr.charm.lxd.provider_data() is None
        assert mgr.charm.lxd.nodes() == []
        assert mgr.charm.lxd.is_trusted() is False  # a bool, as typed: callers may test `is False`
        assert mgr.charm.lxd.error() is None


def test_nothing_without_a_relation(ctx: testing.Context[RequirerCharm]) -> None:
    with ctx(ctx.on.update_status(), testing.State()) as mgr:
        assert mgr.charm.lxd.nodes() == []
        assert mgr.charm.lxd.is_trusted() is False


def test_the_providers_application_bag_is_read(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd", remote_app_data=provider_bag(FP))
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr:
        assert [n.endpoint for n in mgr.charm.lxd.nodes()] == [
            "https://10.0.0.1:8443",
            "https://[2001:db8::2]:8443",
        ]
        assert mgr.charm.lxd.is_trusted()


def test_an_upstream_provider_unit_bag_is_read(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd", remote_units_data={0: {}, 1: provider_bag(FP)})
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr:
        assert [n.name for n in mgr.charm.lxd.nodes()] == ["m1", "m2"]
        assert mgr.charm.lxd.is_trusted()


def test_not_trusted_until_every_certificate_is() -> None:
    class TwoCerts(ops.CharmBase):
        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            self.lxd = LxdRequirer(self, "lxd", certificates=[CERT, OTHER])

    ctx = testing.Context(TwoCerts, meta=META)
    relation = testing.Relation("lxd", remote_app_data=provider_bag(FP))
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr:
        assert not mgr.charm.lxd.is_trusted()


def test_the_providers_reason_for_refusing_this_unit(ctx: testing.Context[RequirerCharm]) -> None:
    bag = provider_bag(errors={"consumer/0": "certificate 1 of 1: no", "consumer/1": "other"})
    relation = testing.Relation("lxd", remote_app_data=bag)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr:
        assert mgr.charm.lxd.error() == "certificate 1 of 1: no"
        assert not mgr.charm.lxd.is_trusted()


def test_malformed_provider_data_raises(ctx: testing.Context[RequirerCharm]) -> None:
    relation = testing.Relation("lxd", remote_app_data={"version": "9.0", "nodes": "[]"})
    with (
        ctx(ctx.on.update_status(), testing.State(relations={relation})) as mgr,
        pytest.raises(InterfaceError, match="unsupported lxd version"),
    ):
        mgr.charm.lxd.nodes()
