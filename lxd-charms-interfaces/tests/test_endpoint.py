"""`read_endpoint` at its edges: the port's bounds, bare IPv6, trailing slashes, the whole refusal.

test_library.py reads the usual shapes providers write; these pin where a
wrong comparison or a lost check would change the answer.
"""

from __future__ import annotations

import pytest

from lxd_charms_interfaces._endpoint import read_endpoint


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("lxd-0:65535", "https://lxd-0:65535"),  # the highest port
        ("lxd-0:1", "https://lxd-0:1"),
        ("::1", "https://[::1]:8443"),  # a bare IPv6 address with only two colons
        ("fe80::1:2", "https://[fe80::1:2]:8443"),
        ("https://NODEX//", "https://nodex:8443"),  # only slashes are trimmed, then lowercased
        ("https://10.0.0.1:8443/", "https://10.0.0.1:8443"),
        ("[fe80::1%eth0]:8443", "https://[fe80::1%eth0]:8443"),  # IPv6 link-local keeps its zone
    ],
)
def test_edges_that_are_read(written: str, read: str) -> None:
    assert read_endpoint(written) == read


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("lxd-0:65536", "invalid port 65536 in 'lxd-0:65536': must be between 1 and 65535"),
        ("lxd-0:0", "invalid port 0 in 'lxd-0:0': must be between 1 and 65535"),
        ("[::1", "invalid endpoint '[::1': not host or host:port"),
        ("https://lxd-0:", "invalid endpoint 'https://lxd-0:': not host or host:port"),
        ("lxd-0:844300", "invalid endpoint 'lxd-0:844300': not host or host:port"),
        # A zone belongs to IPv6 alone, and is never empty.
        ("10.0.0.1%eth0", "invalid host '10.0.0.1%eth0': not an IP address or DNS name"),
        ("[fe80::1%]:8443", "invalid host 'fe80::1%': not an IP address or DNS name"),
    ],
)
def test_edges_that_are_refused_say_exactly_why(written: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        read_endpoint(written)
    assert str(info.value) == message
