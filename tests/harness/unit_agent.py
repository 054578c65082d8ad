"""A unit-agent stand-in: runs a BUILT charm the way Juju's unit agent does.

In-process runs (ops.testing) never execute the `.charm` that ships: not its
`dispatch`, not its venv, not a fresh interpreter per hook. This module does:
`UnitAgentRunner` unpacks the `.charm` zip once per unit (keeping the
executable bits, as Juju does), then runs every hook as
`<charm dir>/dispatch` in a new process with the `JUJU_*` variables Juju
sets and the hook tools on PATH. The hook tools (`hook_tools/hook_tool.py`,
one script under every tool name) call back over a Unix socket into this
process, where `HookSession` answers them from the State that
`juju_sim.Sim` built for that unit and that hook: the simulator stays the one
model of who sees which bag and secret, the runner only replaces how a hook
turns a State into the next one (`Sim(..., runner=UnitAgentRunner(path))`).

Writes (relation-set, secret-*, status-set, leader-set, state-set, ports...)
are buffered in the session and become the hook's output State only when
`dispatch` exits 0: Juju drops a failed hook's changes, and so does the Sim.
Each tool refuses what Juju refuses, with Juju's `ERROR ...` on stderr and
exit status 1: a non-leader writing its application's bag or app status or
leader settings, reading a secret that was neither granted nor owned,
managing a secret it does not own. `config-get` of an option the charm does
not declare is refused too (stricter than Juju, which prints null: a typo in
a charm's option name should fail here).

Machine-level seams: a test can give a `boot` file, run at interpreter start
of every hook process (through a `.pth` line added to the unpacked venv),
with the environment `unit_env` returns for the unit: that is where a test
points the charm at a fake snapd or a scratch root (see `lxd_agent_boot`).
Requests the boot code sends over the socket as tool `_machine` go to
`machine_calls` (e.g. "restart my daemon").
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import json
import logging
import os
import shlex
import shutil
import signal
import socketserver
import stat
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from ops import testing

from tests.harness import scenario_shim


class AgentModel(Protocol):
    """What the hook tools need of the model around a unit: `juju_sim.Sim` is one.

    `agent_context.AgentContext` is another, for one unit on its own (the
    single-unit functional tests, in the shape of `ops.testing.Context`).
    """

    app: str
    model: testing.Model

    def goal_units(self) -> dict[str, str]:
        """The application's units Juju plans (`goal-state`), each with its goal status."""
        ...

    def secret_exists(self, secret_id: str) -> bool:
        """Whether the model holds the secret at all, whoever may read it."""
        ...


class AgentUnit(Protocol):
    """What the runner needs of a unit: `juju_sim.SimUnit` is one."""

    name: str
    number: int
    machine: Any


logger = logging.getLogger(__name__)

HOOK_TOOL = Path(__file__).parent / "hook_tools" / "hook_tool.py"
HOOK_TOOL_C = HOOK_TOOL.with_suffix(".c")
JUJU_VERSION = "3.6.0"
HOOK_TIMEOUT = 600.0

TOOLS = [
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "credential-get",
    "goal-state",
    "is-leader",
    "juju-log",
    "juju-reboot",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-model-get",
    "relation-set",
    "resource-get",
    "secret-add",
    "secret-get",
    "secret-grant",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-revoke",
    "secret-set",
    "state-delete",
    "state-get",
    "state-set",
    "status-get",
    "status-set",
    "storage-add",
    "storage-get",
    "storage-list",
]

_STATUSES: dict[str, Callable[[str], Any]] = {
    "active": testing.ActiveStatus,
    "blocked": testing.BlockedStatus,
    "maintenance": testing.MaintenanceStatus,
    "waiting": testing.WaitingStatus,
}

MachineCall = Callable[[Any], None]
"""Called with the unit (a `SimUnit`, or any `AgentUnit`) whose hook asked."""
UnitEnv = Callable[[Any], Mapping[str, str]]
"""The unit's extra hook environment, given the unit (a `SimUnit`, or any `AgentUnit`)."""


class HookFailedError(RuntimeError):
    """`dispatch` exited non-zero: Juju marks the hook failed and drops its changes."""

    def __init__(self, unit: str, hook: str, code: int, stderr: str) -> None:
        self.unit, self.hook, self.code, self.stderr = unit, hook, code, stderr
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        super().__init__(f"{unit}: hook {hook} exited {code}:\n{tail}")


class ToolError(Exception):
    """A hook tool refuses the call: its message goes to stderr after `ERROR `."""


@dataclasses.dataclass
class HookTiming:
    """How long one hook took, from `dispatch` started to it exited."""

    unit: str
    hook: str
    seconds: float
    tool_calls: int
    cpu_seconds: float = 0.0
    """User and system time of `dispatch` and every process it waited for (hook tools, `lxd`)."""


RECORDED: list[HookTiming] = []
"""Every hook any runner in this process ran (the functional tier prints a summary)."""
RECORDED_TOOLS: Counter[str] = Counter()
"""How often each hook tool was called, over every runner in this process."""


# ------------------------------------------------------------------ arguments


def _options(args: list[str], with_value: set[str]) -> tuple[dict[str, str], list[str]]:
    """Juju's tool flags: `--x=v`, `--x v`, `-r v`, bare `--flag`; the rest positional."""
    options: dict[str, str] = {}
    positional: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional.extend(rest)
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.lstrip("-").partition("=")
            if not eq and name in with_value and rest:
                value = rest.pop(0)
            options[name] = value if (eq or name in with_value) else "true"
        else:
            positional.append(arg)
    return options, positional


