"""What a hook imports before it does anything: the light paths stay light.

Juju starts a fresh process for every hook, so every module charm.py imports
at its top is paid on every hook of every unit. The LXD client stack
(pylxd, requests), cryptography, charmlibs-snap, charmlibs-sysctl and
tenacity are imported only by the code paths that use them: importing the
charm does not load them, and neither does a member's peer event that only
reads two databag keys. Each check runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
HEAVY = (
    "pylxd",
    "requests",
    "urllib3",
    "cryptography",
    "charmlibs.snap",
    "charmlibs.sysctl",
    "charmlibs.interfaces.tls_certificates",
    "tenacity",
    "lxd_charm.cluster_peer",
    "lxd_charm.actions",
    "lxd_charm.https_relation",
)


def heavy_modules_after(code: str) -> list[str]:
    """The heavy modules loaded once ``code`` ran in a fresh interpreter."""
    report = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    probe = f"{code}\nimport json, sys\n{report}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "charms/lxd/src"), str(REPO / "common/src"), str(REPO)]
        ),
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_charm_loads_nothing_heavy() -> None:
    assert heavy_modules_after("import charm") == []


def test_a_members_peer_event_loads_nothing_heavy() -> None:
    """The most frequent hook of a cluster: a member that is not the leader skips it."""
    code = """
import ops
from ops import testing
import charm

memory = {"initialised": True, "init_options": {"mode": "cluster", "lxd-preseed": ""}}
peer = testing.PeerRelation("cluster", local_app_data={"version": "1.3"},
                            peers_data={0: {"version": "1.3", "hostname": "node0"}})
state = testing.State(
    leader=False,
    config={"mode": "cluster"},
    relations={peer},
    unit_status=testing.ActiveStatus("cluster: member node1"),
    stored_states={
        testing.StoredState("_stored", owner_path="LxdCharm", content={"memory": memory})
    },
)
ctx = testing.Context(charm.LxdCharm, app_name="lxd", unit_id=1)
out = ctx.run(ctx.on.relation_changed(peer, remote_unit=0), state)
assert out.unit_status == testing.ActiveStatus("cluster: member node1"), out.unit_status
"""
    assert heavy_modules_after(code) == []


@pytest.mark.parametrize("ahead_before", ["lxd/1", "lxd/0"], ids=["same-turn", "turn-moved"])
def test_a_waiting_joiners_peer_event_loads_nothing_heavy(ahead_before: str) -> None:
    """A unit waiting for its turn, already saying so, skips the peer event on bag reads.

    Also when the unit its status named has joined since (lxd/0 here): only
    the status changes, to the unit now ahead.
    """
    code = f"""
import ops
from ops import testing
import charm

turn = "waiting for lxd/1 to join first: LXD takes one join at a time"
before = "waiting for {ahead_before} to join first: LXD takes one join at a time"
peer = testing.PeerRelation(
    "cluster",
    local_app_data={{"version": "1.3", "members": '{{"lxd/0": "node0"}}',
                    "lxd/1": "secret:b", "lxd/2": "secret:c"}},
    local_unit_data={{"version": "1.3", "hostname": "node2"}},
    peers_data={{0: {{"version": "1.3", "hostname": "node0", "joined": "node0"}},
                1: {{"version": "1.3", "hostname": "node1"}}}},
)
state = testing.State(
    leader=False,
    config={{"mode": "cluster"}},
    relations={{peer}},
    unit_status=testing.WaitingStatus(before),
)
ctx = testing.Context(charm.LxdCharm, app_name="lxd", unit_id=2)
out = ctx.run(ctx.on.relation_changed(peer, remote_unit=0), state)
assert out.unit_status == testing.WaitingStatus(turn), out.unit_status
"""
    assert heavy_modules_after(code) == []


def test_the_probe_sees_what_a_reconcile_imports() -> None:
    """The check above could pass by not looking: a real reconcile path loads pylxd."""
    assert "pylxd" in heavy_modules_after("import charm\nimport lxd_charm.cluster_peer")


def test_a_start_in_the_boot_of_the_last_reconcile_loads_nothing_heavy() -> None:
    """Every unit's start at deployment follows its config-changed in the same boot."""
    code = """
from pathlib import Path
import ops
from ops import testing
import charm

boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
memory = {"initialised": True, "init_options": {"mode": "standalone", "lxd-preseed": ""},
          "reconciled_boot": boot}
state = testing.State(
    unit_status=testing.ActiveStatus("standalone; no network listener"),
    stored_states={
        testing.StoredState("_stored", owner_path="LxdCharm", content={"memory": memory})
    },
)
ctx = testing.Context(charm.LxdCharm, app_name="lxd", unit_id=0)
out = ctx.run(ctx.on.start(), state)
assert out.unit_status == testing.ActiveStatus("standalone; no network listener")
"""
    assert heavy_modules_after(code) == []


def test_a_holding_leaders_peer_event_loads_nothing_heavy() -> None:
    """The leader counting the units deployed with it, one hook each, before their tokens."""
    code = """
import ops
from ops import testing
import charm

held = ("{} of 4 planned units have announced themselves: join tokens go out when all "
        "have, or at the next update-status")
memory = {"initialised": True, "init_options": {"mode": "cluster", "lxd-preseed": ""}}
peer = testing.PeerRelation(
    "cluster",
    local_app_data={"version": "1.4", "members": '{"lxd/0": "node0"}'},
    local_unit_data={"version": "1.4", "hostname": "node0"},
    peers_data={1: {"version": "1.4", "hostname": "node1"},
                2: {"version": "1.4", "hostname": "node2"}},
)
state = testing.State(
    leader=True,
    config={"mode": "cluster"},
    relations={peer},
    planned_units=4,
    unit_status=testing.WaitingStatus(held.format(2)),
    stored_states={
        testing.StoredState("_stored", owner_path="LxdCharm", content={"memory": memory})
    },
)
ctx = testing.Context(charm.LxdCharm, app_name="lxd", unit_id=0)
out = ctx.run(ctx.on.relation_changed(peer, remote_unit=2), state)
assert out.unit_status == testing.WaitingStatus(held.format(3)), out.unit_status
"""
    assert heavy_modules_after(code) == []
