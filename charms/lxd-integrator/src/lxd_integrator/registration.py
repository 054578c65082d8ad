"""Which requirer certificates LXD's trust store should hold, and getting it there.

Every requiring unit sends a list of client certificates on its relation.
The leader reconciles the trust store with all of them at once (all
relations, all units), so a certificate two units share survives either
one departing, and entries left behind by a relation that is gone are
cleaned up on the next reconcile.

Naming. Each entry the integrator creates is named
``<app>:<model uuid, first 8 hex digits>:<relation id>:<requiring unit>``,
e.g. ``lxd-integrator:5a1f03c2:7:myapp/0``. Application and unit names cannot
contain ``:``, so the name parses back unambiguously; the model part keeps two
models' integrators on one LXD apart (relation ids are only unique in a
model); and an operator reading ``lxc config trust list`` sees who asked.
Only entries whose name starts with this application's and model's prefix
are ever renamed or removed: certificates an operator (or anyone else)
trusted are left alone, and count as trusted when a requirer sends them.

Usage:
    names = EntryNames(app="lxd-integrator", model_uuid=model.uuid)
    plan = plan_trust(wanted, lxd.trust.entries(), names)
    result = apply_plan(lxd.trust, plan)          # leader only
    fingerprints = trusted_by_relation(wanted, result.trusted)

`apply_plan` raises `lxd_common.errors.LxdError` when LXD fails to remove an
entry (a certificate that should lose access must not silently keep it);
an addition LXD refuses is reported per requiring unit instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxd_common.errors import LxdApiError, ProjectNotFoundError, TrustEntryNotFoundError
from lxd_common.interfaces.lxd import ClientCertificate, RequirerData
from lxd_common.lxd import TrustEntry, TrustStore

logger = logging.getLogger(__name__)

MODEL_UUID_CHARS = 8
CLIENT = "client"


@dataclass(frozen=True, order=True)
class Requester:
    """One requiring unit on one relation."""

    relation_id: int
    unit: str

    def __str__(self) -> str:
        return self.unit


@dataclass(frozen=True)
class EntryNames:
    """Names this integrator gives its trust entries, and reads them back."""

    app: str
    model_uuid: str

    @property
    def prefix(self) -> str:
        """What every entry of this application in this model starts with."""
        return f"{self.app}:{self.model_uuid[:MODEL_UUID_CHARS]}:"

    def name(self, requester: Requester) -> str:
        """The entry name for ``requester``'s certificates."""
        return f"{self.prefix}{requester.relation_id}:{requester.unit}"

    def requester(self, entry_name: str) -> Requester | None:
        """Whose entry this is, or None if this integrator did not create it."""
        if not entry_name.startswith(self.prefix):
            return None
        relation, _, unit = entry_name[len(self.prefix) :].partition(":")
        if not relation.isdecimal() or not unit or ":" in unit:
            return None
        return Requester(int(relation), unit)


@dataclass(frozen=True)
class Addition:
    """A certificate to trust, named after the first unit that asked for it."""

    name: str
    certificate: ClientCertificate
    requesters: tuple[Requester, ...]


@dataclass(frozen=True)
class Rename:
    """One of our entries whose named unit no longer wants it, but another does."""

    fingerprint: str
    old_name: str
    new_name: str


@dataclass(frozen=True)
class Restriction:
    """One of our entries whose project restriction is not the operator's ceiling."""

    fingerprint: str
    name: str


@dataclass(frozen=True)
class Removal:
    """One of our entries nobody asks for any more."""

    fingerprint: str
    name: str


