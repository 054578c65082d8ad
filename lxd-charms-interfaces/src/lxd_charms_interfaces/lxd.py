"""The `lxd` interface (v1.0): related charms reach an LXD cluster with their own certificates.

The provider (the lxd-integrator's ``api`` endpoint) publishes where LXD is;
each requirer unit sends the client certificates it wants LXD to trust, and
the provider reports which of them LXD's trust store now holds. The wire
format is the upstream lxd-integrator's, so requirers written for it work
unchanged; ``interfaces/lxd/v1/README.md`` in this package's repository is
the full specification, and it embeds `PROVIDER_SCHEMA` and `REQUIRER_SCHEMA`
from this module (``python -m lxd_charms_interfaces.lxd`` prints them).

Provider databags (application bag, written by the leader, and every unit's
own bag, for requirers that read ``event.unit``):

- ``version``: ``"1.0"`` (plain text, as upstream writes it).
- ``nodes``: JSON list of ``{"name", "endpoint", "trusted_certs_fp"}``, one per
  LXD cluster member (or the single server), ``endpoint`` complete with
  scheme and port, ``trusted_certs_fp`` the fingerprints of this relation's
  certificates that LXD's trust store holds.
- ``errors`` (optional, an addition to upstream): JSON object mapping a
  requiring unit's name to why its certificates were refused.

Requirer unit databag:

- ``client_certificates``: JSON list of PEM certificates, at most
  `MAX_CERTIFICATES_PER_UNIT`.

Requirer charms use `LxdRequirer`::

    self.lxd = LxdRequirer(self, "lxd", certificates=[my_cert_pem])
    ...
    if self.lxd.is_trusted():
        for node in self.lxd.nodes():
            connect(node.endpoint, my_cert_pem, my_key_pem)

The provider side is the lxd-integrator charm; it uses `ProviderData`,
`Node` and `RequirerData` directly.

Errors: `InterfaceError` (`lxd_charms_interfaces.InterfaceError`, a
`ValueError`) for relation data that does not follow this interface; its
message names the field and never contains certificate text.

Certificates are checked with the standard library (exactly one PEM
CERTIFICATE block of well-formed DER; LXD's fingerprint is the SHA-256 of
that DER), so the package needs nothing but ``ops``. A provider that wants
a full X.509 parse sets `RequirerData.check_certificate` in a subclass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import ops

from ._endpoint import read_endpoint
from ._errors import InterfaceError
from ._pem import certificate_fingerprint

__all__ = [
    "MAX_CERTIFICATES_FIELD_CHARS",
    "MAX_CERTIFICATES_PER_UNIT",
    "PROVIDER_SCHEMA",
    "REQUIRER_SCHEMA",
    "VERSION",
    "ClientCertificate",
    "InterfaceError",
    "LxdRequirer",
    "Node",
    "ProviderData",
    "RequirerData",
    "schemas_as_json",
]

VERSION: Final = "1.0"
SUPPORTED_MAJOR: Final = "1"

MAX_CERTIFICATES_PER_UNIT: Final = 20
"""Certificates one requiring unit may ask to have trusted; more are refused, all of them."""

MAX_CERTIFICATES_FIELD_CHARS: Final = 256 * 1024
"""Longest ``client_certificates`` value read at all (20 large RSA certificates fit easily)."""

_PEM_CERTIFICATE = r"^\s*-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$"
_ENDPOINT = r"^https://(\[[0-9a-f:.]+(%[^\]]+)?\]|[a-z0-9.-]+):[0-9]{1,5}$"
_FINGERPRINT = r"^[0-9a-f]{64}$"
_UNIT_NAME = r"^[a-z][a-z0-9-]*/[0-9]+$"

NODES_SCHEMA: Final[dict[str, Any]] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "endpoint": {"type": "string", "pattern": _ENDPOINT},
            "trusted_certs_fp": {
                "type": "array",
                "items": {"type": "string", "pattern": _FINGERPRINT},
                "uniqueItems": True,
            },
        },
        "required": ["name", "endpoint", "trusted_certs_fp"],
    },
    "minItems": 1,
}

#: JSON schema of the provider's databags (application and unit). Every Juju
#: databag value is a string; those holding JSON carry `contentSchema`.
PROVIDER_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lxd provider databag (application and unit)",
    "type": "object",
    "properties": {
        "version": {"type": "string", "pattern": r"^1\.[0-9]+$"},
        "nodes": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": NODES_SCHEMA,
        },
        "errors": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "propertyNames": {"pattern": _UNIT_NAME},
                "additionalProperties": {"type": "string", "minLength": 1},
            },
        },
    },
    "required": ["version", "nodes"],
}

#: JSON schema of a requirer unit's databag.
REQUIRER_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lxd requirer unit databag",
    "type": "object",
    "properties": {
        "client_certificates": {
            "type": "string",
            "maxLength": MAX_CERTIFICATES_FIELD_CHARS,
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "array",
                "items": {"type": "string", "pattern": _PEM_CERTIFICATE},
                "maxItems": MAX_CERTIFICATES_PER_UNIT,
            },
        },
    },
}


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _decode(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise InterfaceError(f"{what} is not valid JSON") from None


# --- provider ----------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One LXD server a requirer can connect to.

    Attributes:
        name: the cluster member's name (the server name when not clustered).
        endpoint: ``https://host:port``.
        trusted_certs_fp: SHA-256 fingerprints (LXD's form) of this
            relation's certificates that LXD trusts, sorted.
    """

    name: str
    endpoint: str
    trusted_certs_fp: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The node as it appears in the ``nodes`` list (fingerprints sorted, no repeats)."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "trusted_certs_fp": sorted(set(self.trusted_certs_fp)),
        }

    @classmethod
    def from_json(cls, data: object) -> Node:
        """Read one item of ``nodes``.

        ``trusted_certs_fp`` may also be a JSON string of a list, which some
        upstream providers wrote.

        Raises:
            InterfaceError: a field is missing or malformed.
        """
        if not isinstance(data, dict):
            raise InterfaceError(f"each node must be a JSON object, not a {_json_type(data)}")
        name, endpoint = data.get("name"), data.get("endpoint")
        if not isinstance(name, str) or not name:
            raise InterfaceError("a node has no name")
        if not isinstance(endpoint, str):
            raise InterfaceError(f"node {name!r} has no endpoint")
        try:
            endpoint = read_endpoint(endpoint)
        except ValueError as e:
            raise InterfaceError(f"node {name!r}: {e}") from None
        fps: object = data.get("trusted_certs_fp") or []
        if isinstance(fps, str):
            fps = _decode(fps, f"trusted_certs_fp of node {name!r}")
        if not isinstance(fps, list) or not all(isinstance(fp, str) for fp in fps):
            raise InterfaceError(f"trusted_certs_fp of node {name!r} must be a list of strings")
        return cls(name, endpoint, tuple(sorted({fp.lower() for fp in fps})))


