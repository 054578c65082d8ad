"""Unit tests for lxd_common.endpoints."""

from __future__ import annotations

import re

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

NOT_A_HOST = "not an IP address or DNS name"
LONG_LABEL = "a" * 64 + ".com"  # a label is at most 63 characters
NAME_253 = ".".join(["a" * 63] * 3 + ["a" * 61])  # the longest DNS name
NAME_254 = NAME_253 + "a"
NAME_255 = ".".join(["a" * 63] * 4)


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


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
        ("ftp://host", "unsupported scheme 'ftp' in 'ftp://host': LXD endpoints are https://"),
        (
            "unix:///var/snap/lxd/common/lxd/unix.socket",
            (
                "unsupported scheme 'unix' in "
                "'unix:///var/snap/lxd/common/lxd/unix.socket': "
                "LXD endpoints are https://"
            ),
        ),
        ("wss://host", "unsupported scheme 'wss' in 'wss://host': LXD endpoints are https://"),
        ("", "empty address; expected an LXD endpoint such as 10.0.0.1:8443"),
        ("   ", "empty address; expected an LXD endpoint such as 10.0.0.1:8443"),
        ("https://host name", "invalid address 'https://host name': it contains whitespace"),
    ],
)
def test_ensure_https_rejects(address: str, message: str) -> None:
    with pytest.raises(EndpointError, match=exactly(message)):
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
        ("host:0", DEFAULT_PORT, "invalid port 0 in 'host:0': must be between 1 and 65535"),
        (
            "host:70000",
            DEFAULT_PORT,
            ("invalid port 70000 in 'host:70000': must be between 1 and 65535"),
        ),
        ("host:abc", DEFAULT_PORT, "invalid port 'abc' in 'host:abc': not a number"),
        ("host:", DEFAULT_PORT, "invalid port '' in 'host:': not a number"),
        ("host:-1", DEFAULT_PORT, "invalid port '-1' in 'host:-1': not a number"),
        (
            "host:\u0661\u0662",
            DEFAULT_PORT,
            "invalid port '\u0661\u0662' in 'host:\u0661\u0662': not a number",
        ),  # Arabic-Indic digits
        ("[::1]:0", DEFAULT_PORT, "invalid port 0 in '[::1]:0': must be between 1 and 65535"),
        ("host", 0, "invalid port 0 in 'host': must be between 1 and 65535"),
        ("host", 70000, "invalid port 70000 in 'host': must be between 1 and 65535"),
        ("", DEFAULT_PORT, "empty address; expected an LXD endpoint such as 10.0.0.1:8443"),
        (
            "bad_host",
            DEFAULT_PORT,
            ("invalid host 'bad_host' in 'bad_host': not an IP address or DNS name"),
        ),
    ],
)
def test_ensure_host_port_rejects(address: str, default_port: int, message: str) -> None:
    with pytest.raises(EndpointError, match=exactly(message)):
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
        ("", "empty address; expected an LXD endpoint such as 10.0.0.1:8443"),
        ("   ", "empty address; expected an LXD endpoint such as 10.0.0.1:8443"),
        ("10.0.0.1:0", "invalid port 0 in '10.0.0.1:0': must be between 1 and 65535"),
        ("10.0.0.1:70000", "invalid port 70000 in '10.0.0.1:70000': must be between 1 and 65535"),
        ("10.0.0.1:abc", "invalid port 'abc' in '10.0.0.1:abc': not a number"),
        (
            "https://[::1]:99999",
            ("invalid port 99999 in 'https://[::1]:99999': must be between 1 and 65535"),
        ),
        (
            "https://10.0.0.1:8443/1.0",
            (
                "invalid endpoint 'https://10.0.0.1:8443/1.0': a "
                "path ('/1.0') is not allowed; give only host and "
                "port"
            ),
        ),
        (
            "10.0.0.1//",
            (
                "invalid endpoint '10.0.0.1//': a path ('//') is not allowed; give "
                "only host and port"
            ),
        ),
        (
            "host?project=default",
            (
                "invalid endpoint 'host?project=default': a query "
                "('?project=default') is not allowed; give only host and "
                "port"
            ),
        ),
        (
            "host/?x",
            ("invalid endpoint 'host/?x': a path ('/?x') is not allowed; give only host and port"),
        ),
        (
            "host#frag",
            (
                "invalid endpoint 'host#frag': a fragment ('#frag') is not allowed; "
                "give only host and port"
            ),
        ),
        (
            "https://user:pass@host",
            (
                "invalid endpoint 'https://user:pass@host': user-info "
                "is not allowed; LXD authenticates with client "
                "certificates"
            ),
        ),
        ("ftp://host", "unsupported scheme 'ftp' in 'ftp://host': LXD endpoints are https://"),
        (
            "unix:///run/lxd.socket",
            ("unsupported scheme 'unix' in 'unix:///run/lxd.socket': LXD endpoints are https://"),
        ),
        ("host name", "invalid address 'host name': it contains whitespace"),
        ("https://host\t:8443", "invalid address 'https://host\\t:8443': it contains whitespace"),
        ("10.0.0.256", "invalid host '10.0.0.256' in '10.0.0.256': not an IP address or DNS name"),
        ("10.0.0", "invalid host '10.0.0' in '10.0.0': not an IP address or DNS name"),
        ("010.0.0.1", "invalid host '010.0.0.1' in '010.0.0.1': not an IP address or DNS name"),
        (
            "-lxd.example.com",
            (
                "invalid host '-lxd.example.com' in '-lxd.example.com': not "
                "an IP address or DNS name"
            ),
        ),
        (
            "lxd-.example.com",
            (
                "invalid host 'lxd-.example.com' in 'lxd-.example.com': not "
                "an IP address or DNS name"
            ),
        ),
        (
            "lxd..example.com",
            (
                "invalid host 'lxd..example.com' in 'lxd..example.com': not "
                "an IP address or DNS name"
            ),
        ),
        (
            "lxd.example.com.",
            (
                "invalid host 'lxd.example.com.' in 'lxd.example.com.': not "
                "an IP address or DNS name"
            ),
        ),
        (
            "under_score.com",
            ("invalid host 'under_score.com' in 'under_score.com': not an IP address or DNS name"),
        ),
        (
            "h\u00e9te.example.com",
            (
                "invalid host 'héte.example.com' in 'héte.example.com': "
                "not an IP address or DNS name"
            ),
        ),
        (LONG_LABEL, f"invalid host {LONG_LABEL!r} in {LONG_LABEL!r}: {NOT_A_HOST}"),
        (NAME_254, f"invalid host {NAME_254!r} in {NAME_254!r}: {NOT_A_HOST}"),
        (NAME_255, f"invalid host {NAME_255!r} in {NAME_255!r}: {NOT_A_HOST}"),
        ("lxd.example.123", f"invalid host 'lxd.example.123' in 'lxd.example.123': {NOT_A_HOST}"),
        ("10.0.0.1:65536", "invalid port 65536 in '10.0.0.1:65536': must be between 1 and 65535"),
        (":8443", "invalid address ':8443': no host"),
        ("https://", "invalid address 'https://': no host"),
        ("[::1", "invalid address '[::1': '[' without ']'"),
        (
            "[10.0.0.1]:8443",
            ("invalid address '[10.0.0.1]:8443': brackets are only for IPv6 addresses"),
        ),
        ("[::1]8443", "invalid address '[::1]8443': unexpected '8443' after ']'"),
        ("[::g]", "invalid host '::g' in '[::g]': not an IPv6 address"),
        (
            "1:2:3:4:5:6:7:8:9",
            ("invalid host '1:2:3:4:5:6:7:8:9' in '1:2:3:4:5:6:7:8:9': not an IPv6 address"),
        ),
    ],
)
def test_normalise_endpoint_rejects(address: str, message: str) -> None:
    with pytest.raises(EndpointError, match=exactly(message)):
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
        ("10.0.0.1", 0, "invalid port 0 in '10.0.0.1:0': must be between 1 and 65535"),
        ("10.0.0.1", 70000, "invalid port 70000 in '10.0.0.1:70000': must be between 1 and 65535"),
        ("10.0.0.1", -1, "invalid port -1 in '10.0.0.1:-1': must be between 1 and 65535"),
        ("10.0.0.1", True, "invalid port True for '10.0.0.1': not an integer"),
        ("10.0.0.1", "8443", "invalid port '8443' for '10.0.0.1': not an integer"),
        ("", 8443, "invalid address ':8443': no host"),
        (
            "10.0.0.256",
            8443,
            ("invalid host '10.0.0.256' in '10.0.0.256:8443': not an IP address or DNS name"),
        ),
        ("[10.0.0.1]", 8443, "invalid host '[10.0.0.1]': brackets are only for IPv6 addresses"),
        (
            "10.0.0.1:8443",
            8443,
            ("invalid host '10.0.0.1:8443' in '10.0.0.1:8443:8443': not an IPv6 address"),
        ),
        ("https://host", 8443, "invalid host 'https://host': not an IP address or DNS name"),
        ("host name", 8443, "invalid host 'host name': not an IP address or DNS name"),
        ("user@host", 8443, "invalid host 'user@host': not an IP address or DNS name"),
        ("[::1", 8443, "invalid host '[::1': not an IP address or DNS name"),
        (
            "2001:db8::g",
            8443,
            ("invalid host '2001:db8::g' in '2001:db8::g:8443': not an IPv6 address"),
        ),
    ],
)
def test_host_port_rejects(host: str, port: object, message: str) -> None:
    with pytest.raises(EndpointError, match=exactly(message)):
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
        ("", "empty address; expected an LXD endpoint such as 10.0.0.1:8443"),
        ("https://host:0", "invalid port 0 in 'https://host:0': must be between 1 and 65535"),
        (
            "https://host/x",
            (
                "invalid endpoint 'https://host/x': a path ('/x') is not "
                "allowed; give only host and port"
            ),
        ),
        ("ftp://host", "unsupported scheme 'ftp' in 'ftp://host': LXD endpoints are https://"),
    ],
)
def test_split_endpoint_rejects(endpoint: str, message: str) -> None:
    with pytest.raises(EndpointError, match=exactly(message)):
        split_endpoint(endpoint)


