"""Fetch a PEM certificate from a URL an operator named, safely (no `ops` here).

``add-trusted-client cert-url=...`` makes a root process on the LXD host
download whatever the URL serves, and the result decides who may drive LXD.
So the fetch is fenced, and each fence is a guarantee the operator can rely
on without reading this module:

- **Where**: only absolute http(s) URLs without credentials, redirects
  included; a redirect never downgrades https to http (the certificate would
  then travel where anyone on the way can swap it). When a redirect moved the
  fetch to another server, `Fetched.moved` says so and `public_url` shows
  where, so the caller can tell the operator.
- **How long**: one deadline for everything (name lookup, connecting, TLS,
  the headers of every redirect and the body). Socket timeouts alone cannot
  give that: they restart with every byte, so a server sending a byte just
  before each timeout holds the fetch (and the unit's hook queue) for hours.
  The download therefore runs in a worker thread the caller waits for at
  most the deadline; at the deadline the worker's sockets are shut down so
  it ends too.
- **How much**: a size cap on the bytes actually read.

Functions:
    fetch_certificate: download the PEM text, within those fences.
    check_fetch_url: refuse a URL (or a redirect target) that must not be fetched.
    redact, public_url: URLs fit for a message, and for an action result.
    same_server: whether two URLs name the same host and port.

Every refusal or network failure raises `CertFetchError` with a message an
operator can act on; anything else is a bug and propagates as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "CertFetchError",
    "Fetched",
    "HttpBody",
    "Opener",
    "UrllibOpener",
    "check_fetch_url",
    "fetch_certificate",
    "public_url",
    "redact",
    "same_server",
]

logger = logging.getLogger(__name__)

#: Seconds the whole fetch may take: lookup, connect, headers and body together.
DEFAULT_TIMEOUT: Final = 10.0
#: The largest body accepted: a certificate is a few kilobytes.
DEFAULT_MAX_BYTES: Final = 65536

_FETCH_SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_URL_BAD_CHARS: Final = re.compile(r"[\s\x00-\x1f\x7f]")
_READ_CHUNK: Final = 8192
_MAX_REDIRECTS: Final = 5
#: How long the caller waits, after the deadline, for the aborted worker to unwind.
_ABORT_GRACE: Final = 1.0
#: What urllib and http.client raise for a failed download, by their documentation.
_NETWORK_ERRORS: Final = (OSError, ValueError, http.client.HTTPException)


class CertFetchError(Exception):
    """The certificate could not be fetched; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    """What a fetch got.

    Attributes:
        text: the body, decoded (unchecked: the caller loads the certificate).
        requested: the URL the operator gave (stripped).
        final_url: the URL the body came from, after redirects.
    """

    text: str
    requested: str
    final_url: str

    @property
    def moved(self) -> bool:
        """True when redirects took the fetch to another host or port."""
        return not same_server(self.requested, self.final_url)


