"""Each marker and preamble `cluster_join` knows, one at a time (see test_cluster_join.py)."""

from __future__ import annotations

import pytest

from lxd_charm.cluster_join import Refusal, reason, refusal
from lxd_common.errors import LxdApiError


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Failed to join cluster: dial tcp 10.0.0.1:8443: connect: connection refused",
            Refusal.UNREACHABLE,
        ),
        (
            "Failed to join cluster: dial tcp 10.0.0.1:8443: connect: no route to host",
            Refusal.UNREACHABLE,
        ),
        (
            "Failed to join cluster: read tcp 10.0.0.2:41234->10.0.0.1:8443: i/o timeout",
            Refusal.UNREACHABLE,
        ),
        ("Failed to join cluster: No matching cluster join operation found", Refusal.TOKEN),
        ("Failed to join cluster: Token has expired", Refusal.TOKEN),
        ("Failed to join cluster: This server is already clustered", Refusal.MACHINE),
    ],
)
def test_each_marker_alone_decides_the_refusal(message: str, expected: Refusal) -> None:
    assert refusal(LxdApiError(message)) is expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "LXD refused the preseed: Error: This server is already clustered",
            "This server is already clustered",
        ),
        ("LXD refused the preseed: the storage pool is missing", "the storage pool is missing"),
        (
            "Error: Failed to join cluster: x: Failed to join cluster: y",
            "x: Failed to join cluster: y",
        ),
        ("Error: a Error: b", "a Error: b"),
    ],
)
def test_reason_drops_only_the_first_preamble_it_knows(message: str, expected: str) -> None:
    assert reason(LxdApiError(message)) == expected
