"""The LXD trust store: which client certificates may talk to the daemon.

Entries are found by name as well as by fingerprint because charms name the
entries they create (``juju-relation-...``) and must later remove exactly
those, whatever the operator added by hand next to them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..certs import fingerprint, load_certificate
from ..errors import LxdApiError, ProjectNotFoundError, TrustEntryNotFoundError
from ._api import check, translate_errors

if TYPE_CHECKING:
    import pylxd

HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409

CertificateType = Literal["client", "metrics"]
"""The trust types a caller may add: full API clients, or scrapers of ``/1.0/metrics`` only.

LXD (5.0 and later, API extension ``metrics``) answers a ``metrics``
certificate on ``/1.0/metrics`` and treats it as untrusted everywhere else,
which is what a monitoring system should hold.
"""

CERTIFICATE_TYPES: Final[tuple[str, ...]] = get_args(CertificateType)


@dataclass(frozen=True)
class TrustEntry:
    """One certificate in the trust store, as LXD reports it."""

    name: str
    fingerprint: str
    type: str
    restricted: bool
    projects: list[str]
    certificate: str = field(repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> TrustEntry:
        """Build from one item of ``GET /1.0/certificates?recursion=1``."""
        return cls(
            name=str(data.get("name", "")),
            fingerprint=str(data["fingerprint"]),
            type=str(data.get("type", "client")),
            restricted=bool(data.get("restricted", False)),
            projects=list(data.get("projects") or []),
            certificate=str(data.get("certificate", "")),
        )


@dataclass(frozen=True)
class ClientToken:
    """A one-time token a client exchanges for trust (``lxc remote add``)."""

    name: str
    token: str = field(repr=False)
    expires_at: str | None = None


class TrustStore:
    """Add, find and remove trusted client certificates."""

    def __init__(self, client: pylxd.Client) -> None:
        self._client = client

    def entries(self) -> list[TrustEntry]:
        """Every entry in the trust store (one API call)."""
        with translate_errors("listing trusted certificates"):
            response = self._client.api.certificates.get(params={"recursion": "1"})
        body = check(response, "listing trusted certificates")
        return [TrustEntry.from_api(item) for item in body["metadata"] or []]

    def find(self, name_or_fingerprint: str) -> TrustEntry | None:
        """The entry with this name, full fingerprint or unique fingerprint prefix.

        Returns None when nothing matches. A prefix that matches several
        entries is treated as no match rather than guessing.
        """
        key = name_or_fingerprint.strip()
        if not key:
            return None
        entries = self.entries()
        for entry in entries:
            if entry.fingerprint == key.lower() or entry.name == key:
                return entry
        by_prefix = [e for e in entries if e.fingerprint.startswith(key.lower())]
        return by_prefix[0] if len(by_prefix) == 1 else None

    def find_all(self, name: str) -> list[TrustEntry]:
        """Every entry carrying exactly this name (names are not unique in LXD)."""
        return [entry for entry in self.entries() if entry.name == name]

    def add(
        self,
        certificate_pem: str,
        name: str,
        projects: Sequence[str] | None = None,
        *,
        kind: CertificateType = "client",
    ) -> TrustEntry:
        """Trust a client certificate, restricted to ``projects`` if given.

        ``projects=None`` means unrestricted; an empty list means restricted
        to no project at all (the client can authenticate but see nothing).
        ``kind="metrics"`` (LXD's certificate ``type``) trusts it for ``/1.0/metrics`` only.
        Adding a certificate that is already trusted with the same type
        updates its name and restriction instead of failing, so callers can
        re-run safely; one trusted with another type is refused, because
        changing what a certificate may do is a decision for its owner.

        Raises:
            CertificateError: the PEM is not a certificate.
            ProjectNotFoundError: a named project does not exist.
            LxdApiError: LXD refused for another reason.
        """
        if kind not in CERTIFICATE_TYPES:
            raise ValueError(f"unknown certificate type {kind!r} (one of {CERTIFICATE_TYPES})")
        cert = load_certificate(certificate_pem)
        wanted_fp = fingerprint(cert)
        project_list = self._checked_projects(projects)
        request: dict[str, Any] = {
            "type": kind,
            "certificate": _pem_body(cert),
            "name": name,
            "restricted": project_list is not None,
            "projects": project_list or [],
        }
        doing = f"trusting certificate {name!r}"
        try:
            with translate_errors(doing):
                check(self._client.api.certificates.post(json=request), doing)
        except LxdApiError as e:
            if e.status != HTTP_CONFLICT:
                raise
            existing = self._get(wanted_fp)
            if existing.type != kind:
                # A cluster member's own certificate (renaming or restricting it
                # would lock that member out of the cluster), or one trusted for
                # more or less than asked: either way not ours to change.
                raise LxdApiError(
                    f"this certificate is already trusted as {existing.type} certificate "
                    f"{existing.name!r}; it is not changed",
                    HTTP_CONFLICT,
                ) from None
            return self.update(wanted_fp, name=name, projects=projects)
        return self._get(wanted_fp)

    def update(
        self,
        fingerprint_: str,
        *,
        name: str | None = None,
        projects: Sequence[str] | None = None,
    ) -> TrustEntry:
        """Rename an entry and/or replace its project restriction.

        ``projects=None`` makes the entry unrestricted.
        """
        current = self._get(fingerprint_)
        project_list = self._checked_projects(projects)
        patch = {
            "name": current.name if name is None else name,
            "type": current.type,
            "restricted": project_list is not None,
            "projects": project_list or [],
        }
        doing = f"updating trusted certificate {current.name!r}"
        with translate_errors(doing):
            response = self._client.api.certificates[current.fingerprint].patch(json=patch)
        check(response, doing)
        return self._get(current.fingerprint)

    def remove(self, name_or_fingerprint: str) -> TrustEntry:
        """Remove one entry, found like :meth:`find`; returns what was removed.

        Raises:
            TrustEntryNotFoundError: nothing matches.
        """
        entry = self.find(name_or_fingerprint)
        if entry is None:
            key = name_or_fingerprint.strip().lower()
            matches = [e.name for e in self.entries() if key and e.fingerprint.startswith(key)]
            if len(matches) > 1:
                raise TrustEntryNotFoundError(
                    f"{name_or_fingerprint!r} matches {len(matches)} certificates "
                    f"({', '.join(matches)}); give more of the fingerprint"
                )
            raise TrustEntryNotFoundError(
                f"no trusted certificate has the name or fingerprint {name_or_fingerprint!r}"
            )
        doing = f"removing trusted certificate {entry.name!r}"
        with translate_errors(doing):
            response = self._client.api.certificates[entry.fingerprint].delete()
        check(response, doing)
        return entry

    def issue_token(self, name: str, projects: Sequence[str] | None = None) -> ClientToken:
        """Issue a one-time token a client can trade for trust under ``name``.

        LXD accepts tokens for projects that do not exist and only fails when
        the token is used, so the projects are checked here first.
        """
        project_list = self._checked_projects(projects)
        request: dict[str, Any] = {
            "type": "client",
            "token": True,
            "name": name,
            "restricted": project_list is not None,
            "projects": project_list or [],
        }
        doing = f"issuing a client token for {name!r}"
        with translate_errors(doing):
            response = self._client.api.certificates.post(json=request)
        meta = check(response, doing)["metadata"]["metadata"]
        payload = {
            "client_name": name,
            "fingerprint": meta["fingerprint"],
            "addresses": meta["addresses"],
            "secret": meta["secret"],
        }
        if meta.get("expiresAt"):
            payload["expires_at"] = meta["expiresAt"]
        encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
        return ClientToken(name=name, token=encoded, expires_at=meta.get("expiresAt"))

    def _get(self, fingerprint_: str) -> TrustEntry:
        doing = f"reading trusted certificate {fingerprint_[:12]}"
        try:
            with translate_errors(doing):
                response = self._client.api.certificates[fingerprint_].get()
            return TrustEntry.from_api(check(response, doing)["metadata"])
        except LxdApiError as e:
            if e.status != HTTP_NOT_FOUND:
                raise
            raise TrustEntryNotFoundError(
                f"no trusted certificate has fingerprint {fingerprint_}"
            ) from None

    def _checked_projects(self, projects: Sequence[str] | None) -> list[str] | None:
        if projects is None:
            return None
        wanted = [p.strip() for p in projects if p.strip()]
        if not wanted:
            return []
        with translate_errors("listing projects"):
            response = self._client.api.projects.get()
        existing = {
            url.rstrip("/").rsplit("/", 1)[-1]
            for url in check(response, "listing projects")["metadata"]
        }
        missing = [p for p in wanted if p not in existing]
        if missing:
            raise ProjectNotFoundError(
                f"project(s) {', '.join(missing)} do not exist "
                f"(existing: {', '.join(sorted(existing))})"
            )
        return wanted


def _pem_body(cert: x509.Certificate) -> str:
    """The base64 body of a certificate: LXD's API takes it without PEM markers."""
    pem = cert.public_bytes(Encoding.PEM).decode()
    return "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
