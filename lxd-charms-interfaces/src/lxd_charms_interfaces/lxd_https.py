"""The `lxd-https` interface: trusted HTTPS access to LXD for related charms.

A requirer sends a client certificate (and optionally the projects it wants);
the LXD charm trusts it and answers with where and how to connect. The wire
format is the upstream LXD charm's, so requirers written for that charm work
unchanged; ``interfaces/lxd_https/v1/README.md`` in this package's repository
is the full specification.

Requirer charms use `LxdHttpsRequirer`::

    self.lxd = LxdHttpsRequirer(self, "lxd", certificate=my_cert_pem, projects=["ci"])
    ...
    for server in self.lxd.servers():
        connect(server.addresses, server.certificate)

Errors: `InterfaceError` (`lxd_charms_interfaces.InterfaceError`, a
`ValueError`) for relation data that does not follow this interface, with
the field named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import ops

from ._errors import InterfaceError

__all__ = [
    "PROVIDER_SCHEMA",
    "REQUEST_KEYS",
    "REQUIRER_SCHEMA",
    "VERSION",
    "ClientRequest",
    "InterfaceError",
    "LxdHttpsRequirer",
    "ServerInfo",
    "schemas_as_json",
]

VERSION: Final = "1.0"
REQUEST_KEYS: Final = ("version", "certificate", "projects", "autoremove")
"""Every key a requirer unit's request may hold."""
SUPPORTED_MAJOR: Final = "1"

_HOST_PORT = r"(\[[0-9a-fA-F:.]+\]|[^,:\s]+):\d+"
_PEM = r"^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$"

#: JSON schema of the requirer's unit databag (every Juju databag value is a string).
REQUIRER_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lxd-https requirer unit databag",
    "type": "object",
    "properties": {
        "version": {"type": "string", "pattern": r"^1\.\d+$"},
        "certificate": {"type": "string", "pattern": _PEM},
        "projects": {"type": "string", "pattern": r"^[^/\s'\"]*(,[^/\s'\"]*)*$"},
        "autoremove": {"type": "string", "enum": ["true", "false"]},
    },
    "required": ["version", "certificate"],
}

#: JSON schema of the provider's databag (app bag when clustered, unit bag when not).
PROVIDER_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lxd-https provider databag",
    "type": "object",
    "properties": {
        "version": {"type": "string", "pattern": r"^1\.\d+$"},
        "certificate": {"type": "string", "pattern": _PEM},
        "certificate_fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "addresses": {"type": "string", "pattern": rf"^$|^{_HOST_PORT}(,{_HOST_PORT})*$"},
    },
    # `addresses` is absent (Juju drops empty values) while LXD has no HTTPS listener.
    "required": ["version", "certificate", "certificate_fingerprint"],
}


def _check_version(bag: Mapping[str, str]) -> None:
    version = bag.get("version", "")
    if version.split(".")[0] != SUPPORTED_MAJOR:
        raise InterfaceError(
            f"unsupported lxd-https version {version!r} (this side speaks {VERSION})"
        )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class ClientRequest:
    """What a requirer unit asks for: trust for its certificate.

    ``projects=None`` asks for unrestricted access. An empty tuple cannot be
    sent: it would travel as an empty value, which Juju deletes, and arrive
    as a request for unrestricted access.
    """

    certificate: str = field(repr=False)
    projects: tuple[str, ...] | None = None
    autoremove: bool = False
    version: str = VERSION

    def __post_init__(self) -> None:
        """Refuse a request that would not mean on the wire what it says here.

        Raises:
            InterfaceError: ``projects`` is empty.
        """
        if self.projects is not None and not self.projects:
            raise InterfaceError(
                "projects is empty: Juju drops empty values, so the request would arrive "
                "as unrestricted; name at least one project, or None for unrestricted"
            )

    def to_databag(self) -> dict[str, str]:
        """The requirer unit's databag."""
        bag = {
            "version": self.version,
            "certificate": self.certificate,
            "autoremove": "true" if self.autoremove else "false",
        }
        if self.projects is not None:
            bag["projects"] = ",".join(self.projects)
        return bag

    @classmethod
    def from_databag(cls, bag: Mapping[str, str]) -> ClientRequest | None:
        """Read a requirer unit's databag; None while it has sent nothing yet.

        Raises:
            InterfaceError: an unsupported version or a malformed field.
        """
        if not bag.get("certificate"):
            return None
        _check_version(bag)
        autoremove = bag.get("autoremove", "false")
        # Upstream requirers may send JSON booleans, which Juju stores as text.
        if autoremove.strip().lower() not in ("true", "false", ""):
            raise InterfaceError(f"autoremove must be true or false, not {autoremove!r}")
        projects = bag.get("projects")
        return cls(
            certificate=bag["certificate"],
            projects=None if projects is None else _split(projects),
            autoremove=autoremove.strip().lower() == "true",
            version=bag["version"],
        )