@dataclass(frozen=True)
class ProviderData:
    """What the provider publishes, in its application bag and in each unit's bag.

    Attributes:
        nodes: every LXD server, sorted by name.
        errors: requiring unit name -> why its certificates were refused.
        version: the interface version.
    """

    nodes: tuple[Node, ...]
    errors: Mapping[str, str] = field(default_factory=dict)
    version: str = VERSION

    def to_databag(self) -> dict[str, str]:
        """The databag; ``errors`` is ``""`` (which Juju deletes) when there are none."""
        return {
            "version": self.version,
            "nodes": json.dumps([node.to_json() for node in self.nodes], sort_keys=True),
            "errors": json.dumps(dict(sorted(self.errors.items()))) if self.errors else "",
        }

    @classmethod
    def from_databag(cls, bag: Mapping[str, str]) -> ProviderData | None:
        """Read a provider databag; None while it has published no nodes.

        Raises:
            InterfaceError: an unsupported version or a malformed field.
        """
        raw_nodes = bag.get("nodes", "")
        if not raw_nodes.strip():
            return None
        version = bag.get("version", "")
        if version.split(".")[0] != SUPPORTED_MAJOR:
            raise InterfaceError(
                f"unsupported lxd version {version!r} (this side speaks {VERSION})"
            )
        nodes = _decode(raw_nodes, "nodes")
        if not isinstance(nodes, list):
            raise InterfaceError(f"nodes must be a JSON list, not a {_json_type(nodes)}")
        errors: object = _decode(bag["errors"], "errors") if bag.get("errors") else {}
        if not isinstance(errors, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in errors.items()
        ):
            raise InterfaceError("errors must be a JSON object of unit names to messages")
        return cls(
            nodes=tuple(sorted((Node.from_json(n) for n in nodes), key=lambda n: n.name)),
            errors=errors,
            version=version,
        )

    def trusted_fingerprints(self) -> frozenset[str]:
        """Fingerprints every node reports as trusted (clustered members share one store)."""
        if not self.nodes:
            return frozenset()
        return frozenset.intersection(*(frozenset(n.trusted_certs_fp) for n in self.nodes))


