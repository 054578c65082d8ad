"""The `certificates` relation (tls-certificates): the client certificate LXD shows OVN.

Two generations of certificate authorities answer on this relation, and the
charm takes either:

* today's tls-certificates interface, through the
  `charmlibs-interfaces-tls-certificates` library: the library keeps a
  private key generated on this unit (in a Juju secret), sends a CSR in the
  unit's databag, and the provider answers with the signed certificate and
  its CA in the application databag;
* what the OVN charms' certificate authority (vault's reactive provider)
  sends every related unit today: `ca`, `client.cert` and `client.key` in
  its unit databag, which is what existing OVN deployments rely on.

The library costs about 90 ms of import (pydantic) on a hook, so it is
imported only when a `certificates` relation exists: `attach` is the only
place it is loaded. See docs/interfaces/tls-certificates.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import ops

if TYPE_CHECKING:
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )

    from lxd_charm.ovn import TlsMaterial

RELATION: Final = "certificates"
LEGACY_KEYS: Final = ("ca", "client.cert", "client.key")


def attach(charm: ops.CharmBase) -> TLSCertificatesRequiresV4 | None:
    """The library's requirer for this hook, or None while nothing is related.

    Built in the charm's `__init__`, so that the library observes the
    relation's events (it sends the CSR and renews from them) ahead of the
    charm's own handlers. Also built in the relation's broken hook, where
    ops no longer lists the relation: that hook is the library's one chance
    to remove the private key secret it keeps for this unit (and its
    certificate secrets); nothing else knows that secret is the library's.
    """
    if not charm.model.relations.get(RELATION) and not _breaking(environ=os.environ):
        return None
    from charmlibs.interfaces.tls_certificates import Mode, TLSCertificatesRequiresV4

    return TLSCertificatesRequiresV4(
        charm, RELATION, certificate_requests=[certificate_request(charm)], mode=Mode.UNIT
    )


def _breaking(environ: Mapping[str, str]) -> bool:
    """Whether this hook is the `certificates` relation's broken hook (Juju's dispatch path)."""
    return environ.get("JUJU_DISPATCH_PATH", "") == f"hooks/{RELATION}-relation-broken"


def certificate_request(charm: ops.CharmBase) -> CertificateRequestAttributes:
    """What this unit asks the CA to certify: its own name, the same in every hook.

    OVN's northbound database checks only that the CA signed a client
    certificate, not what it names; a name that never changes keeps the
    library from asking for a new certificate each hook.
    """
    from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes

    return CertificateRequestAttributes(
        common_name=charm.unit.name.replace("/", "-"), organizational_unit=charm.app.name
    )


def current_material(
    charm: ops.CharmBase, requirer: TLSCertificatesRequiresV4 | None
) -> TlsMaterial | None:
    """The TLS material the `certificates` relation offers now, or None (not yet).

    A certificate issued for this unit's CSR wins over the legacy shared
    client certificate: it is the one that can be rotated and revoked alone.

    Raises:
        CertificateError: the provider sent material that cannot work
            (missing CA, a certificate that does not match its key...).
    """
    relations = charm.model.relations.get(RELATION) or []
    if requirer is not None:
        issued, key = requirer.get_assigned_certificate(certificate_request(charm))
        if issued is not None and key is not None:
            chain = "".join(str(cert) + "\n" for cert in [issued.ca, *_chain_cas(issued)])
            from lxd_charm.ovn import TlsMaterial

            return TlsMaterial.from_pem(
                ca=chain,
                certificate=str(issued.certificate),
                private_key=str(key),
                source=f"{relations[0].app.name if relations else RELATION} (tls-certificates)",
            )
    for relation in relations:
        for unit in sorted(relation.units, key=lambda u: u.name):
            bag = relation.data[unit]
            if not any(bag.get(key) for key in LEGACY_KEYS):
                continue
            from lxd_charm.ovn import TlsMaterial

            return TlsMaterial.from_pem(
                ca=bag.get("ca", ""),
                certificate=bag.get("client.cert", ""),
                private_key=bag.get("client.key", ""),
                source=unit.name,
            )
    return None


def _chain_cas(issued: Any) -> list[Any]:
    """The chain's certificates above the CA itself, without the leaf or repeats."""
    seen = {str(issued.certificate), str(issued.ca)}
    extra = []
    for cert in issued.chain or []:
        if str(cert) not in seen:
            seen.add(str(cert))
            extra.append(cert)
    return extra


def provider_name(charm: ops.CharmBase) -> str:
    """The related certificate authority's application name ('' when none)."""
    relations = charm.model.relations.get(RELATION) or []
    return relations[0].app.name if relations else ""
