"""Unit tests for lxd_common.endpoints."""

from __future__ import annotations

import pytest

from lxd_common.endpoints import (
    DEFAULT_PORT,
    ensure_host_port,
    ensure_https,
    host_port,
    normalise_endpoint,
    split_endpoint,
)
from lxd_common.errors import EndpointError


def test_default_port_is_lxds() -> None:
    assert DEFAULT_PORT == 8443


# --- ensure_https ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", "https://10.0.0.1"),
        ("10.0.0.1:8443", "https://10.0.0.1:8443"),
        ("lxd.example.com", "https://lxd.example.com"),
        ("[::1]:8443", "https://[::1]:8443"),
        ("http://host", "https://host"),
        ("HTTP://host:80/x", "https://host:80/x"),
        ("https://host", "https://host"),
        ("HTTPS://host", "https://host"),
        ("  https://host:1  ", "https://host:1"),
    ],
)
def test_ensure_https(address: str, expected: str) -> None:
    assert ensure_https(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("ftp://host", "unsupported scheme 'ftp'"),
        ("unix:///var/snap/lxd/common/lxd/unix.socket", "unsupported scheme 'unix'"),
        ("wss://host", "unsupported scheme 'wss'"),
        ("", "empty address"),
        ("   ", "empty address"),
        ("https://host name", "contains whitespace"),
    ],
)
def test_ensure_https_rejects(address: str, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        ensure_https(address)


# --- ensure_host_port ------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "default_port", "expected"),
    [
        ("10.0.0.1", DEFAULT_PORT, "10.0.0.1:8443"),
        ("10.0.0.1:9443", DEFAULT_PORT, "10.0.0.1:9443"),
        ("10.0.0.1", 443, "10.0.0.1:443"),
        ("::1", DEFAULT_PORT, "[::1]:8443"),
        ("[::1]", DEFAULT_PORT, "[::1]:8443"),
        ("[2001:db8::1]:1", DEFAULT_PORT, "[2001:db8::1]:1"),
        ("LXD.Example.COM", DEFAULT_PORT, "lxd.example.com:8443"),
        ("https://host", DEFAULT_PORT, "https://host:8443"),
        ("https://host:65535", DEFAULT_PORT, "https://host:65535"),
        ("http://host/1.0?x#y", DEFAULT_PORT, "http://host:8443/1.0?x#y"),
        ("https://user@host", DEFAULT_PORT, "https://user@host:8443"),
        ("host:08443", DEFAULT_PORT, "host:8443"),
    ],
)
def test_ensure_host_port(address: str, default_port: int, expected: str) -> None:
    assert ensure_host_port(address, default_port) == expected


