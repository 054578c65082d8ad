"""Reading an LXD endpoint from a provider's databag.

Providers write ``https://host:port``; older upstream providers wrote a bare
address (``10.0.0.1``) or ``http://``. A requirer needs one canonical form to
connect to and compare, so this reads every such shape into
``https://host:port`` and refuses what is not an LXD endpoint (another
scheme, a path, user-info, a bad host or port). It is the wire's reader
only: operator input is parsed by the charms' own, richer module.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["DEFAULT_PORT", "read_endpoint"]

DEFAULT_PORT = 8443
"""The port LXD listens on for its HTTPS API unless configured otherwise."""

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_AUTHORITY = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>[0-9]{1,5}))?$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def _host(text: str, v6: bool) -> str:
    host = text.lower()
    try:
        parsed = ipaddress.ip_address(host)  # an IPv6 zone (%eth0) is Python's to check
    except ValueError:
        if v6 or not _DNS_NAME.match(host) or host.rsplit(".", 1)[-1].isdecimal():
            raise ValueError(f"invalid host {text!r}: not an IP address or DNS name") from None
        return host
    return f"[{host}]" if parsed.version == 6 else host


def read_endpoint(address: str) -> str:
    """``https://host:port`` for an endpoint as a provider wrote it.

    Raises:
        ValueError: an empty value, a scheme other than http(s), a path,
            query, fragment or user-info, an invalid host, or a port outside
            1-65535.
    """
    value = address.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"invalid endpoint {address!r}: empty or contains whitespace")
    if match := _SCHEME.match(value):
        scheme = match["scheme"].lower()
        if scheme not in ("http", "https"):
            raise ValueError(
                f"unsupported scheme {scheme!r} in {address!r}: LXD endpoints are https://"
            )
        value = value[match.end() :]
    value = value.rstrip("/")
    if any(c in value for c in "/?#@"):
        raise ValueError(f"invalid endpoint {address!r}: only https://host:port is allowed")
    if value.count(":") > 1 and not value.startswith("["):
        value = f"[{value}]"  # a bare IPv6 address carries no port
    parts = _AUTHORITY.match(value)
    if parts is None:
        raise ValueError(f"invalid endpoint {address!r}: not host or host:port")
    host = _host(parts["v6"] or parts["host"], v6=parts["v6"] is not None)
    port = int(parts["port"]) if parts["port"] else DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port} in {address!r}: must be between 1 and 65535")
    return f"https://{host}:{port}"
