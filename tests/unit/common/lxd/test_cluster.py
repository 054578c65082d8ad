"""Unit tests for lxd_common.lxd._cluster: join tokens, members, removal.

LXD answers come from a fake daemon, shaped like LXD 5.0.2's.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from lxd_common.errors import (
    ClusterError,
    LxdApiError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
)
from lxd_common.lxd import Cluster, ClusterMember, JoinToken, decode_join_token
from lxd_common.lxd._cluster import _parse_time

if TYPE_CHECKING:
    import requests

    from tests.unit.common.lxd.conftest import FakeLxd, Replies

UTC = timezone.utc
EXPIRY_TEXT = "2026-11-23T15:13:40.68955822Z"
EXPIRY = datetime(2026, 11, 23, 15, 13, 40, 689558, tzinfo=UTC)

CLUSTER = "/1.0/cluster"
MEMBERS = "/1.0/cluster/members"
OPERATIONS = "/1.0/operations"
INSTANCES = "/1.0/instances"


def lxd_token(**fields: Any) -> str:
    """A join token as LXD builds it: base64 of compact JSON."""
    data = {
        "server_name": "m3",
        "fingerprint": "07e5" + "a" * 60,
        "addresses": ["127.0.0.3:8443"],
        "secret": "a85c" + "b" * 60,
        "expires_at": EXPIRY_TEXT,
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    return base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


# --- decode_join_token -------------------------------------------------------


def test_decode_an_lxd_token() -> None:
    text = lxd_token()
    token = decode_join_token(text)
    assert token.server_name == "m3"
    assert token.expires_at == EXPIRY
    assert token.token == text
    assert token.operation_id == ""


def test_decode_strips_surrounding_whitespace() -> None:
    text = lxd_token()
    assert decode_join_token(f"  {text}\n").token == text


def test_decode_a_token_without_expiry() -> None:
    assert decode_join_token(lxd_token(expires_at=None)).expires_at is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a token at all",
        "!!!!",
        "éé",
        base64.b64encode(b"server_name: m3").decode(),
        base64.b64encode(b"\xff\xfe\x00binary").decode(),
        base64.b64encode(b'["m3"]').decode(),
        base64.b64encode(b'"m3"').decode(),
        base64.b64encode(b"null").decode(),
        lxd_token(secret=None),
        lxd_token(secret=""),
        lxd_token(addresses=None),
        lxd_token(addresses=[]),
        lxd_token(server_name=None),
        lxd_token()[:-4],
    ],
    ids=[
        "empty",
        "words",
        "punctuation",
        "non-ascii",
        "base64-of-yaml",
        "base64-of-binary",
        "json-list",
        "json-string",
        "json-null",
        "no-secret",
        "empty-secret",
        "no-addresses",
        "empty-addresses",
        "no-server-name",
        "truncated",
    ],
)
def test_decode_refuses_what_is_not_a_join_token(text: str) -> None:
    with pytest.raises(ClusterError, match="this is not an LXD cluster join token"):
        decode_join_token(text)


def test_join_token_repr_hides_the_token() -> None:
    text = lxd_token()
    token = decode_join_token(text)
    assert text not in repr(token)
    assert "m3" in repr(token)


# --- expiry ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (EXPIRY - timedelta(microseconds=1), False),
        (EXPIRY - timedelta(hours=3), False),
        (EXPIRY, True),
        (EXPIRY + timedelta(seconds=1), True),
    ],
)
def test_expired_around_the_expiry(now: datetime, expired: bool) -> None:
    assert decode_join_token(lxd_token()).expired(now) is expired


def test_expired_compares_across_time_zones() -> None:
    token = decode_join_token(lxd_token())
    tz = timezone(timedelta(hours=-5))
    assert token.expired(EXPIRY.astimezone(tz)) is True
    assert token.expired((EXPIRY - timedelta(seconds=1)).astimezone(tz)) is False


def test_a_token_without_expiry_never_expires() -> None:
    token = JoinToken(server_name="m3", token="t")
    assert token.expired(datetime(9999, 1, 1, tzinfo=UTC)) is False
    assert token.expired() is False


def test_expired_defaults_to_now() -> None:
    past = JoinToken("m3", "t", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    future = JoinToken("m3", "t", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert past.expired() is True
    assert future.expired() is False


# --- _parse_time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EXPIRY_TEXT, EXPIRY),
        ("2026-11-23T15:13:40.68955822+00:00", EXPIRY),
        ("2026-11-23T15:13:40.689558Z", EXPIRY),
        ("2026-11-23T15:13:40.689Z", datetime(2026, 11, 23, 15, 13, 40, 689000, tzinfo=UTC)),
        ("2026-11-23T15:13:40Z", datetime(2026, 11, 23, 15, 13, 40, tzinfo=UTC)),
        ("2026-11-23T15:13:40+00:00", datetime(2026, 11, 23, 15, 13, 40, tzinfo=UTC)),
        (
            "2026-11-23T10:13:40.123456789-05:00",
            datetime(2026, 11, 23, 15, 13, 40, 123456, tzinfo=UTC),
        ),
        ("", None),
        ("junk", None),
        ("2026-13-45T99:00:00Z", None),
        ("2026-11-23T15:13:40.123abcZ", None),
        (None, None),
        (1700000000, None),
    ],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    parsed = _parse_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "microseconds"),
    [
        ("2026-11-23T15:13:40.5Z", 500000),
        ("2026-11-23T15:13:40.68955Z", 689550),
        ("2026-11-23T15:13:40.6895582Z", 689558),
        ("2026-11-23T15:13:40.000000001Z", 0),
    ],
)
def test_parse_time_with_any_number_of_fraction_digits(text: str, microseconds: int) -> None:
    # Go's RFC3339Nano drops trailing zeros, so LXD sends anything from 1 to 9
    # digits; Python 3.10 (the charms' Ubuntu 22.04 base) only parses 3 or 6.
    assert _parse_time(text) == datetime(2026, 11, 23, 15, 13, 40, microseconds, tzinfo=UTC)


def test_a_token_whose_expiry_has_no_zone_is_read_as_utc() -> None:
    token = decode_join_token(lxd_token(expires_at="2026-11-23T15:13:40"))
    assert token.expired(EXPIRY + timedelta(seconds=1)) is True


def test_go_zero_time_means_no_expiry() -> None:
    token = decode_join_token(lxd_token(expires_at="0001-01-01T00:00:00Z"))
    assert token.expires_at is None
    assert token.expired() is False


# --- the fake cluster --------------------------------------------------------


def cluster_info(
    server_name: str = "m2", enabled: bool = True, member_config: list[Any] | None = None
) -> dict[str, Any]:
    return {"server_name": server_name, "enabled": enabled, "member_config": member_config or []}


def member(name: str, status: str = "Online") -> dict[str, Any]:
    return {
        "server_name": name,
        "url": f"https://127.0.0.{name[1:]}:8443",
        "database": True,
        "status": status,
        "message": "Fully operational" if status == "Online" else "No heartbeat for 30s",
        "roles": ["database"],
        "architecture": "x86_64",
        "failure_domain": "default",
        "description": "",
        "config": {},
        "groups": ["default"],
    }


JOIN_META_M3 = {
    "addresses": ["127.0.0.3:8443"],
    "expiresAt": EXPIRY_TEXT,
    "fingerprint": "07e5" + "a" * 60,
    "secret": "a85c" + "b" * 60,
    "serverName": "m3",
}


@pytest.fixture
def cluster(lxd: FakeLxd) -> Cluster:
    return Cluster(lxd)


@pytest.fixture
def clustered(lxd: FakeLxd, reply: Replies) -> None:
    """A clustered daemon `m2` with members m1 and m2 and no pending operations."""
    lxd.on("GET", CLUSTER, reply.sync(cluster_info()))
    lxd.on("GET", MEMBERS, reply.sync([member("m1"), member("m2")]))


# --- cluster state -----------------------------------------------------------


def test_state_of_a_clustered_daemon(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    config = [
        {
            "entity": "storage-pool",
            "name": "local",
            "key": "source",
            "value": "",
            "description": '"source" property for storage pool "local"',
        },
        {"entity": "network", "name": "br0", "key": "bridge.external_interfaces"},
    ]
    lxd.on("GET", CLUSTER, reply.sync(cluster_info(member_config=config)))
    assert cluster.enabled is True
    assert cluster.server_name == "m2"
    assert cluster.member_config() == [
        {"entity": "storage-pool", "name": "local", "key": "source", "value": ""},
        {"entity": "network", "name": "br0", "key": "bridge.external_interfaces", "value": ""},
    ]


def test_state_of_a_standalone_daemon(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on(
        "GET", CLUSTER, reply.sync({"server_name": "", "enabled": False, "member_config": None})
    )
    assert cluster.enabled is False
    assert cluster.server_name == ""
    assert cluster.member_config() == []
    # LXD 5.0's answer to listing the members of a standalone daemon.
    lxd.on("GET", MEMBERS, reply.error(500, "Server is not clustered"))
    assert cluster.members() == []


def test_members_is_one_request(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    """Hooks list members often: no separate GET /1.0/cluster first."""
    assert [m.name for m in cluster.members()] == ["m1", "m2"]
    assert [c.path for c in lxd.calls] == [MEMBERS]


def test_members_refused_for_another_reason(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", MEMBERS, reply.error(403, "not authorized"))
    with pytest.raises(LxdApiError, match="listing cluster members: not authorized"):
        cluster.members()


def test_members_with_status(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on("GET", MEMBERS, reply.sync([member("m1"), member("m2", status="Offline")]))
    members = cluster.members()
    assert members == [
        ClusterMember("m1", "https://127.0.0.1:8443", "Online", ["database"], "Fully operational"),
        ClusterMember(
            "m2", "https://127.0.0.2:8443", "Offline", ["database"], "No heartbeat for 30s"
        ),
    ]
    assert [m.online for m in members] == [True, False]
    assert lxd.requests("GET", MEMBERS)[0].params == {"recursion": "1"}


def test_member_online_ignores_case() -> None:
    assert ClusterMember("m1", "", "ONLINE", []).online is True
    assert ClusterMember("m1", "", "Evacuated", []).online is False


def test_cluster_state_refused(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", CLUSTER, reply.error(403, "not authorized"))
    with pytest.raises(LxdApiError) as caught:
        _ = cluster.enabled
    assert caught.value.status == 403
    assert "reading the cluster state" in str(caught.value)


# --- enable ------------------------------------------------------------------


def test_enable_when_already_clustered_under_that_name_does_nothing(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", CLUSTER, reply.sync(cluster_info("m1")))
    cluster.enable("m1", "127.0.0.2:8443")
    assert [c.method for c in lxd.calls] == ["GET"]


def test_enable_when_clustered_under_another_name_is_refused(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", CLUSTER, reply.sync(cluster_info("m1")))
    with pytest.raises(ClusterError, match="already clustered as 'm1', not 'other'"):
        cluster.enable("other", "127.0.0.2:8443")
    assert [c.method for c in lxd.calls] == ["GET"]


def test_enable_sets_the_address_then_bootstraps_and_waits(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    op_id = "5b0c2f3e-7f59-4b06-9f0c-0a7e2f6f3a11"
    lxd.on("GET", CLUSTER, reply.sync(cluster_info("", enabled=False)))
    lxd.on("PATCH", "/1.0", reply.sync(None))
    lxd.on("PUT", CLUSTER, reply.async_op(reply.operation(op_id, "task", {})))
    lxd.on("GET", f"{OPERATIONS}/{op_id}", reply.sync(reply.operation(op_id, "task", {})))
    done = reply.operation(op_id, "task", {}, status="Success")
    lxd.on("GET", f"{OPERATIONS}/{op_id}/wait", reply.sync(done))

    cluster.enable("m1", "127.0.0.2:8443")

    assert [(c.method, c.path) for c in lxd.calls] == [
        ("GET", CLUSTER),
        ("PATCH", "/1.0"),
        ("PUT", CLUSTER),
        ("GET", f"{OPERATIONS}/{op_id}"),
        ("GET", f"{OPERATIONS}/{op_id}/wait"),
    ]
    assert lxd.calls[1].json == {"config": {"cluster.https_address": "127.0.0.2:8443"}}
    assert lxd.calls[2].json == {"server_name": "m1", "enabled": True}


def test_enable_reports_a_failed_bootstrap(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    op_id = "5b0c2f3e-7f59-4b06-9f0c-0a7e2f6f3a11"
    lxd.on("GET", CLUSTER, reply.sync(cluster_info("", enabled=False)))
    lxd.on("PATCH", "/1.0", reply.sync(None))
    lxd.on("PUT", CLUSTER, reply.async_op(reply.operation(op_id, "task", {})))
    lxd.on("GET", f"{OPERATIONS}/{op_id}", reply.sync(reply.operation(op_id, "task", {})))
    failed = dict(
        reply.operation(op_id, "task", {}, status="Failure"),
        status_code=400,
        err="Failed to bind cluster address",
    )
    lxd.on("GET", f"{OPERATIONS}/{op_id}/wait", reply.sync(failed))
    with pytest.raises(LxdApiError, match="Failed to bind cluster address"):
        cluster.enable("m1", "127.0.0.2:8443")


def test_enable_stops_when_the_address_is_refused(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", CLUSTER, reply.sync(cluster_info("", enabled=False)))
    lxd.on("PATCH", "/1.0", reply.error(400, "Invalid address"))
    with pytest.raises(LxdApiError, match=r"bootstrapping the cluster as 'm1'.*Invalid address"):
        cluster.enable("m1", "nonsense")
    assert lxd.requests("PUT") == []


# --- join tokens -------------------------------------------------------------


def operations_listing(
    reply: Replies, running: list[Any], success: list[Any] | None = None
) -> requests.Response:
    return reply.sync({"running": running, "success": success or []})


def test_join_tokens_lists_only_pending_join_tokens(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    trust_token = reply.operation("op-trust", "token", {"secret": "ad3d" + "c" * 60})
    join_m3 = reply.operation("op-m3", "token", JOIN_META_M3)
    join_m4 = reply.operation("op-m4", "token", dict(JOIN_META_M3, serverName="m4"))
    task = reply.operation("op-task", "task", {"serverName": "m9"})
    finished = reply.operation(
        "op-done", "token", dict(JOIN_META_M3, serverName="m5"), status="Success"
    )
    no_meta = dict(reply.operation("op-bare", "token", {}), metadata=None)
    lxd.on(
        "GET",
        OPERATIONS,
        operations_listing(reply, [trust_token, join_m3, task, join_m4, no_meta], [finished]),
    )

    tokens = cluster.join_tokens()

    assert [(t.server_name, t.operation_id) for t in tokens] == [("m3", "op-m3"), ("m4", "op-m4")]
    assert tokens[0].expires_at == EXPIRY
    assert lxd.requests("GET", OPERATIONS)[0].params == {"recursion": "1"}


@pytest.mark.parametrize("metadata", [{}, None, {"success": []}])
def test_join_tokens_with_no_running_operations(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, metadata: dict[str, Any] | None
) -> None:
    lxd.on("GET", OPERATIONS, reply.sync(metadata))
    assert cluster.join_tokens() == []


def test_a_listed_token_decodes_like_an_lxd_token(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on(
        "GET",
        OPERATIONS,
        operations_listing(reply, [reply.operation("op", "token", JOIN_META_M3)]),
    )
    [token] = cluster.join_tokens()
    assert json.loads(base64.b64decode(token.token)) == {
        "server_name": "m3",
        "fingerprint": JOIN_META_M3["fingerprint"],
        "addresses": ["127.0.0.3:8443"],
        "secret": JOIN_META_M3["secret"],
        "expires_at": EXPIRY_TEXT,
    }
    again = decode_join_token(token.token)
    assert (again.server_name, again.expires_at) == ("m3", EXPIRY)


def test_revoke_join_tokens_deletes_only_that_names_operations(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    ops = [
        reply.operation("op-a", "token", JOIN_META_M3),
        reply.operation("op-b", "token", dict(JOIN_META_M3, serverName="m4")),
        reply.operation("op-c", "token", JOIN_META_M3),
    ]
    lxd.on("GET", OPERATIONS, operations_listing(reply, ops))
    lxd.on("DELETE", f"{OPERATIONS}/op-a", reply.sync(None))
    lxd.on("DELETE", f"{OPERATIONS}/op-c", reply.sync(None))
    assert cluster.revoke_join_tokens("m3") == 2
    assert [c.path for c in lxd.requests("DELETE")] == [f"{OPERATIONS}/op-a", f"{OPERATIONS}/op-c"]


def test_revoke_join_tokens_with_none_pending(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", OPERATIONS, operations_listing(reply, []))
    assert cluster.revoke_join_tokens("m3") == 0
    assert lxd.requests("DELETE") == []


def test_add_join_token(lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None) -> None:
    lxd.on("GET", OPERATIONS, operations_listing(reply, []))
    op = reply.operation("18002bbd-8d5b-4a0b-a0d6-bd7a6a9f2a01", "token", JOIN_META_M3)
    lxd.on("POST", MEMBERS, reply.async_op(op))

    token = cluster.add_join_token("m3")

    assert lxd.requests("POST", MEMBERS)[0].json == {"server_name": "m3"}
    assert token.server_name == "m3"
    assert token.operation_id == "18002bbd-8d5b-4a0b-a0d6-bd7a6a9f2a01"
    assert token.expires_at == EXPIRY
    assert decode_join_token(token.token).server_name == "m3"


def test_add_join_token_revokes_the_pending_one_first(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on(
        "GET",
        OPERATIONS,
        operations_listing(
            reply,
            [
                reply.operation("old-m3", "token", JOIN_META_M3),
                reply.operation("old-m4", "token", dict(JOIN_META_M3, serverName="m4")),
            ],
        ),
    )
    lxd.on("DELETE", f"{OPERATIONS}/old-m3", reply.sync(None))
    lxd.on("POST", MEMBERS, reply.async_op(reply.operation("new-m3", "token", JOIN_META_M3)))

    token = cluster.add_join_token("m3")

    writes = [(c.method, c.path) for c in lxd.calls if c.method != "GET"]
    assert writes == [("DELETE", f"{OPERATIONS}/old-m3"), ("POST", MEMBERS)]
    assert token.operation_id == "new-m3"


def test_add_join_tokens_lists_members_and_tokens_once_for_all_names(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    m4 = dict(JOIN_META_M3, serverName="m4")
    lxd.on(
        "GET",
        OPERATIONS,
        operations_listing(reply, [reply.operation("old-m4", "token", m4)]),
    )
    lxd.on("DELETE", f"{OPERATIONS}/old-m4", reply.sync(None))
    lxd.on(
        "POST",
        MEMBERS,
        reply.async_op(reply.operation("new-m3", "token", JOIN_META_M3)),
        reply.async_op(reply.operation("new-m4", "token", m4)),
    )

    tokens = cluster.add_join_tokens(["m3", "m4"])

    assert {name: t.operation_id for name, t in tokens.items()} == {
        "m3": "new-m3",
        "m4": "new-m4",
    }
    assert [t.server_name for t in tokens.values()] == ["m3", "m4"]
    assert len(lxd.requests("GET", MEMBERS)) == 1
    assert len(lxd.requests("GET", OPERATIONS)) == 1
    writes = [(c.method, c.path, c.json) for c in lxd.calls if c.method != "GET"]
    assert writes == [
        ("POST", MEMBERS, {"server_name": "m3"}),
        ("DELETE", f"{OPERATIONS}/old-m4", None),
        ("POST", MEMBERS, {"server_name": "m4"}),
    ]


def test_add_join_tokens_checks_names_against_the_callers_listing(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    """The leader listed members a moment ago: not again (LXD itself would issue the token)."""
    lxd.on("GET", OPERATIONS, operations_listing(reply, []))
    lxd.on("POST", MEMBERS, reply.async_op(reply.operation("new-m3", "token", JOIN_META_M3)))
    with pytest.raises(MemberExistsError, match=r"^a cluster member called 'm3' already exists$"):
        cluster.add_join_tokens(["m3"], members={"m1", "m3"})
    assert lxd.requests("GET", MEMBERS) == []
    assert lxd.requests("POST") == []
    tokens = cluster.add_join_tokens(["m3"], members={"m1", "m2"})
    assert tokens["m3"].operation_id == "new-m3"
    assert lxd.requests("GET", MEMBERS) == []


def test_add_join_tokens_issues_none_when_one_name_is_a_member(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    with pytest.raises(MemberExistsError, match=r"^a cluster member called 'm2' already exists$"):
        cluster.add_join_tokens(["m3", "m2"])
    assert lxd.requests("POST") == []
    assert lxd.requests("DELETE") == []


def test_add_join_token_for_an_existing_member_is_refused(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    with pytest.raises(MemberExistsError, match="'m2' already exists"):
        cluster.add_join_token("m2")
    assert lxd.requests("POST") == []
    assert lxd.requests("DELETE") == []


def test_add_join_token_needs_a_cluster(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", CLUSTER, reply.sync(cluster_info("", enabled=False)))
    with pytest.raises(ClusterError, match="not clustered") as caught:
        cluster.add_join_token("m3")
    assert not isinstance(caught.value, MemberExistsError)
    assert [c.path for c in lxd.calls] == [CLUSTER]


def test_add_join_token_refused_by_lxd(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on("GET", OPERATIONS, operations_listing(reply, []))
    lxd.on("POST", MEMBERS, reply.error(500, "There are no online cluster members"))
    with pytest.raises(LxdApiError, match=r"issuing a join token for 'm3'.*no online"):
        cluster.add_join_token("m3")


# --- instances and member removal -------------------------------------------


def instance(name: str, location: str, project: str | None = "default") -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "location": location,
        "status": "Running",
        "type": "container",
    }
    if project is not None:
        data["project"] = project
    return data


def test_instances_on_filters_by_location_and_names_projects(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on(
        "GET",
        INSTANCES,
        reply.sync(
            [
                instance("web", "m2"),
                instance("db", "m1"),
                instance("ci-runner", "m2", project="ci"),
                instance("legacy", "m2", project=None),
                instance("blank", "m2", project=""),
                instance("m2", "m3"),
            ]
        ),
    )
    assert cluster.instances_on("m2") == ["blank", "ci/ci-runner", "legacy", "web"]
    assert cluster.instances_on("m3") == ["m2"]
    assert cluster.instances_on("m9") == []
    assert lxd.requests("GET", INSTANCES)[0].params == {
        "recursion": "1",
        "all-projects": "true",
    }


def test_instances_on_with_no_instances(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", INSTANCES, reply.sync(None))
    assert cluster.instances_on("m2") == []


def test_remove_member(lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None) -> None:
    lxd.on("GET", INSTANCES, reply.sync([instance("web", "m1")]))
    lxd.on("DELETE", f"{MEMBERS}/m2", reply.sync(None))
    cluster.remove_member("m2")
    [delete] = lxd.requests("DELETE")
    assert delete.path == f"{MEMBERS}/m2"
    assert delete.params is None


def test_remove_unknown_member(lxd: FakeLxd, cluster: Cluster, clustered: None) -> None:
    with pytest.raises(MemberNotFoundError, match="no cluster member is called 'm7'"):
        cluster.remove_member("m7")
    assert lxd.requests("DELETE") == []
    assert lxd.requests("GET", INSTANCES) == []


def test_remove_member_of_a_standalone_daemon_is_not_found(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", MEMBERS, reply.error(500, "Server is not clustered"))
    with pytest.raises(MemberNotFoundError):
        cluster.remove_member("m1")


def test_remove_member_with_instances_is_refused(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on(
        "GET",
        INSTANCES,
        reply.sync([instance("web", "m2"), instance("runner", "m2", "ci"), instance("x", "m1")]),
    )
    with pytest.raises(MemberHasInstancesError) as caught:
        cluster.remove_member("m2")
    assert caught.value.member == "m2"
    assert caught.value.instances == ["ci/runner", "web"]
    assert "still holds 2 instance(s) (ci/runner, web)" in str(caught.value)
    assert lxd.requests("DELETE") == []


def test_remove_member_with_a_single_instance_is_refused(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on("GET", INSTANCES, reply.sync([instance("last", "m2", "ci")]))
    with pytest.raises(MemberHasInstancesError, match=r"1 instance\(s\) \(ci/last\)"):
        cluster.remove_member("m2")
    assert lxd.requests("DELETE") == []


def test_remove_member_with_many_instances_truncates_the_list(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on("GET", INSTANCES, reply.sync([instance(f"c{i}", "m2") for i in range(8)]))
    with pytest.raises(MemberHasInstancesError) as caught:
        cluster.remove_member("m2")
    assert "still holds 8 instance(s) (c0, c1, c2, c3, c4, ...)" in str(caught.value)
    assert len(caught.value.instances) == 8


def test_remove_member_refused_by_lxd(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    lxd.on("GET", INSTANCES, reply.sync([]))
    lxd.on("DELETE", f"{MEMBERS}/m2", reply.error(400, "Node still has the following images"))
    with pytest.raises(LxdApiError, match=r"removing cluster member 'm2'.*images") as caught:
        cluster.remove_member("m2")
    assert caught.value.status == 400


DEADLINE = "Failed to begin transaction: context deadline exceeded"


def test_remove_member_waits_out_a_settling_cluster_database(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, clustered: None
) -> None:
    """Right after the member leading LXD's database leaves, LXD refuses for a moment."""
    lxd.on("GET", INSTANCES, reply.error(500, DEADLINE), reply.sync([]))
    lxd.on("DELETE", f"{MEMBERS}/m2", reply.error(500, DEADLINE), reply.sync(None))
    cluster.remove_member("m2")
    assert len(lxd.requests("GET", INSTANCES)) == 2
    assert len(lxd.requests("DELETE", f"{MEMBERS}/m2")) == 2


