"""What real LXD says when it refuses a join, and how the LXD charm reads it.

The charm answers a refused join by what would make it succeed (a new token,
the same join later, or the operator): `lxd_charm.cluster_join.refusal`.
These are the refusals it was written from, asked of real daemons.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lxd_charm.cluster_join import Refusal, join_with_retries, reason, refusal
from lxd_common.errors import LxdApiError
from lxd_common.lxd import JoinToken
from tests.harness.clusters import bootstrap
from tests.harness.lxd_daemons import LxdDaemon

StartDaemons = Callable[[int], list[LxdDaemon]]


def refused(
    joiner: LxdDaemon, token: JoinToken, member_config: list[dict[str, str]]
) -> LxdApiError:
    """Join, expecting LXD to refuse; returns its refusal."""
    with pytest.raises(LxdApiError) as caught:
        joiner.client().join_cluster(joiner.name, joiner.address, token.token, member_config)
    return caught.value


def test_a_replaced_token_asks_for_a_new_token(start_daemons: StartDaemons) -> None:
    leader, joiner = start_daemons(2)
    bootstrap(leader)
    cluster = leader.client().cluster
    first = cluster.add_join_token(joiner.name)
    cluster.add_join_token(joiner.name)  # replaces the first
    error = refused(joiner, first, cluster.member_config())

    assert "No matching cluster join operation found" in str(error)
    assert refusal(error) is Refusal.TOKEN


def test_an_expired_token_asks_for_a_new_token(start_daemons: StartDaemons) -> None:
    leader, joiner = start_daemons(2)
    bootstrap(leader)
    leader.client().set_server_config({"cluster.join_token_expiry": "1S"})
    cluster = leader.client().cluster
    token = cluster.add_join_token(joiner.name)
    while not token.expired():
        time.sleep(0.2)
    error = refused(joiner, token, cluster.member_config())

    assert "Token has expired" in str(error)
    assert refusal(error) is Refusal.TOKEN


def test_an_unreachable_cluster_is_retried_not_reissued(start_daemons: StartDaemons) -> None:
    leader, joiner = start_daemons(2)
    bootstrap(leader)
    cluster = leader.client().cluster
    token, member_config = cluster.add_join_token(joiner.name), cluster.member_config()
    leader.kill()
    error = refused(joiner, token, member_config)

    assert "Unable to connect to any of the cluster members" in str(error)
    assert refusal(error) is Refusal.UNREACHABLE
    with pytest.raises(LxdApiError, match="Unable to connect"):
        join_with_retries(
            joiner.client(), joiner.name, joiner.address, token.token, member_config, 1.0
        )


def test_a_bad_member_setting_is_the_operators_to_fix(start_daemons: StartDaemons) -> None:
    leader, joiner = start_daemons(2)
    bootstrap(leader)
    cluster = leader.client().cluster
    token = cluster.add_join_token(joiner.name)
    bad = [{**entry, "value": "/nonexistent/source"} for entry in cluster.member_config()]
    error = refused(joiner, token, bad)

    assert "Source path '/nonexistent/source' doesn't exist" in str(error)
    assert refusal(error) is Refusal.MACHINE
    assert reason(error).startswith("Failed to initialize member")


def test_joining_twice_is_refused_and_the_name_comes_from_the_token(
    start_daemons: StartDaemons,
) -> None:
    """Why the charm checks its own membership first: a retried join is refused."""
    leader, joiner = start_daemons(2)
    bootstrap(leader)
    cluster = leader.client().cluster
    token = cluster.add_join_token("from-the-token")
    joiner.client().join_cluster(joiner.name, joiner.address, token.token, cluster.member_config())
    assert joiner.client().cluster.server_name == "from-the-token"
    again = cluster.add_join_token("another")
    error = refused(joiner, again, cluster.member_config())

    assert "This server is already clustered" in str(error)
    assert refusal(error) is Refusal.MACHINE
