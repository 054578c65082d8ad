"""A typed client for LXD daemons, on pylxd.

Connect with :meth:`LxdClient.local` (Unix socket, found in the order Juju
uses: ``LXD_DIR``, the snap's socket, Debian's socket) or
:meth:`LxdClient.remote` (HTTPS with a client certificate, the server's
certificate pinned)::

    from lxd_common.lxd import LxdClient

    with LxdClient.local(wait=30) as lxd:
        lxd.apply_preseed(preseed_yaml)
        lxd.set_server_config({"core.https_address": "10.0.0.1:8443"})
        entry = lxd.trust.add(cert_pem, name="ci", projects=["ci"])
        token = lxd.cluster.add_join_token("node2")
        StoragePools(lxd.pylxd).create("remote", "ceph", {"source": "lxd"}, members=["m1"])

Errors (all in :mod:`lxd_common.errors`, all subclasses of ``LxdError``):

- ``LxdNotFoundError``: no local socket.
- ``LxdUnreachableError``: no answer, or not in time.
- ``LxdNotTrustedError``: the daemon does not trust our certificate.
- ``PreseedError``: a preseed is malformed (also a ``ValueError``).
- ``ProjectNotFoundError``, ``TrustEntryNotFoundError``: trust store lookups.
- ``MemberExistsError``, ``MemberNotFoundError``, ``MemberHasInstancesError``,
  ``ClusterError``: cluster membership.
- ``StoragePoolInUseError``: a pool to delete still holds volumes.
- ``LxdApiError``: LXD refused a request; the message is LXD's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxd_common._lazy import lazy_exports

if TYPE_CHECKING:
    from ._api import transient
    from ._client import ExistingSetup, LxdClient
    from ._cluster import (
        DEFAULT_FAILURE_DOMAIN,
        EVACUATION_MODES,
        Cluster,
        ClusterMember,
        JoinToken,
        Placement,
        decode_join_token,
    )
    from ._preseed import join_preseed, parse_preseed
    from ._socket import DEBIAN_SOCKET, SNAP_SOCKET, find_socket, socket_candidates
    from ._storage import StoragePool, StoragePools
    from ._trust import CERTIFICATE_TYPES, CertificateType, ClientToken, TrustEntry, TrustStore

# Each name loads its private module on first use (PEP 562): a hook that never
# talks to LXD (or snapd) never pays for importing what does.
_HOMES: dict[str, str] = {
    "CERTIFICATE_TYPES": "._trust",
    "CertificateType": "._trust",
    "ClientToken": "._trust",
    "Cluster": "._cluster",
    "DEFAULT_FAILURE_DOMAIN": "._cluster",
    "EVACUATION_MODES": "._cluster",
    "Placement": "._cluster",
    "ClusterMember": "._cluster",
    "DEBIAN_SOCKET": "._socket",
    "ExistingSetup": "._client",
    "JoinToken": "._cluster",
    "LxdClient": "._client",
    "SNAP_SOCKET": "._socket",
    "StoragePool": "._storage",
    "StoragePools": "._storage",
    "TrustEntry": "._trust",
    "TrustStore": "._trust",
    "decode_join_token": "._cluster",
    "find_socket": "._socket",
    "join_preseed": "._preseed",
    "parse_preseed": "._preseed",
    "socket_candidates": "._socket",
    "transient": "._api",
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())

__all__ = [
    "CERTIFICATE_TYPES",
    "DEBIAN_SOCKET",
    "DEFAULT_FAILURE_DOMAIN",
    "EVACUATION_MODES",
    "SNAP_SOCKET",
    "CertificateType",
    "ClientToken",
    "Cluster",
    "ClusterMember",
    "ExistingSetup",
    "JoinToken",
    "LxdClient",
    "Placement",
    "StoragePool",
    "StoragePools",
    "TrustEntry",
    "TrustStore",
    "decode_join_token",
    "find_socket",
    "join_preseed",
    "parse_preseed",
    "socket_candidates",
    "transient",
]
