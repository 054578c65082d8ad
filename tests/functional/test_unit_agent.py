"""The built charm, run as Juju's unit agent runs it: `dispatch` per hook, hook tools on PATH.

`tests/harness/unit_agent.UnitAgentRunner` unpacks the `.charm` that
`tox -e pack` built and runs every hook in a fresh process; its hook tools
answer from the Juju simulator (`juju_sim.Sim`), so data and secrets move
between units by the simulator's rules. The probe charm here is a dispatch
script in a charm directory: it calls the hook tools directly, to prove the
tools refuse what Juju refuses (ops itself checks some of these before it
calls a tool, so the LXD charm never would).
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import ops
import pytest
from ops import testing

from tests.harness.juju_sim import Sim
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits, built_lxd_charm
from tests.harness.unit_agent import HookFailedError, UnitAgentRunner, timing_summary

# ------------------------------------------------------------ the probe charm

PROBE_DISPATCH = '''\
#!/usr/bin/env python3
"""Calls hook tools as the test's PROBE variable says; any refusal fails the hook."""
import json, os, subprocess

def tool(*args, stdin=None):
    done = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout

probe = os.environ["PROBE"]
hook = os.environ["JUJU_DISPATCH_PATH"]
unit = os.environ["JUJU_UNIT_NAME"]
leader = json.loads(tool("is-leader", "--format=json"))
if hook == "hooks/cluster-relation-created":
    rid = os.environ["JUJU_RELATION_ID"]
    tool("relation-set", "-r", rid, "--file", "-", stdin=json.dumps({"seen": unit}))
    if probe == "app-write":
        tool("relation-set", "-r", rid, "--app", "--file", "-", stdin=json.dumps({"by": unit}))
    if probe.startswith("secret") and leader:
        secret = tool("secret-add", "--owner", "unit", "word=swordfish").strip()
        tool("relation-set", "-r", rid, "--file", "-", stdin=json.dumps({"secret": secret}))
        if probe == "secret-granted":  # to the application at the relation's other end
            tool("secret-grant", "--relation", rid, secret)
if hook == "hooks/cluster-relation-changed" and probe.startswith("secret") and not leader:
    rid = os.environ["JUJU_RELATION_ID"]
    remote = os.environ["JUJU_REMOTE_UNIT"]
    secret = json.loads(tool("relation-get", "--format=json", "-r", rid, "secret", remote))
    if secret:
        word = json.loads(tool("secret-get", "--format=json", secret))["word"]
        tool("relation-set", "-r", rid, "--file", "-", stdin=json.dumps({"word": word}))
if hook == "actions/greet":
    name = json.loads(tool("action-get", "--format=json", "name"))
    tool("action-log", "--", "greeting")
    if name:
        tool("action-set", f"greeting.text=hello {name}")
    else:
        tool("action-fail", "--", "whom should I greet?")
if hook == "hooks/config-changed" and probe.startswith("config"):
    greeting = json.loads(tool("config-get", "--format=json", "greeting"))
    tool("status-set", "active", greeting)
    if probe == "config-unknown":
        tool("config-get", "--format=json", "greting")
