"""One unit of a built charm, run through the unit-agent stand-in with `testing.Context`'s surface.

Single-unit functional tests are written against `ops.testing.Context`:
``state = ctx.run(ctx.on.install(), state)``. `AgentContext` keeps that
surface (``on``, ``run``, ``action_results``, ``unit_status_history``,
``juju_log``, and
`ops.testing.ActionFailed` for a failed action) but runs each event as the
built charm's `dispatch` in a fresh process (`unit_agent.UnitAgentRunner`),
its hook tools answered from the State the test gives: every relation in it
(its bags as the unit sees them, the remote application's and units'), its
secrets, networks, resources, config, stored state. Such a test file barely
changes when it moves from in-process to the built charm.

What a State cannot say is given to the constructor, as to `testing.Context`:
``app_trusted`` (the operator ran `juju trust`: `credential-get` answers the
State's ``model.cloud_spec``; without it the tool refuses as Juju does), and
``unit_env`` (the unit's machine, e.g. `lxd_agent_boot`'s).
Variables named in ``forwarded`` (model-level proxy settings...) are read
from this process's environment at each run, so a test's
``monkeypatch.setenv`` reaches the hook as it reaches an in-process charm.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ops import testing

from tests.harness.unit_agent import AgentUnit, UnitAgentRunner, secret_key


class CharmContext(Protocol):
    """What the functional tests use of a context: `testing.Context` or `AgentContext`."""

    @property
    def on(self) -> testing.CharmEvents:
        """Event factories: ``ctx.on.install()``, ``ctx.on.action("x", params=...)``."""
        ...

    @property
    def action_results(self) -> dict[str, Any] | None:
        """What the last action set with `event.set_results`."""
        ...

    @property
    def unit_status_history(self) -> list[Any]:
        """Every unit status replaced so far, in order."""
        ...

    @property
    def juju_log(self) -> list[testing.JujuLogLine]:
        """What the charm logged (ops sends every record through `juju-log`), in order."""
        ...

    def run(self, event: Any, state: testing.State) -> testing.State:
        """Run one event from ``state``; the State it leaves."""
        ...


@dataclasses.dataclass
class _Unit:
    name: str
    number: int
    machine: Any = None


class _OneUnitModel:
    """The model around one unit, taken from the State of the hook being run."""

    def __init__(self, app: str, model: testing.Model) -> None:
        self.app = app
        self.model = model
        self.state = testing.State()

    def goal_units(self) -> dict[str, str]:
        # This unit alone (its own status is filled in by the tool); Scenario's
        # planned_units beyond it are units still coming: "waiting".
        return {f"{self.app}/{n}": "waiting" for n in range(1, self.state.planned_units)}

    def secret_exists(self, secret_id: str) -> bool:
        return any(secret_key(s.id) == secret_key(secret_id) for s in self.state.secrets)


class AgentContext:
    """`testing.Context`'s run surface for one unit of a built charm (see the module doc)."""

    def __init__(
        self,
        runner: UnitAgentRunner,
        *,
        app_name: str,
        unit_id: int = 0,
        machine: Any = None,
        app_trusted: bool = False,
        forwarded: Iterable[str] = (),
        unit_env: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.runner = runner
        self.app_name = app_name
        self._unit = _Unit(f"{app_name}/{unit_id}", unit_id, machine)
        self._model = _OneUnitModel(app_name, testing.Model(name=f"{app_name}-model", type="lxd"))
        runner.app_trusted = app_trusted
        runner.unit_env = self.env
        self.forwarded = tuple(forwarded)
        self._unit_env = unit_env
        self._on = testing.CharmEvents()
        self._history: list[Any] = []
        self._log: list[testing.JujuLogLine] = []
        self._action_results: dict[str, Any] | None = None
        self.runs = 0

    @property
    def on(self) -> testing.CharmEvents:
        return self._on

    @property
    def action_results(self) -> dict[str, Any] | None:
        return self._action_results

    @property
    def unit_status_history(self) -> list[Any]:
        return self._history

    @property
    def juju_log(self) -> list[testing.JujuLogLine]:
        return self._log

    def env(self, unit: AgentUnit) -> dict[str, str]:
        """The unit's hook environment beyond Juju's own variables (for the runner)."""
        env = dict(self._unit_env() if self._unit_env else {})
        for name in self.forwarded:
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def run(self, event: Any, state: testing.State) -> testing.State:
        """Run ``event`` as a dispatch process of the built charm, from ``state``."""
        self._model.model = state.model
        self._model.state = state
        self.runs += 1
        logged = len(self.runner.logs.get(self._unit.name, []))
        try:
            out = self.runner.run(self._model, self._unit, event, state, {})
        except testing.ActionFailed:
            self._history.extend(self.runner.last_status_history)
            self._action_results = self.runner.last_action_results
            raise
        finally:
            for level, message in self.runner.logs.get(self._unit.name, [])[logged:]:
                self._log.append(testing.JujuLogLine(level, message))
        self._history.extend(self.runner.last_status_history)
        if getattr(event, "action", None) is not None:
            self._action_results = self.runner.last_action_results
        return out
