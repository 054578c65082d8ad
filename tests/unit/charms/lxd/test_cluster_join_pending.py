"""A join refused over a remote pool that is not ready for the member yet: waiting, bounded.

LXD's words are the ones a real 5.0.2 daemon gave, joining a cluster with a
Ceph `remote` pool while its own LXD could not see the pool's marker image
(tests/functional/test_ceph.py captures them again): the refusal passes once
the pool is ready on that member, so the unit waits, and retries, for
`PENDING_BUDGET_SECONDS` over all hooks; then it is blocked with what to check.
"""

from __future__ import annotations

from typing import Any

import pytest
from ops import testing

from lxd_charm import cluster_join
from lxd_charm.cluster_join import PENDING_BUDGET_SECONDS, Refusal, pending_problem, refusal
from lxd_charm.outcomes import BlockedError, WaitingError
from lxd_common.errors import LxdApiError
from tests.harness.juju_sim import Sim

from .test_charm_cluster import (  # the cluster's simulator and its helpers
    Refuses,
    add_unit,
    announce,
    bag_of,
    bootstrapped,
    cluster_names,
    run,
    sim,  # noqa: F401 (a fixture)
)

PLACEHOLDER = (
    "LXD refused the preseed: Error: Failed to join cluster: Failed to initialize member: "
    'Failed to initialize storage pools and networks: Failed to create storage pool "shared": '
    "Placeholder volume does not exist"
)
SAID = (
    "LXD refused the join (Failed to initialize member: Failed to initialize storage pools "
    'and networks: Failed to create storage pool "shared": Placeholder volume does not exist)'
)


def test_a_missing_placeholder_is_a_pending_refusal() -> None:
    assert refusal(LxdApiError(PLACEHOLDER)) is Refusal.PENDING


def test_a_pending_refusal_is_retried_within_the_join() -> None:
    assert cluster_join._passing(LxdApiError(PLACEHOLDER))


def test_pending_waits_while_the_budget_lasts_then_blocks_saying_what_to_check() -> None:
    waiting = pending_problem(SAID, since=1000.0, now=1000.0 + PENDING_BUDGET_SECONDS - 1)
    assert isinstance(waiting, WaitingError)
    assert str(waiting) == (
        f"{SAID}: a remote storage pool is not ready for this member yet; "
        "retrying on the next hook"
    )
    blocked = pending_problem(SAID, since=1000.0, now=1000.0 + PENDING_BUDGET_SECONDS)
    assert isinstance(blocked, BlockedError)
    assert str(blocked) == (
        f"{SAID}, for 15 min: check that this machine reaches Ceph with the charm's files "
        "(`ceph -s --id <user>` with the snap's ceph.conf) and that the RBD image "
        "lxd_<OSD pool> exists (`lxc storage show shared` names the OSD pool); the join is "
        "retried on the next hook"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_joiner_waits_for_the_pool_then_joins(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    clock = Clock()
    monkeypatch.setattr("lxd_charm.cluster_peer.time.time", clock)
    monkeypatch.setattr("lxd_charm.cluster_join.JOIN_RETRY_SECONDS", 0.0)
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", Refuses(PLACEHOLDER))
        out = run(sim, 1, "relation_changed", 0)
        assert out.unit_status == testing.WaitingStatus(
            f"{SAID}: a remote storage pool is not ready for this member yet; "
            "retrying on the next hook"
        )
        assert bag_of(sim, 1)["join-refused"] == sim.app_data["lxd/1"]  # others go first
        clock.now += PENDING_BUDGET_SECONDS / 2
        again = run(sim, 1, "update_status")
        assert again.unit_status.name == "waiting"
    joined = run(sim, 1, "update_status")  # the pool is ready on this member now
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert joined.unit_status.name == "active"
    assert cluster_names(first) == ["node-a", "node-b"]
    assert "join-refused" not in bag_of(sim, 1)
    assert _memory(sim, 1)["pool_wait_since"] == 0.0


def test_a_joiner_refused_past_the_budget_blocks_saying_what_to_check(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    clock = Clock()
    monkeypatch.setattr("lxd_charm.cluster_peer.time.time", clock)
    monkeypatch.setattr("lxd_charm.cluster_join.JOIN_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(second.lxd, "join_cluster", Refuses(PLACEHOLDER))
    first = run(sim, 1, "relation_changed", 0)
    assert first.unit_status.name == "waiting"
    assert _memory(sim, 1)["pool_wait_since"] == clock.now
    clock.now += PENDING_BUDGET_SECONDS + 60
    out = run(sim, 1, "update_status")
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"{SAID}, for 16 min: check that this machine")
    assert bag_of(sim, 1)["join-status"].startswith("blocked: LXD refused the join")


def test_another_refusal_restarts_the_pending_budget(
    sim: Sim,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    monkeypatch.setattr("lxd_charm.cluster_join.JOIN_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(second.lxd, "join_cluster", Refuses(PLACEHOLDER))
    run(sim, 1, "relation_changed", 0)
    assert _memory(sim, 1)["pool_wait_since"] > 0
    unreachable = "LXD refused the preseed: Error: Failed to join cluster: connection refused"
    monkeypatch.setattr(second.lxd, "join_cluster", Refuses(unreachable))
    run(sim, 1, "update_status")
    assert _memory(sim, 1)["pool_wait_since"] == 0.0


def _memory(simulated: Sim, unit: int) -> dict[str, Any]:
    state = simulated.units[f"lxd/{unit}"].state
    stored = state.get_stored_state("_stored", owner_path="LxdCharm").content
    memory: dict[str, Any] = dict(stored["memory"])
    return memory
