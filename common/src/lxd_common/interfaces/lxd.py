"""The `lxd` interface, from the published package `lxd_charms_interfaces`.

One source of truth: the models, schemas and requirer live in
``lxd_charms_interfaces.lxd`` (on PyPI as ``lxd-charms-interfaces``); this
module re-exports them, with one difference for the provider side.
`RequirerData` here parses each certificate a requirer sends with
``cryptography`` (`lxd_common.certs.load_certificate`): the lxd-integrator
registers those certificates in LXD's trust store, so it refuses anything
that is not a valid X.509 certificate before LXD sees it. The package's own
check, which requirers use on their own certificates, is a standard-library
structural one (the package depends on ``ops`` alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxd_charms_interfaces import lxd as _lib
from lxd_charms_interfaces.lxd import (
    MAX_CERTIFICATES_FIELD_CHARS,
    MAX_CERTIFICATES_PER_UNIT,
    NODES_SCHEMA,
    PROVIDER_SCHEMA,
    REQUIRER_SCHEMA,
    SUPPORTED_MAJOR,
    VERSION,
    ClientCertificate,
    InterfaceError,
    LxdRequirer,
    Node,
    ProviderData,
    schemas_as_json,
)

from ..certs import fingerprint, load_certificate

__all__ = [
    "MAX_CERTIFICATES_FIELD_CHARS",
    "MAX_CERTIFICATES_PER_UNIT",
    "NODES_SCHEMA",
    "PROVIDER_SCHEMA",
    "REQUIRER_SCHEMA",
    "SUPPORTED_MAJOR",
    "VERSION",
    "ClientCertificate",
    "InterfaceError",
    "LxdRequirer",
    "Node",
    "ProviderData",
    "RequirerData",
    "schemas_as_json",
]


@dataclass(frozen=True)
class RequirerData(_lib.RequirerData):
    """`lxd_charms_interfaces.lxd.RequirerData`, each certificate parsed as X.509."""

    @staticmethod
    def check_certificate(pem: str) -> str:
        """LXD's fingerprint of ``pem`` once ``cryptography`` has parsed it as X.509.

        Raises:
            CertificateError: (a ``ValueError``) it is not exactly one valid certificate.
        """
        return fingerprint(load_certificate(pem))