@pytest.mark.parametrize(
    ("address", "default_port", "message"),
    [
        ("host:0", DEFAULT_PORT, "invalid port 0"),
        ("host:70000", DEFAULT_PORT, "invalid port 70000"),
        ("host:abc", DEFAULT_PORT, "invalid port 'abc'"),
        ("host:", DEFAULT_PORT, "invalid port ''"),
        ("host:-1", DEFAULT_PORT, "invalid port '-1'"),
        ("host:\u0661\u0662", DEFAULT_PORT, "not a number"),  # Arabic-Indic digits
        ("[::1]:0", DEFAULT_PORT, "invalid port 0"),
        ("host", 0, "invalid port 0"),
        ("host", 70000, "invalid port 70000"),
        ("", DEFAULT_PORT, "empty address"),
        ("bad_host", DEFAULT_PORT, "invalid host 'bad_host'"),
    ],
)
def test_ensure_host_port_rejects(address: str, default_port: int, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        ensure_host_port(address, default_port)


# --- normalise_endpoint ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", "https://10.0.0.1:8443"),
        ("10.0.0.1:9443", "https://10.0.0.1:9443"),
        ("::1", "https://[::1]:8443"),
        ("[::1]", "https://[::1]:8443"),
        ("[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ("2001:db8::1", "https://[2001:db8::1]:8443"),
        # A bare IPv6 address cannot carry a port: the last group is address.
        ("2001:db8::1:9443", "https://[2001:db8::1:9443]:8443"),
        ("[2001:DB8::A]", "https://[2001:db8::a]:8443"),
        ("fe80::1%eth0", "https://[fe80::1%eth0]:8443"),
        ("[FE80::1%Eth0]:1", "https://[fe80::1%Eth0]:1"),
        ("lxd.example.com", "https://lxd.example.com:8443"),
        ("lxd-1.Example.com:443", "https://lxd-1.example.com:443"),
        ("localhost", "https://localhost:8443"),
        ("http://host", "https://host:8443"),
        ("http://host:80", "https://host:80"),
        ("https://10.0.0.1:8443/", "https://10.0.0.1:8443"),
        ("10.0.0.1/", "https://10.0.0.1:8443"),
        ("  https://10.0.0.1  ", "https://10.0.0.1:8443"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_normalise_endpoint(address: str, expected: str) -> None:
    assert normalise_endpoint(address) == expected
    # Normalising is idempotent, so stored endpoints can be re-normalised safely.
    assert normalise_endpoint(expected) == expected


def test_normalise_endpoint_uses_given_default_port() -> None:
    assert normalise_endpoint("host", 9443) == "https://host:9443"
    assert normalise_endpoint("host:1", 9443) == "https://host:1"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "empty address"),
        ("   ", "empty address"),
        ("10.0.0.1:0", "invalid port 0"),
        ("10.0.0.1:70000", "invalid port 70000"),
        ("10.0.0.1:abc", "invalid port 'abc'"),
        ("https://[::1]:99999", "invalid port 99999"),
        ("https://10.0.0.1:8443/1.0", r"a path \('/1.0'\) is not allowed"),
        ("10.0.0.1//", "a path"),
        ("host?project=default", "a query"),
        ("host/?x", "a path"),
        ("host#frag", "a fragment"),
        ("https://user:pass@host", "user-info is not allowed"),
        ("ftp://host", "unsupported scheme 'ftp'"),
        ("unix:///run/lxd.socket", "unsupported scheme 'unix'"),
        ("host name", "contains whitespace"),
        ("https://host\t:8443", "contains whitespace"),
        ("10.0.0.256", "invalid host '10.0.0.256'"),
        ("10.0.0", "invalid host '10.0.0'"),
        ("010.0.0.1", "invalid host"),
        ("-lxd.example.com", "invalid host"),
        ("lxd-.example.com", "invalid host"),
        ("lxd..example.com", "invalid host"),
        ("lxd.example.com.", "invalid host"),
        ("under_score.com", "invalid host"),
        ("h\u00e9te.example.com", "invalid host"),
        ("a" * 64 + ".com", "invalid host"),
        (".".join(["a" * 63] * 4), "invalid host"),
        (":8443", "no host"),
        ("https://", "no host"),
        ("[::1", r"'\[' without '\]'"),
        ("[10.0.0.1]:8443", "brackets are only for IPv6"),
        ("[::1]8443", "unexpected '8443' after"),
        ("[::g]", "not an IPv6 address"),
        ("1:2:3:4:5:6:7:8:9", "not an IPv6 address"),
    ],
)
def test_normalise_endpoint_rejects(address: str, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        normalise_endpoint(address)


def test_errors_quote_the_address_as_given() -> None:
    with pytest.raises(EndpointError) as info:
        normalise_endpoint("10.0.0.1:0")
    assert "'10.0.0.1:0'" in str(info.value)
    assert "https://" not in str(info.value)


def test_endpoint_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty address"):
        normalise_endpoint("")


# --- host_port -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("10.0.0.1", 8443, "10.0.0.1:8443"),
        ("2001:db8::1", 8443, "[2001:db8::1]:8443"),
        ("[2001:db8::1]", 8443, "[2001:db8::1]:8443"),
        ("::", 1, "[::]:1"),
        ("0.0.0.0", 65535, "0.0.0.0:65535"),  # noqa: S104 - a value under test, not a bind
        ("LXD.example.com", 443, "lxd.example.com:443"),
    ],
)
def test_host_port(host: str, port: int, expected: str) -> None:
    assert host_port(host, port) == expected


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("10.0.0.1", 0, "invalid port 0"),
        ("10.0.0.1", 70000, "invalid port 70000"),
        ("10.0.0.1", -1, "invalid port -1"),
        ("10.0.0.1", True, "not an integer"),
        ("10.0.0.1", "8443", "not an integer"),
        ("", 8443, "no host"),
        ("10.0.0.256", 8443, "invalid host"),
        ("[10.0.0.1]", 8443, "brackets are only for IPv6"),
        ("10.0.0.1:8443", 8443, "invalid host"),
        ("https://host", 8443, "invalid host"),
        ("host name", 8443, "invalid host"),
        ("user@host", 8443, "invalid host"),
        ("[::1", 8443, "invalid host"),
        ("2001:db8::g", 8443, "not an IPv6 address"),
    ],
)
def test_host_port_rejects(host: str, port: object, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        host_port(host, port)  # type: ignore[arg-type]


# --- split_endpoint --------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://10.0.0.1:8443", ("10.0.0.1", 8443)),
        ("https://[2001:db8::1]:9443", ("2001:db8::1", 9443)),
        ("https://lxd.example.com:443", ("lxd.example.com", 443)),
        ("10.0.0.1", ("10.0.0.1", DEFAULT_PORT)),
        ("::1", ("::1", DEFAULT_PORT)),
    ],
)
def test_split_endpoint(endpoint: str, expected: tuple[str, int]) -> None:
    assert split_endpoint(endpoint) == expected


@pytest.mark.parametrize("endpoint", ["https://[::1]:8443", "https://lxd.example.com:1"])
def test_split_then_join_round_trips(endpoint: str) -> None:
    assert f"https://{host_port(*split_endpoint(endpoint))}" == endpoint


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("", "empty address"),
        ("https://host:0", "invalid port 0"),
        ("https://host/x", "a path"),
        ("ftp://host", "unsupported scheme"),
    ],
)
def test_split_endpoint_rejects(endpoint: str, message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        split_endpoint(endpoint)
