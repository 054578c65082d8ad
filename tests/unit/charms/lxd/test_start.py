"""Juju's `start`: nothing to find right after config-changed; after a boot, a reconcile.

At deployment Juju runs install, (leader-elected,) config-changed and start,
one after the other, with nothing in between; start's reconcile would only
repeat config-changed's, on every unit. Juju also runs start after every
boot of the machine, where a reconcile is the point. These tests tell the
two apart by what the hook asks LXD and snapd.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ops import testing

from tests.harness.fake_host import FakeHost, set_boot
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim

from .test_charm import run
from .test_charm_cluster import (  # the cluster simulator and its helpers
    add_unit,
    announce,
    bootstrapped,
    sim,  # noqa: F401 (a fixture)
)
from .test_charm_cluster import run as run_unit


def deployed(ctx: testing.Context[Any]) -> testing.State:
    """Install and config-changed have run: start is Juju's next hook."""
    state = run(ctx, "install", testing.State())
    state = run(ctx, "config_changed", state)
    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    return state


def test_start_in_the_boot_of_the_last_reconcile_asks_nothing(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    state = deployed(ctx)
    asked = host.fake_lxd.connections, list(snapd.calls)

    out = run(ctx, "start", state)

    assert (host.fake_lxd.connections, snapd.calls) == asked
    assert out.unit_status == state.unit_status


def test_start_after_a_reboot_reconciles(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    state = deployed(ctx)
    set_boot(host.root, "boot-2")
    connections = host.fake_lxd.connections

    out = run(ctx, "start", state)

    assert host.fake_lxd.connections > connections
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")
    asked = host.fake_lxd.connections
    run(ctx, "start", out)  # that reconcile was in this boot: the next start skips
    assert host.fake_lxd.connections == asked


def test_start_after_a_reconcile_that_left_work_undone_reconciles(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = replace(deployed(ctx), unit_status=testing.BlockedStatus("cannot install LXD"))
    connections = host.fake_lxd.connections

    out = run(ctx, "start", state)

    assert host.fake_lxd.connections > connections
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")


def test_start_of_a_unit_that_never_reconciled_reconciles(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """A record from before this revision names no boot: its start reconciles."""
    state = deployed(ctx)
    [stored] = [s for s in state.stored_states if s.owner_path == "LxdCharm"]
    memory = {**stored.content["memory"], "reconciled_boot": ""}
    stored = replace(stored, content={**stored.content, "memory": memory})
    others = {s for s in state.stored_states if s.owner_path != "LxdCharm"}
    connections = host.fake_lxd.connections

    run(ctx, "start", replace(state, stored_states=frozenset({stored, *others})))

    assert host.fake_lxd.connections > connections


def test_a_joiner_still_waiting_for_its_token_skips_start(
    sim: Sim,  # noqa: F811
    snapd: FakeSnapd,
) -> None:
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3")  # planned, silent: lxd/1's token is held
    second = sim.units["lxd/1"].machine
    waiting = run_unit(sim, 1, "config_changed").unit_status
    assert waiting == testing.WaitingStatus("waiting for the leader to issue a join token")
    asked = second.lxd.calls, list(snapd.calls)

    out = run_unit(sim, 1, "start")

    assert (second.lxd.calls, snapd.calls) == asked
    assert out.unit_status == waiting