def _relation_id(ref: str) -> int:
    return int(ref.rsplit(":", 1)[-1])


def secret_key(secret_id: str) -> str:
    """A secret's own id, however it is spelled: `secret:ID`, `secret://MODEL/ID`, `ID`.

    ops canonicalises ids to `secret://<model uuid>/<id>` before it calls a
    tool; Scenario's ids are `secret:<id>`.
    """
    return secret_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _flat_to_nested(flat: Mapping[str, str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def cloud_spec_json(spec: testing.CloudSpec) -> dict[str, Any]:
    """A cloud spec as `credential-get --format=json` prints it (Juju's field names)."""
    out: dict[str, Any] = {"type": spec.type, "name": spec.name}
    for key, value in (
        ("region", spec.region),
        ("endpoint", spec.endpoint),
        ("identity-endpoint", spec.identity_endpoint),
        ("storage-endpoint", spec.storage_endpoint),
    ):
        if value is not None:
            out[key] = value
    if spec.credential is not None:
        out["credential"] = {
            "auth-type": spec.credential.auth_type,
            "attrs": dict(spec.credential.attributes),
            "redacted": list(spec.credential.redacted),
        }
    out["cacertificates"] = list(spec.ca_certificates)
    out["skip-tls-verify"] = spec.skip_tls_verify
    out["is-controller-cloud"] = spec.is_controller_cloud
    return out


# ------------------------------------------------------------------- session


class HookSession:
    """One hook of one unit: answers its tool calls from ``state``, buffering writes."""

    def __init__(
        self,
        sim: AgentModel,
        unit: AgentUnit,
        state: testing.State,
        env: Mapping[str, str],
        options: Mapping[str, Mapping[str, Any]],
        action: Any,
        machine_calls: Mapping[str, MachineCall],
        leader_settings: dict[str, str],
        juju_state: dict[str, str],
        storage_root: Path,
        *,
        trusted: bool = False,
    ) -> None:
        self.sim, self.unit, self.env = sim, unit, env
        self.trusted = trusted
        self.options = options
        self.action = action
        self.machine_calls = machine_calls
        self.storage_root = storage_root
        self.calls = 0
        self.tool_counts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.action_results: dict[str, str] = {}
        self.action_failure: str | None = None
        self.action_logs: list[str] = []
        self.leader_settings = dict(leader_settings)
        self.juju_state = dict(juju_state)
        self.state = state
        self.relations: dict[int, Any] = {r.id: r for r in state.relations}
        self.bags: dict[tuple[int, str], dict[str, str]] = {}
        self.secrets: dict[str, testing.Secret] = {s.id: s for s in state.secrets}
        self.unit_status: Any = state.unit_status
        self.unit_status_history: list[Any] = []
        """Each unit status the hook replaced, in order (as `testing.Context` records them)."""
        self.app_status: Any = state.app_status
        self.workload_version = state.workload_version
        self.ports: set[Any] = set(state.opened_ports)
        self.reboot = False
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- helpers

    @property
    def leader(self) -> bool:
        return bool(self.state.leader)

    def _relation(self, options: Mapping[str, str]) -> Any:
        ref = options.get("r") or options.get("relation") or self.env.get("JUJU_RELATION_ID", "")
        if not ref:
            raise ToolError("no relation id specified")
        try:
            return self.relations[_relation_id(ref)]
        except (KeyError, ValueError):
            raise ToolError(f'invalid value "{ref}" for option -r: relation not found') from None

    def _remote_app(self, relation: Any) -> str:
        if isinstance(relation, testing.PeerRelation):
            return self.sim.app
        return str(relation.remote_app_name)

    def _members(self, relation: Any) -> dict[str, Mapping[str, str]]:
        app = self._remote_app(relation)
        if isinstance(relation, testing.PeerRelation):
            return {f"{app}/{n}": bag for n, bag in relation.peers_data.items()}
        return {f"{app}/{n}": bag for n, bag in relation.remote_units_data.items()}

    def _bag(self, relation: Any, owner: str) -> dict[str, str]:
        """The bag of ``owner`` (a unit or an app) in ``relation``, as this unit sees it."""
        key = (relation.id, owner)
        if key in self.bags:
            return self.bags[key]
        me, app = self.unit.name, self.sim.app
        if owner == me:
            return dict(relation.local_unit_data)
        if owner == app:
            if not isinstance(relation, testing.PeerRelation) and not self.leader:
                raise ToolError("permission denied")
            return dict(relation.local_app_data)
        if owner == self._remote_app(relation):
            return dict(relation.remote_app_data)
        members = self._members(relation)
        if owner not in members:
            raise ToolError(
                f'cannot read settings for unit "{owner}" in relation '
                f'"{relation.endpoint}:{relation.id}": unit not found'
            )
        return dict(members[owner])

    def _secret(self, options: Mapping[str, str], positional: list[str]) -> testing.Secret:
        ref = positional[0] if positional else ""
        label = options.get("label")
        if ref:
            found = self.secrets.get(ref) or next(
                (s for s in self.secrets.values() if secret_key(s.id) == secret_key(ref)),
                None,
            )
            if found is None:
                if self.sim.secret_exists(ref):
                    raise ToolError("permission denied")
                raise ToolError(f'secret "{ref}" not found')
            return found
        found = next((s for s in self.secrets.values() if label and s.label == label), None)
        if found is None:
            raise ToolError(f'secret with label "{label}" not found')
        return found

    def _owned(self, secret: testing.Secret) -> testing.Secret:
        if secret.owner is None:
            raise ToolError("permission denied")
        if secret.owner == "app" and not self.leader:
            raise ToolError("permission denied: this unit is not the leader")
        return secret

    def _content(self, positional: list[str]) -> dict[str, str]:
        content: dict[str, str] = {}
        for item in positional:
            key, _, value = item.partition("=")
            if key.endswith("#file"):
                key = key.removesuffix("#file")
                value = Path(value).read_text()
            content[key] = value
        return content

    def _status(self, status: Any) -> dict[str, Any]:
        return {"status": status.name, "message": status.message, "status-data": {}}

    # -------------------------------------------------------------- dispatch

    def call(self, tool: str, args: list[str], stdin: str | None) -> tuple[int, str, str]:
        """Run one tool call; returns (exit code, stdout, stderr) as the tool prints them."""
        with self._lock:
            self.calls += 1
            self.tool_counts[tool] += 1
            handler = getattr(self, "tool_" + tool.replace("-", "_"), None)
            if handler is None:
                return 1, "", f"ERROR the stand-in does not implement {tool}\n"
            try:
                out = handler(args, stdin)
            except ToolError as refused:
                return 1, "", f"ERROR {refused}\n"
            if out is None and "--format=json" not in args:
                return 0, "", ""
            if isinstance(out, str) and "--format=json" not in args:
                return 0, out + "\n", ""
            return 0, json.dumps(out) + "\n", ""

    # ------------------------------------------------------------- the tools

    def tool__machine(self, args: list[str], stdin: str | None) -> Any:
        self.machine_calls[args[0]](self.unit)

    def tool_juju_log(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"log-level", "l"})
        level = options.get("log-level", options.get("l", "INFO"))
        self.log.append((level, " ".join(positional)))

    def tool_is_leader(self, args: list[str], stdin: str | None) -> Any:
        return self.leader

    def tool_config_get(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format"})
        values: dict[str, Any] = {
            name: option["default"] for name, option in self.options.items() if "default" in option
        }
        values.update(self.state.config)
        if positional:
            key = positional[0]
            if key not in self.options:
                raise ToolError(f'unknown config key "{key}": not an option of this charm')
            return values.get(key)
        return values

    def tool_relation_ids(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format"})
        endpoint = positional[0] if positional else self.env.get("JUJU_RELATION", "")
        return [f"{r.endpoint}:{r.id}" for r in self.relations.values() if r.endpoint == endpoint]

    def tool_relation_list(self, args: list[str], stdin: str | None) -> Any:
        options, _ = _options(args, {"format", "r", "relation"})
        relation = self._relation(options)
        if "app" in options:
            return self._remote_app(relation)
        return sorted(self._members(relation), key=lambda n: int(n.rsplit("/", 1)[1]))

    def tool_relation_get(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"format", "r", "relation"})
        relation = self._relation(options)
        key = positional[0] if positional else "-"
        owner = positional[1] if len(positional) > 1 else self.env.get("JUJU_REMOTE_UNIT", "")
        if "app" in options and "/" in owner:
            owner = owner.split("/")[0]
        if not owner:
            raise ToolError("no unit id specified")
        bag = self._bag(relation, owner)
        return bag if key == "-" else bag.get(key)

    def tool_relation_set(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"format", "r", "relation", "file"})
        relation = self._relation(options)
        owner = self.unit.name
        if "app" in options:
            if not self.leader:
                raise ToolError(
                    f'cannot write relation settings for application "{self.sim.app}": '
                    "this unit is not the leader"
                )
            owner = self.sim.app
        values: dict[str, str] = {}
        if options.get("file") == "-":
            values.update(yaml.safe_load(stdin or "") or {})
        elif options.get("file"):
            values.update(yaml.safe_load(Path(options["file"]).read_text()) or {})
        for item in positional:
            key, _, value = item.partition("=")
            values[key] = value
        bag = self._bag(relation, owner)
        for key, value in values.items():
            if value == "":
                bag.pop(key, None)
            else:
                bag[key] = str(value)
        self.bags[(relation.id, owner)] = bag

    def tool_relation_model_get(self, args: list[str], stdin: str | None) -> Any:
        return {"uuid": self.sim.model.uuid}

    def tool_network_get(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format", "r", "relation"})
        binding = positional[0]
        found = next((n for n in self.state.networks if n.binding_name == binding), None)
        network = found or testing.Network(binding)
        return {
            "bind-addresses": [
                {
                    "mac-address": b.mac_address,
                    "interface-name": b.interface_name,
                    "addresses": [
                        {"hostname": a.hostname, "value": a.value, "cidr": a.cidr}
                        for a in b.addresses
                    ],
                }
                for b in network.bind_addresses
            ],
            "egress-subnets": list(network.egress_subnets),
            "ingress-addresses": list(network.ingress_addresses),
        }

    def tool_goal_state(self, args: list[str], stdin: str | None) -> Any:
        """Juju's goal-state: each unit with its workload status, or "dying" when leaving.

        Relations list, per endpoint, the remote application ("joined") and its
        units; a peer's status is its own, a remote unit's is "active" (the
        model does not run the other application), the departing unit "dying".
        """
        since = "2026-01-01T00:00:00Z"
        goal = self.sim.goal_units()
        goal[self.unit.name] = (
            "dying" if goal.get(self.unit.name) == "dying" else (self.unit_status.name)
        )
        units = {n: {"status": status, "since": since} for n, status in goal.items()}
        departing = self.env.get("JUJU_DEPARTING_UNIT", "")
        relations: dict[str, Any] = {}
        for relation in self.relations.values():
            entries = relations.setdefault(relation.endpoint, {})
            if not isinstance(relation, testing.PeerRelation):
                entries[self._remote_app(relation)] = {"status": "joined", "since": since}
            for name in self._members(relation):
                status = goal.get(name, "active")
                if name == departing:
                    status = "dying"
                entries[name] = {"status": status, "since": since}
        return {"units": units, "relations": relations}

    def tool_status_get(self, args: list[str], stdin: str | None) -> Any:
        options, _ = _options(args, {"format"})
        if options.get("application", "false") == "true":
            if not self.leader:
                raise ToolError("finding application status: this unit is not the leader")
            return {"application-status": self._status(self.app_status), "units": {}}
        return self._status(self.unit_status)

    def tool_status_set(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, set())
        name, message = positional[0], " ".join(positional[1:])
        if name not in _STATUSES:
            raise ToolError(f'invalid status "{name}"')
        status = _STATUSES[name](message)
        if options.get("application", "false").lower() == "true":
            if not self.leader:
                raise ToolError("setting application status: this unit is not the leader")
            self.app_status = status
        else:
            if status != self.unit_status:
                self.unit_status_history.append(self.unit_status)
            self.unit_status = status

    def tool_application_version_set(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, set())
        self.workload_version = positional[0] if positional else ""

    def tool_leader_get(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format"})
        return self.leader_settings.get(positional[0]) if positional else self.leader_settings

    def tool_leader_set(self, args: list[str], stdin: str | None) -> Any:
        if not self.leader:
            raise ToolError(
                "cannot write leadership settings: cannot write settings: not the leader"
            )
        _, positional = _options(args, set())
        for item in positional:
            key, _, value = item.partition("=")
            if value:
                self.leader_settings[key] = value
            else:
                self.leader_settings.pop(key, None)

    def tool_state_get(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format"})
        return self.juju_state.get(positional[0]) if positional else self.juju_state

    def tool_state_set(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"file"})
        if options.get("file") == "-":
            self.juju_state.update(yaml.safe_load(stdin or "") or {})
        for item in positional:
            key, _, value = item.partition("=")
            self.juju_state[key] = value

    def tool_state_delete(self, args: list[str], stdin: str | None) -> Any:
        self.juju_state.pop(args[0], None)

    def tool_resource_get(self, args: list[str], stdin: str | None) -> Any:
        found = next((r for r in self.state.resources if r.name == args[0]), None)
        if found is None:
            raise ToolError(f'could not download resource: resource "{args[0]}" not found')
        return str(found.path)

    def tool_credential_get(self, args: list[str], stdin: str | None) -> Any:
        """The model's cloud spec, for an application the operator trusted (`juju trust`).

        Juju's credential-get wraps the controller's answer: an untrusted
        application gets ErrPerm ("permission denied"), read from Juju's
        uniter facade (CloudSpec) and jujuc's credential-get.
        """
        if not self.trusted:
            raise ToolError("cannot access cloud credentials: permission denied")
        spec = self.state.model.cloud_spec
        if spec is None:
            raise ToolError("cannot access cloud credentials: the model has no cloud spec")
        return cloud_spec_json(spec)

    def tool_storage_list(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format"})
        return [
            f"{s.name}/{s.index}"
            for s in self.state.storages
            if not positional or s.name == positional[0]
        ]

    def tool_storage_get(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"format", "s"})
        ref = options.get("s") or self.env.get("JUJU_STORAGE_ID", "")
        if not any(f"{s.name}/{s.index}" == ref for s in self.state.storages):
            raise ToolError(f'storage "{ref}" not found')
        info = {"kind": "filesystem", "location": str(self.storage_root / ref.replace("/", "-"))}
        return info[positional[0]] if positional else info

    def tool_storage_add(self, args: list[str], stdin: str | None) -> Any:
        raise ToolError("the stand-in cannot add storage")

    def tool_open_port(self, args: list[str], stdin: str | None) -> Any:
        self._port(args, open_it=True)

    def tool_close_port(self, args: list[str], stdin: str | None) -> Any:
        self._port(args, open_it=False)

    def _port(self, args: list[str], *, open_it: bool) -> None:
        _, positional = _options(args, {"endpoints"})
        spec = positional[0]
        protocol, port = "tcp", spec
        if "/" in spec:
            port, protocol = spec.split("/", 1)
        elif spec == "icmp":
            protocol, port = "icmp", ""
        factory = {"tcp": testing.TCPPort, "udp": testing.UDPPort}
        value: Any = factory[protocol](int(port)) if protocol in factory else testing.ICMPPort()
        (self.ports.add if open_it else self.ports.discard)(value)

    def tool_opened_ports(self, args: list[str], stdin: str | None) -> Any:
        return [
            "icmp" if p.protocol == "icmp" else f"{p.port}/{p.protocol}"
            for p in sorted(self.ports, key=lambda p: (p.protocol, p.port or 0))
        ]

    def tool_juju_reboot(self, args: list[str], stdin: str | None) -> Any:
        self.reboot = True

    # --------------------------------------------------------------- actions

    def _require_action(self) -> Any:
        if self.action is None:
            raise ToolError("not running an action")
        return self.action

    def tool_action_get(self, args: list[str], stdin: str | None) -> Any:
        _, positional = _options(args, {"format"})
        params = dict(self._require_action().params)
        return params.get(positional[0]) if positional else params

    def tool_action_set(self, args: list[str], stdin: str | None) -> Any:
        self._require_action()
        for item in args:
            key, _, value = item.partition("=")
            self.action_results[key] = value

    def tool_action_fail(self, args: list[str], stdin: str | None) -> Any:
        self._require_action()
        _, positional = _options(args, set())
        self.action_failure = " ".join(positional) or "action failed without reason given"

    def tool_action_log(self, args: list[str], stdin: str | None) -> Any:
        self._require_action()
        _, positional = _options(args, set())
        self.action_logs.append(" ".join(positional))

    # --------------------------------------------------------------- secrets

    def tool_secret_ids(self, args: list[str], stdin: str | None) -> Any:
        return sorted(s.id for s in self.secrets.values() if s.owner is not None)

    def tool_secret_add(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(
            args, {"label", "description", "expire", "rotate", "owner", "file"}
        )
        owner: Literal["app", "unit"] = (
            "app" if options.get("owner", "application") == "application" else "unit"
        )
        if owner == "app" and not self.leader:
            raise ToolError("this unit is not the leader")
        content = self._content(positional)
        secret = testing.Secret(
            dict(content),
            latest_content=dict(content),
            owner=owner,
            label=options.get("label"),
            description=options.get("description"),
        )
        self.secrets[secret.id] = secret
        return secret.id

    def tool_secret_get(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"format", "label"})
        secret = self._secret(options, positional)
        if secret.owner is not None:  # its manager sees the latest revision
            return dict(secret.latest_content)
        label = options.get("label")
        latest = scenario_shim.latest_revision(secret)
        if "peek" in options:
            return dict(secret.latest_content)
        if "refresh" in options or (label and label != secret.label):
            updated = dataclasses.replace(
                secret,
                tracked_content=dict(secret.latest_content)
                if "refresh" in options
                else dict(secret.tracked_content),
                label=label or secret.label,
            )
            tracked = latest if "refresh" in options else scenario_shim.tracked_revision(secret)
            scenario_shim.set_revisions(updated, tracked=tracked, latest=latest)
            self.secrets[secret.id] = secret = updated
        return dict(secret.tracked_content)

    def tool_secret_info_get(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"format", "label"})
        secret = self._owned(self._secret(options, positional))
        info: dict[str, Any] = {
            "revision": scenario_shim.latest_revision(secret),
            "label": secret.label or "",
            "owner": "application" if secret.owner == "app" else "unit",
            "rotation": str(secret.rotate or "never"),
        }
        if secret.description:
            info["description"] = secret.description
        return {secret_key(secret.id): info}

    def tool_secret_set(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(
            args, {"label", "description", "expire", "rotate", "owner", "file"}
        )
        secret = self._owned(self._secret(options, positional[:1]))
        content = self._content(positional[1:])
        changes: dict[str, Any] = {}
        if "label" in options:
            changes["label"] = options["label"]
        if "description" in options:
            changes["description"] = options["description"]
        latest = scenario_shim.latest_revision(secret)
        if content:
            changes["tracked_content"] = dict(content)
            changes["latest_content"] = dict(content)
            latest += 1
        updated = dataclasses.replace(secret, **changes)
        scenario_shim.set_revisions(updated, tracked=latest, latest=latest)
        self.secrets[secret.id] = updated

    def tool_secret_grant(self, args: list[str], stdin: str | None) -> Any:
        self._grant(args, grant=True)

    def tool_secret_revoke(self, args: list[str], stdin: str | None) -> Any:
        self._grant(args, grant=False)

    def _grant(self, args: list[str], *, grant: bool) -> None:
        options, positional = _options(args, {"relation", "r", "unit", "app"})
        secret = self._owned(self._secret({}, positional))
        relation = self._relation(options)
        grantee = options.get("unit") or options.get("app") or self._remote_app(relation)
        grants = {k: frozenset(v) for k, v in secret.remote_grants.items()}
        current = grants.get(relation.id, frozenset())
        grants[relation.id] = current | {grantee} if grant else current - {grantee}
        updated = dataclasses.replace(secret, remote_grants=grants)
        scenario_shim.set_revisions(
            updated,
            tracked=scenario_shim.tracked_revision(secret),
            latest=scenario_shim.latest_revision(secret),
        )
        self.secrets[secret.id] = updated

    def tool_secret_remove(self, args: list[str], stdin: str | None) -> Any:
        options, positional = _options(args, {"revision"})
        secret = self._owned(self._secret({}, positional))
        if "revision" not in options or int(options["revision"]) >= scenario_shim.latest_revision(
            secret
        ):
            del self.secrets[secret.id]

    # ---------------------------------------------------------------- output

    def state_out(self) -> testing.State:
        """The unit's State after the hook: the input with every buffered write applied."""
        relations = []
        for relation in self.relations.values():
            changes: dict[str, Any] = {}
            if (relation.id, self.unit.name) in self.bags:
                changes["local_unit_data"] = self.bags[(relation.id, self.unit.name)]
            if (relation.id, self.sim.app) in self.bags:
                changes["local_app_data"] = self.bags[(relation.id, self.sim.app)]
            relations.append(dataclasses.replace(relation, **changes) if changes else relation)
        return dataclasses.replace(
            self.state,
            relations=frozenset(relations),
            secrets=frozenset(self.secrets.values()),
            unit_status=self.unit_status,
            app_status=self.app_status,
            workload_version=self.workload_version,
            opened_ports=frozenset(self.ports),
        )


# -------------------------------------------------------------------- server


class _Handler(socketserver.StreamRequestHandler):
    server: _ToolServer

    def handle(self) -> None:
        request = json.loads(self.rfile.read())
        session = self.server.sessions.get(request.get("token", ""))
        if session is None:
            reply = {"code": 1, "stdout": "", "stderr": "ERROR no hook is running\n"}
        else:
            try:
                code, out, err = session.call(request["tool"], request["args"], request["stdin"])
            except Exception as e:  # a stand-in bug: say so in the hook's stderr
                logger.exception("hook tool %s failed", request.get("tool"))
                code, out, err = 2, "", f"ERROR stand-in failure: {e!r}\n"
            reply = {"code": code, "stdout": out, "stderr": err}
        if request.get("reply") == "framed":  # hook_tool.c: no JSON parser there
            out_bytes, err_bytes = str(reply["stdout"]).encode(), str(reply["stderr"]).encode()
            header = f"{reply['code']} {len(out_bytes)} {len(err_bytes)}\n".encode()
            self.wfile.write(header + out_bytes + err_bytes)
        else:
            self.wfile.write(json.dumps(reply).encode())


class _ToolServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.sessions: dict[str, HookSession] = {}


# -------------------------------------------------------------------- runner


@functools.cache
def hook_tool_binary() -> Path:
    """The hook tool every tool name links to: `hook_tool.c` compiled, else `hook_tool.py`.

    Compiled once per test process (about a second), into a directory removed
    at exit. A tool call through the compiled client costs about 1 ms where
    a Python interpreter costs 30 to 90 ms on a loaded machine, and a hook of
    the LXD charm makes 25 to 30 calls. Without a C compiler the Python tool
    is used (same protocol, same answers), slower.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or os.environ.get("UNIT_AGENT_PYTHON_TOOLS"):
        return HOOK_TOOL
    directory = Path(tempfile.mkdtemp(prefix="unit-agent-tool-"))
    atexit.register(shutil.rmtree, directory, True)
    binary = directory / "hook-tool"
    done = subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(HOOK_TOOL_C)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        logger.warning("cannot compile %s, using the Python tool: %s", HOOK_TOOL_C, done.stderr)
        return HOOK_TOOL
    return binary


def unpack_charm(charm_file: Path, directory: Path) -> Path:
    """Unzip a `.charm` as Juju does, keeping each file's mode (dispatch must stay executable)."""
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(charm_file) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, directory))
            mode = info.external_attr >> 16
            if mode and not stat.S_ISLNK(mode):
                path.chmod(stat.S_IMODE(mode))
    return directory


STATE_DB = ".unit-state.db"
"""Where ops keeps a machine charm's stored state and deferred events, in the charm directory."""

_STORED_KIND = "StoredStateData"


def _stored_handle(handle_path: str) -> tuple[str, str] | None:
    """(owner path, name) of a StoredState snapshot's handle, None for other snapshots."""
    owner, _, leaf = handle_path.rpartition("/")
    kind, bracket, name = leaf.partition("[")
    if kind != _STORED_KIND or not bracket or not name.endswith("]"):
        return None
    return owner, name[:-1]


def write_stored_states(root: Path, state: testing.State) -> None:
    """Put the State's stored states into the unit's database, as earlier hooks would have.

    The simulator's State is the model (a test may seed a unit with another
    charm's stored state); ops in the hook process reads the database in the
    charm directory, where Juju's unit agent leaves it between hooks.
    """
    from ops.storage import SQLiteStorage

    db = SQLiteStorage(root / STATE_DB)
    try:
        wanted = {f"{s.owner_path or ''}/{_STORED_KIND}[{s.name}]": s for s in state.stored_states}
        for handle in list(db.list_snapshots()):
            if _stored_handle(handle) is not None and handle not in wanted:
                db.drop_snapshot(handle)
        for handle, stored in wanted.items():
            db.save_snapshot(handle, dict(stored.content))
        db.commit()
    finally:
        db.close()


def read_stored_states(root: Path) -> frozenset[testing.StoredState]:
    """The stored states the hook left in the unit's database."""
    from ops.storage import SQLiteStorage

    db = SQLiteStorage(root / STATE_DB)
    try:
        found = set()
        for handle in db.list_snapshots():
            parts = _stored_handle(handle)
            if parts is not None:
                owner, name = parts
                found.add(
                    testing.StoredState(
                        name=name, owner_path=owner or None, content=db.load_snapshot(handle)
                    )
                )
        return frozenset(found)
    finally:
        db.close()


@functools.cache
def _templates() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="unit-agent-charms-"))
    atexit.register(shutil.rmtree, directory, True)
    return directory


