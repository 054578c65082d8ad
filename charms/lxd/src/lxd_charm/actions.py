"""What the LXD charm's actions do, free of `ops` so it can be tested alone.

`charm.py` loads each action's parameters into the dataclasses here with
``event.load_params(Cls, errors="fail")``, calls the matching function, puts
the returned dict in ``event.set_results`` and turns an `ActionError` into
``event.fail(str(error))``::

    params = event.load_params(AddTrustedClientParams, errors="fail")
    try:
        event.set_results(add_trusted_client(lxd, params))
    except ActionError as e:
        event.fail(str(e))

Functions:
    add_trusted_client: trust a client certificate given inline or by URL.
    remove_trusted_client: remove a trusted client by fingerprint.
    get_client_token: issue a one-time token a client trades for trust.
    collect_debug_info: run ``lxd.buginfo`` and return its report.
    show_pending_config: format the snap settings queued until a reboot.
    parse_projects, fetch_certificate: the pieces those are built from.

Every failure raises `ActionError` and nothing else, with a message that says
what went wrong and what the operator can do about it: an action that dies
with a traceback tells the operator nothing. Secrets (client tokens,
certificate text) appear only in the returned results, never in log records,
because the debug log is readable by far more people than the action output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from lxd_common.certs import fingerprint, load_certificate, normalise_fingerprint, reshape_pem
from lxd_common.errors import (
    CertificateError,
    LxdCommonError,
    LxdNotFoundError,
    LxdUnreachableError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.lxd import LxdClient, TrustEntry

__all__ = [
    "BUGINFO_COMMANDS",
    "NO_PROJECT",
    "UNRESTRICTED",
    "ActionError",
    "AddTrustedClientParams",
    "GetClientTokenParams",
    "HttpBody",
    "Opener",
    "RemoveTrustedClientParams",
    "add_trusted_client",
    "collect_debug_info",
    "fetch_certificate",
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

_FETCH_SCHEMES: Final = frozenset({"http", "https"})
_URL_BAD_CHARS: Final = re.compile(r"[\s\x00-\x1f\x7f]")
_READ_CHUNK: Final = 8192
_MAX_REDIRECTS: Final = 5
_TAIL_LINES: Final = 5

# What LXD itself refuses in a project name (captured from LXD 5.0's
# `lxc project create` and API answers): slashes, spaces, underscores, quotes,
# and the reserved names below. Other whitespace and control characters are
# refused too: no one means them, and they would make the entry unreadable.
_PROJECT_BAD_CHARS: Final = re.compile(r"[/_'\"\s\x00-\x1f\x7f]")
_PROJECT_RESERVED: Final = frozenset({"*", ".", ".."})


class ActionError(Exception):
    """An action failed; the message tells the operator what happened and what to do.

    `charm.py` shows it with ``event.fail(str(error))``, so it must make
    sense on its own, without a traceback.
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
    projects: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if _PROJECT_BAD_CHARS.search(name) or name in _PROJECT_RESERVED:
            raise ActionError(
                f"invalid project name {name!r} in projects={text!r}: LXD project names "
                "cannot contain slashes, spaces, underscores or quotes, nor be '*', '.' "
                "or '..'; give comma-separated names, e.g. projects=dev,staging"
            )
        if name not in projects:
            projects.append(name)
    return projects


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
def _lxd_failures(doing: str) -> Iterator[None]:
    """Turn whatever `lxd_common` raises into an ActionError with a next step.

    `lxd_common`'s messages already say what LXD refused and why; this adds
    what the operator can do about it. Anything unexpected is logged with
    its traceback (for the debug log) and still fails the action cleanly.
    """
    try:
        yield
    except ActionError:
        raise
    except ProjectNotFoundError as e:
        raise ActionError(
            f"{e}; create the project first (`lxc project create NAME`) or correct the "
            "projects parameter"
        ) from e
    except TrustEntryNotFoundError as e:
        raise ActionError(f"{e}; {_LIST_HINT}") from e
    except (LxdUnreachableError, LxdNotFoundError) as e:
        raise ActionError(
            f"{e}; check that LXD is running (`snap services lxd`) and run the action again"
        ) from e
    except LxdCommonError as e:
        raise ActionError(f"failed {doing}: {e}") from e
    except Exception as e:
        logger.exception("unexpected error while %s", doing)
        raise ActionError(
            f"unexpected error while {doing} ({type(e).__name__}: {e}); see `juju debug-log`"
        ) from e


