"""The lxd-cloud-integrator as one unit, for functional tests: the built charm by default.

`integrator_on` gives a context with `testing.Context`'s ``run`` surface. By
default it runs the charm `tox -e pack` built, a fresh `dispatch` process per
hook through the unit-agent stand-in (`agent_context.AgentContext`), with
`credential-get` answering the State's cloud spec when ``app_trusted``
(`juju trust`) and refusing as Juju does otherwise. With
`LXD_CHARM_TESTS_IN_PROCESS=1`, a `testing.Context` of the charm's source in
this process. ``waits`` shorten the charm's connection waits either way
(`integrator_agent_boot`).
"""

from __future__ import annotations

import importlib
import json
import weakref
from pathlib import Path

import pytest
from ops import testing

from tests.harness.agent_context import AgentContext, CharmContext
from tests.harness.charms import (
    built_charm,
    load_charm_module,
    missing_charm_message,
    run_in_process,
)
from tests.harness.integrator_agent_boot import WAITS_VARIABLE
from tests.harness.unit_agent import UnitAgentRunner

APP = "lxd-integrator"
"""The application name the bundles use (the charm is lxd-cloud-integrator)."""
BOOT = Path(__file__).resolve().with_name("integrator_agent_boot.py")


def integrator_on(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    app_trusted: bool = True,
    in_process: bool | None = None,
    **waits: float,
) -> CharmContext:
    """One integrator unit; ``waits`` are `lxd_integrator.connection` names (CONNECT_WAIT=1.0)."""
    if run_in_process() if in_process is None else in_process:
        connection = importlib.import_module("lxd_integrator.connection")
        charm = load_charm_module("lxd-integrator").LxdIntegratorCharm
        for name, seconds in waits.items():
            monkeypatch.setattr(connection, name, seconds)
        return testing.Context(charm, app_name=APP, app_trusted=app_trusted)
    found = built_charm("lxd-integrator")
    if found is None:
        pytest.skip(missing_charm_message("lxd-integrator"))
    workdir = tmp_path / "integrator-agent"
    if len(str(workdir / "agent.sock")) >= 100:
        runner = UnitAgentRunner(found, boot=BOOT)
    else:
        workdir.mkdir(exist_ok=True)
        runner = UnitAgentRunner(found, boot=BOOT, workdir=workdir)
    env = {WAITS_VARIABLE: json.dumps(waits)}
    context = AgentContext(runner, app_name=APP, app_trusted=app_trusted, unit_env=lambda: env)
    weakref.finalize(context, runner.close)
    return context