# --- requirer ----------------------------------------------------------------


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate a requirer sent, checked to be exactly one X.509 certificate."""

    pem: str = field(repr=False)
    fingerprint: str


_Request = TypeVar("_Request", bound="RequirerData")


@dataclass(frozen=True)
class RequirerData:
    """What one requiring unit asks for: trust for these certificates (no duplicates).

    `check_certificate` is how each certificate is checked and fingerprinted:
    the standard-library check here; a subclass may set a stricter one (a
    full X.509 parse), raising `ValueError` with a message that never holds
    the certificate's text.
    """

    client_certificates: tuple[ClientCertificate, ...] = ()

    @staticmethod
    def check_certificate(pem: str) -> str:
        """LXD's fingerprint of ``pem``, once it is checked to be exactly one certificate.

        Raises:
            ValueError: it is not; the message never holds the text.
        """
        return certificate_fingerprint(pem)

    def to_databag(self) -> dict[str, str]:
        """The requirer unit's databag."""
        return {"client_certificates": json.dumps([c.pem for c in self.client_certificates])}

    @classmethod
    def from_pems(cls: type[_Request], pems: Sequence[object]) -> _Request:
        """Check a list of PEM certificates, dropping repeats.

        Raises:
            InterfaceError: more than `MAX_CERTIFICATES_PER_UNIT`, or an item
                that is not exactly one certificate (a private key, garbage,
                a chain); the message says which item, never its text.
        """
        if len(pems) > MAX_CERTIFICATES_PER_UNIT:
            raise InterfaceError(
                f"{len(pems)} certificates sent; at most {MAX_CERTIFICATES_PER_UNIT} "
                "are accepted per unit"
            )
        seen: dict[str, ClientCertificate] = {}
        for number, pem in enumerate(pems, start=1):
            where = f"certificate {number} of {len(pems)}"
            if not isinstance(pem, str):
                raise InterfaceError(f"{where} is a JSON {_json_type(pem)}, not PEM text")
            try:
                fp = cls.check_certificate(pem)
            except ValueError as e:
                raise InterfaceError(f"{where}: {e}") from None
            seen.setdefault(fp, ClientCertificate(pem.strip() + "\n", fp))
        return cls(tuple(seen.values()))

    @classmethod
    def from_databag(cls: type[_Request], bag: Mapping[str, str]) -> _Request:
        """Read a requirer unit's databag; empty while it has sent nothing.

        The size is checked before the JSON is parsed, so 10,000 certificates
        cost one length check, not 10,000 parses.

        Raises:
            InterfaceError: the field is too long, not JSON, not a list, or
                holds too many or invalid certificates.
        """
        raw = bag.get("client_certificates", "")
        if not raw.strip():
            return cls()
        if len(raw) > MAX_CERTIFICATES_FIELD_CHARS:
            raise InterfaceError(
                f"client_certificates is {len(raw)} characters long; at most "
                f"{MAX_CERTIFICATES_PER_UNIT} certificates ({MAX_CERTIFICATES_FIELD_CHARS} "
                "characters) are accepted per unit"
            )
        value = _decode(raw, "client_certificates")
        if not isinstance(value, list):
            raise InterfaceError(
                f"client_certificates must be a JSON list of PEM certificates, "
                f"not a {_json_type(value)}"
            )
        return cls.from_pems(value)

    @property
    def fingerprints(self) -> frozenset[str]:
        """The fingerprints of the certificates asked for."""
        return frozenset(c.fingerprint for c in self.client_certificates)


