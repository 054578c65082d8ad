"""Connect to the model's LXD with checked credentials, and read its members.

`open_lxd` connects over HTTPS with the server certificate pinned (through
`lxd_common.lxd.LxdClient.remote`, which writes the client key to a private
temporary directory, mode 0700 and key 0600, deleted when the client is
closed: the key is never on disk between hooks). `read_nodes` checks that
LXD trusts us and lists where requirers can reach it: every cluster member,
or the single server.

Every failure an operator can act on becomes `LxdConnectionProblem`, whose
message is the unit's status line: the endpoint unreachable, the server's
certificate not the expected one, or the client certificate not trusted.
Other LXD failures propagate as `lxd_common.errors.LxdError`.

Usage:
    with open_lxd(credentials) as lxd:
        nodes = read_nodes(lxd, credentials)
"""

from __future__ import annotations

import logging
import re

import tenacity

from lxd_common.deadline import DeadlineExceededError
from lxd_common.endpoints import normalise_endpoint
from lxd_common.errors import EndpointError, LxdServerCertificateError, LxdUnreachableError
from lxd_common.interfaces.lxd import Node
from lxd_common.lxd import LxdClient
from lxd_integrator.credentials import Credentials

logger = logging.getLogger(__name__)

CONNECT_WAIT = 10.0
"""Seconds to keep retrying an unreachable LXD (it may be restarting) within one hook."""

API_TIMEOUT = 10.0
"""Seconds to wait for any one LXD answer."""
HOOK_DEADLINE = 60.0
"""All of a hook's talking to LXD (connecting, listing, registering) ends within this:
`API_TIMEOUT` bounds each read, and a server trickling bytes would pass every one."""

# What requests/urllib3 say when TLS verification of the server fails: pylxd
# pins a server certificate by fingerprint, system CAs verify by chain.
_TLS_FAILURES = ("Fingerprints did not match", "CERTIFICATE_VERIFY_FAILED", "SSLError")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
# What a connection failure comes down to, as requests/urllib3 word it deep inside.
_KNOWN_REASONS = (
    "connection refused",
    "connection reset by peer",
    "no route to host",
    "network is unreachable",
    "name or service not known",
    "temporary failure in name resolution",
    "timed out",
)


class LxdConnectionProblem(Exception):  # noqa: N818 - reads as a state
    """LXD cannot be used with these credentials; the message says why, for the status."""


def open_lxd(
    credentials: Credentials, *, wait: float | None = None, timeout: float | None = None
) -> LxdClient:
    """Connect to the credentials' endpoint; the caller closes the client (`with`).

    An unreachable LXD is retried for ``wait`` seconds (default
    `CONNECT_WAIT`); a server presenting the wrong certificate is not,
    because retrying cannot fix it. Each answer may take ``timeout`` seconds
    (default `API_TIMEOUT`).

    Raises:
        LxdConnectionProblem: unreachable, or the server's certificate does
            not verify.
    """

    def connect() -> LxdClient:
        return LxdClient.remote(
            credentials.endpoint,
            credentials.client,
            credentials.server_cert,
            timeout=API_TIMEOUT if timeout is None else timeout,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(CONNECT_WAIT if wait is None else wait),
        wait=tenacity.wait_exponential(multiplier=0.2, max=2.0),
        retry=tenacity.retry_if_exception(
            lambda e: (
                isinstance(e, LxdUnreachableError)
                and not isinstance(e, DeadlineExceededError)  # the hook's allowance is spent
                and not _is_tls_failure(e)
            )
        ),
        reraise=True,
    )
    try:
        return retrying(connect)
    except LxdUnreachableError as e:
        raise LxdConnectionProblem(explain_unreachable(credentials, e)) from e


def explain_unreachable(credentials: Credentials, error: LxdUnreachableError) -> str:
    """Turn a connection failure into a short status line saying what to check."""
    if isinstance(error, DeadlineExceededError):
        return (
            f"LXD at {credentials.endpoint} did not answer within {HOOK_DEADLINE:g} seconds "
            "in all: retrying at the next hook"
        )
    if _is_tls_failure(error):
        if credentials.server_cert is None:
            return (
                f"cannot verify LXD at {credentials.endpoint} with the system CAs: "
                f"set {credentials.field_name('server-cert')}"
            )
        return (
            f"LXD at {credentials.endpoint} presented a certificate that does not match "
            f"{credentials.field_name('server-cert')}"
        )
    text = str(error)
    known = [phrase for phrase in _KNOWN_REASONS if phrase in text.lower()]
    if known:
        reason = known[0]
    elif match := _ERRNO.search(text):
        reason = match[1].strip().lower()
    else:
        reason = text.rsplit(": ", 1)[-1][:120]
    return f"cannot reach LXD at {credentials.endpoint}: {reason}"


def _is_tls_failure(error: BaseException) -> bool:
    # lxd_common names pin and CA mismatches; other TLS failures only show in the text.
    return isinstance(error, LxdServerCertificateError) or any(
        marker in str(error) for marker in _TLS_FAILURES
    )


def read_nodes(lxd: LxdClient, credentials: Credentials) -> tuple[Node, ...]:
    """Check LXD trusts us, then list its members (or the one server), sorted by name.

    A standalone server is published at the endpoint we reached it on; its
    name is LXD's `server_name`. Members are published at the URL LXD
    reports for them, normalised (`https://host:port`). The trusted
    fingerprints are left empty: they depend on the relation.

    Raises:
        LxdConnectionProblem: LXD does not trust the client certificate.
        LxdError: LXD failed to answer.
    """
    info = lxd.server_info()
    if info.get("auth") != "trusted":
        raise LxdConnectionProblem(
            f"LXD at {credentials.endpoint} does not trust "
            f"{credentials.field_name('client-cert')}: add it to LXD's trust store"
        )
    environment = info.get("environment") or {}
    if not environment.get("server_clustered"):
        name = str(environment.get("server_name") or "lxd")
        return (Node(name, credentials.endpoint),)
    nodes = []
    for member in lxd.cluster.members():
        try:
            nodes.append(Node(member.name, normalise_endpoint(member.url)))
        except EndpointError as e:
            logger.warning(
                "cluster member %r has no usable URL (%s); not published", member.name, e
            )
    return tuple(sorted(nodes, key=lambda n: n.name))