@dataclass(frozen=True)
class TrustPlan:
    """What to change in the trust store, and what is already right.

    Attributes:
        additions: certificates to add.
        renames: entries to rename to a unit that still wants them.
        removals: our entries to remove.
        restrictions: our entries to restrict to ``projects``.
        present: fingerprints already trusted as client certificates.
        refusals: why some units' certificates cannot be trusted.
        projects: the restriction of every entry this integrator makes (the
            operator's `allowed-projects`); None: unrestricted.
    """

    additions: tuple[Addition, ...] = ()
    renames: tuple[Rename, ...] = ()
    removals: tuple[Removal, ...] = ()
    restrictions: tuple[Restriction, ...] = ()
    present: frozenset[str] = frozenset()
    refusals: Mapping[Requester, str] = field(default_factory=dict)
    projects: tuple[str, ...] | None = None

    @property
    def changes(self) -> bool:
        """True when applying the plan would change the trust store."""
        return bool(self.additions or self.renames or self.removals or self.restrictions)


@dataclass(frozen=True)
class ApplyResult:
    """What the trust store holds after `apply_plan`, and what LXD refused."""

    trusted: frozenset[str]
    refusals: Mapping[Requester, str]


def plan_trust(
    wanted: Mapping[Requester, RequirerData],
    entries: Sequence[TrustEntry],
    names: EntryNames,
    projects: tuple[str, ...] | None = None,
) -> TrustPlan:
    """Compare what requirers ask for with the trust store's entries.

    Args:
        wanted: each requiring unit's (valid) request.
        entries: every entry of the trust store.
        names: this integrator's naming.
        projects: what every entry this integrator makes is restricted to
            (the operator's ceiling); None: unrestricted.

    Returns:
        The plan; applying it leaves exactly the wanted certificates in
        entries named by this integrator.
    """
    askers: dict[str, list[Requester]] = {}
    certificates: dict[str, ClientCertificate] = {}
    for requester in sorted(wanted):
        for cert in wanted[requester].client_certificates:
            askers.setdefault(cert.fingerprint, []).append(requester)
            certificates.setdefault(cert.fingerprint, cert)
    by_fingerprint = {entry.fingerprint: entry for entry in entries}

    additions: list[Addition] = []
    renames: list[Rename] = []
    restrictions: list[Restriction] = []
    present: set[str] = set()
    refusals: dict[Requester, list[str]] = {}
    for fp, requesters in askers.items():
        entry = by_fingerprint.get(fp)
        if entry is None:
            additions.append(
                Addition(names.name(requesters[0]), certificates[fp], tuple(requesters))
            )
            continue
        if entry.type != CLIENT:
            for requester in requesters:
                refusals.setdefault(requester, []).append(
                    f"certificate {fp[:12]} is LXD's own {entry.type} certificate, "
                    "not a client certificate"
                )
            continue
        present.add(fp)
        owner = names.requester(entry.name)
        if owner is not None and owner not in requesters:
            renames.append(Rename(fp, entry.name, names.name(requesters[0])))
        elif owner is not None and _restriction(entry) != projects:
            restrictions.append(Restriction(fp, entry.name))

    removals = [
        Removal(entry.fingerprint, entry.name)
        for entry in entries
        if entry.type == CLIENT
        and entry.fingerprint not in askers
        and names.requester(entry.name) is not None
    ]
    return TrustPlan(
        additions=tuple(additions),
        renames=tuple(renames),
        removals=tuple(sorted(removals, key=lambda r: (r.name, r.fingerprint))),
        restrictions=tuple(restrictions),
        present=frozenset(present),
        refusals={r: "; ".join(reasons) for r, reasons in refusals.items()},
        projects=projects,
    )


def _restriction(entry: TrustEntry) -> tuple[str, ...] | None:
    """An entry's project restriction in the plan's terms (None: unrestricted)."""
    return tuple(sorted(entry.projects)) if entry.restricted else None


