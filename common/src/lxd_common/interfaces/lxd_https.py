"""The `lxd-https` interface, from the published package `lxd_charms_interfaces`.

One source of truth: the models, schemas and requirer live in
``lxd_charms_interfaces.lxd_https`` (on PyPI as ``lxd-charms-interfaces``);
this module re-exports them for the charms here, which reach every
interface through ``lxd_common.interfaces``.
"""

from __future__ import annotations

from lxd_charms_interfaces.lxd_https import (
    PROVIDER_SCHEMA,
    REQUEST_KEYS,
    REQUIRER_SCHEMA,
    SUPPORTED_MAJOR,
    VERSION,
    ClientRequest,
    InterfaceError,
    LxdHttpsRequirer,
    ServerInfo,
    schemas_as_json,
)

__all__ = [
    "PROVIDER_SCHEMA",
    "REQUEST_KEYS",
    "REQUIRER_SCHEMA",
    "SUPPORTED_MAJOR",
    "VERSION",
    "ClientRequest",
    "InterfaceError",
    "LxdHttpsRequirer",
    "ServerInfo",
    "schemas_as_json",
]