class HttpBody(Protocol):
    """What `fetch_certificate` reads from: an open HTTP response."""

    @property
    def url(self) -> str:
        """The URL this body came from, after any redirects."""
        ...

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` bytes; b"" at the end."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class Opener(Protocol):
    """Opens URLs for one fetch; `UrllibOpener` is the real one, tests pass fakes."""

    def open(self, url: str, timeout: float) -> HttpBody:
        """Open ``url`` (socket timeout ``timeout``); raise urllib's errors or OSError."""
        ...

    def abort(self) -> None:
        """Called from another thread at the deadline: make a blocked `open` or read end."""
        ...


# --- URLs ------------------------------------------------------------------------------


def redact(url: str) -> str:
    """The URL without a password in it, fit for a message or a log line."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:***@{_host_text(parts)}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe to put in an action result.

    A redirect target is chosen by a server, not by the operator, and may
    carry a signed query (a pre-signed download link); only where it points
    is shown.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = _host_text(parts)
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return redact(url)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _host_text(parts: urllib.parse.SplitResult) -> str:
    host = parts.hostname or ""
    return f"[{host}]" if ":" in host else host


def _server(url: str) -> tuple[str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return (parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme.lower()))


def same_server(first: str, second: str) -> bool:
    """Whether two URLs name the same host and port (default ports filled in).

    Host names are compared as written, not resolved: the operator named a
    host, and a redirect to another name is somewhere else even when both
    resolve alike.
    """
    try:
        return _server(first) == _server(second)
    except ValueError:
        return False


def check_fetch_url(url: str) -> None:
    """Accept only absolute http(s) URLs with a host and without credentials.

    Other schemes are refused up front: ``file://`` would let an action read
    files of the machine (the charm runs as root) and ``ftp://`` has no
    place here. Credentials in the URL are refused rather than silently
    dropped (urllib does not send them), which would end in a puzzling 401.

    Raises:
        CertFetchError: the URL is refused; the message says why.
    """
    shown = redact(url)
    if _URL_BAD_CHARS.search(url):
        raise CertFetchError(
            f"cert-url {shown!r} contains spaces or control characters; percent-encode them"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as e:
        raise CertFetchError(f"cert-url {shown!r} is not a valid URL ({e})") from e
    scheme = parts.scheme.lower()
    if not scheme:
        raise CertFetchError(
            f"cert-url {shown!r} has no scheme; give a full URL such as "
            "https://example.com/client.crt"
        )
    if scheme not in _FETCH_SCHEMES:
        raise CertFetchError(
            f"cert-url {shown!r} uses {scheme}://, but only http:// and https:// URLs "
            "can be fetched; pass the certificate itself as cert instead"
        )
    if not parts.hostname:
        raise CertFetchError(
            f"cert-url {shown!r} has no host; give a URL such as https://host/x.crt"
        )
    if parts.username is not None or parts.password is not None:
        raise CertFetchError(
            f"cert-url {shown!r} carries credentials (user:password@), which are not sent; "
            "a certificate is public, serve it without authentication"
        )


def check_redirect(current: str, target: str, code: int) -> None:
    """Refuse a redirect that would lose a guarantee of the request it answers.

    The target must be a URL `check_fetch_url` accepts, and a request made
    over https must not continue over http: the operator chose a protected
    transport, and a server must not be able to take it away.

    Raises:
        CertFetchError: the redirect is refused; the message names both URLs.
    """
    try:
        check_fetch_url(target)
    except CertFetchError as e:
        raise CertFetchError(
            f"{redact(current)} redirected (HTTP {code}) to a URL that is not fetched: {e}"
        ) from None
    if (
        urllib.parse.urlsplit(current).scheme.lower() == "https"
        and urllib.parse.urlsplit(target).scheme.lower() == "http"
    ):
        raise CertFetchError(
            f"{redact(current)} redirected (HTTP {code}) from https to http "
            f"({redact(target)}); refused, because over http anyone on the way can swap "
            "the certificate. Serve it over https, or give the http URL as cert-url "
            "if that is really meant"
        )


# --- the real opener ---------------------------------------------------------------------


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a few redirects, each checked by `check_redirect`.

    urllib's own handler also follows redirects to ``ftp://`` and from https
    to http. Every redirect status goes through `http_error_302`, so checking
    there covers them all.
    """

    max_redirections = _MAX_REDIRECTS

    def http_error_302(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any
    ) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urllib.parse.urljoin(req.full_url, location)
            try:
                check_redirect(req.full_url, target, code)
            except CertFetchError:
                with contextlib.suppress(OSError):
                    fp.close()
                raise
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Sockets:
    """The sockets of one fetch, so that another thread can shut them all down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._aborted = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            aborted = self._aborted
        if aborted:
            _shut(sock)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down so a read blocked on it in another thread returns.

    The plain socket's shutdown is used even on a TLS socket: it acts on the
    file descriptor only, which is safe while another thread is inside the
    TLS layer, and that thread then sees the connection end.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _tracked(base: type[http.client.HTTPConnection], sockets: _Sockets) -> Any:
    """A connection class of ``base`` whose every socket is registered with ``sockets``.

    http.client assigns ``sock`` when it connects (and again when TLS wraps
    it); a property catches each assignment without touching its internals.
    """

    class Tracked(base):  # type: ignore[valid-type, misc]
        @property
        def sock(self) -> socket.socket | None:
            return self.__dict__.get("_tracked_sock")

        @sock.setter
        def sock(self, value: socket.socket | None) -> None:
            self.__dict__["_tracked_sock"] = value
            if value is not None:
                sockets.add(value)

    return Tracked


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self._connection = _tracked(http.client.HTTPConnection, sockets)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, sockets: _Sockets, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._connection = _tracked(http.client.HTTPSConnection, sockets)
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._tls)


class UrllibOpener:
    """Opens URLs with urllib for one fetch: checked redirects, abortable sockets.

    https is verified against the system's CAs, or against ``cafile`` when
    given (a private CA, or a test's own).
    """

    def __init__(self, cafile: str | None = None) -> None:
        self._sockets = _Sockets()
        context = ssl.create_default_context(cafile=cafile)
        self._opener = urllib.request.build_opener(
            _GuardedRedirects(), _HttpHandler(self._sockets), _HttpsHandler(self._sockets, context)
        )

    @property
    def handlers(self) -> list[urllib.request.BaseHandler]:
        """The urllib handlers in use (for tests that check the fences are in place)."""
        handlers: list[urllib.request.BaseHandler] = self._opener.handlers
        return handlers

    def open(self, url: str, timeout: float) -> HttpBody:
        """Open ``url``; ``timeout`` bounds each socket operation (the deadline bounds all)."""
        response: HttpBody = self._opener.open(url, timeout=timeout)
        return response

    def abort(self) -> None:
        """Shut down every socket this fetch opened, and any it opens from now on."""
        self._sockets.abort()


# --- the fetch ---------------------------------------------------------------------------


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


def _fetch_failed(shown: str, timeout: float, error: BaseException) -> CertFetchError:
    """The error for a failed download, saying why in a few words."""
    if _is_timeout(error):
        return CertFetchError(
            f"cannot fetch the certificate from {shown}: timed out after {timeout:g}s"
        )
    return CertFetchError(f"cannot fetch the certificate from {shown}: {_reason(error)}")


def _too_slow(shown: str, timeout: float) -> CertFetchError:
    return CertFetchError(
        f"cannot fetch the certificate from {shown}: the download took longer than "
        f"{timeout:g}s (the deadline for connecting, the answer and the body together)"
    )


@dataclasses.dataclass(frozen=True)
class _Limits:
    shown: str
    timeout: float
    max_bytes: int
    deadline: float
    clock: Callable[[], float]


def _download(opener: Opener, url: str, limits: _Limits) -> Fetched:
    """Open and read the body; runs in the worker thread."""
    shown, timeout, max_bytes = limits.shown, limits.timeout, limits.max_bytes
    try:
        body = opener.open(url, max(limits.deadline - limits.clock(), 0.001))
    except urllib.error.HTTPError as e:
        e.close()
        raise CertFetchError(
            f"cannot fetch the certificate from {shown}: the server answered HTTP {e.code} "
            f"{e.reason}; check the URL"
        ) from None
    except _NETWORK_ERRORS as e:
        raise _fetch_failed(shown, timeout, e) from None
    try:
        declared = _declared_length(body)
        if declared is not None and declared > max_bytes:
            raise CertFetchError(
                f"{shown} serves {declared} bytes, more than the {max_bytes} a certificate "
                "can need; point cert-url at the PEM certificate itself"
            )
        data = bytearray()
        while len(data) <= max_bytes:
            if limits.clock() > limits.deadline:
                raise _too_slow(shown, timeout)
            chunk = body.read(min(_READ_CHUNK, max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        final_url = body.url
    except _NETWORK_ERRORS as e:
        raise _fetch_failed(shown, timeout, e) from None
    finally:
        with contextlib.suppress(*_NETWORK_ERRORS):
            body.close()
    if len(data) > max_bytes:
        raise CertFetchError(
            f"{shown} serves more than {max_bytes} bytes, more than a certificate can "
            "need; point cert-url at the PEM certificate itself"
        )
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CertFetchError(
            f"{shown} does not serve text (not UTF-8): a DER certificate? Serve it as "
            "PEM (`openssl x509 -inform der -in CERT -out CERT.pem`)"
        ) from None
    return Fetched(text=text, requested=url, final_url=final_url)


def fetch_certificate(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cafile: str | None = None,
    opener: Opener | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """Download a PEM certificate for ``add-trusted-client cert-url=...``.

    Returns within ``timeout`` seconds (plus a moment to unwind) whatever
    the server does: the download runs in a worker thread, and at the
    deadline its sockets are shut down and the fetch fails. The worker also
    checks the deadline between reads, so a quick trickle ends as surely as
    a stalled one.

    Args:
        url: the http:// or https:// URL.
        timeout: seconds for the whole fetch: lookup, connect, TLS, redirects,
            headers and body.
        max_bytes: the largest body accepted.
        cafile: CA certificates (PEM file) to verify https servers with,
            instead of the system's.
        opener: opens the URL; tests replace it to avoid the network.
        clock: the worker's monotonic clock (a test seam).

    Returns:
        The body as text (unchecked: the caller loads the certificate) and
        the URL it finally came from.

    Raises:
        CertFetchError: the URL or a redirect is refused, the server answers
            with an HTTP error, cannot be reached or is too slow, the body is
            larger than ``max_bytes`` or is not UTF-8 text.
    """
    url = url.strip()
    check_fetch_url(url)
    limits = _Limits(redact(url), timeout, max_bytes, clock() + timeout, clock)
    used = opener if opener is not None else UrllibOpener(cafile=cafile)
    outcome: list[Fetched | BaseException] = []

    def work() -> None:
        try:
            outcome.append(_download(used, url, limits))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, not swallowed
            outcome.append(e)

    worker = threading.Thread(target=work, name="cert-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        used.abort()
        worker.join(_ABORT_GRACE)
        logger.warning("gave up fetching %s after %gs", limits.shown, timeout)
        raise _too_slow(limits.shown, timeout)
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return result
