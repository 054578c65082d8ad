"""What the LXD charm's actions do, free of `ops` so it can be tested alone.

`charm.py` loads each action's parameters into the dataclasses here with
``event.load_params(Cls, errors="fail")``, calls the matching function and
puts the returned dict in ``event.set_results``. Its action boundary is the
one place failures are mapped: it catches exactly `ActionError` and
`lxd_common.errors.LxdCommonError` and fails the action with the message
(the latter prefixed "LXD: ")::

    params = event.load_params(AddTrustedClientParams, errors="fail")
    try:
        event.set_results(add_trusted_client(lxd, params))
    except ActionError as e:
        event.fail(str(e))
    except LxdCommonError as e:
        event.fail(f"LXD: {e}")

Functions:
    add_trusted_client: trust a client certificate given inline or by URL.
    remove_trusted_client: remove a trusted client by fingerprint.
    get_client_token: issue a one-time token a client trades for trust.
    collect_debug_info: run ``lxd.buginfo`` and return its report.
    show_pending_config: format the snap settings queued until a reboot.
    refresh_standalone: the `refresh` action on a standalone unit (a cluster's
        round is `lxd_charm.refresh_round`'s), and `snap_version` for its results.
    parse_projects: the piece those are built from.

The certificate download for ``cert-url`` is `lxd_charm.cert_fetch`'s job,
imported only when an action needs it (urllib is not free to import, and
every hook would pay for it otherwise).

What the operator can fix raises `ActionError`, with a message that says what
went wrong and what to do about it; LXD's own refusals and outages raise
`LxdCommonError` from `lxd_common`, whose messages already say what LXD did,
and an action adds to them only where it knows the next step (a project to
create, the list of trusted clients to look at). Anything else is a bug: it
propagates, and the hook fails with its traceback. Secrets (client tokens,
certificate text) appear only in the returned results, never in log records,
because the debug log is readable by far more people than the action output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from lxd_common import projects as project_names
from lxd_common.certs import fingerprint, load_certificate, normalise_fingerprint, reshape_pem
from lxd_common.errors import CertificateError, ProjectNotFoundError, TrustEntryNotFoundError
from lxd_common.lxd import LxdClient, TrustEntry

if TYPE_CHECKING:
    from lxd_charm.cert_fetch import Fetched
    from lxd_charm.config import LxdConfig
    from lxd_charm.memory import Memory
    from lxd_common.snap import LxdSnap

__all__ = [
    "BUGINFO_COMMANDS",
    "NO_PROJECT",
    "UNRESTRICTED",
    "ActionError",
    "AddTrustedClientParams",
    "GetClientTokenParams",
    "RemoveTrustedClientParams",
    "add_trusted_client",
    "collect_debug_info",
    "get_client_token",
    "parse_projects",
    "remove_trusted_client",
    "show_pending_config",
]

logger = logging.getLogger(__name__)

#: How the results show a trust entry that may use every project.
UNRESTRICTED: Final = "(unrestricted)"
#: How the results show a trust entry restricted to no project at all.
NO_PROJECT: Final = "(none)"

#: Where ``lxd.buginfo`` is looked for: the snap's command first, since that is
#: what the charm installs, then whatever ``PATH`` finds.
BUGINFO_COMMANDS: Final[tuple[str, ...]] = ("/snap/bin/lxd.buginfo", "lxd.buginfo")

_TAIL_LINES: Final = 5


class ActionError(Exception):
    """An action failed; the message tells the operator what happened and what to do.

    `charm.py` shows it with ``event.fail(str(error))``, so it must make
    sense on its own, without a traceback. It is for failures the operator
    can act on, never for bugs.
    """


# --- parameters ---------------------------------------------------------------


def _require_str(owner: object, *names: str, optional: tuple[str, ...] = ()) -> None:
    """Reject non-string parameters, as ``load_params(errors="fail")`` expects.

    Juju validates parameters against the action schema, but a wrong type
    slipping through (an older schema, a test) would otherwise surface as an
    AttributeError deep in an action; a ValueError becomes a clean failure.
    Names in ``optional`` may also be None (the parameter was not given).
    """
    for name in (*names, *optional):
        value = getattr(owner, name)
        if value is None and name in optional:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{name.replace('_', '-')} must be a string, not {value!r}")


@dataclasses.dataclass(frozen=True)
class AddTrustedClientParams:
    """Parameters of ``add-trusted-client``.

    Attributes:
        name: name of the trust entry; empty means "derive it from the certificate".
        cert: the client certificate as PEM text (layout repaired if mangled).
        cert_url: an http(s) URL to fetch the PEM certificate from.
        projects: comma-separated projects to restrict the client to; None
            (not given) means unrestricted, "" means no project at all.
    """

    name: str = ""
    cert: str = ""
    cert_url: str = ""
    projects: str | None = None

    def __post_init__(self) -> None:
        """Refuse non-string values (see `_require_str`)."""
        _require_str(self, "name", "cert", "cert_url", optional=("projects",))


@dataclasses.dataclass(frozen=True)
class RemoveTrustedClientParams:
    """Parameters of ``remove-trusted-client``.

    Attributes:
        fingerprint: SHA-256 fingerprint in LXD's or openssl's form, or a
            unique prefix of at least 12 hex characters.
    """

    fingerprint: str

    def __post_init__(self) -> None:
        """Refuse non-string values (see `_require_str`)."""
        _require_str(self, "fingerprint")


@dataclasses.dataclass(frozen=True)
class GetClientTokenParams:
    """Parameters of ``get-client-token``.

    Attributes:
        name: the name the client will be trusted under.
        projects: as for `AddTrustedClientParams.projects`.
    """

    name: str
    projects: str | None = None

    def __post_init__(self) -> None:
        """Refuse non-string values (see `_require_str`)."""
        _require_str(self, "name", optional=("projects",))


def parse_projects(text: str | None) -> list[str] | None:
    """Turn the ``projects`` parameter into the restriction LXD takes.

    The distinction between "not given" and "given but empty" is kept because
    LXD gives them opposite meanings: no restriction at all versus access to
    nothing. Names are checked against the characters LXD refuses, so a typo
    fails here with a precise message instead of as "project does not exist".

    Args:
        text: the raw parameter: None when the operator did not set it,
            otherwise comma-separated names (blanks around and between
            commas are ignored).

    Returns:
        None for unrestricted; otherwise the project names in the order
        given, without duplicates (an empty list means no project).

    Raises:
        ActionError: a name contains characters LXD does not allow in
            project names, or is a reserved name.
    """
    if text is None:
        return None
    names, bad = project_names.split(text)
    if bad:
        raise ActionError(
            f"invalid project name {bad[0]!r} in projects={text!r}: {project_names.RULES}; "
            "give comma-separated names, e.g. projects=dev,staging"
        )
    return names


def _show_projects(restricted: bool, projects: list[str]) -> str:
    """The ``projects`` result value: names, or what no names mean."""
    if not restricted:
        return UNRESTRICTED
    return ",".join(projects) or NO_PROJECT


def _describe_access(restricted: bool, projects: list[str]) -> str:
    if not restricted:
        return "with access to every project"
    if not projects:
        return "restricted to no project (it can connect but sees nothing)"
    return f"restricted to project(s) {', '.join(projects)}"


# --- talking to LXD -------------------------------------------------------------

_LIST_HINT: Final = "list the trusted clients with `lxc config trust list`"
_LIST_HINT_SENTENCE: Final = "List the trusted clients with `lxc config trust list`"


@contextlib.contextmanager
def _lxd_failures() -> Iterator[None]:
    """Add the next step to the two LXD refusals an action's parameters caused.

    A project that does not exist and a fingerprint no entry has are the
    operator's input, and the action knows what to do about them. Every other
    `LxdCommonError` goes on unchanged to the charm's action boundary, which
    fails the action with its message (LXD unreachable, LXD refusing), and
    anything else is a bug and propagates with its traceback.
    """
    try:
        yield
    except ProjectNotFoundError as e:
        raise ActionError(
            f"{e}; create the project first (`lxc project create NAME`) or correct the "
            "projects parameter"
        ) from e
    except TrustEntryNotFoundError as e:
        raise ActionError(f"{e}; {_LIST_HINT}") from e


# --- add-trusted-client ------------------------------------------------------------


def _common_name(cert: x509.Certificate) -> str:
    for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attribute.value  # str for a CN; bytes only for bit-string attributes
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def add_trusted_client(
    lxd: LxdClient,
    params: AddTrustedClientParams,
    fetch: Callable[[str], Fetched] | None = None,
) -> dict[str, str]:
    """Trust a client certificate, given inline or by URL, optionally per project.

    Certificates pasted into ``juju run`` often lose their newlines, so the
    PEM layout is repaired before the content is judged. Running the action
    again with the same certificate updates the entry's name and projects,
    so a mistake is fixed by running it again. A certificate LXD already
    trusts as something other than a client (a cluster member's own
    certificate) is left alone: restricting it would cut that member off.

    A certificate fetched from another server than the one ``cert-url``
    names (a redirect took the fetch there) is trusted too, since operators
    point at download services that redirect to mirrors, but the result
    says where it came from: the operator decides whether that is right, and
    can remove the entry if not.

    Args:
        lxd: the local LXD daemon.
        params: the action's parameters.
        fetch: downloads ``cert-url`` (default:
            `lxd_charm.cert_fetch.fetch_certificate`); tests replace it.

    Returns:
        ``fingerprint``, ``name``, ``projects`` ("a,b", "(unrestricted)" or
        "(none)") and a ``message`` for the operator; ``fetched-from`` (the
        URL without credentials or query) when redirects moved the fetch to
        another host or port.

    Raises:
        ActionError: both or neither of cert and cert-url are given, the
            certificate cannot be fetched or is not a single certificate,
            a project is invalid or does not exist, or the certificate is
            already trusted as a non-client.
        LxdCommonError: LXD cannot be reached or refuses (the charm's action
            boundary fails the action with LXD's reason).
    """
    cert_text, url = params.cert.strip(), params.cert_url.strip()
    if cert_text and url:
        raise ActionError("give either cert or cert-url, not both")
    if not cert_text and not url:
        raise ActionError(
            'give the client certificate: cert="$(cat client.crt)" or '
            "cert-url=https://host/client.crt"
        )
    projects = parse_projects(params.projects)
    source = "the certificate"
    fetched_from = ""
    if url:
        from lxd_charm import cert_fetch  # only this path pays for urllib

        try:
            fetched = (fetch or cert_fetch.fetch_certificate)(url)
        except cert_fetch.CertFetchError as e:
            raise ActionError(str(e)) from None
        cert_text = fetched.text
        source = f"the certificate fetched from {cert_fetch.redact(url)}"
        if fetched.moved:
            fetched_from = cert_fetch.public_url(fetched.final_url)
            source += f" (redirected to {fetched_from})"
    try:
        pem = reshape_pem(cert_text)
        cert = load_certificate(pem)
    except CertificateError as e:
        raise ActionError(f"{source} is not usable: {e}") from None
    fp = fingerprint(cert)
    name = params.name.strip() or _common_name(cert) or f"juju-action-{fp[:12]}"

    with _lxd_failures():
        existing = lxd.trust.find(fp)
        if existing is not None and existing.type != "client":
            raise ActionError(
                f"this certificate is already trusted as a {existing.type} certificate "
                f"({existing.name!r}, {fp[:12]}); it was left unchanged"
            )
        entry = lxd.trust.add(pem, name=name, projects=projects)

    verb = "updated" if existing is not None else "trusted"
    access = _describe_access(entry.restricted, entry.projects)
    logger.info("%s client certificate %r (%s) %s", verb, entry.name, entry.fingerprint, access)
    message = f"{verb} client {entry.name!r} ({entry.fingerprint[:12]}) {access}"
    results = {
        "fingerprint": entry.fingerprint,
        "name": entry.name,
        "projects": _show_projects(entry.restricted, entry.projects),
        "message": message,
    }
    if fetched_from:
        logger.info("the certificate for %r was fetched from %s", entry.name, fetched_from)
        results["fetched-from"] = fetched_from
        results["message"] = (
            f"{message}; cert-url redirected to another server, the certificate came "
            f"from {fetched_from}"
        )
    return results


# --- remove-trusted-client ------------------------------------------------------------


def _pick_entry(entries: list[TrustEntry], wanted: str, given: str) -> TrustEntry:
    """The one entry whose fingerprint is, or starts with, ``wanted``."""
    exact = [e for e in entries if e.fingerprint == wanted]
    matches = exact or [e for e in entries if e.fingerprint.startswith(wanted)]
    if not matches:
        raise ActionError(
            f"no trusted client has the fingerprint {given.strip()!r}; nothing was removed. "
            f"{_LIST_HINT_SENTENCE}"
        )
    if len(matches) > 1:
        names = ", ".join(f"{e.name!r} ({e.fingerprint[:16]})" for e in matches)
        raise ActionError(
            f"the fingerprint prefix {wanted!r} matches {len(matches)} entries ({names}); "
            "nothing was removed. Give more of the fingerprint"
        )
    return matches[0]


def remove_trusted_client(lxd: LxdClient, params: RemoveTrustedClientParams) -> dict[str, str]:
    """Stop trusting a client certificate, found by its fingerprint.

    Fingerprints are accepted as operators copy them (openssl's
    ``sha256 Fingerprint=AA:BB:...``, LXD's hex, a unique prefix). Entries of
    type "server" are cluster members' own certificates: removing one would
    break the cluster, so they are refused.

    Args:
        lxd: the local LXD daemon.
        params: the action's parameters.

    Returns:
        ``fingerprint``, ``name`` and ``type`` of the removed entry, and a
        ``message``.

    Raises:
        ActionError: the fingerprint is malformed, matches no entry or
            several, or names a server certificate.
        LxdCommonError: LXD cannot be reached or refuses.
    """
    try:
        wanted = normalise_fingerprint(params.fingerprint)
    except CertificateError as e:
        raise ActionError(f"invalid fingerprint: {e}; nothing was removed") from None

    with _lxd_failures():
        entry = _pick_entry(lxd.trust.entries(), wanted, params.fingerprint)
        if entry.type == "server":
            raise ActionError(
                f"{entry.name!r} ({entry.fingerprint[:12]}) is a server certificate (a "
                "cluster member's own); it was not removed. Remove the member from the "
                "cluster instead"
            )
        try:
            removed = lxd.trust.remove(entry.fingerprint)
        except TrustEntryNotFoundError:
            raise ActionError(
                f"the trusted client {entry.name!r} ({entry.fingerprint[:12]}) disappeared "
                f"before it could be removed; nothing was removed. {_LIST_HINT_SENTENCE}"
            ) from None

    logger.info("removed trusted client %r (%s)", removed.name, removed.fingerprint)
    return {
        "fingerprint": removed.fingerprint,
        "name": removed.name,
        "type": removed.type,
        "message": f"removed trusted client {removed.name!r} ({removed.fingerprint[:12]})",
    }


# --- get-client-token ----------------------------------------------------------------


def get_client_token(lxd: LxdClient, params: GetClientTokenParams) -> dict[str, str]:
    """Issue a one-time token a client trades for trust (``lxc remote add``).

    The token is a credential: it goes into the action result, which only
    the operator who ran the action reads, and into no log record.

    Args:
        lxd: the local LXD daemon.
        params: the action's parameters.

    Returns:
        ``token``, ``name``, ``projects``, ``message`` and, when LXD sets
        one, ``expires-at``.

    Raises:
        ActionError: the name is empty, or a project is invalid or does not
            exist.
        LxdCommonError: LXD cannot be reached or refuses.
    """
    name = params.name.strip()
    if not name:
        raise ActionError("give the name the client will be trusted under: name=NAME")
    projects = parse_projects(params.projects)
    with _lxd_failures():
        issued = lxd.trust.issue_token(name, projects)

    access = _describe_access(projects is not None, projects or [])
    logger.info("issued a client token for %r, %s", name, access)
    results = {
        "token": issued.token,
        "name": issued.name,
        "projects": _show_projects(projects is not None, projects or []),
        "message": (
            f"one-time token for {issued.name!r} ({access}); on the client run "
            "`lxc remote add REMOTE-NAME TOKEN`"
        ),
    }
    if issued.expires_at:
        results["expires-at"] = issued.expires_at
    return results


# --- debug ----------------------------------------------------------------------------


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def collect_debug_info(
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    *,
    timeout: float = 300,
) -> dict[str, str]:
    """Run ``lxd.buginfo`` and return its report, for ``juju run lxd/0 debug``.

    The snap's command is tried first; ``PATH`` is the fallback so that a
    non-snap LXD (as in the tests) works too.

    Args:
        run: `subprocess.run` or a stand-in.
        timeout: seconds ``lxd.buginfo`` may take.

    Returns:
        ``buginfo``: the command's output.

    Raises:
        ActionError: the command is missing, fails, or takes too long; the
            message ends with the last lines of what it printed.
    """
    for command in BUGINFO_COMMANDS:
        try:
            result = run(
                [command],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            continue
        except subprocess.TimeoutExpired as e:
            output = e.stderr or e.output or ""
            if isinstance(output, bytes):
                output = output.decode("utf-8", "replace")
            tail = _tail(output)
            raise ActionError(
                f"{command} did not finish within {timeout:g}s"
                + (f"; its last output:\n{tail}" if tail else "")
            ) from None
        except OSError as e:
            raise ActionError(f"cannot run {command}: {e.strerror or e}") from None
        if result.returncode != 0:
            tail = _tail(result.stderr or "") or _tail(result.stdout or "")
            raise ActionError(
                f"{command} failed with exit code {result.returncode}"
                + (f":\n{tail}" if tail else " and printed nothing")
            )
        return {"buginfo": result.stdout}
    raise ActionError(
        "lxd.buginfo is not installed (looked for /snap/bin/lxd.buginfo and on PATH); "
        "is the LXD snap installed?"
    )


# --- show-pending-config ------------------------------------------------------------------


def show_pending_config(pending: Mapping[str, str | None]) -> dict[str, str]:
    """Format the snap settings queued until the next reboot.

    Some snap settings (LXCFS's) only take effect on a reboot, so the charm
    queues them; this shows the queue in the order the charm gives it.

    Args:
        pending: snap key to the value it will get, None when it will be unset.

    Returns:
        ``pending``: one ``key=value`` line per setting (``(unset)`` for
        None, ``""`` for an empty value), or "nothing pending".
    """
    if not pending:
        return {"pending": "nothing pending"}
    lines = []
    for key, value in pending.items():
        if value is None:
            shown = "(unset)"
        elif value == "":
            shown = '""'
        else:
            shown = value
        lines.append(f"{key}={shown}")
    return {"pending": "\n".join(lines)}


def refresh_standalone(snap: LxdSnap, config: LxdConfig, memory: Memory) -> dict[str, str]:
    """Refresh a standalone unit's LXD to the newest revision of its channel, now.

    Standalone units answer to nobody else, so there is no round: the
    refresh is this unit's (in the `+` cohort when `snap-cohort` says so).

    Raises:
        ActionError: a sideloaded snap is in place, or snapd refused (its words).
    """
    from lxd_common.errors import SnapError

    if memory.sideloaded_snap:
        raise ActionError(
            "LXD runs the snap attached as the lxd-snap resource: attach an empty file "
            "to go back to the store's LXD, then refresh"
        )
    try:
        changed = snap.refresh(
            config.snap_channel,
            cohort=config.snap_in_cohort(),
            leave_cohort=config.snap_leaves_cohort(),
        )
    except SnapError as e:
        raise ActionError(f"refreshing LXD failed: {e}") from None
    return {"refreshed": "yes" if changed else "no: no newer revision"}


def snap_version(snap: LxdSnap) -> dict[str, str]:
    """The installed LXD snap's version and revision, for action results ({} if unknown)."""
    from lxd_common.errors import SnapError

    try:
        installed = snap.installed()
    except SnapError:
        return {}  # the refresh itself went through; its results stand without it
    if installed is None:
        return {}
    return {"version": installed.version, "revision": installed.revision}
