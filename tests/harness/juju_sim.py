"""A small Juju simulator: several units of one application, on top of ops.testing.

ops.testing (Scenario) runs one unit's hook at a time against a `State` the
test builds. A charm that forms a cluster needs more: N units that talk over
a peer relation and Juju Secrets, with Juju moving the data between them and
deciding which hook runs next. `Sim` does that job and nothing else: it knows
Juju's rules (who sees which databag and secret, which hooks follow a change)
and nothing about the charm's workload, so functional tests can drive real
daemons through the charm's own code, and a benchmark can count hooks.

Usage::

    sim = Sim(MyCharm, app="lxd", peer="cluster", config={"mode": "cluster"})
    for _ in range(3):
        sim.add_unit()
    sim.settle()                       # runs queued hooks until none is left
    sim.remove_unit("lxd/1")
    sim.settle()
    results = sim.run("lxd/0", sim.on.action("list-trusted"))

A unit test may play Juju's part itself, one hook at a time, to check each
step of a protocol from the side that takes it::

    sim.place_unit({"version": "1.0"}, machine=m)   # in the relation, no hook run
    out = sim.run_hook("lxd/1", "relation_changed", "lxd/0")
    sim.write_unit_bag("lxd/2", {...})              # as if lxd/2's hook wrote it

The model, as Juju does it:

- Hooks are queued per unit and run FIFO, one at a time. Juju runs one unit's
  hooks in order and different units concurrently; a global FIFO is one legal
  interleaving and keeps runs deterministic. A `relation-changed`,
  `config-changed`, `secret-changed`, `leader-elected` or `update-status`
  already queued for the same target (and source) is not queued again: Juju
  coalesces those too.
- One peer relation with the same id in every unit's State. The application
  bag is shared (only the leader can write it, Scenario enforces that); a unit
  bag belongs to its unit. After each hook, a changed unit bag queues
  `relation-changed` (remote unit = the writer) on every unit that has that
  writer in its relation scope, and a changed application bag queues
  `relation-changed` with no remote unit (JUJU_REMOTE_UNIT empty, as Juju
  does for application data) on every other unit in the relation.
- `relation-list` (`peers_data`) holds the peers whose `relation-joined` has
  run on that unit; a departing peer leaves it before `relation-departed`
  (ops does not put a departing *peer* back into `Relation.units`, so its bag
  is out of reach in that hook, as under Juju).
- Secrets live in one registry. The unit that manages a secret (the leader for
  an application-owned one, the owner unit for a unit-owned one) gets it with
  `owner` set; a unit that may only read it gets it with `owner=None`, keeping
  its own tracked revision and label. Units that may read: every unit granted
  it (or granted to the application) over the peer relation, and, for an
  application-owned secret, every unit of the application (Juju's rule:
  "all units can read secrets owned by application"; pass
  `peers_read_app_secrets=False` to require explicit grants instead, to prove a
  charm grants what it must). A content change queues `secret-changed` on every
  reader that holds an older revision; removing all revisions removes the
  secret for everyone; when leadership moves, the new leader manages the
  application's secrets.

Units in parallel (``parallel=True``, only with a ``runner``): each unit has
its own worker, as each Juju unit agent is its own process, and different
units' hooks run at the same time; one unit's hooks still run one at a time in
its queue order. A hook's State is built under the simulator's lock when it
starts (so it sees what other hooks had committed by then, nothing later),
and its output is applied under the lock when it exits (the commit): only
then do its relation data and secrets reach the model and queue hooks on the
other units. In-process units (no runner) cannot run in parallel:
ops.testing is not thread-safe (Scenario patches class attributes for each
run, ops keeps process-wide state such as `os.environ` and the framework's
storage), so `Sim` refuses the combination. A ``before_hook`` runs on the
unit's worker in this mode and must not touch process-wide state (put a
unit's environment in the runner's ``unit_env`` instead).

Failed hooks: the hook's changes are dropped (Juju rolls back relation data,
secrets and stored state of a failed hook), and `settle` retries it, as Juju
does, up to `hook_retries` times: the unit's other hooks wait behind it while
other units' queued hooks run first (Juju's back-off; in parallel mode the
unit waits ``retry_backoff`` seconds before its retry). Once the retries are
spent, or with `hook_retries=0`, the exception propagates. `failed_hooks`
lists every failure. A failed action (`event.fail`) keeps its changes and raises
`ops.testing.ActionFailed`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent import futures
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import ops
import yaml
from ops import testing

from tests.harness import scenario_shim

logger = logging.getLogger(__name__)

APP = "<app>"
"""The `source` of a relation-changed caused by the application bag."""

_COALESCED = frozenset(
    {"relation_changed", "config_changed", "secret_changed", "leader_elected", "update_status"}
)

BeforeHook = Callable[["SimUnit"], AbstractContextManager[Any] | None]
"""Called before each hook of a unit; the context manager it returns wraps the hook."""

Networks = Callable[["SimUnit"], Iterable[testing.Network]]
"""The network bindings a unit sees (`self.model.get_binding(...)`)."""


class HookRunner(Protocol):
    """Runs a hook some other way than in-process (`unit_agent.UnitAgentRunner`).

    It turns the State the simulator built for the unit into the State the
    hook leaves, as `Context.run` does; the simulator keeps every rule of
    who sees what and which hooks follow.
    """

    last_action_results: dict[str, Any] | None

    def context_args(self) -> dict[str, Any]:
        """`testing.Context` arguments (metadata, config, actions) of the charm it runs."""
        ...

    def run(
        self, sim: Sim, unit: SimUnit, event: Any, state: testing.State, env: Mapping[str, str]
    ) -> testing.State:
        """Run ``event`` on ``unit`` from ``state``; raise when the hook fails."""
        ...


class SimError(RuntimeError):
    """The simulation cannot go on (unknown unit, a livelock...)."""


class LivelockError(SimError):
    """`settle` ran more hooks than allowed: the units keep triggering each other."""


@dataclasses.dataclass
class SimUnit:
    """One unit of the simulated application.

    `state` is the State the unit's last hook left behind (its stored state,
    deferred events, statuses, ports carry over to its next hook); the peer
    relation and secrets in it are rebuilt from the simulator's model before
    every hook.
    """

    name: str
    number: int
    ctx: testing.Context[Any]
    state: testing.State
    leader: bool = False
    hooks_run: int = 0
    in_relation: bool = False
    """`relation-created` has run: the peer relation is in the unit's State."""
    scope: set[str] = dataclasses.field(default_factory=set)
    """Peers this unit has joined or has a `relation-joined` queued for."""
    joined: set[str] = dataclasses.field(default_factory=set)
    """Peers whose `relation-joined` has run here: the unit's `relation-list`."""
    departing: bool = False
    machine: Any = None
    """What the unit runs on, as the test set it up (a real daemon, a fake
    machine...): the simulator only carries it, for `before_hook` and `networks`."""


