"""``interfaces/*/v1/schema.py`` (pydantic) agree with the JSON schemas the package publishes.

Two descriptions of one contract: the JSON schemas in
``lxd_charms_interfaces`` (embedded in each README) and the pydantic models
pytest-interface-tester validates with. Each databag here is accepted by both
or refused by both.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pydantic
import pytest

from lxd_charms_interfaces import lxd, lxd_https

REPO = Path(__file__).resolve().parents[4]
CERT = (REPO / "lxd-charms-interfaces/tests/data/client.pem").read_text()
FP = "e3a9561200b6341fc1b19bb33c34e19f483db5f84a3f389ba63784a19879d7f0"
JUJU = {
    "egress-subnets": "10.0.0.2/32",
    "ingress-address": "10.0.0.2",
    "private-address": "10.0.0.2",
}


def _schema(interface: str) -> ModuleType:
    path = REPO / "interfaces" / interface / "v1" / "schema.py"
    spec = importlib.util.spec_from_file_location(f"{interface}_v1_schema", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # pydantic resolves the models' (postponed) annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _json_ok(bag: dict[str, str], schema: dict[str, Any]) -> bool:
    """The JSON schema's verdict, JSON-encoded fields checked against their contentSchema."""
    try:
        jsonschema.validate(bag, schema)
        for key, prop in schema["properties"].items():
            if key in bag and "contentSchema" in prop:
                jsonschema.validate(json.loads(bag[key]), prop["contentSchema"])
    except (jsonschema.ValidationError, ValueError):
        return False
    return True


def _pydantic_ok(model: type[pydantic.BaseModel], side: str, bag: dict[str, str]) -> bool:
    try:
        model.model_validate({side: {**JUJU, **bag} if side == "unit" else bag})
    except pydantic.ValidationError:
        return False
    return True


HTTPS_REQUESTS = [
    ({"version": "1.0", "certificate": CERT}, True),
    ({"version": "1.0", "certificate": CERT, "projects": "a,b", "autoremove": "true"}, True),
    ({"version": "2.0", "certificate": CERT}, False),
    ({"version": "1.0", "certificate": "garbage"}, False),
    ({"version": "1.0", "certificate": CERT, "autoremove": "yes"}, False),
    ({"certificate": CERT}, False),
]
HTTPS_ANSWERS = [
    ({"version": "1.0", "certificate": CERT, "certificate_fingerprint": FP}, True),
    (
        {
            "version": "1.0",
            "certificate": CERT,
            "certificate_fingerprint": FP,
            "addresses": "10.0.0.1:8443,[2001:db8::1]:8443",
        },
        True,
    ),
    ({"version": "1.0", "certificate": CERT, "certificate_fingerprint": "x"}, False),
    (
        {"version": "1.0", "certificate": CERT, "certificate_fingerprint": FP, "addresses": "a"},
        False,
    ),
]
NODES = [{"name": "m1", "endpoint": "https://10.0.0.1:8443", "trusted_certs_fp": [FP]}]
LXD_ANSWERS = [
    ({"version": "1.0", "nodes": json.dumps(NODES)}, True),
    ({"version": "1.0", "nodes": json.dumps(NODES), "errors": '{"app/0": "no"}'}, True),
    ({"version": "1.0", "nodes": "[]"}, False),
    ({"version": "1.0", "nodes": json.dumps([{**NODES[0], "endpoint": "10.0.0.1"}])}, False),
    ({"version": "1.0", "nodes": json.dumps(NODES), "errors": '{"bad": "no"}'}, False),
    ({"version": "2", "nodes": json.dumps(NODES)}, False),
]
LXD_REQUESTS = [
    ({"client_certificates": json.dumps([CERT])}, True),
    ({"client_certificates": "[]"}, True),
    ({"client_certificates": json.dumps(["garbage"])}, False),
    ({"client_certificates": json.dumps([CERT] * 21)}, False),
    ({"client_certificates": "{"}, False),
]


@pytest.mark.parametrize(("bag", "valid"), HTTPS_REQUESTS)
def test_lxd_https_requests(bag: dict[str, str], valid: bool) -> None:
    assert _json_ok(bag, lxd_https.REQUIRER_SCHEMA) is valid
    assert _pydantic_ok(_schema("lxd_https").RequirerSchema, "unit", bag) is valid


@pytest.mark.parametrize(("bag", "valid"), HTTPS_ANSWERS)
@pytest.mark.parametrize("side", ["app", "unit"])
def test_lxd_https_answers(bag: dict[str, str], valid: bool, side: str) -> None:
    assert _json_ok(bag, lxd_https.PROVIDER_SCHEMA) is valid
    assert _pydantic_ok(_schema("lxd_https").ProviderSchema, side, bag) is valid


@pytest.mark.parametrize(("bag", "valid"), LXD_ANSWERS)
def test_lxd_answers(bag: dict[str, str], valid: bool) -> None:
    assert _json_ok(bag, lxd.PROVIDER_SCHEMA) is valid
    assert _pydantic_ok(_schema("lxd").ProviderSchema, "app", bag) is valid


@pytest.mark.parametrize(("bag", "valid"), LXD_REQUESTS)
def test_lxd_requests(bag: dict[str, str], valid: bool) -> None:
    assert _json_ok(bag, lxd.REQUIRER_SCHEMA) is valid
    assert _pydantic_ok(_schema("lxd").RequirerSchema, "unit", bag) is valid


def test_a_provider_that_answers_nowhere_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="neither its app nor its unit bag"):
        _schema("lxd_https").ProviderSchema.model_validate({"app": {}, "unit": dict(JUJU)})