class LxdRequirer(ops.Object):
    """Sends this unit's client certificates to the provider and reads back where LXD is.

    The certificates are (re)sent on every relation-joined and relation-changed
    (so a unit whose bag lost them, or never had them, sends them again; the
    same data again changes nothing and triggers no hook), and whenever
    `update` is called (for example after the charm rotates its certificate):
    the provider then trusts the new ones and removes the ones no longer sent.
    Read the provider's answer in your own relation-changed handler.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = "lxd",
        *,
        certificates: Sequence[str] = (),
    ) -> None:
        """Set up the requirer.

        Raises:
            InterfaceError: a certificate is not exactly one PEM certificate,
                or there are more than `MAX_CERTIFICATES_PER_UNIT`.
        """
        super().__init__(charm, relation_name)
        self._relation_name = relation_name
        self.request = RequirerData.from_pems(list(certificates))
        self.framework.observe(charm.on[relation_name].relation_joined, self._on_relation)
        self.framework.observe(charm.on[relation_name].relation_changed, self._on_relation)

    def _on_relation(self, _: ops.RelationEvent) -> None:
        self.update()

    def update(self, certificates: Sequence[str] | None = None) -> None:
        """Send ``certificates`` (or the current ones) on every relation.

        Raises:
            InterfaceError: as for the constructor.
        """
        if certificates is not None:
            self.request = RequirerData.from_pems(list(certificates))
        for relation in self.model.relations[self._relation_name]:
            relation.data[self.model.unit].update(self.request.to_databag())

    def provider_data(self, relation: ops.Relation | None = None) -> ProviderData | None:
        """The provider's answer on ``relation`` (default: the only one), or None yet.

        The application bag is read first; a provider that only writes its
        unit bags (as upstream did) is read from its first unit that has.

        Raises:
            InterfaceError: the provider's data does not follow the interface.
        """
        relation = relation or self.model.get_relation(self._relation_name)
        if relation is None:
            return None
        if relation.app is not None:
            data = ProviderData.from_databag(relation.data[relation.app])
            if data is not None:
                return data
        for unit in sorted(relation.units, key=lambda u: u.name):
            data = ProviderData.from_databag(relation.data[unit])
            if data is not None:
                return data
        return None

    def nodes(self) -> list[Node]:
        """The LXD servers to connect to (empty until the provider has answered)."""
        data = self.provider_data()
        return list(data.nodes) if data else []

    def is_trusted(self) -> bool:
        """True once every certificate this unit sent is trusted on every node."""
        data = self.provider_data()
        if data is None or not self.request.client_certificates:
            return False
        return self.request.fingerprints <= data.trusted_fingerprints()

    def error(self) -> str | None:
        """Why the provider refused this unit's certificates, if it did."""
        data = self.provider_data()
        return data.errors.get(self.model.unit.name) if data else None


def schemas_as_json() -> str:
    """Both schemas as the JSON the interface document embeds."""
    return json.dumps({"provider": PROVIDER_SCHEMA, "requirer": REQUIRER_SCHEMA}, indent=2)


if __name__ == "__main__":  # `python -m lxd_charms_interfaces.lxd`: for the spec's README
    print(schemas_as_json())