# --- maintenance and failure domains (answers captured from LXD 5.0.2) -----------------

EVACUATE_OP = "13b8fa7c-aeac-4b23-92b2-e3742d00960d"


def evacuated(name: str) -> dict[str, Any]:
    """A member as LXD 5.0.2 lists it once evacuated: it keeps its database role."""
    return dict(member(name), status="Evacuated", message="Unavailable due to maintenance")


def state_operation(reply: Replies, description: str, status: str = "Running") -> dict[str, Any]:
    return dict(
        reply.operation(EVACUATE_OP, "task", {}, status=status),
        description=description,
        location="m2",
    )


def test_a_member_reads_its_failure_domain_and_evacuation(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", f"{MEMBERS}/m2", reply.sync(dict(evacuated("m2"), failure_domain="zone-b")))
    got = cluster.member("m2")
    assert got.failure_domain == "zone-b"
    assert got.evacuated and not got.online
    assert got.roles == ["database"]


def test_members_list_their_failure_domains(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", MEMBERS, reply.sync([member("m1"), dict(member("m2"), failure_domain="az2")]))
    assert [m.failure_domain for m in cluster.members()] == ["default", "az2"]


def test_an_unknown_member_is_not_found(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", f"{MEMBERS}/m9", reply.error(404, "Cluster member not found"))
    with pytest.raises(MemberNotFoundError, match="'m9'"):
        cluster.member("m9")


def test_set_failure_domain_sends_back_every_writable_field(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    """LXD 5.0.2 treats PATCH as PUT: without roles or groups it refuses (captured)."""
    record = dict(member("m1"), roles=["database-leader", "database"])
    lxd.on("GET", f"{MEMBERS}/m1", reply.sync(record))
    lxd.on("PATCH", f"{MEMBERS}/m1", reply.sync({}))
    assert cluster.set_failure_domain("m1", "zone-a") is True
    [patch] = lxd.requests("PATCH")
    assert patch.json == {
        "roles": ["database-leader", "database"],
        "failure_domain": "zone-a",
        "description": "",
        "config": {},
        "groups": ["default"],
    }


def test_set_failure_domain_does_nothing_when_already_there(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", f"{MEMBERS}/m1", reply.sync(dict(member("m1"), failure_domain="zone-a")))
    assert cluster.set_failure_domain("m1", "zone-a") is False
    assert lxd.requests("PATCH") == []


def test_set_failure_domain_refuses_an_empty_name_before_asking(
    lxd: FakeLxd, cluster: Cluster
) -> None:
    with pytest.raises(ValueError, match="needs a name"):
        cluster.set_failure_domain("m1", "")
    assert lxd.calls == []


def test_set_failure_domain_reports_what_lxd_refused(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", f"{MEMBERS}/m1", reply.sync(member("m1")))
    lxd.on(
        "PATCH",
        f"{MEMBERS}/m1",
        reply.error(400, 'The "database" role cannot be dropped at this time'),
    )
    with pytest.raises(LxdApiError, match=r"failure domain of 'm1' to 'z'.*cannot be dropped"):
        cluster.set_failure_domain("m1", "z")


def test_evacuate_posts_the_state_and_waits_for_the_operation(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    running = state_operation(reply, "Evacuating cluster member")
    lxd.on("POST", f"{MEMBERS}/m2/state", reply.async_op(running))
    lxd.on("GET", f"{OPERATIONS}/{EVACUATE_OP}", reply.sync(running))
    done = state_operation(reply, "Evacuating cluster member", status="Success")
    lxd.on("GET", f"{OPERATIONS}/{EVACUATE_OP}/wait", reply.sync(done))
    cluster.evacuate("m2")
    cluster.evacuate("m2", "migrate")
    posts = lxd.requests("POST")
    assert [p.json for p in posts] == [
        {"action": "evacuate"},
        {"action": "evacuate", "mode": "migrate"},
    ]
    assert len(lxd.requests("GET", f"{OPERATIONS}/{EVACUATE_OP}/wait")) == 2


def test_evacuate_refuses_a_mode_lxd_does_not_have(lxd: FakeLxd, cluster: Cluster) -> None:
    # LXD 5.0.2 accepted "bogus" and evacuated as if no mode were given (captured).
    with pytest.raises(ValueError, match="'bogus' is not one of auto, stop, migrate"):
        cluster.evacuate("m2", "bogus")
    assert lxd.calls == []


def test_restore_of_an_offline_member_reports_lxd(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on(
        "POST",
        f"{MEMBERS}/m2/state",
        reply.error(500, "Missing event connection with target cluster member"),
    )
    with pytest.raises(LxdApiError, match=r"restoring cluster member 'm2'.*Missing event"):
        cluster.restore("m2")
    [post] = lxd.requests("POST")
    assert post.json == {"action": "restore"}


def test_a_failed_evacuation_is_reported(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    running = state_operation(reply, "Evacuating cluster member")
    lxd.on("POST", f"{MEMBERS}/m2/state", reply.async_op(running))
    lxd.on("GET", f"{OPERATIONS}/{EVACUATE_OP}", reply.sync(running))
    failed = dict(
        state_operation(reply, "Evacuating cluster member", status="Failure"),
        status_code=400,
        err="Failed to migrate instance",
    )
    lxd.on("GET", f"{OPERATIONS}/{EVACUATE_OP}/wait", reply.sync(failed))
    with pytest.raises(LxdApiError, match="Failed to migrate instance"):
        cluster.evacuate("m2")


@pytest.mark.parametrize(
    ("extensions", "honoured"),
    [
        (["clustering_evacuation", "clustering_evacuation_live"], False),  # LXD 5.0.2
        (["clustering_evacuation", "clustering_evacuation_mode"], True),
    ],
)
def test_evacuation_modes_follow_the_api_extension(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, extensions: list[str], honoured: bool
) -> None:
    lxd.on("GET", "/1.0", reply.sync({"api_extensions": extensions}))
    assert cluster.evacuation_modes() is honoured


def test_placements_name_projects_and_states(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    stopped = dict(instance("s1", "m1"), status="Stopped")
    lxd.on(
        "GET", INSTANCES, reply.sync([instance("r1", "m2"), instance("ci", "m3", "ci"), stopped])
    )
    got = cluster.placements()
    assert {name: (p.location, p.status) for name, p in got.items()} == {
        "r1": ("m2", "Running"),
        "ci/ci": ("m3", "Running"),
        "s1": ("m1", "Stopped"),
    }


# --- unreachable members (answers captured from LXD 5.0.2) -----------------------------


def offline(name: str) -> dict[str, Any]:
    return dict(
        member(name, "Offline"),
        roles=[],
        message="No heartbeat for 19.35s (2026-12-01 10:03:28.696015564 +0000 UTC)",
    )


def test_remove_lost_member_forces_an_empty_unreachable_member(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", MEMBERS, reply.sync([member("m1"), offline("m4")]))
    lxd.on("GET", INSTANCES, reply.sync([instance("web", "m1")]))
    lxd.on("DELETE", f"{MEMBERS}/m4", reply.sync({}))
    cluster.remove_lost_member("m4")
    [delete] = lxd.requests("DELETE")
    assert delete.params == {"force": "1"}


def test_remove_lost_member_refuses_one_with_instances(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    # An offline member's instances are listed with status "Error", location kept (captured).
    lost = dict(instance("keep", "m3"), status="Error", status_code=112)
    lxd.on("GET", MEMBERS, reply.sync([member("m1"), offline("m3")]))
    lxd.on("GET", INSTANCES, reply.sync([lost]))
    with pytest.raises(MemberHasInstancesError, match=r"\(keep\)"):
        cluster.remove_lost_member("m3")
    assert lxd.requests("DELETE") == []


@pytest.mark.parametrize("status", ["Online", "Evacuated"])
def test_remove_lost_member_never_forces_a_member_that_is_up(
    lxd: FakeLxd, reply: Replies, cluster: Cluster, status: str
) -> None:
    lxd.on("GET", MEMBERS, reply.sync([member("m1"), dict(member("m2"), status=status)]))
    with pytest.raises(ClusterError, match=f"is {status}: not forcing it out"):
        cluster.remove_lost_member("m2")
    assert lxd.requests("DELETE") == []


def test_remove_lost_member_of_an_unknown_name(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", MEMBERS, reply.sync([member("m1")]))
    with pytest.raises(MemberNotFoundError):
        cluster.remove_lost_member("m4")