@dataclasses.dataclass(frozen=True)
class _Hook:
    unit: str
    kind: str
    source: str | None = None
    """Remote unit name (or APP) for relation events."""
    departing: str | None = None
    secret_id: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None, str | None]:
        return (self.unit, self.kind, self.source, self.secret_id)


@dataclasses.dataclass
class _Prepared:
    """A hook about to run: its unit, event and the State it starts from."""

    unit: SimUnit
    kind: str
    event: Any
    state: testing.State
    env: dict[str, str]
    index: int = -1
    """Its place in `Sim.hooks`, once started."""


@dataclasses.dataclass
class _View:
    """What a reading (non-managing) unit tracks of a secret."""

    content: dict[str, str]
    revision: int
    label: str | None


@dataclasses.dataclass
class _SecretRecord:
    owner: str
    """"app" for an application-owned secret, else the owning unit's name."""
    secret: testing.Secret
    """The managing unit's copy: latest content, revision, grants, label."""
    views: dict[str, _View] = dataclasses.field(default_factory=dict)


class _CharmRoots:
    """Each unit's charm directory, written once, as Juju unpacks a charm once.

    Scenario renders metadata.yaml, config.yaml and actions.yaml into a fresh
    temporary directory for every hook; for a simulated cluster that is
    hundreds of YAML dumps that Juju never does, and they showed up as a
    large share of the benchmark's "charm-driven" time (bench/). The
    simulator's hooks run in these directories instead (`scenario_shim`).
    """

    def __init__(self) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="juju-sim-charm-")
        self._roots: dict[int, Path] = {}

    def root_for(
        self,
        meta: Mapping[str, Any],
        config: Mapping[str, Any],
        actions: Mapping[str, Any],
        key: int,
    ) -> Path:
        root = self._roots.get(key)
        if root is None:
            root = Path(self._scratch.name) / str(len(self._roots))
            root.mkdir()
            (root / "metadata.yaml").write_text(yaml.safe_dump(dict(meta)))
            (root / "config.yaml").write_text(yaml.safe_dump(dict(config)))
            (root / "actions.yaml").write_text(yaml.safe_dump(dict(actions)))
            self._roots[key] = root
        return root


def _number(unit_name: str) -> int:
    return int(unit_name.rsplit("/", 1)[1])


