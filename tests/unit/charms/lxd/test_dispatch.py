"""The LXD charm's own `dispatch`: the hooks it ends before Python are hooks with no work.

`charms/lxd/dispatch` exits at once for the hooks it lists, so ops never
sees them. That is only right while the charm does nothing in those hooks:
these tests run each listed hook through the charm itself (ops.testing), in
the states a cluster goes through, and check that it changes nothing and
asks neither LXD nor snapd. A handler added for one of them makes them fail,
naming the hook to take out of `dispatch`. The script itself runs for real:
a listed hook exits 0 without starting Python, any other hook runs the
venv's Python on `src/charm.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from tests.harness.charms import CHARM_DIRS
from tests.harness.fake_host import FakeHost
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim

from .test_charm import installed
from .test_charm_cluster import (  # the cluster simulator and its helpers
    add_unit,
    announce,
    bootstrapped,
    formed,
    run,
    sim,  # noqa: F401 (a fixture)
)

DISPATCH = CHARM_DIRS["lxd"] / "dispatch"
SKIP_LINE = re.compile(r"^\s*(?P<hooks>hooks/[^)]*)\)\s*exit 0\s*;;\s*$", re.MULTILINE)


def skipped_hooks() -> list[str]:
    """The hook names `dispatch` ends before Python (`cluster-relation-joined`, ...)."""
    found = SKIP_LINE.search(DISPATCH.read_text())
    assert found is not None, "dispatch lists no hook to end early"
    return [h.strip().removeprefix("hooks/") for h in found["hooks"].split("|")]


def peer_event(hook: str) -> str:
    """The ops.testing event name of a `cluster-relation-*` hook."""
    assert hook.startswith("cluster-relation-"), f"{hook}: not a peer hook, test it here"
    return "relation_" + hook.removeprefix("cluster-relation-")


def test_dispatch_ends_only_peer_hooks_the_charm_does_not_observe() -> None:
    assert skipped_hooks() == ["cluster-relation-created", "cluster-relation-joined"]


def cluster_snapshot(sim: Sim) -> dict[str, Any]:  # noqa: F811 (the fixture's value)
    """Everything a hook could change that another unit or Juju would see."""
    return {
        "app": dict(sim.app_data),
        "units": {name: dict(bag) for name, bag in sim.unit_data.items()},
        "statuses": {name: unit.state.unit_status for name, unit in sim.units.items()},
        "stored": {
            name: sorted(
                (s.owner_path, sorted(s.content.items()))
                for s in unit.state.stored_states
                if s.owner_path == "LxdCharm"
            )
            for name, unit in sim.units.items()
        },
        "secrets": sorted(sim.app_secrets),
    }


@pytest.mark.parametrize("hook", skipped_hooks())
def test_a_skipped_hook_changes_nothing_on_a_formed_cluster(
    sim: Sim,  # noqa: F811
    snapd: FakeSnapd,
    hook: str,
) -> None:
    """Leader and member of a formed cluster: a new unit's -created/-joined changes nothing."""
    machines = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3")  # placed: no hook of it ran yet
    before = cluster_snapshot(sim)
    asked = [m.lxd.calls for m in machines], list(snapd.calls)

    for unit in (0, 1):
        run(sim, unit, peer_event(hook), 2)

    assert cluster_snapshot(sim) == before
    assert ([m.lxd.calls for m in machines], snapd.calls) == asked


@pytest.mark.parametrize("hook", skipped_hooks())
def test_a_skipped_hook_changes_nothing_for_a_unit_waiting_to_join(
    sim: Sim,  # noqa: F811
    snapd: FakeSnapd,
    hook: str,
) -> None:
    """A joiner waiting for its turn, and the leader that issued its token."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    third = add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)  # both tokens
    assert run(sim, 2, "relation_changed", 0).unit_status.name == "waiting"
    add_unit(sim, 3, "node-d", "10.0.0.4")
    before = cluster_snapshot(sim)
    asked = first.lxd.calls, third.lxd.calls, list(snapd.calls)

    for unit in (0, 2):
        run(sim, unit, peer_event(hook), 3)

    assert cluster_snapshot(sim) == before
    assert (first.lxd.calls, third.lxd.calls, snapd.calls) == asked


@pytest.mark.parametrize("hook", skipped_hooks())
def test_a_skipped_hook_changes_nothing_on_a_lone_unit(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd, hook: str
) -> None:
    """A standalone unit (its peer relation is there all the same), leader or not."""
    for leader in (True, False):
        peer = testing.PeerRelation("cluster", peers_data={1: {}})
        state = replace(
            installed(ctx),
            leader=leader,
            relations=frozenset({peer}),
            unit_status=testing.MaintenanceStatus("probe"),
        )
        connections, asked = host.fake_lxd.connections, list(snapd.calls)
        event = getattr(ctx.on, peer_event(hook))
        out = ctx.run(
            event(peer) if hook.endswith("created") else event(peer, remote_unit=1), state
        )
        assert out.unit_status == testing.MaintenanceStatus("probe")
        assert out.get_relation(peer.id) == peer
        assert (host.fake_lxd.connections, snapd.calls) == (connections, asked)


# --- the script itself -------------------------------------------------------


@pytest.fixture
def charm_dir(tmp_path: Path) -> Path:
    """A charm directory with this dispatch and a venv Python that says how it was called."""
    root = tmp_path / "charm"
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "dispatch").write_bytes(DISPATCH.read_bytes())
    (root / "dispatch").chmod(0o755)
    python = root / "venv" / "bin" / "python"
    python.write_text('#!/bin/sh\necho "ran $PWD $* PYTHONPATH=$PYTHONPATH" > ran\n')
    python.chmod(0o755)
    return root


def dispatch(root: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "JUJU_DISPATCH_PATH": path}
    return subprocess.run(
        [str(root / "dispatch")], cwd="/", env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("hook", skipped_hooks())
def test_a_listed_hook_exits_before_python(charm_dir: Path, hook: str) -> None:
    result = dispatch(charm_dir, f"hooks/{hook}")
    assert (result.returncode, result.stderr) == (0, "")
    assert not (charm_dir / "ran").exists()


@pytest.mark.parametrize(
    "path",
    [
        "hooks/cluster-relation-changed",
        "hooks/cluster-relation-departed",
        "hooks/https-relation-joined",
        "hooks/install",
        "actions/add-trusted-client",
    ],
)
def test_any_other_hook_or_action_runs_the_charm(charm_dir: Path, path: str) -> None:
    result = dispatch(charm_dir, path)
    assert (result.returncode, result.stderr) == (0, "")
    said = (charm_dir / "ran").read_text().strip()
    assert said == f"ran {charm_dir} src/charm.py PYTHONPATH={charm_dir}/lib:{charm_dir}/src"


def test_a_venv_without_its_interpreter_gets_this_machines_python3(tmp_path: Path) -> None:
    """charmcraft ships the venv without bin/: dispatch links python3 there, as charmcraft's."""
    root = tmp_path / "charm"
    (root / "src").mkdir(parents=True)
    (root / "src" / "charm.py").write_text("import sys\nprint(sys.argv[0])\n")
    (root / "dispatch").write_bytes(DISPATCH.read_bytes())
    (root / "dispatch").chmod(0o755)
    result = dispatch(root, "hooks/install")
    assert (result.returncode, result.stdout.strip()) == (0, "src/charm.py"), result.stderr
    link = root / "venv" / "bin" / "python"
    assert link.is_symlink()
    assert link.readlink().name.startswith("python3")
