"""LXD endpoint addresses, normalised the way Juju's LXD client does it.

LXD only serves its remote API over HTTPS, on port 8443 unless told
otherwise, yet operators and relation data give addresses in every shape:
a bare IP, `host:port`, an unbracketed IPv6 address, `http://...`. Juju's
`EnsureHTTPS`/`EnsureHostPort` accept all of those; this module does the same
so that one canonical string (`https://host:port`) can be compared, stored
in relation data and handed to a client.

Typical use::

    endpoint = normalise_endpoint(config.address)  # "https://[::1]:8443"
    host, port = split_endpoint(endpoint)          # ("::1", 8443)
    https_address = host_port(bind_ip, 8443)       # for core.https_address

Every function raises `lxd_common.errors.EndpointError` (a `ValueError`)
with a message naming the offending part of the address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from lxd_common.errors import EndpointError

__all__ = [
    "DEFAULT_PORT",
    "ensure_host_port",
    "ensure_https",
    "host_port",
    "normalise_endpoint",
    "split_endpoint",
]

DEFAULT_PORT = 8443
"""The port LXD listens on for its HTTPS API unless configured otherwise."""

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_DNS_NAME = 253
_MAX_PORT = 65535


@dataclass(frozen=True)
class _Address:
    scheme: str | None  # lowercased, None when the address had none
    host: str  # without brackets, lowercased
    port: int | None
    user_info: str | None
    rest: str  # path, query and fragment, as given


def _check_no_whitespace(address: str) -> str:
    value = address.strip()
    if not value:
        raise EndpointError("empty address; expected an LXD endpoint such as 10.0.0.1:8443")
    if any(char.isspace() for char in value):
        raise EndpointError(f"invalid address {value!r}: it contains whitespace")
    return value


def _parse_port(text: str, address: str) -> int:
    # isdecimal() alone would accept other scripts' digits, which int() takes.
    if not (text.isascii() and text.isdecimal()):
        raise EndpointError(f"invalid port {text!r} in {address!r}: not a number")
    return _check_port(int(text), address)


def _check_port(port: int, address: str) -> int:
    if not 1 <= port <= _MAX_PORT:
        raise EndpointError(
            f"invalid port {port} in {address!r}: must be between 1 and {_MAX_PORT}"
        )
    return port


def _check_host(host: str, address: str) -> str:
    """Return the host in canonical case if it is an IP address or a DNS name.

    Anything else would only fail later, at connection time, with a resolver
    error that does not say which setting was wrong.
    """
    if not host:
        raise EndpointError(f"invalid address {address!r}: no host")
    if ":" in host:
        # Only the address is case-insensitive; a zone (%eth0) names an interface.
        address_part, percent, zone = host.partition("%")
        host = f"{address_part.lower()}{percent}{zone}"
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise EndpointError(
                f"invalid host {host!r} in {address!r}: not an IPv6 address"
            ) from exc
        return host
    host = host.lower()
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return host
    labels = host.split(".")
    if (
        len(host) > _MAX_DNS_NAME
        or not all(_DNS_LABEL.fullmatch(label) for label in labels)
        # An all-numeric last label is a mistyped IPv4 address, never a TLD.
        or labels[-1].isdecimal()
    ):
        raise EndpointError(f"invalid host {host!r} in {address!r}: not an IP address or DNS name")
    return host


def _parse(address: str) -> _Address:
    """Split an address into its parts and validate host and port.

    A bare IPv6 address cannot carry a port (`2001:db8::1:8443` is itself a
    valid address), so more than one colon outside brackets means the whole
    authority is the host, as Juju does.
    """
    value = _check_no_whitespace(address)
    scheme: str | None = None
    if match := _SCHEME.match(value):
        scheme = match["scheme"].lower()
        value = value[match.end() :]
    split_at = min((i for i in (value.find(c) for c in "/?#") if i >= 0), default=len(value))
    authority, rest = value[:split_at], value[split_at:]
    user_info: str | None = None
    if "@" in authority:
        user_info, _, authority = authority.rpartition("@")
    port: int | None = None
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise EndpointError(f"invalid address {address!r}: '[' without ']'")
        host, after = authority[1:close], authority[close + 1 :]
        if ":" not in host:
            raise EndpointError(
                f"invalid address {address!r}: brackets are only for IPv6 addresses"
            )
        if after:
            if not after.startswith(":"):
                raise EndpointError(f"invalid address {address!r}: unexpected {after!r} after ']'")
            port = _parse_port(after[1:], address)
    elif authority.count(":") == 1:
        host, _, port_text = authority.partition(":")
        port = _parse_port(port_text, address)
    else:
        host = authority
    return _Address(scheme, _check_host(host, address), port, user_info, rest)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ensure_https(address: str) -> str:
    """Make an address an HTTPS URL, because LXD serves its API over HTTPS only.

    `http://` is upgraded rather than refused: operators often type it, and
    LXD would refuse the plain-HTTP connection anyway. Other schemes mean the
    address is for something else (e.g. `unix://` is a local socket), so
    they are refused instead of being silently rewritten.

    Args:
        address: An address with or without a scheme.

    Returns:
        The address with an `https://` scheme; the rest is left as given.

    Raises:
        EndpointError: The address is empty, contains whitespace, or has a
            scheme other than http or https.
    """
    value = _check_no_whitespace(address)
    match = _SCHEME.match(value)
    if match is None:
        return f"https://{value}"
    scheme = match["scheme"].lower()
    if scheme not in ("http", "https"):
        raise EndpointError(
            f"unsupported scheme {scheme!r} in {address!r}: LXD endpoints are https://"
        )
    return f"https://{value[match.end() :]}"


def ensure_host_port(address: str, default_port: int = DEFAULT_PORT) -> str:
    """Add the default port to an address that has none, validating host and port.

    Any scheme, path or query is kept as given, so this composes with
    `ensure_https` in either order.

    Args:
        address: `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address,
            optionally with a scheme.
        default_port: The port to add when the address has none.

    Returns:
        The address with an explicit port and any IPv6 host in brackets.

    Raises:
        EndpointError: The address is empty, the host is not an IP address
            or DNS name, or a port is not an integer from 1 to 65535.
    """
    parsed = _parse(address)
    port = parsed.port if parsed.port is not None else _check_port(default_port, address)
    prefix = f"{parsed.scheme}://" if parsed.scheme is not None else ""
    user_info = f"{parsed.user_info}@" if parsed.user_info is not None else ""
    return f"{prefix}{user_info}{_join(parsed.host, port)}{parsed.rest}"


def normalise_endpoint(address: str, default_port: int = DEFAULT_PORT) -> str:
    """Turn any accepted form of an LXD address into `https://host:port`.

    The result is canonical (lowercase, explicit port, bracketed IPv6) so
    that two spellings of one endpoint compare equal. A path, query,
    fragment or user-info is refused: LXD's API lives at the root and
    authenticates by certificate, so any of them means the address was
    copied from somewhere else and would be silently wrong.

    Args:
        address: The address as an operator or another charm gave it.
        default_port: The port to use when the address has none.

    Returns:
        `https://host:port`.

    Raises:
        EndpointError: The address is empty or contains whitespace, has a
            scheme other than http/https, a path, query, fragment or
            user-info, an invalid host, or an invalid port.
    """
    host, port = _host_and_port(address, default_port)
    return f"https://{_join(host, port)}"


def _host_and_port(address: str, default_port: int) -> tuple[str, int]:
    ensure_https(address)  # refuses schemes other than http(s)
    parsed = _parse(address)
    if parsed.user_info is not None:
        raise EndpointError(
            f"invalid endpoint {address!r}: user-info is not allowed; LXD "
            "authenticates with client certificates"
        )
    rest = parsed.rest[:-1] if parsed.rest == "/" else parsed.rest
    if rest:
        part = {"?": "query", "#": "fragment"}.get(rest[0], "path")
        raise EndpointError(
            f"invalid endpoint {address!r}: a {part} ({rest!r}) is not allowed; "
            "give only host and port"
        )
    if parsed.port is None:
        return parsed.host, _check_port(default_port, address)
    return parsed.host, parsed.port


def host_port(host: str, port: int) -> str:
    """Join a host and port as LXD's `core.https_address` expects them.

    IPv6 hosts need brackets there, or LXD cannot tell the port from the
    address; building the string here keeps every caller from forgetting.

    Args:
        host: An IP address (IPv6 with or without brackets) or a DNS name.
        port: A port from 1 to 65535.

    Returns:
        `host:port` or `[ipv6]:port`.

    Raises:
        EndpointError: The host is not an IP address or DNS name, or the
            port is out of range or not an integer.
    """
    shown = f"{host}:{port}"
    if isinstance(port, bool) or not isinstance(port, int):
        raise EndpointError(f"invalid port {port!r} for {host!r}: not an integer")
    value = host.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
        if ":" not in value:
            raise EndpointError(f"invalid host {host!r}: brackets are only for IPv6 addresses")
    if any(char.isspace() for char in value) or any(c in value for c in "[]/@?#"):
        raise EndpointError(f"invalid host {host!r}: not an IP address or DNS name")
    return _join(_check_host(value, shown), _check_port(port, shown))


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """Return the host (without brackets) and port of an endpoint.

    The endpoint is normalised first, so callers get the same answer for
    every spelling of it, including the implied default port.

    Args:
        endpoint: An endpoint in any form `normalise_endpoint` accepts.

    Returns:
        `(host, port)`, e.g. `("2001:db8::1", 8443)`.

    Raises:
        EndpointError: The endpoint is not valid.
    """
    return _host_and_port(endpoint, DEFAULT_PORT)