'''


def probe_charm(root: Path) -> Path:
    """A charm directory whose dispatch is `PROBE_DISPATCH`."""
    root.mkdir()
    (root / "metadata.yaml").write_text(
        "name: probe\npeers:\n  cluster:\n    interface: probe-cluster\n"
    )
    (root / "config.yaml").write_text(
        "options:\n  greeting:\n    type: string\n    default: hello\n"
    )
    (root / "actions.yaml").write_text("greet:\n  params:\n    name:\n      type: string\n")
    dispatch = root / "dispatch"
    dispatch.write_text(textwrap.dedent(PROBE_DISPATCH))
    dispatch.chmod(0o755)
    return root


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[tuple[Sim, UnitAgentRunner, dict[str, str]]]:
    """A two-unit probe application; set ``env["PROBE"]`` before settling."""
    env: dict[str, str] = {"PROBE": ""}
    runner = UnitAgentRunner(probe_charm(tmp_path / "probe"), unit_env=lambda _: env)
    sim = Sim(ops.CharmBase, app="probe", peer="cluster", hook_retries=0, runner=runner)
    sim.add_units(2)
    yield sim, runner, env
    runner.close()


def test_a_non_leader_cannot_write_the_application_bag(
    probe: tuple[Sim, UnitAgentRunner, dict[str, str]],
) -> None:
    sim, _, env = probe
    env["PROBE"] = "app-write"
    with pytest.raises(HookFailedError) as failed:
        sim.settle()
    assert failed.value.unit == "probe/1"
    assert failed.value.hook == "hooks/cluster-relation-created"
    assert 'ERROR cannot write relation settings for application "probe"' in failed.value.stderr
    assert sim.app_data == {"by": "probe/0"}  # the leader's write went through
    # Juju drops a failed hook's changes: probe/1's own bag write is gone too.
    assert "seen" not in sim.unit_data["probe/1"]
    assert sim.unit_data["probe/0"]["seen"] == "probe/0"


def test_a_unit_reads_a_unit_secret_only_once_granted(
    probe: tuple[Sim, UnitAgentRunner, dict[str, str]],
) -> None:
    sim, _, env = probe
    env["PROBE"] = "secret-granted"
    sim.settle()
    assert sim.unit_data["probe/1"]["word"] == "swordfish"


def test_an_ungranted_secret_cannot_be_read(
    probe: tuple[Sim, UnitAgentRunner, dict[str, str]],
) -> None:
    sim, _, env = probe
    env["PROBE"] = "secret-ungranted"
    with pytest.raises(HookFailedError) as failed:
        sim.settle()
    assert (failed.value.unit, failed.value.hook) == ("probe/1", "hooks/cluster-relation-changed")
    assert "ERROR permission denied" in failed.value.stderr
    assert "word" not in sim.unit_data["probe/1"]


def test_config_get_answers_declared_options_and_refuses_unknown_ones(
    probe: tuple[Sim, UnitAgentRunner, dict[str, str]],
) -> None:
    sim, _, env = probe
    env["PROBE"] = "config"
    sim.config_changed(greeting="hi there")
    sim.settle()
    assert sim.units["probe/1"].state.unit_status == testing.ActiveStatus("hi there")
    env["PROBE"] = "config-unknown"
    sim.config_changed(greeting="again")
    with pytest.raises(HookFailedError) as failed:
        sim.settle()
    assert 'ERROR unknown config key "greting"' in failed.value.stderr
    assert sim.units["probe/0"].state.unit_status == testing.ActiveStatus("hi there")


def test_an_action_runs_through_dispatch_with_its_params_and_results(
    probe: tuple[Sim, UnitAgentRunner, dict[str, str]],
) -> None:
    sim, _, _ = probe
    sim.settle()
    results = sim.run("probe/1", sim.on.action("greet", params={"name": "world"}))
    assert results == {"greeting": {"text": "hello world"}}
    with pytest.raises(testing.ActionFailed) as failed:
        sim.run("probe/1", sim.on.action("greet", params={"name": ""}))
    assert failed.value.message == "whom should I greet?"


def test_a_dispatch_that_is_not_executable_fails_the_hook(tmp_path: Path) -> None:
    charm = probe_charm(tmp_path / "probe")
    (charm / "dispatch").chmod(0o644)
    runner = UnitAgentRunner(charm, unit_env=lambda _: {"PROBE": ""})
    try:
        sim = Sim(ops.CharmBase, app="probe", peer="cluster", hook_retries=0, runner=runner)
        sim.add_unit()
        with pytest.raises(HookFailedError) as failed:
            sim.settle()
        assert (failed.value.hook, failed.value.code) == ("hooks/install", 126)
        assert "Permission denied" in failed.value.stderr
    finally:
        runner.close()


# ---------------------------------------------------------- the built charm


def test_a_charm_missing_a_module_fails_at_import_through_dispatch(tmp_path: Path) -> None:
    runner = UnitAgentRunner(built_lxd_charm())
    try:
        sim = Sim(ops.CharmBase, app="lxd", peer="cluster", hook_retries=0, runner=runner)
        sim.add_unit()
        venv = runner.charm_dir("lxd/0") / "venv"
        (package,) = venv.glob("lib/python3*/site-packages/lxd_common")
        shutil.rmtree(package)
        with pytest.raises(HookFailedError) as failed:
            sim.settle()
        assert failed.value.hook == "hooks/install"
        assert "ModuleNotFoundError: No module named 'lxd_common'" in failed.value.stderr
    finally:
        runner.close()


def test_the_built_charm_forms_a_three_member_cluster_one_process_per_hook(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units = LxdUnits(lxd_pool, tmp_path, monkeypatch, in_process=False)
    runner, sim = units.runner, units.sim
    assert runner is not None
    try:
        units.add(3)
        sim.settle()
        units.assert_formed(3)
        sim.update_status()  # the periodic hook: its cost is paid for ever
        sim.settle()
        assert all(u.state.unit_status.name == "active" for u in sim.units.values())
        # An action is a dispatch process too; its results come back through action-set.
        results = sim.run("lxd/1", sim.on.action("show-pending-config"))
        assert results == {"pending": "nothing pending"}
        # Every hook was its own dispatch process.
        assert len(runner.timings) == len(sim.hooks)
        calls = sum(t.tool_calls for t in runner.timings)
        print(f"\n{len(runner.timings)} dispatch processes, {calls} hook tool calls")
        print("most called:", runner.tool_counts.most_common(6))
        for kind, (count, mean, worst) in sorted(timing_summary(runner.timings).items()):
            print(f"{kind}: {count} hooks, mean {mean:.2f}s, max {worst:.2f}s")
    finally:
        units.close()
