"""Real clusters formed, grown and shrunk through lxd_common only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lxd_common.certs import generate_client_certificate
from lxd_common.errors import (
    ClusterError,
    LxdApiError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
)
from lxd_common.lxd import LxdClient, decode_join_token
from tests.harness.clusters import bootstrap, join
from tests.harness.lxd_daemons import LxdDaemon


def member_names(daemon: LxdDaemon) -> list[str]:
    return sorted(m.name for m in daemon.client().cluster.members())


def test_three_members_form_grow_and_shrink(
    start_daemons: Callable[[int], list[LxdDaemon]], busybox_image: Path
) -> None:
    a, b, c = start_daemons(3)
    bootstrap(a)
    cluster = a.client().cluster
    assert cluster.enabled and cluster.server_name == "m1"
    # What a connection reads to connect says the same membership (the adoption check's).
    lxd = a.client()
    connected = lxd.info_at_connect
    assert connected["environment"]["server_clustered"] is True
    assert connected["environment"]["server_name"] == "m1"
    assert lxd.existing_setup(connected) == lxd.existing_setup()
    assert lxd.existing_setup(connected).cluster_member == "m1"
    assert cluster.member_config() == [
        {"entity": "storage-pool", "name": "local", "key": "source", "value": ""}
    ]
    join(a, b)
    join(a, c)
    assert member_names(a) == ["m1", "m2", "m3"]
    assert member_names(c) == ["m1", "m2", "m3"]  # any member answers for all
    assert all(m.online for m in cluster.members())

    # An instance on m3 blocks its removal and stays untouched.
    a.import_image(busybox_image)
    a.lxc("launch", "busybox", "keepme", "--target", "m3")
    with pytest.raises(MemberHasInstancesError, match="keepme") as refused:
        cluster.remove_member("m3")
    assert refused.value.instances == ["keepme"]
    assert member_names(a) == ["m1", "m2", "m3"]
    assert a.client().pylxd.instances.get("keepme").status == "Running"

    # Once the instance moves away, the removal goes through.
    a.lxc("stop", "keepme", "--force")
    a.lxc("move", "keepme", "--target", "m1")
    assert cluster.instances_on("m3") == []
    cluster.remove_member("m3")
    assert member_names(a) == ["m1", "m2"]


def test_join_tokens_are_listed_replaced_and_revoked(
    start_daemons: Callable[[int], list[LxdDaemon]],
) -> None:
    (a,) = start_daemons(1)
    bootstrap(a)
    cluster = a.client().cluster
    first = cluster.add_join_token("newbie")
    second = cluster.add_join_token("newbie")
    pending = cluster.join_tokens()
    assert [t.server_name for t in pending] == ["newbie"], "a new token replaces the old one"
    assert pending[0].token == second.token != first.token
    decoded = decode_join_token(second.token)
    assert decoded.server_name == "newbie"
    assert decoded.expires_at is not None
    assert not decoded.expired()
    assert decoded.expired(datetime.now(timezone.utc) + timedelta(days=30))
    assert cluster.revoke_join_tokens("newbie") == 1
    assert cluster.join_tokens() == []


def test_token_for_an_existing_member_is_refused(
    start_daemons: Callable[[int], list[LxdDaemon]],
) -> None:
    (a,) = start_daemons(1)
    bootstrap(a)
    with pytest.raises(MemberExistsError, match="m1"):
        a.client().cluster.add_join_token("m1")


def test_removing_an_unknown_member_is_refused(
    start_daemons: Callable[[int], list[LxdDaemon]],
) -> None:
    (a,) = start_daemons(1)
    bootstrap(a)
    with pytest.raises(MemberNotFoundError, match="ghost"):
        a.client().cluster.remove_member("ghost")


def test_tokens_need_a_cluster(daemon: LxdDaemon) -> None:
    with pytest.raises(ClusterError, match="not clustered"):
        daemon.client().cluster.add_join_token("x")
    assert daemon.client().cluster.members() == []


def test_enable_is_idempotent(daemon: LxdDaemon) -> None:
    bootstrap(daemon)
    daemon.client().cluster.enable(daemon.name, daemon.address)
    with pytest.raises(ClusterError, match="already clustered"):
        daemon.client().cluster.enable("other-name", daemon.address)


def test_trust_added_on_one_member_holds_on_every_member(
    start_daemons: Callable[[int], list[LxdDaemon]],
) -> None:
    a, b, c = start_daemons(3)
    bootstrap(a)
    join(a, b)
    join(a, c)
    pair = generate_client_certificate("cluster-wide")
    a.client().trust.add(pair.certificate, name="cluster-wide")
    for member in (a, b, c):
        # Clustered members all present the cluster certificate over HTTPS.
        with LxdClient.remote(member.address, pair, member.server_cert) as remote:
            remote.require_trusted()
            assert remote.server_info()["environment"]["server_name"] == member.name


def test_a_members_own_certificate_is_never_renamed_or_restricted(
    start_daemons: Callable[[int], list[LxdDaemon]],
) -> None:
    (a,) = start_daemons(1)
    bootstrap(a)
    lxd = a.client()
    lxd.pylxd.projects.create("pp")
    server_cert = (a.directory / "server.crt").read_text()
    before = {e.fingerprint: e for e in lxd.trust.entries()}
    with pytest.raises(LxdApiError, match="already trusted as server certificate"):
        lxd.trust.add(server_cert, name="oops", projects=["pp"])
    assert {e.fingerprint: e for e in lxd.trust.entries()} == before