# --- the boundaries, each side of each limit ---------------------------------------


def test_the_longest_dns_name_and_label_are_accepted() -> None:
    assert len(NAME_253) == 253
    assert normalise_endpoint(NAME_253) == f"https://{NAME_253}:8443"
    label_63 = "a" * 63 + ".com"
    assert host_port(label_63, 1) == f"{label_63}:1"


def test_a_numeric_label_is_fine_anywhere_but_last() -> None:
    assert normalise_endpoint("123.example.com") == "https://123.example.com:8443"
    assert normalise_endpoint("lxd1.example.com2") == "https://lxd1.example.com2:8443"


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("fe80::1%a b", 8443, f"invalid host 'fe80::1%a b': {NOT_A_HOST}"),
        ("fe80::1%a/b", 8443, f"invalid host 'fe80::1%a/b': {NOT_A_HOST}"),
        ("fe80::1%a]", 8443, f"invalid host 'fe80::1%a]': {NOT_A_HOST}"),
        ("fe80::1%a@b", 8443, f"invalid host 'fe80::1%a@b': {NOT_A_HOST}"),
        ("fe80::1%a?b", 8443, f"invalid host 'fe80::1%a?b': {NOT_A_HOST}"),
        ("fe80::1%a#b", 8443, f"invalid host 'fe80::1%a#b': {NOT_A_HOST}"),
        ("fe80::1%a[b", 8443, f"invalid host 'fe80::1%a[b': {NOT_A_HOST}"),
        ("10.0.0.1", 65536, "invalid port 65536 in '10.0.0.1:65536': must be between 1 and 65535"),
        ("host.123", 1, f"invalid host 'host.123' in 'host.123:1': {NOT_A_HOST}"),
    ],
)
def test_host_port_refuses_what_core_https_address_cannot_hold(
    host: str, port: int, message: str
) -> None:
    with pytest.raises(EndpointError, match=exactly(message)):
        host_port(host, port)


