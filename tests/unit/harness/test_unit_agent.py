"""The stand-in's hook tools, answered in-process: formats ops reads, and Juju's refusals.

`HookSession` is what the hook tools talk to; these tests call it directly
(no subprocess, no socket) with the State the simulator builds for a unit,
so each answer and refusal is checked against the simulator's own model.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import ops
import pytest
from ops import testing

from tests.harness import scenario_shim
from tests.harness.databags import local_app_data, local_unit_data
from tests.harness.juju_sim import Sim
from tests.harness.unit_agent import (
    HookSession,
    HookTiming,
    _options,
    cloud_spec_json,
    read_stored_states,
    run_measured,
    timing_summary,
    write_stored_states,
)

META = {"name": "probe", "peers": {"cluster": {"interface": "probe-cluster"}}}
REQUIRES = {"db": {"interface": "pg"}}
OPTIONS = {"greeting": {"type": "string", "default": "hello"}, "empty": {"type": "string"}}


@pytest.fixture
def sim() -> Sim:
    sim = Sim(
        ops.CharmBase,
        app="probe",
        peer="cluster",
        context={"meta": META, "config": {"options": OPTIONS}},
        config={"greeting": "hi"},
    )
    sim.place_unit({"role": "first"})
    sim.place_unit({"role": "second"})
    return sim


def session(sim: Sim, unit: str, tmp_path: Path, **env: str) -> HookSession:
    relation_env = {"JUJU_RELATION_ID": f"cluster:{sim.relation_id}"}
    return HookSession(
        sim,
        sim.units[unit],
        sim.state_for(unit),
        {**relation_env, **env},
        OPTIONS,
        None,
        {},
        {},
        {},
        tmp_path,
    )


def ok(hook: HookSession, tool: str, *args: str, stdin: str | None = None) -> Any:
    code, out, err = hook.call(tool, list(args), stdin)
    assert (code, err) == (0, ""), err
    return json.loads(out) if "--format=json" in args else out


def refused(hook: HookSession, tool: str, *args: str, stdin: str | None = None) -> str:
    code, out, err = hook.call(tool, list(args), stdin)
    assert (code, out) == (1, "")
    assert err.startswith("ERROR ")
    return err


def test_options_parse_as_juju_tools_take_them() -> None:
    assert _options(["--format=json", "-r", "cluster:3", "--app", "-", "probe"], {"r"}) == (
        {"format": "json", "r": "cluster:3", "app": "true"},
        ["-", "probe"],
    )
    assert _options(["--application=True", "active", "--", "-x msg"], set()) == (
        {"application": "True"},
        ["active", "-x msg"],
    )


def test_relation_tools_answer_from_the_simulators_bags(sim: Sim, tmp_path: Path) -> None:
    hook = session(sim, "probe/1", tmp_path)
    rid = f"cluster:{sim.relation_id}"
    assert ok(hook, "relation-ids", "cluster", "--format=json") == [rid]
    assert ok(hook, "relation-list", "--format=json", "-r", rid) == ["probe/0"]
    assert ok(hook, "relation-list", "--format=json", "--app", "-r", rid) == "probe"
    bag = ok(hook, "relation-get", "--format=json", "-r", rid, "-", "probe/0")
    assert bag == sim.unit_data["probe/0"] and bag["role"] == "first"
    assert ok(hook, "relation-get", "--format=json", "-r", rid, "missing", "probe/0") is None
    # A peer application bag may be read by any unit of the application.
    assert ok(hook, "relation-get", "--format=json", "-r", rid, "--app", "-", "probe") == {}


def test_writes_are_buffered_into_the_hooks_output_state(sim: Sim, tmp_path: Path) -> None:
    hook = session(sim, "probe/0", tmp_path)
    rid = f"cluster:{sim.relation_id}"
    ok(hook, "relation-set", "-r", rid, "--file", "-", stdin=json.dumps({"x": "1", "role": ""}))
    ok(hook, "relation-set", "-r", rid, "--app", "--file", "-", stdin=json.dumps({"y": "2"}))
    ok(hook, "status-set", "--application=False", "blocked", "--", "do something")
    assert sim.unit_data["probe/0"]["role"] == "first", "nothing reaches the model before the end"
    (relation,) = hook.state_out().relations
    assert isinstance(relation, testing.PeerRelation)
    unit_bag = local_unit_data(relation)
    assert unit_bag["x"] == "1" and "role" not in unit_bag
    assert local_app_data(relation) == {"y": "2"}
    assert hook.state_out().unit_status == testing.BlockedStatus("do something")
    assert ok(hook, "status-get", "--include-data", "--format=json", "--application=false") == {
        "status": "blocked",
        "message": "do something",
        "status-data": {},
    }


def test_a_non_leader_is_refused_what_juju_refuses_it(sim: Sim, tmp_path: Path) -> None:
    hook = session(sim, "probe/1", tmp_path)
    rid = f"cluster:{sim.relation_id}"
    assert "not the leader" in refused(
        hook, "relation-set", "-r", rid, "--app", "--file", "-", stdin="{}"
    )
    assert "not the leader" in refused(hook, "leader-set", "k=v")
    assert "not the leader" in refused(hook, "status-set", "--application=True", "active")
    assert "not the leader" in refused(
        hook, "status-get", "--include-data", "--format=json", "--application=true"
    )
    assert "not the leader" in refused(hook, "secret-add", "--owner", "application", "k=v")
    assert ok(hook, "is-leader", "--format=json") is False


def test_config_get_gives_defaults_and_refuses_undeclared_keys(sim: Sim, tmp_path: Path) -> None:
    hook = session(sim, "probe/0", tmp_path)
    assert ok(hook, "config-get", "--format=json") == {"greeting": "hi"}
    assert ok(hook, "config-get", "--format=json", "greeting") == "hi"
    assert ok(hook, "config-get", "--format=json", "empty") is None
    assert 'unknown config key "greting"' in refused(
        hook, "config-get", "--format=json", "greting"
    )


def test_secrets_follow_the_simulators_visibility(sim: Sim, tmp_path: Path) -> None:
    owner = session(sim, "probe/0", tmp_path)
    secret_id = ok(owner, "secret-add", "--owner", "unit", "--label", "mine", "k=v").strip()
    assert ok(owner, "secret-get", "--format=json", secret_id) == {"k": "v"}
    assert ok(owner, "secret-ids", "--format=json") == [secret_id]
    info = ok(owner, "secret-info-get", "--format=json", "--label", "mine")
    assert info == {
        secret_id.split(":")[-1]: {
            "revision": 1,
            "label": "mine",
            "owner": "unit",
            "rotation": "never",
        }
    }
    sim.units["probe/0"].state = owner.state_out()
    sim._absorb_secrets(sim.units["probe/0"], owner.state, owner.state_out())
    reader = session(sim, "probe/1", tmp_path)
    assert refused(reader, "secret-get", "--format=json", secret_id) == "ERROR permission denied\n"
    assert 'secret "secret:nope" not found' in refused(reader, "secret-get", "secret:nope")


def test_reader_refresh_moves_the_tracked_revision(tmp_path: Path) -> None:
    secret = testing.Secret({"k": "1"}, latest_content={"k": "2"})
    scenario_shim.set_revisions(secret, tracked=1, latest=2)
    sim = Sim(ops.CharmBase, app="probe", peer="cluster", context={"meta": META})
    sim.place_unit()
    hook = session(sim, "probe/0", tmp_path)
    hook.secrets = {secret.id: secret}
    assert ok(hook, "secret-get", "--format=json", secret.id) == {"k": "1"}
    assert ok(hook, "secret-get", "--format=json", "--peek", secret.id) == {"k": "2"}
    assert ok(hook, "secret-get", "--format=json", "--refresh", secret.id) == {"k": "2"}
    (out,) = hook.state_out().secrets
    assert scenario_shim.tracked_revision(out) == 2
    assert "permission denied" in refused(hook, "secret-set", secret.id, "k=3")


def test_timings_are_summarised_per_hook_kind() -> None:
    timings = [
        HookTiming("a/0", "hooks/install", 1.0, 3),
        HookTiming("a/1", "hooks/install", 3.0, 3),
        HookTiming("a/0", "hooks/cluster-relation-changed", 2.0, 9),
    ]
    assert timing_summary(timings) == {"install": (2, 2.0, 3.0), "relation-changed": (1, 2.0, 2.0)}


def test_a_hook_process_is_run_with_its_output_and_the_cpu_of_what_it_waited_for(
    tmp_path: Path,
) -> None:
    """The CPU time counts the children it waited for (a hook's tools, `lxd`), not only it."""
    busy = f"{sys.executable} -c 'sum(range(3 * 10**6))'"
    done, cpu = run_measured(
        ["sh", "-c", f"{busy}; echo out; echo err >&2; exit 3"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    _, idle = run_measured(["sleep", "0.2"], cwd=tmp_path, env={}, timeout=60)
    assert cpu > idle
    assert cpu > 0.02  # the child's loop, not only the shell's start


def test_a_hook_process_past_its_timeout_is_killed(tmp_path: Path) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_measured(["sleep", "30"], cwd=tmp_path, env={}, timeout=0.2)


def test_goal_state_gives_each_units_status_and_the_departing_one_dying(
    sim: Sim, tmp_path: Path
) -> None:
    sim.units["probe/1"].state = dataclasses.replace(
        sim.units["probe/1"].state, unit_status=testing.MaintenanceStatus("installing")
    )
    hook = session(sim, "probe/0", tmp_path, JUJU_DEPARTING_UNIT="probe/1")
    goal = ok(hook, "goal-state", "--format=json")
    assert {n: u["status"] for n, u in goal["units"].items()} == {
        "probe/0": "unknown",
        "probe/1": "maintenance",
    }
    assert goal["relations"]["cluster"]["probe/1"]["status"] == "dying"
    ok(hook, "status-set", "active", "--", "ready")
    goal = ok(hook, "goal-state", "--format=json")
    assert goal["units"]["probe/0"]["status"] == "active"


def test_non_peer_relations_show_the_remote_application_and_its_units(tmp_path: Path) -> None:
    sim = Sim(ops.CharmBase, app="probe", context={"meta": {**META, "requires": REQUIRES}})
    sim.place_unit({})
    relation = testing.Relation(
        "db",
        remote_app_name="pg",
        remote_app_data={"host": "h"},
        remote_units_data={3: {"u": "1"}},
    )
    unit = sim.units["probe/0"]
    state = dataclasses.replace(
        sim.state_for("probe/0"), relations=frozenset({relation}), leader=False
    )
    hook = HookSession(sim, unit, state, {}, OPTIONS, None, {}, {}, {}, tmp_path)
    rid = f"db:{relation.id}"
    assert ok(hook, "relation-ids", "db", "--format=json") == [rid]
    assert ok(hook, "relation-list", "--format=json", "-r", rid) == ["pg/3"]
    assert ok(hook, "relation-get", "--format=json", "-r", rid, "-", "pg/3") == {"u": "1"}
    assert ok(hook, "relation-get", "--format=json", "-r", rid, "--app", "-", "pg") == {
        "host": "h"
    }
    # A non-leader cannot read its own application's bag of a non-peer relation.
    assert "permission denied" in refused(
        hook, "relation-get", "--format=json", "-r", rid, "--app", "-", "probe"
    )
    goal = ok(hook, "goal-state", "--format=json")
    assert set(goal["relations"]["db"]) == {"pg", "pg/3"}


CLOUD = testing.CloudSpec(
    type="lxd",
    name="localhost",
    endpoint="https://10.0.0.1:8443",
    credential=testing.CloudCredential(
        auth_type="certificate", attributes={"client-cert": "C", "client-key": "K"}
    ),
)


def test_credential_get_answers_only_a_trusted_application(sim: Sim, tmp_path: Path) -> None:
    model = testing.Model(type="lxd", cloud_spec=CLOUD)
    state = dataclasses.replace(sim.state_for("probe/0"), model=model)
    unit = sim.units["probe/0"]
    untrusted = HookSession(sim, unit, state, {}, OPTIONS, None, {}, {}, {}, tmp_path)
    # Juju: jujuc annotates the uniter facade's ErrPerm.
    assert refused(untrusted, "credential-get", "--format=json") == (
        "ERROR cannot access cloud credentials: permission denied\n"
    )
    trusted = HookSession(sim, unit, state, {}, OPTIONS, None, {}, {}, {}, tmp_path, trusted=True)
    answer = ok(trusted, "credential-get", "--format=json")
    assert answer == cloud_spec_json(CLOUD)
    # What ops makes of it is what the test gave.
    spec = ops.CloudSpec.from_dict(answer)
    assert (spec.type, spec.name, spec.endpoint) == ("lxd", "localhost", "https://10.0.0.1:8443")
    assert spec.credential is not None
    assert spec.credential.attributes == {"client-cert": "C", "client-key": "K"}


def test_stored_state_round_trips_through_the_units_database(tmp_path: Path) -> None:
    stored = testing.StoredState(name="_stored", owner_path="Charm", content={"memory": {"a": 1}})
    write_stored_states(tmp_path, testing.State(stored_states={stored}))
    (back,) = read_stored_states(tmp_path)
    assert (back.name, back.owner_path, back.content) == ("_stored", "Charm", {"memory": {"a": 1}})
    # The State is the model: a stored state it no longer holds is gone from the database.
    write_stored_states(tmp_path, testing.State())
    assert read_stored_states(tmp_path) == frozenset()
