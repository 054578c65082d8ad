"""Clusters formed directly with lxd_common, for tests and the benchmark floor.

This is what an operator would do by hand (bootstrap preseed, then a token
and a join preseed per member), with no charm involved: functional tests of
`lxd_common` and of the integrator use it to get a real cluster, and the
benchmark uses it as the floor the charm is measured against.
"""

from __future__ import annotations

from typing import Any

from tests.harness.lxd_daemons import LxdDaemon

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