def test_host_port_keeps_an_interface_zone_as_given() -> None:
    assert host_port("FE80::1%Eth0", 8443) == "[fe80::1%Eth0]:8443"
    assert host_port("[fe80::1%eth0]", 1) == "[fe80::1%eth0]:1"
    assert host_port(" 10.0.0.1 ", 65535) == "10.0.0.1:65535"


def test_the_first_of_path_query_and_fragment_names_the_part() -> None:
    with pytest.raises(
        EndpointError,
        match=exactly(
            "invalid endpoint 'host#a?b/c': a fragment ('#a?b/c') is not allowed; "
            "give only host and port"
        ),
    ):
        normalise_endpoint("host#a?b/c")
    with pytest.raises(
        EndpointError,
        match=exactly(
            "invalid endpoint 'host?a/b': a query ('?a/b') is not allowed; give only host and port"
        ),
    ):
        normalise_endpoint("host?a/b")


def test_user_info_is_kept_by_ensure_host_port_up_to_the_last_at() -> None:
    assert ensure_host_port("https://a@b@host") == "https://a@b@host:8443"
    assert ensure_host_port("[::1]:9443/x") == "[::1]:9443/x"


@pytest.mark.parametrize("address", ["/1.0", "https:///x", "?x", "#f", "http://?project=a"])
def test_a_path_query_or_fragment_right_after_the_scheme_leaves_no_host(address: str) -> None:
    with pytest.raises(EndpointError, match=exactly(f"invalid address {address!r}: no host")):
        normalise_endpoint(address)
    with pytest.raises(EndpointError, match=exactly(f"invalid address {address!r}: no host")):
        ensure_host_port(address)
