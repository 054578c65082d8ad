"""The lxd-https interface, v1: both sides' databags as pydantic (v2) models.

The charm-relation-interfaces layout: pytest-interface-tester loads
`ProviderSchema` and `RequirerSchema` from this file and validates a charm's
local databags against them. The JSON schemas in README.md (from
``lxd_charms_interfaces.lxd_https``) say the same; a unit test checks that
each accepts and refuses the same databags.

Every Juju databag value is a string; Juju deletes keys set to ``""``.
"""

from __future__ import annotations

from typing import Any, Literal

from interface_tester.schema_base import DataBagSchema
from pydantic import BaseModel, ConfigDict, Field, model_validator

PEM_CERTIFICATE = r"^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$"
HOST_PORT = r"(\[[0-9a-fA-F:.]+\]|[^,:\s]+):\d+"


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


class RequirerUnitData(BaseModel):
    """A requiring unit's request: trust this certificate (for these projects)."""

    model_config = ConfigDict(extra="allow")  # Juju's own keys (egress-subnets, ...)

    version: str = Field(pattern=r"^1\.\d+$", description="Interface version, '1.0'.")
    certificate: str = Field(pattern=PEM_CERTIFICATE, description="PEM client certificate.")
    projects: str | None = Field(
        default=None,
        pattern=r"^[^/\s'\"]*(,[^/\s'\"]*)*$",
        description="Comma-separated LXD projects; absent means unrestricted.",
    )
    autoremove: Literal["true", "false"] | None = Field(
        default=None, description="Remove the trust entry when the relation is broken."
    )


class ProviderData(BaseModel):
    """The LXD charm's answer: app bag when clustered, each unit's bag when standalone."""

    model_config = ConfigDict(extra="allow")

    version: str = Field(pattern=r"^1\.\d+$")
    certificate: str = Field(pattern=PEM_CERTIFICATE, description="LXD's server certificate.")
    certificate_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    addresses: str | None = Field(
        default=None,
        pattern=rf"^$|^{HOST_PORT}(,{HOST_PORT})*$",
        description="host:port of each HTTPS listener; absent while there is none.",
    )


class ProviderSchema(DataBagSchema):
    """The provider's side: its answer in the app bag (clustered) or unit bag (standalone)."""

    app: ProviderData | None = None
    unit: ProviderData | None = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_juju_keys(cls, data: Any) -> Any:
        return _bags_without_juju_keys(data)

    @model_validator(mode="after")
    def _answered_somewhere(self) -> ProviderSchema:
        if self.app is None and self.unit is None:
            raise ValueError("the provider answered in neither its app nor its unit bag")
        return self


class RequirerSchema(DataBagSchema):
    """The requirer's side: its request in its unit bag; it writes no app data."""

    unit: RequirerUnitData
    app: None = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_juju_keys(cls, data: Any) -> Any:
        return _bags_without_juju_keys(data)