_template_lock = threading.Lock()


def unpacked_template(charm_file: Path) -> Path:
    """The `.charm` unpacked once per test process, as it is.

    Juju unpacks a charm once per unit. A test run makes hundreds of units:
    each gets a hard-linked copy of this template (`link_copy`) instead of
    another unzip of 40 MB. Nothing is compiled here: the charm ships its own
    bytecode (checked by source hash, see charmcraft.yaml), and what it does
    not ship its first hooks compile, as under Juju. Keyed by the file's
    path, size and mtime, so a new `tox -e pack` is picked up.
    """
    info = charm_file.stat()
    key = f"{charm_file.stem}-{info.st_size}-{info.st_mtime_ns}"
    with _template_lock:
        template = _templates() / key
        if not template.is_dir():
            partial = _templates() / f"{key}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            unpack_charm(charm_file, partial)
            partial.rename(template)
        return template


def link_copy(template: Path, directory: Path) -> Path:
    """A unit's charm directory: ``template``'s files hard-linked (copied across filesystems).

    Python and ops replace files rather than write into them (bytecode, the
    state database), so the units do not see each other's writes.
    """

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    directory.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, directory, symlinks=True, copy_function=link)
    return directory


def _charm_yaml(root: Path, name: str) -> dict[str, Any]:
    path = root / name
    loaded = yaml.safe_load(path.read_text()) if path.is_file() else None
    return dict(loaded or {})


