"""`lxd_common.lxd._cluster`, one wrong answer each: whole messages, absent fields, times.

Written for the mutants test_cluster.py let through (docs/mutation.md): error
messages matched by a part other messages share, the defaults of a record
LXD sends without a field, a refusal other than 404 swallowed, a join token
with stray characters, and the fraction normalisation that only Python
3.10's `fromisoformat` (the charms' Ubuntu 22.04 base) needs.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from lxd_common.errors import ClusterError, LxdApiError
from lxd_common.lxd import Cluster, ClusterMember, _cluster, decode_join_token
from lxd_common.lxd._cluster import Placement, _parse_time

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import FakeLxd, Replies

UTC = timezone.utc
CLUSTER = "/1.0/cluster"
MEMBERS = "/1.0/cluster/members"
OPERATIONS = "/1.0/operations"
INSTANCES = "/1.0/instances"


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


def not_json(reply: Replies) -> Any:
    """A 200 answer whose body is not JSON (a proxy's page): only `check` can refuse it."""
    return reply.raw(200, b"<html>bad gateway</html>", "text/html")


@pytest.fixture
def cluster(lxd: FakeLxd) -> Cluster:
    return Cluster(lxd)


def lxd_token(**fields: Any) -> str:
    data = {
        "server_name": "m3",
        "fingerprint": "07e5" + "a" * 60,
        "addresses": ["127.0.0.3:8443"],
        "secret": "a85c" + "b" * 60,
        "expires_at": "2026-11-23T15:13:40.68955822Z",
    }
    data.update(fields)
    return base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


# --- decode_join_token ---------------------------------------------------------------


def test_a_token_refusal_is_the_whole_message() -> None:
    with pytest.raises(ClusterError, match=exactly("this is not an LXD cluster join token")):
        decode_join_token(lxd_token(secret=""))


@pytest.mark.parametrize("stray", ["!", "*", "\u00e9", "-"])
def test_a_token_with_a_stray_character_inside_is_refused(stray: str) -> None:
    """Lenient base64 would drop the character and decode the rest: LXD would get garbage."""
    text = lxd_token()
    garbled = text[:12] + stray + text[12:]
    assert base64.b64decode(garbled.encode(), validate=False) == base64.b64decode(text)
    with pytest.raises(ClusterError, match=exactly("this is not an LXD cluster join token")):
        decode_join_token(garbled)


# --- _parse_time on Python 3.10's parser ---------------------------------------------

_FRACTION = re.compile(r"T\d{2}:\d{2}:\d{2}\.(\d*)")


class Py310Datetime(datetime):
    """`datetime` whose `fromisoformat` reads fractions as Python 3.10's does.

    3.10 takes exactly 3 or 6 fraction digits ("Invalid isoformat string"
    otherwise); 3.11, which runs these tests, takes any number. The charms run
    on Ubuntu 22.04's 3.10, which is why `_parse_time` normalises to 6.
    """

    @classmethod
    def fromisoformat(cls, date_string: str) -> Py310Datetime:
        found = _FRACTION.search(date_string)
        if found is not None and len(found.group(1)) not in (3, 6):
            raise ValueError(f"Invalid isoformat string: {date_string!r}")
        parsed = datetime.fromisoformat(date_string)
        return cls.combine(parsed.date(), parsed.timetz())


@pytest.fixture
def py310(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cluster, "datetime", Py310Datetime)


def test_the_py310_stand_in_refuses_what_3_10_refuses() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat string"):
        Py310Datetime.fromisoformat("2026-11-23T15:13:40.68955822+00:00")
    with pytest.raises(ValueError, match="Invalid isoformat string"):
        Py310Datetime.fromisoformat("2026-11-23T15:13:40.5+00:00")
    assert Py310Datetime.fromisoformat("2026-11-23T15:13:40.689558+00:00") == datetime(
        2026, 11, 23, 15, 13, 40, 689558, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T15:13:40.68955822Z", datetime(2026, 11, 23, 15, 13, 40, 689558, tzinfo=UTC)),
        ("2026-11-23T15:13:40.5Z", datetime(2026, 11, 23, 15, 13, 40, 500000, tzinfo=UTC)),
        ("2026-11-23T15:13:40.12Z", datetime(2026, 11, 23, 15, 13, 40, 120000, tzinfo=UTC)),
        (
            "2026-11-23T10:13:40.123456789-05:00",
            datetime(2026, 11, 23, 15, 13, 40, 123456, tzinfo=UTC),
        ),
        ("2026-11-23T15:13:40Z", datetime(2026, 11, 23, 15, 13, 40, tzinfo=UTC)),
    ],
)
@pytest.mark.usefixtures("py310")
def test_parse_time_reads_any_fraction_on_python_3_10(text: str, expected: datetime) -> None:
    assert _parse_time(text) == expected


@pytest.mark.usefixtures("py310")
def test_a_token_from_lxd_decodes_its_expiry_on_python_3_10() -> None:
    token = decode_join_token(lxd_token())
    assert token.expires_at == datetime(2026, 11, 23, 15, 13, 40, 689558, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["2026-11-23T15:13:40.1234567XZ", "2026-11-23T15:13:40.123456789X+00:00"],
)
def test_a_letter_after_the_sixth_fraction_digit_is_not_a_time(text: str) -> None:
    """Only the first six digits are kept: whatever follows them must still be a zone."""
    assert _parse_time(text) is None