# --- fetching a certificate -------------------------------------------------------


class HttpBody(Protocol):
    """What `fetch_certificate` reads from: an open HTTP response body."""

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` bytes; b"" at the end."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


#: Opens a URL with a timeout (seconds) and returns the response body; raises
#: urllib's errors (HTTPError, URLError), OSError or TimeoutError on failure.
Opener = Callable[[str, float], HttpBody]


def _redact(url: str) -> str:
    """The URL without a password in it, fit for a message or a log line."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:***@{parts.hostname}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


def _check_fetch_url(url: str) -> None:
    """Accept only absolute http(s) URLs with a host.

    Other schemes are refused up front: ``file://`` would let an action read
    files of the machine (the charm runs as root) and ``ftp://`` has no
    place here. Credentials in the URL are refused rather than silently
    dropped (urllib does not send them), which would end in a puzzling 401.
    """
    shown = _redact(url)
    if _URL_BAD_CHARS.search(url):
        raise ActionError(
            f"cert-url {shown!r} contains spaces or control characters; percent-encode them"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as e:
        raise ActionError(f"cert-url {shown!r} is not a valid URL ({e})") from e
    scheme = parts.scheme.lower()
    if not scheme:
        raise ActionError(
            f"cert-url {shown!r} has no scheme; give a full URL such as "
            "https://example.com/client.crt"
        )
    if scheme not in _FETCH_SCHEMES:
        raise ActionError(
            f"cert-url {shown!r} uses {scheme}://, but only http:// and https:// URLs "
            "can be fetched; pass the certificate itself as cert instead"
        )
    if not parts.hostname:
        raise ActionError(f"cert-url {shown!r} has no host; give a URL such as https://host/x.crt")
    if parts.username is not None or parts.password is not None:
        raise ActionError(
            f"cert-url {shown!r} carries credentials (user:password@), which are not sent; "
            "a certificate is public, serve it without authentication"
        )


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a few redirects, and only to http(s) URLs.

    urllib's own handler also follows redirects to ``ftp://``; a server must
    not be able to steer the fetch anywhere `_check_fetch_url` would refuse.
    Every redirect status goes through `http_error_302`, so checking there
    covers them all.
    """

    max_redirections = _MAX_REDIRECTS

    def http_error_302(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any
    ) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urllib.parse.urljoin(req.full_url, location)
            try:
                _check_fetch_url(target)
            except ActionError as e:
                with contextlib.suppress(Exception):
                    fp.close()
                raise ActionError(
                    f"{_redact(req.full_url)} redirected (HTTP {code}) to a URL that is not "
                    f"fetched: {e}"
                ) from None
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_URLLIB_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _open_url(url: str, timeout: float) -> HttpBody:
    """Open ``url`` with urllib (system CAs verify https), redirects restricted."""
    # fetch_certificate checked the scheme; _HttpOnlyRedirects checks redirects.
    response: HttpBody = _URLLIB_OPENER.open(url, timeout=timeout)
    return response


def _declared_length(body: HttpBody) -> int | None:
    headers = getattr(body, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(error: BaseException) -> str:
    """A short, readable reason for a network failure."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        reason = error.reason
        return _reason(reason) if isinstance(reason, BaseException) else str(reason)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"host name not resolved ({error.strerror or error})"
    if isinstance(error, ssl.SSLError):
        detail = getattr(error, "verify_message", None) or getattr(error, "reason", None)
        return f"TLS failed ({detail or error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        return _is_timeout(error.reason)
    return isinstance(error, TimeoutError)


def _fetch_failed(shown: str, timeout: float, error: Exception) -> ActionError:
    """The ActionError for a failed download, saying why in a few words."""
    if _is_timeout(error):
        return ActionError(
            f"cannot fetch the certificate from {shown}: timed out after {timeout:g}s"
        )
    if not isinstance(error, (OSError, ValueError, http.client.HTTPException)):
        # Not a network failure urllib documents: keep the traceback for the debug log.
        logger.error("unexpected error fetching %s", shown, exc_info=error)
    return ActionError(f"cannot fetch the certificate from {shown}: {_reason(error)}")


def fetch_certificate(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 65536,
    opener: Opener = _open_url,
) -> str:
    """Download a PEM certificate for ``add-trusted-client cert-url=...``.

    The URL comes from an operator but is fetched by a root process on the
    LXD host, so the fetch is fenced: http(s) only (redirects included), a
    deadline, and a size cap enforced on the bytes actually read (a
    Content-Length header can lie or be absent). A certificate is a few
    kilobytes; anything bigger is not one.

    Args:
        url: the http:// or https:// URL.
        timeout: seconds for connecting and for the whole download.
        max_bytes: the largest body accepted.
        opener: opens the URL; tests replace it to avoid the network.

    Returns:
        The body as text, unchecked (the caller loads the certificate).

    Raises:
        ActionError: the URL is refused, the server answers with an HTTP
            error, cannot be reached or is too slow, the body is larger than
            ``max_bytes`` or is not UTF-8 text.
    """
    url = url.strip()
    _check_fetch_url(url)
    shown = _redact(url)
    deadline = time.monotonic() + timeout
    try:
        body = opener(url, timeout)
    except ActionError:
        raise
    except urllib.error.HTTPError as e:
        e.close()
        raise ActionError(
            f"cannot fetch the certificate from {shown}: the server answered HTTP {e.code} "
            f"{e.reason}; check the URL"
        ) from None
    except Exception as e:
        raise _fetch_failed(shown, timeout, e) from None
    try:
        declared = _declared_length(body)
        if declared is not None and declared > max_bytes:
            raise ActionError(
                f"{shown} serves {declared} bytes, more than the {max_bytes} a certificate "
                "can need; point cert-url at the PEM certificate itself"
            )
        data = bytearray()
        while len(data) <= max_bytes:
            if time.monotonic() > deadline:
                raise ActionError(
                    f"cannot fetch the certificate from {shown}: the download took "
                    f"longer than {timeout:g}s"
                )
            chunk = body.read(min(_READ_CHUNK, max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    except ActionError:
        raise
    except Exception as e:
        raise _fetch_failed(shown, timeout, e) from None
    finally:
        with contextlib.suppress(Exception):
            body.close()
    if len(data) > max_bytes:
        raise ActionError(
            f"{shown} serves more than {max_bytes} bytes, more than a certificate can "
            "need; point cert-url at the PEM certificate itself"
        )
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ActionError(
            f"{shown} does not serve text (not UTF-8): a DER certificate? Serve it as "
            "PEM (`openssl x509 -inform der -in CERT -out CERT.pem`)"
        ) from None


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
    fetch: Callable[[str], str] = fetch_certificate,
) -> dict[str, str]:
    """Trust a client certificate, given inline or by URL, optionally per project.

    Certificates pasted into ``juju run`` often lose their newlines, so the
    PEM layout is repaired before the content is judged. Running the action
    again with the same certificate updates the entry's name and projects,
    so a mistake is fixed by running it again. A certificate LXD already
    trusts as something other than a client (a cluster member's own
    certificate) is left alone: restricting it would cut that member off.

    Args:
        lxd: the local LXD daemon.
        params: the action's parameters.
        fetch: downloads ``cert-url``; tests replace it.

    Returns:
        ``fingerprint``, ``name``, ``projects`` ("a,b", "(unrestricted)" or
        "(none)") and a ``message`` for the operator.

    Raises:
        ActionError: both or neither of cert and cert-url are given, the
            certificate cannot be fetched or is not a single certificate,
            a project is invalid or does not exist, or LXD refuses.
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
    if url:
        cert_text = fetch(url)
        source = f"the certificate fetched from {_redact(url)}"
    try:
        pem = reshape_pem(cert_text)
        cert = load_certificate(pem)
    except CertificateError as e:
        raise ActionError(f"{source} is not usable: {e}") from None
    fp = fingerprint(cert)
    name = params.name.strip() or _common_name(cert) or f"juju-action-{fp[:12]}"

    with _lxd_failures(f"trusting certificate {name!r}"):
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
    return {
        "fingerprint": entry.fingerprint,
        "name": entry.name,
        "projects": _show_projects(entry.restricted, entry.projects),
        "message": f"{verb} client {entry.name!r} ({entry.fingerprint[:12]}) {access}",
    }


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
            several, names a server certificate, or LXD refuses.
    """
    try:
        wanted = normalise_fingerprint(params.fingerprint)
    except CertificateError as e:
        raise ActionError(f"invalid fingerprint: {e}; nothing was removed") from None

    with _lxd_failures("removing a trusted client"):
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
        ActionError: the name is empty, a project is invalid or does not
            exist, or LXD refuses.
    """
    name = params.name.strip()
    if not name:
        raise ActionError("give the name the client will be trusted under: name=NAME")
    projects = parse_projects(params.projects)
    with _lxd_failures(f"issuing a client token for {name!r}"):
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
