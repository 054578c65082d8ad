"""The lxd interface, v1: both sides' databags as pydantic (v2) models.

The charm-relation-interfaces layout: pytest-interface-tester loads
`ProviderSchema` and `RequirerSchema` from this file and validates a charm's
local databags against them. The JSON schemas in README.md (from
``lxd_charms_interfaces.lxd``) say the same; a unit test checks that each
accepts and refuses the same databags.

Every Juju databag value is a string: ``nodes``, ``errors`` and
``client_certificates`` hold JSON (pydantic's ``Json`` decodes them).
"""

from __future__ import annotations

from typing import Annotated, Any

from interface_tester.schema_base import DataBagSchema
from pydantic import BaseModel, ConfigDict, Field, Json, StringConstraints, model_validator

PEM_CERTIFICATE = r"^\s*-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$"
ENDPOINT = r"^https://(\[[0-9a-f:.]+(%[^\]]+)?\]|[a-z0-9.-]+):[0-9]{1,5}$"
FINGERPRINT = r"^[0-9a-f]{64}$"
UNIT_NAME = r"^[a-z][a-z0-9-]*/[0-9]+$"
MAX_CERTIFICATES_PER_UNIT = 20
MAX_CERTIFICATES_FIELD_CHARS = 256 * 1024


#: Keys Juju itself writes into every unit bag; they are not the interface's.
JUJU_UNIT_KEYS = frozenset({"egress-subnets", "ingress-address", "private-address"})


def _bags_without_juju_keys(data: Any) -> Any:
    """Drop Juju's own unit keys, and treat a bag left empty as absent (None)."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for side in ("app", "unit"):
        bag = out.get(side)
        if isinstance(bag, dict):
            bag = {k: v for k, v in bag.items() if k not in JUJU_UNIT_KEYS}
            out[side] = bag or None
    return out


class Node(BaseModel):
    """One LXD server (cluster member) a requirer can connect to."""

    name: str = Field(min_length=1)
    endpoint: str = Field(pattern=ENDPOINT, description="https://host:port")
    trusted_certs_fp: list[Annotated[str, StringConstraints(pattern=FINGERPRINT)]] = Field(
        description="Fingerprints of this relation's certificates LXD trusts."
    )


class ProviderData(BaseModel):
    """The integrator's answer, in its app bag and in each of its units' bags."""

    model_config = ConfigDict(extra="allow")

    version: str = Field(pattern=r"^1\.[0-9]+$")
    nodes: Json[Annotated[list[Node], Field(min_length=1)]]
    errors: Json[dict[Annotated[str, StringConstraints(pattern=UNIT_NAME)], str]] | None = None


class RequirerUnitData(BaseModel):
    """A requiring unit's client certificates, as a JSON list of PEM strings."""

    model_config = ConfigDict(extra="allow")

    client_certificates: Annotated[
        Json[
            Annotated[
                list[Annotated[str, StringConstraints(pattern=PEM_CERTIFICATE)]],
                Field(max_length=MAX_CERTIFICATES_PER_UNIT),
            ]
        ],
        Field(max_length=MAX_CERTIFICATES_FIELD_CHARS),
    ]


class ProviderSchema(DataBagSchema):
    """The provider's side: the same answer in its app bag and its unit bag."""

    app: ProviderData
    unit: ProviderData | None = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_juju_keys(cls, data: Any) -> Any:
        return _bags_without_juju_keys(data)


class RequirerSchema(DataBagSchema):
    """The requirer's side: its certificates in its unit bag; it writes no app data."""

    unit: RequirerUnitData
    app: None = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_juju_keys(cls, data: Any) -> Any:
        return _bags_without_juju_keys(data)