def test_only_year_one_means_no_expiry() -> None:
    """Go's zero time is year 1; year 2 is an odd expiry, but a real one."""
    assert _parse_time("0001-01-01T00:00:00Z") is None
    assert _parse_time("0002-01-01T00:00:00Z") == datetime(2, 1, 1, tzinfo=UTC)


# --- records without a field -----------------------------------------------------------


def test_a_member_built_without_a_message_has_an_empty_one() -> None:
    assert ClusterMember("m1", "", "Online", []) == ClusterMember(
        "m1", "", "Online", [], message="", failure_domain="default"
    )


def test_members_listed_without_optional_fields_read_as_empty(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", MEMBERS, reply.sync([{"server_name": "m1"}]))
    assert cluster.members() == [ClusterMember("m1", "", "", [], "", "default")]


def test_one_member_read_whole(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    record = {
        "server_name": "m2",
        "url": "https://127.0.0.2:8443",
        "status": "Online",
        "message": "Fully operational",
        "roles": ["database-leader", "database"],
        "failure_domain": "az1",
    }
    lxd.on("GET", f"{MEMBERS}/m2", reply.sync(record))
    assert cluster.member("m2") == ClusterMember(
        "m2",
        "https://127.0.0.2:8443",
        "Online",
        ["database-leader", "database"],
        "Fully operational",
        "az1",
    )


def test_one_member_without_optional_fields_reads_as_empty(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", f"{MEMBERS}/m2", reply.sync({"server_name": "m2"}))
    assert cluster.member("m2") == ClusterMember("m2", "", "", [], "", "default")


def test_a_member_lxd_refuses_to_show_is_not_called_missing(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", f"{MEMBERS}/m2", reply.error(403, "not authorized"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused reading cluster member 'm2': not authorized")
    ) as raised:
        cluster.member("m2")
    assert raised.value.status == 403


def test_member_config_keeps_a_given_value(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    config = [{"entity": "storage-pool", "name": "local", "key": "source", "value": "/dev/sdb"}]
    lxd.on(
        "GET",
        CLUSTER,
        reply.sync({"server_name": "m2", "enabled": True, "member_config": config}),
    )
    assert cluster.member_config() == config


def test_an_instance_without_location_or_status_is_placed_nowhere(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", INSTANCES, reply.sync([{"name": "c1", "location": None}]))
    assert cluster.placements() == {"c1": Placement(location="", status="")}
    assert cluster.instances_on("") == ["c1"]


def test_a_token_operation_without_expiry_or_id(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    meta = {
        "serverName": "m3",
        "fingerprint": "07e5",
        "addresses": ["127.0.0.3:8443"],
        "secret": "a85c",
    }
    op = reply.operation("op", "token", meta)
    del op["id"]
    lxd.on("GET", OPERATIONS, reply.sync({"running": [op]}))
    [token] = cluster.join_tokens()
    assert (token.server_name, token.expires_at, token.operation_id) == ("m3", None, "")
    assert json.loads(base64.b64decode(token.token)) == {
        "server_name": "m3",
        "fingerprint": "07e5",
        "addresses": ["127.0.0.3:8443"],
        "secret": "a85c",
        "expires_at": "",
    }


# --- what each request is called when LXD refuses it -----------------------------------


def test_refused_cluster_state_is_named(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", CLUSTER, reply.error(403, "not authorized"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused reading the cluster state: not authorized")
    ):
        _ = cluster.enabled
    lxd.on("GET", CLUSTER, not_json(reply))
    with pytest.raises(
        LxdApiError, match=exactly("LXD sent a non-JSON answer while reading the cluster state")
    ):
        _ = cluster.server_name


def test_refused_server_information_is_named(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", "/1.0", reply.error(403, "not authorized"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused reading server information: not authorized")
    ):
        cluster.evacuation_modes()
    lxd.on("GET", "/1.0", not_json(reply))
    with pytest.raises(
        LxdApiError, match=exactly("LXD sent a non-JSON answer while reading server information")
    ):
        cluster.evacuation_modes()


def test_refused_instance_listing_is_named(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", INSTANCES, reply.error(403, "not authorized"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused listing instances: not authorized")
    ):
        cluster.placements()
    lxd.on("GET", INSTANCES, not_json(reply))
    with pytest.raises(
        LxdApiError, match=exactly("LXD sent a non-JSON answer while listing instances")
    ):
        cluster.instances_on("m1")


def test_refused_token_listing_is_named(lxd: FakeLxd, reply: Replies, cluster: Cluster) -> None:
    lxd.on("GET", OPERATIONS, reply.error(403, "not authorized"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused listing join tokens: not authorized")
    ):
        cluster.join_tokens()
    lxd.on("GET", OPERATIONS, not_json(reply))
    with pytest.raises(
        LxdApiError, match=exactly("LXD sent a non-JSON answer while listing join tokens")
    ):
        cluster.join_tokens()


def test_a_token_outside_a_cluster_is_refused_in_those_words(
    lxd: FakeLxd, reply: Replies, cluster: Cluster
) -> None:
    lxd.on("GET", CLUSTER, reply.sync({"server_name": "", "enabled": False}))
    with pytest.raises(
        ClusterError, match=exactly("cannot issue a join token: this LXD is not clustered")
    ):
        cluster.add_join_token("m3")


def test_an_empty_failure_domain_is_refused_in_those_words(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match=exactly("a failure domain needs a name")):
        cluster.set_failure_domain("m1", "")