class UnitAgentRunner:
    """Runs each unit's hooks as `dispatch` processes of a built charm.

    Give it to `juju_sim.Sim` as ``runner=``; it unpacks ``charm`` (a `.charm`
    file, or a charm directory, used as is) into one directory per unit.
    """

    def __init__(
        self,
        charm: Path,
        *,
        boot: Path | None = None,
        unit_env: UnitEnv | None = None,
        machine_calls: Mapping[str, MachineCall] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.charm = Path(charm)
        self.boot = boot
        self.unit_env = unit_env
        self.machine_calls = dict(machine_calls or {})
        self._scratch = tempfile.TemporaryDirectory(prefix="unit-agent-")
        self.workdir = Path(workdir or self._scratch.name)
        self._template = self.charm if self.charm.is_dir() else unpacked_template(self.charm)
        self.meta = _charm_yaml(self._template, "metadata.yaml")
        self.config_options: dict[str, dict[str, Any]] = dict(
            _charm_yaml(self._template, "config.yaml").get("options") or {}
        )
        self.actions = _charm_yaml(self._template, "actions.yaml")
        self.timings: list[HookTiming] = []
        self.tool_counts: Counter[str] = Counter()
        """How often each hook tool was called, over every hook run."""
        self.logs: dict[str, list[tuple[str, str]]] = {}
        self.last_action_results: dict[str, Any] | None = None
        self.last_status_history: list[Any] = []
        """The unit statuses the last hook replaced, in order."""
        self.app_trusted = False
        """Whether the operator ran `juju trust` on the application (credential-get answers)."""
        self._leader_settings: dict[str, str] = {}
        self._juju_state: dict[str, dict[str, str]] = {}
        self._roots: dict[str, Path] = {}
        # Hooks of different units may run at once (`Sim(parallel=True)`): one
        # lock for what the runner keeps across hooks; sessions are per token.
        self._lock = threading.Lock()
        self._tools = self.workdir / "tools"
        self._tools.mkdir(exist_ok=True)
        for tool in TOOLS:
            (self._tools / tool).symlink_to(hook_tool_binary())
        self._socket = str(self.workdir / "agent.sock")
        self._server = _ToolServer(self._socket)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop answering hook tools and remove the unpacked charms."""
        self._server.shutdown()
        self._server.server_close()
        self._scratch.cleanup()

    def context_args(self) -> dict[str, Any]:
        """`testing.Context` arguments describing the built charm (for the Sim's events)."""
        return {
            "meta": self.meta,
            "config": {"options": self.config_options},
            "actions": self.actions,
        }

    def _unpacked(self, directory: Path) -> Path:
        # A charm given as a directory is copied too: each unit has its own charm
        # directory, as on Juju, so no two units share a state database.
        return link_copy(self._template, directory)

    def charm_dir(self, unit: str) -> Path:
        """The unit's charm directory (unpacked on first use), as `JUJU_CHARM_DIR` names it."""
        root = self._roots.get(unit)
        if root is None:
            root = self._unpacked(self.workdir / "units" / unit.replace("/", "-") / "charm")
            if self.boot is not None:
                self._install_boot(root)
            self._roots[unit] = root
        return root

    def _install_boot(self, root: Path) -> None:
        """A `.pth` line that runs the boot file in each hook process, before the charm."""
        line = (
            "import os; p = os.environ.get('UNIT_AGENT_BOOT'); "
            "p and exec(compile(open(p).read(), p, 'exec'), "
            "{'__file__': p, '__name__': '_boot'})\n"
        )
        for site in root.glob("venv/lib/python3*/site-packages"):
            (site / "_unit_agent_boot.pth").write_text(line)

    def hook_env(
        self, sim: AgentModel, unit: AgentUnit, event: Any, env: Mapping[str, str]
    ) -> dict[str, str]:
        """The environment Juju's unit agent gives the hook process."""
        root = self.charm_dir(unit.name)
        out = {
            "PATH": f"{self._tools}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(root.parent),
            "JUJU_CHARM_DIR": str(root),
            "CHARM_DIR": str(root),
            "JUJU_UNIT_NAME": unit.name,
            "JUJU_MODEL_NAME": sim.model.name,
            "JUJU_MODEL_UUID": sim.model.uuid,
            "JUJU_VERSION": JUJU_VERSION,
            "JUJU_MACHINE_ID": str(unit.number),
            "JUJU_PRINCIPAL_UNIT": "",
            "JUJU_AVAILABILITY_ZONE": "",
            "JUJU_HOOK_NAME": "",
            "UNIT_AGENT_SOCKET": self._socket,
        }
        action = getattr(event, "action", None)
        if action is not None:
            out.update(
                JUJU_DISPATCH_PATH=f"actions/{action.name}",
                JUJU_ACTION_NAME=action.name,
                JUJU_ACTION_UUID=action.id,
                JUJU_ACTION_TAG=f"action-{action.id}",
            )
        else:
            hook = event.name.replace("_", "-")
            out.update(JUJU_DISPATCH_PATH=f"hooks/{hook}", JUJU_HOOK_NAME=hook)
        relation = getattr(event, "relation", None)
        if relation is not None:
            remote_app = (
                sim.app if isinstance(relation, testing.PeerRelation) else relation.remote_app_name
            )
            out.update(
                JUJU_RELATION=relation.endpoint,
                JUJU_RELATION_ID=f"{relation.endpoint}:{relation.id}",
                JUJU_REMOTE_APP=remote_app,
            )
            remote = event.relation_remote_unit_id
            if remote is not None:
                out["JUJU_REMOTE_UNIT"] = f"{remote_app}/{remote}"
            departing = event.relation_departed_unit_id
            if departing is not None:
                out["JUJU_DEPARTING_UNIT"] = f"{remote_app}/{departing}"
        secret = getattr(event, "secret", None)
        if secret is not None:
            out.update(JUJU_SECRET_ID=secret.id, JUJU_SECRET_LABEL=secret.label or "")
        out.update(env)  # the Sim's word: empty remote unit for app data, departing unit
        if self.boot is not None:
            out["UNIT_AGENT_BOOT"] = str(self.boot)
        if self.unit_env is not None:
            out.update(self.unit_env(unit))
        return out

    def run(
        self,
        sim: AgentModel,
        unit: AgentUnit,
        event: Any,
        state: testing.State,
        env: Mapping[str, str],
    ) -> testing.State:
        """Run one hook or action through `dispatch`; the State it leaves behind.

        Raises:
            HookFailedError: dispatch exited non-zero (nothing of the hook is kept).
            ops.testing.ActionFailed: the action called action-fail (its changes are kept).
        """
        action = getattr(event, "action", None)
        process_env = self.hook_env(sim, unit, event, env)
        token = uuid.uuid4().hex
        with self._lock:
            session = HookSession(
                sim,
                unit,
                state,
                process_env,
                self.config_options,
                action,
                self.machine_calls,
                self._leader_settings,
                self._juju_state.setdefault(unit.name, {}),
                self.workdir / "storage" / unit.name.replace("/", "-"),
                trusted=self.app_trusted,
            )
            self._server.sessions[token] = session
        process_env["UNIT_AGENT_TOKEN"] = token
        root = Path(process_env["JUJU_CHARM_DIR"])
        hook = process_env["JUJU_DISPATCH_PATH"]
        write_stored_states(root, state)
        started = time.monotonic()
        try:
            result, cpu = self._dispatch(root, process_env)
        finally:
            with self._lock:
                del self._server.sessions[token]
        elapsed = time.monotonic() - started
        timing = HookTiming(unit.name, hook, elapsed, session.calls, cpu)
        with self._lock:
            self.timings.append(timing)
            RECORDED.append(timing)
            self.logs.setdefault(unit.name, []).extend(session.log)
            self.tool_counts.update(session.tool_counts)
            RECORDED_TOOLS.update(session.tool_counts)
        if result.returncode != 0:
            # ops reports an uncaught exception through juju-log (Juju's debug-log), not
            # always on stderr: both go into the failure, as `juju debug-log` shows them.
            logged = "".join(
                f"juju-log {level}: {message}\n"
                for level, message in session.log
                if level in ("ERROR", "CRITICAL")
            )
            detail = result.stderr + logged
            logger.info("%s: %s failed: %s", unit.name, hook, shlex.quote(detail[-2000:]))
            raise HookFailedError(unit.name, hook, result.returncode, detail)
        with self._lock:
            self.last_status_history = session.unit_status_history
            if session.leader:  # only a leader can leader-set: others keep no stale copy
                self._leader_settings = session.leader_settings
            self._juju_state[unit.name] = session.juju_state
            if action is not None:
                self.last_action_results = _flat_to_nested(session.action_results)
        state_out = dataclasses.replace(
            session.state_out(), stored_states=read_stored_states(root)
        )
        if action is not None and session.action_failure is not None:
            raise testing.ActionFailed(session.action_failure, state=state_out)
        return state_out

    def _dispatch(
        self, root: Path, env: Mapping[str, str]
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run the charm's `dispatch`; one that cannot be executed fails, as under Juju.

        Also returns the CPU seconds the hook used (`run_measured`): with
        units in parallel on one machine, a hook's wall time includes what
        the others took from it.
        """
        argv = [str(root / "dispatch")]
        try:
            return run_measured(argv, cwd=root, env=env, timeout=HOOK_TIMEOUT)
        except (PermissionError, FileNotFoundError, OSError) as e:
            return subprocess.CompletedProcess(argv, 126, "", f"{e}\n"), 0.0


def run_measured(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`subprocess.run` (no input, output captured), plus the CPU seconds the process used.

    `os.wait4` reaps the process with its resource usage, which counts the
    children it waited for too (a hook's tools, the `lxd` client it ran);
    `subprocess.run` discards it. Past ``timeout`` the process is killed and
    `subprocess.TimeoutExpired` raised, as `subprocess.run` does.
    """
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: dict[str, str] = {}

    def drain(name: str, stream: Any) -> None:
        output[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=(name, stream), daemon=True)
        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    # A pidfd names this process and no later one with its pid, so a kill that races
    # the reaping below cannot reach another process.
    pidfd = os.pidfd_open(process.pid)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)

    killer = threading.Timer(timeout, kill)
    killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
        os.close(pidfd)
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    stdout, stderr = output.get("stdout", ""), output.get("stderr", "")
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
    done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    return done, usage.ru_utime + usage.ru_stime


def timing_summary(timings: list[HookTiming]) -> dict[str, tuple[int, float, float]]:
    """Per hook kind: (count, mean seconds, max seconds)."""
    kinds: dict[str, list[float]] = {}
    for timing in timings:
        kind = timing.hook.split("/", 1)[1]
        kind = "relation-" + kind.split("-relation-", 1)[1] if "-relation-" in kind else kind
        kinds.setdefault(kind, []).append(timing.seconds)
    return {k: (len(v), sum(v) / len(v), max(v)) for k, v in kinds.items()}


__all__ = [
    "HOOK_TOOL",
    "HookFailedError",
    "HookSession",
    "HookTiming",
    "ToolError",
    "UnitAgentRunner",
    "timing_summary",
    "unpack_charm",
]
