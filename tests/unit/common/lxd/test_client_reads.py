"""`LxdClient` answering from a ``GET /1.0`` the caller holds: each saves a request.

The answer pylxd reads to connect (`info_at_connect`), the server config in it,
a diff against a config the caller holds, and cluster membership for the
adoption check. `GET /1.0`'s shape is LXD 5.0.2's: `environment` has
`server_clustered` and `server_name` (the member name when clustered, as
tests/functional/test_lxd_cluster.py captures; the host name when not).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lxd_common.lxd import ExistingSetup, LxdClient

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import FakeLxd, Replies

SOCKET = Path("/var/snap/lxd/common/lxd/unix.socket")  # never opened: FakeLxd answers


def info(config: dict[str, Any] | None = None, **environment: Any) -> dict[str, Any]:
    return {
        "auth": "trusted",
        "config": config,
        "environment": {"server_name": "n1", "server_version": "5.0.2", **environment},
    }


@pytest.fixture
def client(lxd: FakeLxd) -> LxdClient:
    return LxdClient(lxd, socket=SOCKET)


def empty_listings(lxd: FakeLxd, reply: Replies) -> None:
    for collection in ("storage-pools", "networks"):
        lxd.on("GET", f"/1.0/{collection}", reply.sync([]))
    lxd.on("GET", "/1.0/profiles", reply.sync([{"name": "default", "devices": {}}]))


def test_info_at_connect_is_a_copy_of_what_pylxd_read_without_a_request(
    lxd: FakeLxd, client: LxdClient
) -> None:
    lxd.host_info = info({"core.https_address": "10.0.0.1:8443"}, server_clustered=False)
    held = client.info_at_connect
    assert held == lxd.host_info
    held["config"]["core.https_address"] = "changed"
    held["auth"] = "untrusted"
    assert client.info_at_connect == info(
        {"core.https_address": "10.0.0.1:8443"}, server_clustered=False
    )
    assert lxd.calls == []


def test_server_config_from_a_held_answer_is_text_and_asks_nothing(
    lxd: FakeLxd, client: LxdClient
) -> None:
    held = info({"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": 6})
    assert client.server_config(held) == {
        "core.https_address": "10.0.0.1:8443",
        "images.auto_update_interval": "6",
    }
    assert client.server_config(info(None)) == {}
    assert lxd.calls == []


def test_set_server_config_against_a_held_config_only_patches(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("PATCH", "/1.0", reply.sync(None))
    changed = client.set_server_config(
        {
            "core.https_address": "10.0.0.1:8443",  # as held
            "core.metrics_address": None,  # held: unset it
            "core.dns_address": None,  # not held: nothing to unset
            "core.bgp_address": "10.0.0.1:179",  # new
        },
        current={"core.https_address": "10.0.0.1:8443", "core.metrics_address": ":8444"},
    )
    assert changed == ["core.bgp_address", "core.metrics_address"]
    assert [(c.method, c.path, c.json) for c in lxd.calls] == [
        (
            "PATCH",
            "/1.0",
            {"config": {"core.metrics_address": "", "core.bgp_address": "10.0.0.1:179"}},
        )
    ]


def test_set_server_config_with_a_held_config_already_as_asked_sends_nothing(
    lxd: FakeLxd, client: LxdClient
) -> None:
    assert client.set_server_config({"core.https_address": None}, current={}) == []
    assert lxd.calls == []


def test_existing_setup_takes_membership_from_a_held_answer_in_three_requests(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    empty_listings(lxd, reply)
    held = info(server_clustered=True, server_name="m1")
    assert client.existing_setup(held) == ExistingSetup(cluster_member="m1")
    assert [c.path for c in lxd.calls] == ["/1.0/storage-pools", "/1.0/networks", "/1.0/profiles"]


@pytest.mark.parametrize(
    "held",
    [
        info(server_clustered=False),  # the host name is no member name
        info(),  # no such field: not clustered
        {"auth": "trusted", "environment": None},
        {"auth": "trusted"},
        info(server_clustered=True, server_name=None),
    ],
)
def test_a_held_answer_that_says_no_membership_is_none(
    lxd: FakeLxd, reply: Replies, client: LxdClient, held: dict[str, Any]
) -> None:
    empty_listings(lxd, reply)
    assert client.existing_setup(held) == ExistingSetup()
    assert "/1.0/cluster" not in [c.path for c in lxd.calls]


def test_without_a_held_answer_existing_setup_asks_for_membership(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    empty_listings(lxd, reply)
    lxd.on("GET", "/1.0/cluster", reply.sync({"server_name": "m1", "enabled": True}))
    assert client.existing_setup() == ExistingSetup(cluster_member="m1")
    assert [c.path for c in lxd.calls][-1] == "/1.0/cluster"
