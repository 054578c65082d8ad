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


def ceiling_refusal(
    unit: str, request: ClientRequest, allowed: frozenset[str] | None
) -> str | None:
    """Why the operator's ceiling (`https-allowed-projects`) refuses this request, or None.

    Unrestricted access is root on every member, so under a ceiling it is
    refused like any project outside the list.
    """
    if allowed is None:
        return None
    shown = ", ".join(sorted(allowed))
    if request.projects is None:
        return f"{unit} asked for unrestricted access; allowed: {shown}"
    if set(request.projects) <= allowed:
        return None
    asked = ", ".join(request.projects)
    plural = "s" if len(request.projects) > 1 else ""
    return f"{unit} asked for project{plural} {asked}; allowed: {shown}"


def serve_client(
    trust: TrustStore,
    unit: str,
    bag: Mapping[str, str],
    recorded: str | None,
    allowed: frozenset[str] | None = None,
) -> ClientOutcome:
    """Bring one requiring unit's trust entry in line with what it asks for.

    A request that cannot be honoured (not a certificate, unknown project,
    unsupported version, beyond the operator's ceiling ``allowed``) removes
    the unit's previous entry: no access is safer than access nobody asked
    for any more, or that the operator no longer allows.
    """
    try:
        request = ClientRequest.from_databag(bag)
        if request is None:
            forget(trust, [recorded] if recorded else [])
            return ClientOutcome(unit)
        refused = ceiling_refusal(unit, request, allowed)
        if refused is not None:
            removed = forget(trust, [recorded] if recorded else [])
            if removed:
                refused += f" (its trust entry {removed[0]} was removed)"
            return ClientOutcome(unit, error=refused)
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


def forget(trust: TrustStore, fingerprints: Iterable[str]) -> list[str]:
    """Remove these entries; one already gone is fine (hooks are retried).

    Returns the names of the entries removed.
    """
    names = []
    for fingerprint in fingerprints:
        try:
            removed = trust.remove(fingerprint)
        except TrustEntryNotFoundError:
            continue
        logger.info("https relation: removed trust entry %s", removed.name)
        names.append(removed.name)
    return names