def apply_plan(trust: TrustStore, plan: TrustPlan) -> ApplyResult:
    """Make the trust store match the plan: removals first, then renames, then additions.

    Removing first means a certificate that lost its requester loses access
    even if a later step fails. Entries that vanished meanwhile (another
    hook, an operator) are not an error.

    Raises:
        LxdError: LXD failed to remove or rename an entry.
    """
    trusted = set(plan.present)
    for removal in plan.removals:
        with contextlib.suppress(TrustEntryNotFoundError):  # gone already: fine
            trust.remove(removal.fingerprint)
        logger.info("removed trusted certificate %s (%s)", removal.fingerprint[:12], removal.name)
    projects = None if plan.projects is None else list(plan.projects)
    for rename in plan.renames:
        try:
            trust.update(rename.fingerprint, name=rename.new_name, projects=projects)
        except TrustEntryNotFoundError:
            trusted.discard(rename.fingerprint)
            continue
        except ProjectNotFoundError:
            _withdraw(trust, rename.fingerprint, rename.old_name)
            trusted.discard(rename.fingerprint)
            continue
        logger.info(
            "trusted certificate %s now belongs to %s", rename.fingerprint[:12], rename.new_name
        )
    for restriction in plan.restrictions:
        try:
            trust.update(restriction.fingerprint, projects=projects)
        except TrustEntryNotFoundError:
            trusted.discard(restriction.fingerprint)
            continue
        except ProjectNotFoundError:
            # Access beyond the ceiling must not stay: no access until the project exists.
            _withdraw(trust, restriction.fingerprint, restriction.name)
            trusted.discard(restriction.fingerprint)
            continue
        logger.info(
            "trusted certificate %s (%s) now restricted to %s",
            restriction.fingerprint[:12],
            restriction.name,
            ", ".join(projects) if projects is not None else "no project restriction",
        )
    refusals: dict[Requester, list[str]] = {}
    for addition in plan.additions:
        fp = addition.certificate.fingerprint
        try:
            trust.add(addition.certificate.pem, name=addition.name, projects=projects)
        except (LxdApiError, ProjectNotFoundError) as e:
            logger.warning("LXD refused to trust certificate %s: %s", fp[:12], e)
            for requester in addition.requesters:
                refusals.setdefault(requester, []).append(f"certificate {fp[:12]}: {e}")
            continue
        trusted.add(fp)
        logger.info("trusted certificate %s as %s", fp[:12], addition.name)
    return ApplyResult(
        trusted=frozenset(trusted),
        refusals={r: "; ".join(reasons) for r, reasons in refusals.items()},
    )


def _withdraw(trust: TrustStore, fingerprint: str, name: str) -> None:
    """Remove an entry that cannot be held to the ceiling (a project is missing)."""
    with contextlib.suppress(TrustEntryNotFoundError):
        trust.remove(fingerprint)
    logger.warning(
        "removed trusted certificate %s (%s): a project of allowed-projects does not exist",
        fingerprint[:12],
        name,
    )


def trusted_by_relation(
    wanted: Mapping[Requester, RequirerData], trusted: Iterable[str]
) -> dict[int, tuple[str, ...]]:
    """Per relation, the fingerprints its units asked for that LXD trusts, sorted."""
    trusted_set = frozenset(trusted)
    found: dict[int, set[str]] = {}
    for requester, request in wanted.items():
        found.setdefault(requester.relation_id, set()).update(request.fingerprints & trusted_set)
    return {relation_id: tuple(sorted(fps)) for relation_id, fps in found.items()}


REGISTERED = "registered_certificates"
"""The provider key Canonical's lxd-integrator README names for processed certificates.

Its README tells requirers that a certificate the provider has processed
"should be available in the `registered_certificates` list on the
relation"; a requirer written from that text reads it, so it is published
too (docs/interfaces/lxd.md says what it duplicates)."""


def registered_certificates(
    wanted: Mapping[Requester, RequirerData], relation_id: int, trusted: Iterable[str]
) -> str:
    """The `registered_certificates` value of one relation: a JSON list of PEMs, or "".

    The certificates this relation's units sent that LXD trusts (the same
    set `trusted_by_relation` gives as fingerprints), sorted, each once;
    "" (which Juju deletes) when none is. Certificates are public: no key,
    no credential is ever in it.
    """
    trusted_set = frozenset(trusted)
    pems = {
        certificate.pem
        for requester, request in wanted.items()
        if requester.relation_id == relation_id
        for certificate in request.client_certificates
        if certificate.fingerprint in trusted_set
    }
    return json.dumps(sorted(pems)) if pems else ""
