"""Translate what pylxd and requests raise into `lxd_common.errors`.

pylxd surfaces LXD's refusals as ``LXDAPIException`` and transport problems
as ``ClientConnectionFailed`` or raw ``requests`` errors. Callers of this
package should only ever need to catch our own hierarchy, so every call into
pylxd goes through :func:`translate_errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
import tenacity
from pylxd import exceptions as pylxd_exceptions

from ..errors import LxdApiError, LxdServerCertificateError, LxdUnreachableError

#: What pylxd (a pinned fingerprint) and requests (CA verification) say when the
#: server's certificate is not the expected one.
TLS_MISMATCH_MARKERS = ("Fingerprints did not match", "CERTIFICATE_VERIFY_FAILED")


def lxd_message(error: pylxd_exceptions.LXDAPIException) -> str:
    """LXD's own reason for refusing a request, without pylxd's wrapping."""
    try:
        return str(error) or "LXD refused the request without a reason"
    except Exception:
        return "LXD refused the request (unreadable response)"


def status_code(error: pylxd_exceptions.LXDAPIException) -> int:
    """The HTTP status (or LXD error code) of a refused request."""
    response = error.response
    try:
        body: dict[str, Any] = response.json()
        code = int(body.get("error_code") or 0)
        if code:
            return code
    except (ValueError, AttributeError):
        pass
    return int(getattr(response, "status_code", 0) or 0)


@contextmanager
def translate_errors(doing: str) -> Iterator[None]:
    """Re-raise pylxd/requests failures as our errors, saying what we were doing."""
    try:
        yield
    except (pylxd_exceptions.ClientConnectionFailed, requests.ConnectionError) as e:
        if any(marker in str(e) for marker in TLS_MISMATCH_MARKERS):
            raise LxdServerCertificateError(
                f"cannot trust LXD while {doing}: its certificate is not the expected one ({e})"
            ) from e
        raise LxdUnreachableError(
            f"cannot reach LXD while {doing}: {str(e) or 'connection failed'}"
        ) from e
    except requests.Timeout as e:
        raise LxdUnreachableError(f"cannot reach LXD while {doing}: {e}") from e
    except requests.exceptions.ChunkedEncodingError as e:
        # The connection broke in the middle of the answer (seen from a server that
        # closed it half-way through its body).
        raise LxdUnreachableError(f"LXD's answer broke off while {doing}: {e}") from e
    except pylxd_exceptions.LXDAPIException as e:
        raise LxdApiError(f"LXD refused {doing}: {lxd_message(e)}", status_code(e)) from e


def check(response: requests.Response, doing: str) -> dict[str, Any]:
    """Return the JSON body of a raw API response, or raise LxdApiError.

    Raw ``client.api`` calls do not raise on LXD errors, so this is where
    they become :class:`LxdApiError`, carrying LXD's own reason.
    """
    try:
        body = response.json()
    except ValueError as e:
        raise LxdApiError(f"LXD sent a non-JSON answer while {doing}") from e
    if not isinstance(body, dict):
        raise LxdApiError(f"LXD sent an unexpected answer while {doing}: {body!r:.80}")
    if body.get("type") == "error" or response.status_code >= 400:
        raise LxdApiError(
            f"LXD refused {doing}: {body.get('error') or response.reason}",
            int(body.get("error_code") or response.status_code),
        )
    return body


#: What LXD says while its cluster database changes leader or is briefly
#: unavailable (seen after removing the member that led the database).
TRANSIENT_MARKERS = (
    "context deadline exceeded",
    "no available dqlite leader",
    "database is locked",
    "failed to begin transaction",
    # The database's leader changed under a request (captured from LXD 5.0 as
    # "Failed to leave the cluster: server has lost leadership"); dqlite words
    # the same moment "not leader" and "leadership lost".
    "lost leadership",
    "leadership lost",
    "not leader",
)
TRANSIENT_SECONDS = 30.0

T = TypeVar("T")


def transient(error: BaseException) -> bool:
    """True for an LXD refusal that a retry a moment later would not get."""
    return isinstance(error, LxdApiError) and any(
        marker in str(error).lower() for marker in TRANSIENT_MARKERS
    )


def retry_transient(call: Callable[[], T], seconds: float = TRANSIENT_SECONDS) -> T:
    """Call, retrying while LXD's cluster database is settling."""
    retryer = tenacity.Retrying(
        stop=tenacity.stop_after_delay(seconds),
        wait=tenacity.wait_exponential(multiplier=0.2, max=2.0),
        retry=tenacity.retry_if_exception(transient),
        reraise=True,
    )
    return retryer(call)
