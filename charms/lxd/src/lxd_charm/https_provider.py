"""Serving the `https` relation: trust each requiring unit's certificate.

Each requiring unit gets exactly one trust entry, named after it the way the
upstream LXD charm names them (``juju-relation-<unit>``, plus
``:autoremove`` when asked), so existing tooling recognises them. Beyond
upstream, the charm records the fingerprint it registered for each unit, so
that a rotated certificate replaces the old entry, a changed project list
updates the restriction, and a departed unit or a broken relation removes
exactly what this relation added, never an entry an operator made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lxd_common.errors import (
    CertificateError,
    LxdApiError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.interfaces.lxd_https import ClientRequest, InterfaceError
from lxd_common.lxd import TrustStore

logger = logging.getLogger(__name__)

TRUST_PREFIX = "juju-relation-"
AUTOREMOVE_SUFFIX = ":autoremove"


def trust_name(unit: str, autoremove: bool) -> str:
    """The trust entry name for a requiring unit (upstream's convention)."""
    return f"{TRUST_PREFIX}{unit}{AUTOREMOVE_SUFFIX if autoremove else ''}"


@dataclass(frozen=True)
class ClientOutcome:
    """What serving one requiring unit did: its trusted fingerprint, or why not."""

    unit: str
    fingerprint: str | None = None
    error: str | None = None


def serve_client(
    trust: TrustStore, unit: str, bag: Mapping[str, str], recorded: str | None
) -> ClientOutcome:
    """Bring one requiring unit's trust entry in line with what it asks for.

    A request that cannot be honoured (not a certificate, unknown project,
    unsupported version) removes the unit's previous entry: no access is
    safer than access nobody asked for any more.
    """
    try:
        request = ClientRequest.from_databag(bag)
        if request is None:
            forget(trust, [recorded] if recorded else [])
            return ClientOutcome(unit)
        name = trust_name(unit, request.autoremove)
        projects = None if request.projects is None else list(request.projects)
        entry = trust.add(request.certificate, name=name, projects=projects)
    except (InterfaceError, CertificateError, ProjectNotFoundError, LxdApiError) as e:
        forget(trust, [recorded] if recorded else [])
        return ClientOutcome(unit, error=f"{unit}: {e}")
    stale = {e.fingerprint for e in trust.find_all(name)} | ({recorded} if recorded else set())
    stale.discard(entry.fingerprint)
    forget(trust, stale)
    return ClientOutcome(unit, fingerprint=entry.fingerprint)


def forget(trust: TrustStore, fingerprints: Iterable[str]) -> None:
    """Remove these entries; one already gone is fine (hooks are retried)."""
    for fingerprint in fingerprints:
        try:
            removed = trust.remove(fingerprint)
        except TrustEntryNotFoundError:
            continue
        logger.info("https relation: removed trust entry %s", removed.name)
