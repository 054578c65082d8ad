"""The simulator's parallel mode (`Sim(parallel=True)`): Juju's rules with units at once.

The hooks here are Python functions run by a scripted `HookRunner` on the
units' worker threads (no charm, no process, no ops.testing, which is not
thread-safe): each turns the State the simulator built into the next one, so
the tests can hold a hook open while other units run and check what each
hook saw. What they pin down: different units' hooks overlap, one unit's never
do and keep their order, a hook sees only what other hooks had committed when
it started, a failure is retried on its own unit while the others go on, and
a livelock is still caught.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import ops
import pytest
from ops import testing

from tests.harness.juju_sim import LivelockError, Sim, SimError, SimUnit

META: dict[str, Any] = {"name": "toy", "peers": {"cluster": {"interface": "toy"}}}
WAIT = 10.0
"""Seconds a hook waits for another unit before it gives up (a failure, not a hang)."""

Script = Callable[[SimUnit, str, "HookView"], Mapping[str, str] | None]
"""A hook: gets the unit, the event name and what it sees; returns bag keys to write
(``app:key`` writes ``key`` in the application bag)."""


@dataclasses.dataclass
class HookView:
    """What a scripted hook sees of the model: the peer bags in its starting State."""

    own: dict[str, str]
    peers: dict[int, dict[str, str]]
    app: dict[str, str]


class ScriptedRunner:
    """A `HookRunner` whose hooks are Python functions, safe to run on several threads."""

    last_action_results: dict[str, Any] | None = None

    def __init__(self, script: Script) -> None:
        self.script = script
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.most_at_once = 0
        self.most_per_unit = 0
        self.ran: list[tuple[str, str]] = []

    def context_args(self) -> dict[str, Any]:
        return {"meta": META}

    def run(
        self, sim: Sim, unit: SimUnit, event: Any, state: testing.State, env: Mapping[str, str]
    ) -> testing.State:
        with self.lock:
            self.active[unit.name] = self.active.get(unit.name, 0) + 1
            self.most_per_unit = max(self.most_per_unit, self.active[unit.name])
            self.most_at_once = max(self.most_at_once, sum(self.active.values()))
        try:
            peer = next(
                (r for r in state.relations if r.id == sim.relation_id),
                None,
            )
            assert peer is None or isinstance(peer, testing.PeerRelation)
            view = HookView(
                own=dict(peer.local_unit_data) if peer else {},
                peers={n: dict(b) for n, b in peer.peers_data.items()} if peer else {},
                app=dict(peer.local_app_data) if peer else {},
            )
            time.sleep(0.002)  # long enough for other units' hooks to interleave
            writes = self.script(unit, event.name, view)
            with self.lock:
                self.ran.append((unit.name, event.name))
        finally:
            with self.lock:
                self.active[unit.name] -= 1
        if not writes or peer is None:
            return state
        bag = {**peer.local_unit_data}
        app = {**peer.local_app_data}
        for key, value in writes.items():
            if key.startswith("app:"):
                app[key.removeprefix("app:")] = value
            else:
                bag[key] = value
        others = frozenset(r for r in state.relations if r.id != sim.relation_id)
        written = dataclasses.replace(peer, local_unit_data=bag, local_app_data=app)
        return dataclasses.replace(state, relations=others | {written})


def parallel_sim(script: Script, **kwargs: Any) -> tuple[Sim, ScriptedRunner]:
    runner = ScriptedRunner(script)
    sim = Sim(ops.CharmBase, app="toy", peer="cluster", runner=runner, parallel=True, **kwargs)
    return sim, runner


def kinds(sim: Sim, unit: str) -> list[str]:
    return [event for name, event in sim.hooks if name == unit]


def test_parallel_mode_refuses_in_process_units() -> None:
    with pytest.raises(SimError, match="not thread-safe"):
        Sim(ops.CharmBase, app="toy", peer="cluster", context={"meta": META}, parallel=True)


@pytest.mark.parametrize("parallel", [True, False])
def test_different_units_hooks_run_at_the_same_time(parallel: bool) -> None:
    """Both installs wait for each other: only units in parallel get through."""
    barrier = threading.Barrier(2, timeout=2.0)

    def script(unit: SimUnit, event: str, view: HookView) -> None:
        if event == "install":
            barrier.wait()

    runner = ScriptedRunner(script)
    sim = Sim(
        ops.CharmBase, app="toy", peer="cluster", runner=runner, parallel=parallel, hook_retries=0
    )
    sim.add_units(2)
    if not parallel:  # one hook at a time: the first install waits alone, and fails
        with pytest.raises(threading.BrokenBarrierError):
            sim.settle()
        return
    sim.settle()
    assert sim.failed_hooks == []
    assert runner.most_at_once == 2


def test_each_units_hooks_keep_their_order_and_never_overlap() -> None:
    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str]:
        return {"last": event}

    sim, runner = parallel_sim(script)
    sim.add_units(3)
    ran = sim.settle()
    assert runner.most_per_unit == 1
    assert runner.most_at_once > 1
    assert ran == len(sim.hooks) == len(runner.ran)
    first = ["install", "cluster_relation_created", "config_changed", "start"]
    assert kinds(sim, "toy/0")[:5] == [*first[:2], "leader_elected", *first[2:]]
    for name in ("toy/1", "toy/2"):
        assert kinds(sim, name)[:4] == first
    for name, unit in sim.units.items():
        # Every peer joined, and a relation-changed came after each join.
        assert unit.joined == set(sim.units) - {name}
        own = kinds(sim, name)
        assert own.count("cluster_relation_joined") == 2
        assert own.index("cluster_relation_joined") < own.index("cluster_relation_changed")
        assert sim.unit_data[name]["last"].startswith("cluster_relation")


def test_a_hook_sees_only_what_other_hooks_had_committed_when_it_started() -> None:
    """toy/0 writes, then waits until a later hook of toy/1 has run: that hook saw nothing."""
    written, read = threading.Event(), threading.Event()
    seen: dict[str, str | None] = {}

    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str] | None:
        if unit.name == "toy/0" and event == "update_status":
            written.set()  # the write is made (below, as the hook's output), not committed
            assert read.wait(WAIT)
            return {"word": "hello"}
        if unit.name == "toy/1" and event == "update_status":
            assert written.wait(WAIT)
        if unit.name == "toy/1" and event == "config_changed":
            seen["while toy/0 ran"] = view.peers[0].get("word")
            read.set()
        if unit.name == "toy/1" and event == "cluster_relation_changed":
            seen["after its commit"] = view.peers[0].get("word")
        return None

    sim, _ = parallel_sim(script)
    sim.place_unit()
    sim.place_unit()
    sim.update_status()
    sim.config_changed(colour="blue")
    sim.settle()
    assert seen == {"while toy/0 ran": None, "after its commit": "hello"}
    assert kinds(sim, "toy/1") == ["update_status", "config_changed", "cluster_relation_changed"]


def test_a_failed_hook_is_retried_on_its_own_unit_while_the_others_go_on() -> None:
    failures = {"toy/1": 1}

    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str]:
        if event == "config_changed" and failures.get(unit.name):
            failures[unit.name] -= 1
            raise RuntimeError("snapd is busy")
        return {"hook": event}

    sim, _ = parallel_sim(script, retry_backoff=0.5)
    sim.add_units(2)
    sim.settle()
    assert [(u, e) for u, e, _ in sim.failed_hooks] == [("toy/1", "config_changed")]
    assert kinds(sim, "toy/1")[:5] == [
        "install",
        "cluster_relation_created",
        "config_changed",
        "config_changed",
        "start",
    ]
    failed_at = sim.hooks.index(("toy/1", "config_changed"))
    retried_at = sim.hooks.index(("toy/1", "config_changed"), failed_at + 1)
    # toy/0 went on during toy/1's back-off.
    assert any(u == "toy/0" for u, _ in sim.hooks[failed_at + 1 : retried_at])


def test_a_hook_that_keeps_failing_propagates_and_drops_its_writes() -> None:
    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str]:
        if unit.name == "toy/1" and event == "start":
            raise RuntimeError("cannot start")
        return {"hook": event}

    sim, _ = parallel_sim(script, hook_retries=2, retry_backoff=0.0)
    sim.add_units(2)
    with pytest.raises(RuntimeError, match="cannot start"):
        sim.settle()
    assert [(u, e) for u, e, _ in sim.failed_hooks] == [("toy/1", "start")] * 3
    assert sim.unit_data["toy/1"]["hook"] == "config_changed"  # start's write never committed


def test_a_livelock_is_still_caught_with_units_in_parallel() -> None:
    counter = iter(range(1_000_000))

    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str]:
        return {"tick": str(next(counter))}  # every hook wakes the peer again

    sim, _ = parallel_sim(script)
    sim.add_units(2)
    with pytest.raises(LivelockError, match="still busy after 40 hooks"):
        sim.settle(max_hooks=40)
    assert len(sim.hooks) == 40


def test_a_hook_that_started_before_the_leaders_commit_does_not_undo_it() -> None:
    """toy/1's copy of the application bag is stale when it exits: it must not be written back."""
    sim: Sim

    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str]:
        if event != "update_status":
            return {}
        if unit.leader:
            return {"app:word": "hello"}
        deadline = time.monotonic() + WAIT
        while "word" not in sim.app_data:  # the leader's hook has committed
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return {"mine": "too"}

    sim, _ = parallel_sim(script)
    sim.place_unit()
    sim.place_unit()
    sim.update_status()
    sim.settle()
    assert sim.app_data == {"word": "hello"}
    assert sim.unit_data["toy/1"]["mine"] == "too"
    # The leader was not woken by its own bag coming back.
    assert kinds(sim, "toy/0") == ["update_status", "cluster_relation_changed"]
    assert kinds(sim, "toy/1") == ["update_status", "cluster_relation_changed"]


def test_a_peer_that_left_first_is_still_seen_until_its_departed_hook_runs() -> None:
    """toy/2 runs departed to remove while toy/0 is busy: toy/0's next hook still lists it."""
    sim: Sim
    seen: list[dict[int, dict[str, str]]] = []

    def script(unit: SimUnit, event: str, view: HookView) -> dict[str, str]:
        if unit.name == "toy/0" and event == "update_status":
            deadline = time.monotonic() + WAIT
            while "toy/2" not in sim.removed:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        if unit.name == "toy/0" and event == "config_changed":
            seen.append(view.peers)
        return {}

    sim, _ = parallel_sim(script)
    for _ in range(3):
        sim.place_unit({"word": "hello"})
    sim.update_status()
    sim.config_changed(colour="blue")
    sim.remove_unit("toy/2")
    sim.settle()
    assert sorted(seen[0]) == [1, 2]
    assert seen[0][2]["word"] == "hello"
    assert "cluster_relation_departed" in kinds(sim, "toy/0")
    assert sim.units["toy/0"].joined == {"toy/1"}