class Sim:
    """Several units of one application, with Juju's peer-relation and secret rules."""

    def __init__(
        self,
        charm_type: type[ops.CharmBase],
        *,
        app: str = "app",
        peer: str = "cluster",
        config: Mapping[str, str | int | float | bool] | None = None,
        before_hook: BeforeHook | None = None,
        networks: Networks | None = None,
        resources: Iterable[testing.Resource] = (),
        model: testing.Model | None = None,
        context: Mapping[str, Any] | None = None,
        peers_read_app_secrets: bool = True,
        hook_retries: int = 3,
        runner: HookRunner | None = None,
        parallel: bool = False,
        retry_backoff: float = 0.2,
    ) -> None:
        """Set the application up, with no units yet.

        Args:
            charm_type: the charm class every unit runs.
            app: the application name (units are `app/0`, `app/1`, ...).
            peer: the peer endpoint the units talk over (declared in the metadata).
            config: the application config, shared by every unit.
            before_hook: called before each hook with the unit about to run it,
                e.g. to point `LXD_DIR` at that unit's own daemon; the context
                manager it may return wraps the hook.
            networks: the bindings each unit sees; also fills the unit bag's
                `ingress-address`/`private-address`/`egress-subnets` from the
                peer binding, as Juju does.
            resources: the charm resources every unit sees.
            model: the Juju model (default: a machine model, as LXD runs on).
            context: extra arguments for every unit's `testing.Context`
                (`meta`, `actions`, `config`, `juju_version`, `app_trusted`...).
            peers_read_app_secrets: Juju lets every unit of an application read
                the application's secrets; False hides them from units without
                an explicit grant.
            hook_retries: how often `settle` runs a failed hook again before
                the failure propagates (0: never, the failure propagates at once).
            runner: how hooks run; None (the default) runs them in this process
                through ops.testing, `unit_agent.UnitAgentRunner` runs a built
                charm's `dispatch` as a fresh process per hook, with hook tools
                answered from this simulator's model.
            parallel: run each unit's hooks on its own worker, different units
                at the same time, as Juju's unit agents do (needs ``runner``).
            retry_backoff: in parallel mode, how long a unit waits before it
                retries a failed hook (its other hooks wait behind it).

        Raises:
            SimError: ``parallel`` without a ``runner``.
        """
        if parallel and runner is None:
            raise SimError(
                "parallel=True needs a runner (unit_agent.UnitAgentRunner): in-process "
                "ops.testing is not thread-safe, so units in this process cannot run at once"
            )
        self.parallel = parallel
        self.retry_backoff = retry_backoff
        self.most_at_once = 0
        """In parallel mode, the most hooks that ran at the same time (different units)."""
        self._lock = threading.RLock()
        """Held while the model is read (a hook's State at its start) or written (its commit)."""
        self.charm_type = charm_type
        self.hook_retries = hook_retries
        self.failed_hooks: list[tuple[str, str, str]] = []
        """(unit, event name, the error) of every hook that failed, retried or not."""
        self.app = app
        self.peer = peer
        self.config: dict[str, str | int | float | bool] = dict(config or {})
        self.model = model or testing.Model(name=f"{app}-model", type="lxd")
        self.peers_read_app_secrets = peers_read_app_secrets
        self._before_hook = before_hook
        self._networks = networks
        self._resources = frozenset(resources)
        self.runner = runner
        self._context = {**(runner.context_args() if runner else {}), **(context or {})}
        # One id for the peer relation in every unit's State; Scenario hands out
        # process-unique ids, so it cannot collide with a relation a test adds.
        self.relation_id: int = testing.PeerRelation(peer).id

        self.units: dict[str, SimUnit] = {}
        self.removed: dict[str, SimUnit] = {}
        self.hooks: list[tuple[str, str]] = []
        self.secrets_added: list[tuple[int, str]] = []
        """(index in `hooks`, owner: "app" or a unit name) of every secret a hook added."""
        self.app_data: dict[str, str] = {}
        self.unit_data: dict[str, dict[str, str]] = {}
        self._left_bags: dict[str, dict[str, str]] = {}
        self._secrets: dict[str, _SecretRecord] = {}
        self._sim_secret_ids: set[str] = set()
        self._queue: deque[_Hook] = deque()
        self._queued: set[tuple[str, str, str | None, str | None]] = set()
        self._attempts: dict[tuple[str, str, str | None, str | None], int] = {}
        self._next_number = 0
        self._charm_roots = _CharmRoots()

    # ----------------------------------------------------------------- topology

    @property
    def on(self) -> testing.CharmEvents:
        """Event factories for `run`, as `Context.on` (e.g. `sim.on.action("x")`)."""
        return testing.CharmEvents()

    @property
    def leader(self) -> SimUnit | None:
        """The current leader, if any unit is."""
        return next((u for u in self.units.values() if u.leader), None)

    @property
    def pending(self) -> list[tuple[str, str]]:
        """The queued hooks as (unit, event name), next first."""
        return [(h.unit, self._event_name(h.kind)) for h in self._queue]

    def _event_name(self, kind: str) -> str:
        return f"{self.peer}_{kind}" if kind.startswith("relation_") else kind

    @property
    def next_number(self) -> int:
        """The number the next unit added will get (Juju never reuses one)."""
        return self._next_number

    @property
    def app_secrets(self) -> dict[str, testing.Secret]:
        """The application's secrets by id, as their manager (the leader) holds them."""
        return {i: r.secret for i, r in self._secrets.items() if r.owner == "app"}

    def state_for(self, name: str) -> testing.State:
        """The State the unit's next hook starts from: its own, with the model as it sees it."""
        with self._lock:
            return self._state_for(self._unit(name))

    def planned_unit_names(self) -> list[str]:
        """The units Juju plans for the application (`goal-state`): every live unit."""
        with self._lock:
            return [u.name for u in self._live_units()]

    def goal_units(self) -> dict[str, str]:
        """Each unit of the application with its `goal-state` status, as Juju gives it:
        its workload status, or "dying" once its removal began."""
        with self._lock:
            return {
                u.name: "dying" if u.departing else u.state.unit_status.name
                for u in self.units.values()
            }

    def secret_exists(self, secret_id: str) -> bool:
        """Whether the model holds the secret at all, whoever may read it."""

        def key(spelled: str) -> str:  # `secret:ID`, `secret://MODEL/ID` (ops), `ID`
            return spelled.rsplit("/", 1)[-1].rsplit(":", 1)[-1]

        with self._lock:
            return any(key(i) == key(secret_id) for i in self._secrets)

    def add_unit(self, machine: Any = None) -> SimUnit:
        """Add a unit and queue its first hooks and its peers' relation hooks.

        Use `add_units` to model several units arriving together; ``machine``
        becomes `SimUnit.machine`.

        Juju's order for a new unit: install, relation-created, leader-elected
        (the first unit is made leader), config-changed, start. Then each
        existing peer and the new unit each get relation-joined followed by
        relation-changed for the other. Nothing runs until `settle`.
        """
        unit = self._new_unit(machine)
        self._enter_scope(unit, [u for u in self._live_units() if u is not unit])
        return unit

    def add_units(
        self,
        count: int,
        before_each: Callable[[], None] | None = None,
        machines: Iterable[Any] | None = None,
    ) -> list[SimUnit]:
        """Add several units at once, as `juju deploy -n` or `juju add-unit -n` does.

        Juju provisions the new machines side by side and runs relation hooks
        on a unit only after its start hook, so every new unit's first hooks
        are queued before the relation hooks between the units; by the time
        those run, the new units have all run install to start.
        ``before_each`` runs before each unit is created; ``machines`` (one
        per unit, in order) become their `SimUnit.machine`.
        """
        existing = self._live_units()
        placed = list(machines) if machines is not None else [None] * count
        if len(placed) != count:
            raise SimError(f"{count} units but {len(placed)} machines")
        units = []
        for machine in placed:
            if before_each is not None:
                before_each()
            units.append(self._new_unit(machine))
        for index, unit in enumerate(units):
            self._enter_scope(unit, existing + units[:index])
        return units

    def _new_unit(self, machine: Any = None, *, queue_hooks: bool = True) -> SimUnit:
        """Create a unit and queue its first hooks (install ... start)."""
        number = self._next_number
        self._next_number += 1  # Juju never reuses a unit number
        name = f"{self.app}/{number}"
        kwargs: dict[str, Any] = {"machine_id": str(number), **self._context}
        ctx: testing.Context[Any] = testing.Context(
            self.charm_type, app_name=self.app, unit_id=number, **kwargs
        )
        unit = SimUnit(
            name=name,
            number=number,
            ctx=ctx,
            state=testing.State(model=self.model),
            machine=machine,
        )
        unit.leader = self.leader is None
        self.units[name] = unit
        self.unit_data[name] = self._juju_unit_bag(unit)
        if not queue_hooks:
            return unit

        self._queue_hook(_Hook(name, "install"))
        self._queue_hook(_Hook(name, "relation_created"))
        if unit.leader:
            self._queue_hook(_Hook(name, "leader_elected"))
        self._queue_hook(_Hook(name, "config_changed"))
        self._queue_hook(_Hook(name, "start"))
        return unit

    def place_unit(self, bag: Mapping[str, str] | None = None, machine: Any = None) -> SimUnit:
        """Add a unit that is already in the peer relation, with no hook run or queued.

        For tests that play Juju's part one hook at a time (`run_hook`): the
        unit and every live unit in the relation are in each other's
        relation-list at once, as if their joined hooks had run, and its bag
        holds Juju's keys plus ``bag``, as if a hook of it had written that
        (e.g. the announcement a peer's charm leaves). Its own State is fresh:
        none of its hooks ran. The first unit of the model is the leader.
        """
        unit = self._new_unit(machine, queue_hooks=False)
        unit.in_relation = True
        self.unit_data[unit.name].update(bag or {})
        for other in self._live_units():
            if other is not unit and other.in_relation:
                unit.scope.add(other.name)
                unit.joined.add(other.name)
                other.scope.add(unit.name)
                other.joined.add(unit.name)
        return unit

    def write_unit_bag(self, name: str, bag: Mapping[str, str]) -> None:
        """Make the unit's bag Juju's keys plus ``bag``, as if a hook of it had written it.

        Peers that have it in scope get relation-changed queued, as after a hook.
        """
        unit = self._unit(name)
        new = {**self._juju_unit_bag(unit), **bag}
        if new != self.unit_data[name]:
            self.unit_data[name] = new
            self._queue_bag_changed(unit)

    def set_secret_content(self, secret_id: str, content: Mapping[str, str]) -> None:
        """The secret's manager sets new content (`secret-set`) between hooks.

        A new revision: the manager tracks it, readers keep the revision they
        track and get secret-changed queued, as after a hook that set it.
        """
        record = self._secrets.get(secret_id)
        if record is None:
            raise SimError(f"no secret {secret_id!r} in the model")
        revision = scenario_shim.latest_revision(record.secret) + 1
        secret = dataclasses.replace(
            record.secret, tracked_content=dict(content), latest_content=dict(content)
        )
        scenario_shim.set_revisions(secret, tracked=revision, latest=revision)
        record.secret = secret
        for reader, view in record.views.items():
            if view.revision < revision:
                self._queue_hook(_Hook(reader, "secret_changed", secret_id=secret_id))

    def _enter_scope(self, unit: SimUnit, peers: Iterable[SimUnit]) -> None:
        """Queue relation-joined/changed both ways between `unit` and each peer."""
        for other in peers:
            self._queue_join(unit, other)
            self._queue_join(other, unit)

    def remove_unit(self, name: str) -> None:
        """Queue a unit's departure, as `juju remove-unit` does.

        Every peer that has joined it gets relation-departed (remote and
        departing unit = the one leaving); the leaving unit gets
        relation-departed for each of its peers (departing unit = itself),
        relation-broken, stop and remove, after which it leaves the model
        (`units` -> `removed`). A peer that had not yet run relation-joined for
        it gets nothing, and its queued relation-joined/changed are dropped.
        If it was the leader, the lowest-numbered remaining unit is elected
        once it is gone.
        """
        unit = self._unit(name)
        if unit.departing:
            raise SimError(f"{name} is already being removed")
        unit.departing = True
        for other in self._live_units():
            if other.name == name or name not in other.scope:
                continue
            self._depart(other, name, departing=name)
        for peer in sorted(unit.scope, key=_number):
            self._depart(unit, peer, departing=name)
        if unit.in_relation or self._is_queued(name, "relation_created"):
            self._queue_hook(_Hook(name, "relation_broken"))
        self._queue_hook(_Hook(name, "stop"))
        self._queue_hook(_Hook(name, "remove"))

    def set_leader(self, name: str) -> None:
        """Move leadership to `name` and queue leader-elected there.

        The old leader is told nothing (leader-settings-changed is obsolete);
        it finds out from `is_leader()` in its next hook.
        """
        new = self._unit(name)
        for unit in self.units.values():
            unit.leader = unit is new
        self._queue_hook(_Hook(name, "leader_elected"))

    def config_changed(self, **config: str | int | float | bool) -> None:
        """Update the application config and queue config-changed on every unit."""
        self.config.update(config)
        for unit in self._live_units():
            self._queue_hook(_Hook(unit.name, "config_changed"))

    def update_status(self) -> None:
        """Queue update-status on every unit (Juju's periodic kick; deferred events re-run)."""
        for unit in self._live_units():
            self._queue_hook(_Hook(unit.name, "update_status"))

    # ---------------------------------------------------------------- running

    def settle(self, max_hooks: int = 1000) -> int:
        """Run queued hooks, and the hooks they cause, until none is left.

        Returns:
            The number of hooks run.

        Raises:
            LivelockError: more than `max_hooks` hooks ran (units keep waking each other).
        """
        if self.parallel:
            return self._settle_parallel(max_hooks)
        ran = 0
        while self._queue:
            if ran >= max_hooks:
                tail = ", ".join(f"{u}:{k}" for u, k in self.hooks[-10:])
                raise LivelockError(f"still busy after {max_hooks} hooks; last ran: {tail}")
            hook = self._queue.popleft()
            self._queued.discard(hook.key)
            try:
                if self._dispatch(hook):
                    ran += 1
            except (SimError, testing.ActionFailed, testing.errors.InconsistentScenarioError):
                raise  # the test asked for something Juju would not do
            except Exception as e:
                ran += 1
                self.failed_hooks.append((hook.unit, self._event_name(hook.kind), repr(e)))
                attempts = self._attempts[hook.key] = self._attempts.get(hook.key, 0) + 1
                if attempts > self.hook_retries:
                    self._attempts.pop(hook.key)
                    raise
                logger.info("%s: %s failed (%s), retrying", hook.unit, hook.kind, e)
                self._requeue_failed(hook)
            else:
                self._attempts.pop(hook.key, None)
        return ran

    def _settle_parallel(self, max_hooks: int) -> int:
        """`settle` with one worker per unit: each unit's queue runs in order, units at once.

        The scheduler (this thread) starts the first queued hook of every idle
        unit, building its State under the lock; the worker runs it; the
        scheduler commits its output under the lock once it exits and starts
        whatever became runnable. A failure is retried on its own unit, first
        among that unit's hooks, after ``retry_backoff``; other units go on.
        """
        ran = 0
        running: dict[futures.Future[testing.State], tuple[_Hook, _Prepared]] = {}
        busy: set[str] = set()
        not_before: dict[str, float] = {}
        error: BaseException | None = None
        workers = futures.ThreadPoolExecutor(
            max_workers=max(1, len(self.units)), thread_name_prefix="unit-agent"
        )
        try:
            while True:
                now = time.monotonic()
                for unit_name in [u for u, t in not_before.items() if t <= now]:
                    del not_before[unit_name]  # its back-off is over
                if error is None:
                    with self._lock:
                        for hook, prepared in self._start_runnable(busy, not_before):
                            if ran >= max_hooks:
                                tail = ", ".join(f"{u}:{k}" for u, k in self.hooks[-10:])
                                error = LivelockError(
                                    f"still busy after {max_hooks} hooks; last ran: {tail}"
                                )
                                self._queue.appendleft(hook)  # not run: left queued
                                if hook.kind in _COALESCED:
                                    self._queued.add(hook.key)
                                break
                            ran += 1
                            self._mark_started(prepared)
                            busy.add(hook.unit)
                            self.most_at_once = max(self.most_at_once, len(busy))
                            future = workers.submit(self._run_prepared, prepared)
                            running[future] = (hook, prepared)
                if not running:
                    if error is not None:
                        raise error
                    with self._lock:
                        waiting = [not_before.get(h.unit, 0.0) for h in self._queue]
                    if not waiting:
                        return ran
                    time.sleep(max(0.0, min(waiting) - time.monotonic()))
                    continue
                timeout = None
                if not_before:
                    timeout = max(0.0, min(not_before.values()) - time.monotonic())
                done, _ = futures.wait(
                    running, timeout=timeout, return_when=futures.FIRST_COMPLETED
                )
                for future in done:
                    hook, prepared = running.pop(future)
                    busy.discard(hook.unit)
                    failure = self._commit(future, hook, prepared)
                    if failure is None:
                        continue
                    if error is not None:  # already stopping: the first error is raised
                        logger.info("%s: %s failed too (%s)", hook.unit, hook.kind, failure)
                        continue
                    if isinstance(
                        failure,
                        (SimError, testing.ActionFailed, testing.errors.InconsistentScenarioError),
                    ):
                        error = failure
                        continue
                    with self._lock:
                        self.failed_hooks.append(
                            (hook.unit, self._event_name(hook.kind), repr(failure))
                        )
                        attempts = self._attempts[hook.key] = self._attempts.get(hook.key, 0) + 1
                        if attempts > self.hook_retries:
                            self._attempts.pop(hook.key)
                            error = failure
                            continue
                        logger.info("%s: %s failed (%s), retrying", hook.unit, hook.kind, failure)
                        self._requeue_failed(hook)
                        not_before[hook.unit] = time.monotonic() + self.retry_backoff
        finally:
            workers.shutdown(wait=True)

    def _start_runnable(
        self, busy: set[str], not_before: Mapping[str, float]
    ) -> Iterator[tuple[_Hook, _Prepared]]:
        """Take each idle unit's first queued hook out of the queue, with its State (locked)."""
        seen: set[str] = set()
        for hook in list(self._queue):
            if hook.unit in seen:
                continue
            seen.add(hook.unit)
            if hook.unit in busy or hook.unit in not_before:
                continue
            self._queue.remove(hook)
            self._queued.discard(hook.key)
            prepared = self._prepare(hook)
            if prepared is None:
                seen.discard(hook.unit)  # skipped: the unit's next hook may start
                continue
            yield hook, prepared

    def _commit(
        self, future: futures.Future[testing.State], hook: _Hook, prepared: _Prepared
    ) -> BaseException | None:
        """Apply a finished hook's output to the model (locked); the error if it failed."""
        try:
            state_out = future.result()
        except testing.ActionFailed as failed:
            if failed.state is not None:
                with self._lock:
                    self._absorb(prepared.unit, prepared.state, failed.state, prepared.index)
            return failed
        except Exception as e:
            return e
        with self._lock:
            self._absorb(prepared.unit, prepared.state, state_out, prepared.index)
            self._after(prepared)
            self._attempts.pop(hook.key, None)
        return None

    def _requeue_failed(self, hook: _Hook) -> None:
        """Juju retries a failed hook before any other hook of its unit, after a back-off."""
        mine = [queued for queued in self._queue if queued.unit == hook.unit]
        others = [queued for queued in self._queue if queued.unit != hook.unit]
        self._queue = deque([*others, hook, *mine])
        self._queued.add(hook.key)

    def run(self, name: str, event: Any) -> dict[str, Any] | None:
        """Run one event on a unit now, outside the queue (update-status, an action...).

        Changes it makes queue their hooks as usual (call `settle` next). Relation
        and secret events belong to the simulator: use this for other events.

        Returns:
            The action's results (`Context.action_results`), None for a hook.

        Raises:
            ops.testing.ActionFailed: the action called `event.fail()`; its
                changes are kept, as Juju keeps them.
        """
        unit = self._unit(name)
        state_in = self._state_for(unit)
        self._execute(unit, event, state_in, {})
        if not getattr(event, "action", None):
            return None
        return self.runner.last_action_results if self.runner else unit.ctx.action_results

    def run_hook(
        self,
        name: str,
        kind: str,
        source: str | None = None,
        *,
        secret_id: str | None = None,
        **state: Any,
    ) -> testing.State:
        """Run one named hook on one unit now, as Juju would when its turn comes.

        For tests that choose the interleaving themselves. ``kind`` is the
        event name without the endpoint (``install``, ``leader_elected``,
        ``relation_changed``...); ``source`` is the remote unit of a relation
        hook (or `APP` for a relation-changed about the application bag),
        ``secret_id`` the secret of a secret-changed. A matching queued hook
        is taken out of the queue (it runs now, not again). The hook's
        bookkeeping is the queue's (relation-joined adds the source to the
        unit's relation-list, relation-departed removes it), and the hooks it
        causes are queued. ``state`` replaces fields of the unit's State for
        this hook (``storages``, ``networks``...): the machine as it is now.

        Returns:
            The State the hook left (also `SimUnit.state`).

        Raises:
            SimError: the hook does not apply (e.g. relation-changed from a
                unit not in the relation-list).
        """
        unit = self._unit(name)
        if source == name:
            raise SimError(f"{name} cannot be the remote unit of its own {kind}")
        hook = next(
            (
                h
                for h in self._queue
                if (h.unit, h.kind, h.source, h.secret_id) == (name, kind, source, secret_id)
            ),
            None,
        )
        if hook is not None:
            self._queue.remove(hook)
            self._queued.discard(hook.key)
        else:
            departing = source if kind == "relation_departed" else None
            hook = _Hook(name, kind, source=source, departing=departing, secret_id=secret_id)
        if not self._dispatch(hook, state):
            raise SimError(f"{name} cannot run {kind} (source {source!r}) now")
        return unit.state

    # ----------------------------------------------------------------- queue

    def _queue_hook(self, hook: _Hook) -> None:
        if hook.kind in _COALESCED:
            if hook.key in self._queued:
                return
            self._queued.add(hook.key)
        self._queue.append(hook)

    def _is_queued(self, unit: str, kind: str, source: str | None = None) -> bool:
        return any(h.unit == unit and h.kind == kind and h.source == source for h in self._queue)

    def _queue_join(self, unit: SimUnit, other: SimUnit) -> None:
        unit.scope.add(other.name)
        self._queue_hook(_Hook(unit.name, "relation_joined", source=other.name))
        self._queue_hook(_Hook(unit.name, "relation_changed", source=other.name))

    def _depart(self, unit: SimUnit, peer: str, *, departing: str) -> None:
        unit.scope.discard(peer)
        joined_kind = "relation_joined"
        if self._is_queued(unit.name, joined_kind, peer):
            # Never joined: Juju skips joined/changed/departed for it altogether.
            stale = {joined_kind, "relation_changed"}
            for hook in [h for h in self._queue if h.unit == unit.name and h.source == peer]:
                if hook.kind in stale:
                    self._queue.remove(hook)
                    self._queued.discard(hook.key)
            return
        self._queue_hook(_Hook(unit.name, "relation_departed", source=peer, departing=departing))

    def _live_units(self) -> list[SimUnit]:
        return [u for u in self.units.values() if not u.departing]

    def _unit(self, name: str) -> SimUnit:
        try:
            return self.units[name]
        except KeyError:
            raise SimError(f"no unit {name!r} in the model") from None

    # --------------------------------------------------------------- dispatch

    def _dispatch(self, hook: _Hook, changes: Mapping[str, Any] | None = None) -> bool:
        """Run one queued hook; False if it no longer applies (and was skipped)."""
        prepared = self._prepare(hook, changes)
        if prepared is None:
            return False
        self._execute(prepared.unit, prepared.event, prepared.state, prepared.env)
        self._after(prepared)
        return True

    def _after(self, prepared: _Prepared) -> None:
        """The bookkeeping that follows a hook that succeeded."""
        if prepared.kind == "relation_broken":
            prepared.unit.in_relation = False
        elif prepared.kind == "remove":
            self._leave_model(prepared.unit)

    def _prepare(self, hook: _Hook, changes: Mapping[str, Any] | None = None) -> _Prepared | None:
        """A queued hook's event and starting State; None if it no longer applies."""
        unit = self.units.get(hook.unit)
        if unit is None:
            return None
        kind = hook.kind
        if kind.startswith("relation_") and kind != "relation_created" and not unit.in_relation:
            return None  # it has left the relation (relation-broken ran)
        if kind == "relation_created":
            unit.in_relation = True
        elif kind == "relation_joined":
            if hook.source not in unit.scope:
                return None
            unit.joined.add(hook.source)
        elif kind == "relation_changed" and hook.source != APP:
            if hook.source not in unit.joined:
                return None
        elif kind == "relation_departed":
            assert hook.source is not None
            unit.joined.discard(hook.source)
        elif kind == "secret_changed":
            record = self._secrets.get(hook.secret_id or "")
            if record is None or not self._can_read(record, unit):
                return None

        state_in = self._state_for(unit)
        if changes:
            state_in = dataclasses.replace(state_in, **changes)
        event, env = self._event(unit, hook, kind, state_in)
        return _Prepared(unit, kind, event, state_in, env)

    def _event(
        self, unit: SimUnit, hook: _Hook, kind: str, state: testing.State
    ) -> tuple[Any, dict[str, str]]:
        on = unit.ctx.on
        env: dict[str, str] = {}
        if kind.startswith("relation_"):
            relation = state.get_relation(self.relation_id)
            if kind == "relation_created":
                return on.relation_created(relation), env
            if kind == "relation_broken":
                return on.relation_broken(relation), env
            if kind == "relation_changed" and hook.source == APP:
                # Scenario insists on a remote unit; Juju sets it empty for app data.
                env["JUJU_REMOTE_UNIT"] = ""
                peers = sorted(_number(p) for p in unit.joined)
                return on.relation_changed(relation, remote_unit=(peers or [0])[0]), env
            assert hook.source is not None
            remote = _number(hook.source)
            if kind == "relation_joined":
                return on.relation_joined(relation, remote_unit=remote), env
            if kind == "relation_changed":
                return on.relation_changed(relation, remote_unit=remote), env
            assert hook.departing is not None
            env["JUJU_DEPARTING_UNIT"] = hook.departing
            departing = _number(hook.departing)
            return (
                on.relation_departed(relation, remote_unit=remote, departing_unit=departing),
                env,
            )
        if kind == "secret_changed":
            secret = state.get_secret(id=hook.secret_id)
            return on.secret_changed(secret), env
        return getattr(on, kind)(), env

    def _execute(
        self,
        unit: SimUnit,
        event: Any,
        state_in: testing.State,
        env: Mapping[str, str],
    ) -> None:
        prepared = _Prepared(unit, "", event, state_in, dict(env))
        self._mark_started(prepared)
        try:
            state_out = self._run_prepared(prepared)
        except testing.ActionFailed as failed:
            if failed.state is not None:
                self._absorb(unit, state_in, failed.state, prepared.index)
            raise
        self._absorb(unit, state_in, state_out, prepared.index)

    def _mark_started(self, prepared: _Prepared) -> None:
        """Record the hook as run (`hooks`, `SimUnit.hooks_run`) as it starts."""
        name = getattr(prepared.event, "name", str(prepared.event))
        prepared.index = len(self.hooks)
        self.hooks.append((prepared.unit.name, name))
        prepared.unit.hooks_run += 1
        logger.debug("%s: running %s", prepared.unit.name, name)

    def _run_prepared(self, prepared: _Prepared) -> testing.State:
        """Run the hook (on a unit's worker in parallel mode): the State it leaves."""
        unit, event, state_in, env = prepared.unit, prepared.event, prepared.state, prepared.env
        with contextlib.ExitStack() as stack:
            managed = self._before_hook(unit) if self._before_hook else None
            if managed is not None:
                stack.enter_context(managed)
            if self.runner is not None:
                return self.runner.run(self, unit, event, state_in, env)
            # Scenario cannot say what Juju says here: an empty
            # JUJU_REMOTE_UNIT for application data, and JUJU_DEPARTING_UNIT
            # for unit 0 (it tests the id for truth).
            stack.enter_context(scenario_shim.event_env(env))
            stack.enter_context(scenario_shim.charm_root(self._charm_roots.root_for))
            return unit.ctx.run(event, state_in)

    # ------------------------------------------------------------ state in/out

    def _state_for(self, unit: SimUnit) -> testing.State:
        """The unit's last State, with the peer relation and secrets as Juju sees them now."""
        relations: set[testing.RelationBase] = {
            r for r in unit.state.relations if r.id != self.relation_id
        }
        if unit.in_relation:
            relations.add(
                testing.PeerRelation(
                    endpoint=self.peer,
                    id=self.relation_id,
                    local_app_data=dict(self.app_data),
                    local_unit_data=dict(self.unit_data[unit.name]),
                    peers_data={
                        _number(p): dict(self.unit_data.get(p) or self._left_bags[p])
                        for p in sorted(unit.joined, key=_number)
                    },
                )
            )
        foreign = {s for s in unit.state.secrets if s.id not in self._sim_secret_ids}
        return dataclasses.replace(
            unit.state,
            leader=unit.leader,
            config=dict(self.config),
            model=self.model,
            relations=frozenset(relations),
            secrets=frozenset(foreign | set(self._secrets_for(unit))),
            networks=frozenset(self._networks(unit)) if self._networks else unit.state.networks,
            resources=self._resources,
            planned_units=len(self._live_units()),
        )

    def _absorb(
        self, unit: SimUnit, state_in: testing.State, state_out: testing.State, index: int
    ) -> None:
        """Take a hook's output into the model and queue the hooks it causes (its commit).

        ``index`` is the hook's place in `hooks`.
        """
        before = next((r for r in state_in.relations if r.id == self.relation_id), None)
        for relation in state_out.relations:
            if relation.id == self.relation_id:
                assert isinstance(relation, testing.PeerRelation)
                assert before is None or isinstance(before, testing.PeerRelation)
                self._absorb_bags(unit, relation, before)
        self._absorb_secrets(unit, state_in, state_out, index)
        unit.state = state_out

    def _absorb_bags(
        self,
        unit: SimUnit,
        relation: testing.PeerRelation,
        before: testing.PeerRelation | None,
    ) -> None:
        """Take the bags the hook wrote; a bag it left as it found it is not written back.

        With units in parallel, a hook's copy of the application bag is the
        one it started from: writing it back unchanged would undo what the
        leader committed meanwhile.
        """
        unit_bag: dict[str, str] = dict(relation.local_unit_data)
        wrote_unit = before is None or unit_bag != dict(before.local_unit_data)
        if wrote_unit and unit_bag != self.unit_data[unit.name]:
            self.unit_data[unit.name] = unit_bag
            self._queue_bag_changed(unit)
        app_bag: dict[str, str] = dict(relation.local_app_data)
        wrote_app = before is None or app_bag != dict(before.local_app_data)
        if wrote_app and app_bag != self.app_data:
            self.app_data = app_bag
            for other in self.units.values():
                if other is not unit and other.in_relation:
                    self._queue_hook(_Hook(other.name, "relation_changed", APP))

    def _queue_bag_changed(self, unit: SimUnit) -> None:
        for other in self.units.values():
            if other is not unit and unit.name in other.scope:
                self._queue_hook(_Hook(other.name, "relation_changed", source=unit.name))

    # ---------------------------------------------------------------- secrets

    def _manages(self, record: _SecretRecord, unit: SimUnit) -> bool:
        return unit.leader if record.owner == "app" else record.owner == unit.name

    def _can_read(self, record: _SecretRecord, unit: SimUnit) -> bool:
        """Whether `unit` may read (not manage) the secret, by Juju's rules."""
        if self._manages(record, unit):
            return False
        if record.owner == "app" and self.peers_read_app_secrets:
            return True
        grantees: set[str] = set()
        for granted in record.secret.remote_grants.values():
            grantees.update(granted)
        return unit.name in grantees or self.app in grantees

    def _secrets_for(self, unit: SimUnit) -> Iterator[testing.Secret]:
        for secret_id, record in self._secrets.items():
            if self._manages(record, unit):
                owned = copy.deepcopy(record.secret)
                object.__setattr__(owned, "owner", "app" if record.owner == "app" else "unit")
                yield owned
            elif self._can_read(record, unit):
                latest = record.secret
                view = record.views.setdefault(
                    # Juju starts tracking at the first read: the latest revision.
                    unit.name,
                    _View(
                        dict(latest.latest_content), scenario_shim.latest_revision(latest), None
                    ),
                )
                seen = testing.Secret(
                    dict(view.content),
                    latest_content=dict(latest.latest_content),
                    id=secret_id,
                    label=view.label,
                )
                scenario_shim.set_revisions(
                    seen, tracked=view.revision, latest=scenario_shim.latest_revision(latest)
                )
                yield seen

    def _absorb_secrets(
        self,
        unit: SimUnit,
        state_in: testing.State,
        state_out: testing.State,
        index: int | None = None,
    ) -> None:
        out = {s.id: s for s in state_out.secrets}
        for secret in state_in.secrets:
            if secret.owner is not None and secret.id not in out:
                # remove_all_revisions by the manager: gone for everyone.
                self._secrets.pop(secret.id, None)
        for secret in state_out.secrets:
            record = self._secrets.get(secret.id)
            if secret.owner is not None:
                if record is None:
                    if secret.owner == "app" and not unit.leader:
                        # Scenario allows it; Juju refuses: fail the test loudly.
                        raise SimError(f"{unit.name} is not the leader but added an app secret")
                    owner = "app" if secret.owner == "app" else unit.name
                    record = self._secrets[secret.id] = _SecretRecord(owner, secret)
                    self._sim_secret_ids.add(secret.id)
                    at = len(self.hooks) - 1 if index is None else index
                    self.secrets_added.append((at, owner))
                    continue
                changed = dict(secret.latest_content) != dict(record.secret.latest_content)
                record.secret = secret
                for name, view in list(record.views.items()):
                    reader = self.units.get(name)
                    if reader is None or not self._can_read(record, reader):
                        del record.views[name]  # revoked, or leadership moved here
                    elif changed and view.revision < scenario_shim.latest_revision(secret):
                        self._queue_hook(_Hook(name, "secret_changed", secret_id=secret.id))
            elif record is not None:
                record.views[unit.name] = _View(
                    dict(secret.tracked_content),
                    scenario_shim.tracked_revision(secret),
                    secret.label,
                )

    # ------------------------------------------------------------------ misc

    def _leave_model(self, unit: SimUnit) -> None:
        del self.units[unit.name]
        self.removed[unit.name] = unit
        # A peer whose relation-departed has not run yet still lists it (units in
        # parallel: the leaving unit may be gone first); it sees the last bag.
        self._left_bags[unit.name] = self.unit_data.pop(unit.name, {})
        for secret_id, record in list(self._secrets.items()):
            if record.owner == unit.name:
                del self._secrets[secret_id]  # Juju removes a unit's secrets with it
            record.views.pop(unit.name, None)
        for hook in [h for h in self._queue if h.unit == unit.name]:
            self._queue.remove(hook)
            self._queued.discard(hook.key)
        if unit.leader and self.units:
            self.set_leader(min(self.units.values(), key=lambda u: u.number).name)

    def _juju_unit_bag(self, unit: SimUnit) -> dict[str, str]:
        """The keys Juju writes into every unit bag, from the unit's peer binding."""
        networks = list(self._networks(unit)) if self._networks else []
        network = next((n for n in networks if n.binding_name == self.peer), None)
        network = network or testing.Network(self.peer)
        address = network.ingress_addresses[0]
        return {
            "egress-subnets": ",".join(network.egress_subnets),
            "ingress-address": address,
            "private-address": address,
        }
