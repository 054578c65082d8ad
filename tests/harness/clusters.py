"""Clusters formed directly with lxd_common, for tests and the benchmark floor.

This is what an operator would do by hand (bootstrap preseed, then a token
and a join preseed per member), with no charm involved: functional tests of
`lxd_common` and of the integrator use it to get a real cluster, and the
benchmark uses it as the floor the charm is measured against.
"""

from __future__ import annotations

from typing import Any

from tests.harness.lxd_daemons import LxdDaemon, wait_until

POOL = "local"


def initial_preseed(daemon: LxdDaemon) -> dict[str, Any]:
    """A working single server: HTTPS on its loopback address, a dir pool, a root disk."""
    return {
        "config": {"core.https_address": daemon.address},
        "storage_pools": [{"name": POOL, "driver": "dir"}],
        "profiles": [
            {"name": "default", "devices": {"root": {"path": "/", "pool": POOL, "type": "disk"}}}
        ],
    }


def bootstrap(first: LxdDaemon) -> None:
    """Initialise ``first`` and make it the first member, named after the daemon."""
    lxd = first.client()
    lxd.apply_preseed(initial_preseed(first))
    lxd.cluster.enable(first.name, first.address)


def join(leader: LxdDaemon, joiner: LxdDaemon) -> None:
    """Join ``joiner`` with a token from ``leader``, as `lxd init --preseed` does."""
    cluster = leader.client().cluster
    token = cluster.add_join_token(joiner.name)
    joiner.client().join_cluster(joiner.name, joiner.address, token.token, cluster.member_config())


def form_cluster(daemons: list[LxdDaemon]) -> None:
    """Bootstrap on the first daemon and join every other one."""
    first, *others = daemons
    bootstrap(first)
    for joiner in others:
        join(first, joiner)


def statuses(daemon: LxdDaemon) -> dict[str, str]:
    """Each member's status ("Online", "Offline", ...) as ``daemon`` lists it."""
    return {m.name: m.status for m in daemon.client().cluster.members()}


def wait_until_offline(daemon: LxdDaemon, *names: str, timeout: float = 90) -> None:
    """Wait until ``daemon`` lists the members ``names`` offline and every other one online.

    LXD calls a member offline once no heartbeat reached it for
    ``cluster.offline_threshold`` (20 s by default; the leader's rounds are
    about 10 s apart). Waiting for ``names`` alone is not enough on a loaded
    machine (captured from LXD 5.0 with both cores busy): a round that runs
    late lists every member offline for a moment, and a round begun before a
    kill can land after it and list the killed member online again. Only a
    round that reached the others and not ``names`` says the machines are down.

    Raises:
        AssertionError: not so within ``timeout``, with the last listing.
    """
    wanted = set(names)

    def settled() -> bool:
        listed = statuses(daemon)
        return wanted <= set(listed) and all(
            (status == "Offline") == (name in wanted) for name, status in listed.items()
        )

    if not wait_until(settled, timeout=timeout, interval=1):
        listed = statuses(daemon)
        raise AssertionError(f"not {sorted(wanted)} offline and the rest online: {listed}")