@dataclass(frozen=True)
class ServerInfo:
    """What the LXD charm answers: where to connect, and the certificate to expect."""

    certificate: str = field(repr=False)
    certificate_fingerprint: str
    addresses: tuple[str, ...]
    version: str = VERSION

    def to_databag(self) -> dict[str, str]:
        """The provider's databag."""
        return {
            "version": self.version,
            "certificate": self.certificate,
            "certificate_fingerprint": self.certificate_fingerprint,
            "addresses": ",".join(self.addresses),
        }

    @classmethod
    def from_databag(cls, bag: Mapping[str, str]) -> ServerInfo | None:
        """Read a provider databag; None while it has answered nothing yet."""
        if not bag.get("certificate"):
            return None
        _check_version(bag)
        return cls(
            certificate=bag["certificate"],
            certificate_fingerprint=bag.get("certificate_fingerprint", ""),
            addresses=_split(bag.get("addresses", "")),
            version=bag["version"],
        )


class LxdHttpsRequirer(ops.Object):
    """Asks related LXD charms for trust, and reads back how to reach them.

    The certificate and projects are (re)sent on every relation-joined and
    relation-changed, and whenever `update` is called (for example after the
    charm rotates its certificate): the LXD charm replaces the old trust entry.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str,
        *,
        certificate: str,
        projects: Sequence[str] | None = None,
        autoremove: bool = True,
    ) -> None:
        super().__init__(charm, relation_name)
        self._relation_name = relation_name
        self.request = ClientRequest(
            certificate, None if projects is None else tuple(projects), autoremove
        )
        self.framework.observe(charm.on[relation_name].relation_joined, self._on_relation)
        self.framework.observe(charm.on[relation_name].relation_changed, self._on_relation)

    def _on_relation(self, _: ops.RelationEvent) -> None:
        self.update()

    def update(self, request: ClientRequest | None = None) -> None:
        """Publish ``request`` (or the current one) on every relation."""
        if request is not None:
            self.request = request
        wanted = self.request.to_databag()
        for relation in self.model.relations[self._relation_name]:
            # The whole request: a key this request no longer sends (``projects``,
            # once the restriction is dropped) goes, since Juju deletes empty values.
            relation.data[self.model.unit].update(
                {key: wanted.get(key, "") for key in REQUEST_KEYS}
            )

    def servers(self) -> list[ServerInfo]:
        """Each related LXD that has answered.

        A cluster answers once, in its application databag, for all its
        members; standalone units answer each in their own unit databag.
        """
        found: list[ServerInfo] = []
        for relation in self.model.relations[self._relation_name]:
            app_info = (
                ServerInfo.from_databag(relation.data[relation.app]) if relation.app else None
            )
            if app_info is not None:
                found.append(app_info)
                continue
            for unit in sorted(relation.units, key=lambda u: u.name):
                info = ServerInfo.from_databag(relation.data[unit])
                if info is not None:
                    found.append(info)
        return found


def schemas_as_json() -> str:
    """Both schemas as the JSON the interface document embeds."""
    return json.dumps({"requirer": REQUIRER_SCHEMA, "provider": PROVIDER_SCHEMA}, indent=2)


if __name__ == "__main__":  # `python -m lxd_charms_interfaces.lxd_https`: for the spec's README
    print(schemas_as_json())
