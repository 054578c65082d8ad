"""The LXD charm in cluster mode, hook by hook: databags, secrets and LXD in, the same out.

Each unit runs on its own `Machine` (hostname, cluster address, its own
`FakeLxd`); the machines' daemons form one LXD cluster through `FakeCluster`
as real daemons would, so what one unit's hook did to LXD is what the next
unit's hook finds. `Deployment` plays Juju's part between hooks: it hands each
unit the application databag, its peers' bags and the secrets granted to it,
and keeps what the unit's hook left behind. Tests drive the charm only
through events and read only what came out: the protocol under test is
docs/interfaces/lxd-cluster.md, each step checked from the side that takes it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_common.errors import (
    ClusterError,
    LxdApiError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
)
from lxd_common.lxd import decode_join_token

from .conftest import FakeHost, FakeLxd, go_time, token_payload

PEER_ID = 7
on = testing.CharmEvents
EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)
PROTOCOL_1 = re.compile(r"1\.\d+")
"""Any 1.x version of the peer protocol: what every unit of this charm must speak."""

Event = Callable[[testing.PeerRelation], Any]
"""Builds a hook's event once the peer relation it concerns is known."""


def announce(hostname: str, **extra: str) -> dict[str, str]:
    """A unit bag as a peer's charm leaves it: the protocol version and its member name."""
    return {"version": "1.0", "hostname": hostname, **extra}


def relation_changed(remote_unit: int) -> Event:
    """A peer's bag changed.

    Juju names no remote unit when only the application bag changed; Scenario
    needs one for a peer relation, so those hooks name the leader's unit.
    """
    return lambda peer: on.relation_changed(peer, remote_unit=remote_unit)


def relation_departed(unit: int) -> Event:
    return lambda peer: on.relation_departed(peer, remote_unit=unit, departing_unit=unit)


def hook(name: str) -> Event:
    """An event that names no relation (install, leader-elected, update-status...)."""
    return lambda _: getattr(on, name)()


@dataclass
class Machine:
    """One unit's machine: its hostname (the member name), cluster address and LXD."""

    hostname: str
    ip: str
    lxd: FakeLxd = field(default_factory=FakeLxd)

    @property
    def address(self) -> str:
        return f"{self.ip}:8443"

    @property
    def binding(self) -> testing.Network:
        return testing.Network("cluster", [testing.BindAddress([testing.Address(self.ip)])])


def peer_of(state: testing.State) -> testing.PeerRelation:
    peer = state.get_relation(PEER_ID)
    assert isinstance(peer, testing.PeerRelation)
    return peer


def content_of(secret: testing.Secret) -> dict[str, str]:
    """A secret's latest content: what its owner sees, and a reader after a refresh."""
    assert secret.latest_content is not None
    return dict(secret.latest_content)


class Deployment:
    """One `lxd` application in cluster mode, its units run one hook at a time.

    Juju's rules, as far as these tests need them: the application bag is
    written by the leader and read by all; a unit bag is its unit's; the
    leader holds the application's secrets, and any other unit sees only the
    secrets granted to it, at their latest revision; stored state stays with
    its unit. A unit in `present` is in every other unit's relation.
    """

    def __init__(self, charm_module: ModuleType, host: FakeHost) -> None:
        self.charm_type = charm_module.LxdCharm
        self.host = host
        self.machines: dict[int, Machine] = {}
        self.present: set[int] = set()
        self.leader = 0
        self.app_bag: dict[str, str] = {}
        self.unit_bags: dict[int, dict[str, str]] = {}
        self.app_secrets: dict[str, testing.Secret] = {}
        self.states: dict[int, testing.State] = {}
        self.outputs: dict[int, testing.State] = {}
        self._contexts: dict[int, testing.Context[Any]] = {}

    def add_unit(
        self, unit: int, hostname: str, ip: str, said: dict[str, str] | None = None
    ) -> Machine:
        """A unit in the relation; ``said`` is its bag so far (none: no hook of it ran yet)."""
        machine = Machine(hostname, ip)
        self.machines[unit] = machine
        self.present.add(unit)
        self.unit_bags[unit] = dict(said or {})
        return machine

    def ctx(self, unit: int) -> testing.Context[Any]:
        if unit not in self._contexts:
            self._contexts[unit] = testing.Context(self.charm_type, app_name="lxd", unit_id=unit)
        return self._contexts[unit]

    def state_for(self, unit: int, **changes: Any) -> testing.State:
        """What Juju hands unit ``unit`` for its next hook."""
        name = f"lxd/{unit}"
        peer = testing.PeerRelation(
            "cluster",
            id=PEER_ID,
            local_app_data=dict(self.app_bag),
            local_unit_data=dict(self.unit_bags[unit]),
            peers_data={n: dict(self.unit_bags[n]) for n in sorted(self.present) if n != unit},
        )
        if unit == self.leader:
            secrets = set(self.app_secrets.values())
        else:
            secrets = {
                testing.Secret(content_of(s), id=s.id, owner=None)
                for s in self.app_secrets.values()
                if any(name in grantees for grantees in s.remote_grants.values())
            }
        previous = self.states.get(unit) or testing.State(
            config={"mode": "cluster"},
            networks={self.machines[unit].binding},
            resources=EMPTY_RESOURCES,
        )
        return replace(
            previous,
            leader=unit == self.leader,
            relations=frozenset({peer}),
            secrets=frozenset(secrets),
            planned_units=len(self.present),  # goal-state: every unit that is not leaving
            **changes,
        )

    def run(self, unit: int, event: Event, state: testing.State | None = None) -> testing.State:
        """Run one hook of ``unit`` on its machine and keep what it left, as Juju does."""
        state = state or self.state_for(unit)
        machine = self.machines[unit]
        self.host.fake_lxd, self.host.hostname = machine.lxd, machine.hostname
        out = self.ctx(unit).run(event(peer_of(state)), state)
        peer = peer_of(out)
        self.unit_bags[unit] = dict(peer.local_unit_data)
        if unit == self.leader:
            self.app_bag = dict(peer.local_app_data)
            self.app_secrets = {s.id: s for s in out.secrets if s.owner == "app"}
        self.states[unit] = replace(out, secrets=frozenset())
        self.outputs[unit] = out
        return out

    def depart(self, unit: int) -> None:
        """``juju remove-unit``: the unit leaves every other unit's relation."""
        self.present.discard(unit)

    # --- reading what came out ------------------------------------------------

    def members(self) -> dict[str, str]:
        """The ``members`` map the leader published."""
        members: dict[str, str] = json.loads(self.app_bag["members"])
        return members

    def token_secret(self, unit: int) -> testing.Secret:
        """The secret whose id the leader published for ``unit``."""
        return self.app_secrets[self.app_bag[f"lxd/{unit}"]]

    def token_of(self, unit: int) -> str:
        return content_of(self.token_secret(unit))["token"]

    def every_bag(self) -> Iterable[dict[str, str]]:
        yield self.app_bag
        yield from self.unit_bags.values()


@pytest.fixture
def deployment(charm_module: ModuleType, host: FakeHost) -> Deployment:
    return Deployment(charm_module, host)


def cluster_names(machine: Machine) -> list[str]:
    """The members LXD lists, asked on ``machine`` (any member answers for all)."""
    return sorted(member.name for member in machine.lxd.cluster.members())


def bootstrapped(deployment: Deployment) -> Machine:
    """Unit 0 leads and has bootstrapped the cluster as node-a."""
    first = deployment.add_unit(0, "node-a", "10.0.0.1")
    deployment.run(0, hook("install"))
    assert cluster_names(first) == ["node-a"]
    return first


def formed(deployment: Deployment, count: int) -> list[Machine]:
    """Units 0..count-1 (node-a, node-b...) are members, leader 0 has confirmed them all."""
    machines = [bootstrapped(deployment)]
    for unit in range(1, count):
        hostname = f"node-{chr(ord('a') + unit)}"
        machines.append(deployment.add_unit(unit, hostname, f"10.0.0.{unit + 1}"))
        deployment.run(unit, relation_changed(0))  # announces its hostname
    deployment.run(0, relation_changed(1))  # issues every token
    for unit in range(1, count):
        deployment.run(unit, relation_changed(0))  # joins
    deployment.run(0, relation_changed(1))  # confirms every join
    assert cluster_names(machines[0]) == sorted(m.hostname for m in machines)
    assert set(deployment.members()) == {f"lxd/{unit}" for unit in range(count)}
    return machines


class Refuses:
    """A join_cluster that refuses with LXD's words (captured from a real daemon)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, *_: object, **__: object) -> None:
        raise LxdApiError(self.message)


def expired_copy(token: str) -> str:
    """The same join token with an expiry in the past, as if it had waited too long."""
    payload = token_payload(token)
    payload["expires_at"] = go_time(datetime.now(timezone.utc) - timedelta(minutes=5))
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


# --- the leader bootstraps --------------------------------------------------------


def test_leader_without_a_cluster_bootstraps_one_on_its_cluster_address(
    deployment: Deployment,
) -> None:
    first = deployment.add_unit(0, "node-a", "10.0.0.1")
    out = deployment.run(0, hook("install"))

    (preseed,) = first.lxd.preseeds
    assert preseed["config"]["cluster.https_address"] == "10.0.0.1:8443"
    assert preseed["cluster"] == {"server_name": "node-a", "enabled": True}
    assert preseed["storage_pools"] == [{"name": "default", "driver": "dir"}]
    assert [(m.name, m.url, m.online) for m in first.lxd.cluster.members()] == [
        ("node-a", "https://10.0.0.1:8443", True)
    ]
    assert deployment.members() == {"lxd/0": "node-a"}
    assert PROTOCOL_1.fullmatch(deployment.app_bag["version"])
    assert json.loads(deployment.app_bag["member_config"]) == first.lxd.cluster.member_config()
    assert json.loads(deployment.app_bag["member_config"]) == [
        {"entity": "storage-pool", "name": "default", "key": "source", "value": ""}
    ]
    bag = deployment.unit_bags[0]
    assert bag["hostname"] == "node-a" and PROTOCOL_1.fullmatch(bag["version"])
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 1/1 members online, 1 units; cluster on 10.0.0.1:8443"
    )


def test_bootstrap_happens_once(deployment: Deployment) -> None:
    """A second hook must not re-initialise: LXD would refuse a second cluster section."""
    first = bootstrapped(deployment)
    deployment.run(0, hook("config_changed"))
    deployment.run(0, hook("start"))
    assert len(first.lxd.preseeds) == 1
    assert deployment.members() == {"lxd/0": "node-a"}


# --- the leader issues tokens -----------------------------------------------------


HELD = (
    "{} of {} planned units have announced themselves: join tokens go out when all have, "
    "or at the next update-status"
)


def test_leader_holds_first_tokens_until_every_planned_unit_has_announced(
    deployment: Deployment,
) -> None:
    """Units deployed together get their tokens in one leader hook: Juju shows them one by one."""
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    deployment.add_unit(3, "node-d", "10.0.0.4")  # planned and in the relation, still silent
    held = deployment.run(0, relation_changed(2))

    assert held.unit_status == testing.WaitingStatus(HELD.format(3, 4))
    assert not {"lxd/1", "lxd/2", "lxd/3"} & set(deployment.app_bag)
    assert deployment.app_secrets == {}
    assert first.lxd.cluster.join_tokens() == []

    deployment.unit_bags[3] = announce("node-d")
    out = deployment.run(0, relation_changed(3))

    assert out.unit_status.name == "active"
    tokens = {}
    for unit, hostname in ((1, "node-b"), (2, "node-c"), (3, "node-d")):
        secret = deployment.token_secret(unit)
        assert secret.owner == "app"
        assert secret.remote_grants == {PEER_ID: frozenset({f"lxd/{unit}"})}
        assert set(content_of(secret)) == {"token"}
        decoded = decode_join_token(content_of(secret)["token"])
        assert decoded.server_name == hostname and not decoded.expired()
        tokens[unit] = decoded.token
    assert len(deployment.app_secrets) == 3
    pending = {t.server_name: t.token for t in first.lxd.cluster.join_tokens()}
    assert pending == {"node-b": tokens[1], "node-c": tokens[2], "node-d": tokens[3]}
    for bag in deployment.every_bag():
        for value in bag.values():
            for token in tokens.values():
                assert token not in value
                assert token_payload(token)["secret"] not in value


def test_units_holding_tokens_join_one_at_a_time(deployment: Deployment) -> None:
    """LXD 5.0 can wedge a daemon that joins while another join is under way."""
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    third = deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    deployment.run(0, relation_changed(2))  # both tokens in one hook

    out = deployment.run(2, relation_changed(0))  # lxd/2's hook happens to run first
    assert out.unit_status == testing.WaitingStatus(
        "waiting for lxd/1 to join first: LXD takes one join at a time"
    )
    assert third.lxd.preseeds == []
    deployment.run(1, relation_changed(0))
    deployment.run(2, relation_changed(1))  # lxd/1 said `joined`
    assert cluster_names(first) == ["node-a", "node-b", "node-c"]


def test_update_status_joins_when_the_unit_ahead_never_does(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))  # its machine died
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    deployment.run(0, relation_changed(2))
    assert deployment.run(2, relation_changed(0)).unit_status.name == "waiting"
    out = deployment.run(2, hook("update_status"))
    assert deployment.unit_bags[2]["joined"] == "node-c"
    assert out.unit_status.name == "active"
    assert cluster_names(first) == ["node-a", "node-c"]


def test_update_status_issues_tokens_held_for_a_unit_that_never_comes_up(
    deployment: Deployment,
) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.add_unit(2, "node-c", "10.0.0.3")  # its machine never finishes provisioning
    deployment.run(0, relation_changed(1))
    assert deployment.app_secrets == {}

    out = deployment.run(0, hook("update_status"))

    assert [t.server_name for t in first.lxd.cluster.join_tokens()] == ["node-b"]
    assert decode_join_token(deployment.token_of(1)).server_name == "node-b"
    assert out.unit_status.name == "active"
    deployment.run(1, relation_changed(0))
    assert cluster_names(first) == ["node-a", "node-b"]

    deployment.unit_bags[2] = announce("node-c")  # it came up after all: served at once
    deployment.run(0, relation_changed(2))
    assert decode_join_token(deployment.token_of(2)).server_name == "node-c"


def test_a_replacement_token_is_never_held(deployment: Deployment) -> None:
    bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    first_token = deployment.app_bag["lxd/1"]
    deployment.add_unit(2, "node-c", "10.0.0.3")  # `juju add-unit`: planned, not yet announced
    deployment.unit_bags[1]["expired-token"] = first_token
    out = deployment.run(0, relation_changed(1))
    assert deployment.app_bag["lxd/1"] not in ("", first_token)
    assert decode_join_token(deployment.token_of(1)).server_name == "node-b"
    assert out.unit_status.name == "active"  # nothing is held: node-c never asked


def test_leader_issues_nothing_more_while_a_token_is_on_its_way(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    issued = deployment.token_of(1)
    deployment.run(0, relation_changed(1))
    deployment.run(0, hook("update_status"))
    assert deployment.token_of(1) == issued
    assert len(deployment.app_secrets) == 1
    assert [t.token for t in first.lxd.cluster.join_tokens()] == [issued]


# --- a unit joins -----------------------------------------------------------------


def test_unit_joins_with_its_granted_token_and_says_so(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    token = deployment.token_of(1)
    local = testing.Storage("local")
    out = deployment.run(
        1, relation_changed(0), deployment.state_for(1, storages=frozenset({local}))
    )

    (preseed,) = second.lxd.preseeds
    assert preseed == {
        "cluster": {
            "enabled": True,
            "server_name": "node-b",
            "server_address": "10.0.0.2:8443",
            "cluster_token": token,
            "member_config": [
                {
                    "entity": "storage-pool",
                    "name": "default",
                    "key": "source",
                    "value": str(local.get_filesystem(deployment.ctx(1))),
                }
            ],
        }
    }
    assert cluster_names(first) == cluster_names(second) == ["node-a", "node-b"]
    assert first.lxd.cluster.join_tokens() == []  # a token works once
    assert deployment.unit_bags[1]["joined"] == "node-b"
    assert "expired-token" not in deployment.unit_bags[1]
    assert out.unit_status == testing.ActiveStatus(
        "cluster: member node-b; cluster on 10.0.0.2:8443"  # counting is the leader's
    )


def test_unit_without_a_block_device_joins_with_the_clusters_defaults(
    deployment: Deployment,
) -> None:
    bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    deployment.run(1, relation_changed(0))
    assert second.lxd.preseeds[0]["cluster"]["member_config"] == [
        {"entity": "storage-pool", "name": "default", "key": "source", "value": ""}
    ]
    assert deployment.unit_bags[1]["joined"] == "node-b"


def test_unit_waits_for_its_token(deployment: Deployment) -> None:
    bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2")
    out = deployment.run(1, relation_changed(0))
    assert deployment.unit_bags[1]["hostname"] == "node-b"
    assert PROTOCOL_1.fullmatch(deployment.unit_bags[1]["version"])
    assert out.unit_status == testing.WaitingStatus("waiting for the leader to issue a join token")
    assert second.lxd.preseeds == []


def test_unit_with_an_expired_token_asks_for_a_new_one_and_waits(
    deployment: Deployment,
) -> None:
    first = bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    secret = deployment.token_secret(1)
    stale = expired_copy(deployment.token_of(1))
    assert decode_join_token(stale).expired(), "the test's token must really be expired"
    deployment.app_secrets[secret.id] = replace(
        secret, tracked_content={"token": stale}, latest_content={"token": stale}
    )

    out = deployment.run(1, relation_changed(0))
    assert deployment.unit_bags[1]["expired-token"] == secret.id
    assert "joined" not in deployment.unit_bags[1]
    assert out.unit_status == testing.WaitingStatus(
        "the join token expired: asked the leader for a new one"
    )
    assert second.lxd.preseeds == [], "an expired token is not even tried"
    assert cluster_names(first) == ["node-a"]

    again = deployment.run(1, hook("update_status"))
    assert again.unit_status == testing.WaitingStatus(
        "waiting for the leader to replace an expired join token"
    )
    assert second.lxd.preseeds == []


def test_lxd_refusing_the_join_asks_for_a_new_token(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    assert first.lxd.cluster.revoke_join_tokens("node-b") == 1  # e.g. by an operator

    out = deployment.run(1, relation_changed(0))
    assert deployment.unit_bags[1]["expired-token"] == deployment.app_bag["lxd/1"]
    assert "joined" not in deployment.unit_bags[1]
    assert out.unit_status.name == "waiting"
    assert out.unit_status.message.startswith("LXD refused the join")
    assert "No matching cluster join operation found" in out.unit_status.message
    assert out.unit_status.message.endswith("asked the leader for a new token")
    assert not second.lxd.cluster.enabled
    assert cluster_names(first) == ["node-a"]


BAD_SOURCE = (
    "LXD refused the preseed: Error: Failed to join cluster: Failed to initialize member: "
    "Failed to initialize storage pools and networks: Failed to create storage pool "
    "\"default\": Source path '/dev/vdb' doesn't exist"
)


def test_lxd_refusing_the_join_for_this_machine_blocks_and_keeps_the_token(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new token would fail the same way: the operator is told, and the join retried."""
    first = bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    deployment.run(0, relation_changed(2))
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", Refuses(BAD_SOURCE))
        out = deployment.run(1, relation_changed(0))
    assert out.unit_status == testing.BlockedStatus(
        "LXD refused the join (Failed to initialize member: Failed to initialize storage "
        'pools and networks: Failed to create storage pool "default": Source path '
        "'/dev/vdb' doesn't exist): fix this machine or the charm's settings; the join is "
        "retried on the next hook"
    )
    assert "expired-token" not in deployment.unit_bags[1]
    assert deployment.unit_bags[1]["join-refused"] == deployment.app_bag["lxd/1"]
    assert sorted(t.server_name for t in first.lxd.cluster.join_tokens()) == ["node-b", "node-c"]

    deployment.run(2, relation_changed(1))  # lxd/1 is not joining now: lxd/2 goes ahead
    assert deployment.unit_bags[2]["joined"] == "node-c"

    fixed = deployment.run(1, hook("update_status"))  # the operator fixed the machine
    assert deployment.unit_bags[1]["joined"] == "node-b"
    assert "join-refused" not in deployment.unit_bags[1]
    assert fixed.unit_status.name == "active"
    assert cluster_names(first) == ["node-a", "node-b", "node-c"]


def test_an_unreachable_cluster_keeps_the_token_and_waits(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    unreachable = Refuses(
        "LXD refused the preseed: Error: Failed to join cluster: Unable to connect to any "
        "of the cluster members specified in join token"
    )
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", unreachable)
        patched.setattr("lxd_charm.cluster_join.JOIN_RETRY_SECONDS", 0.0)
        out = deployment.run(1, relation_changed(0))
    assert out.unit_status.name == "waiting"
    assert out.unit_status.message.endswith("retrying on the next hook")
    assert "Unable to connect" in out.unit_status.message
    assert "expired-token" not in deployment.unit_bags[1]


def test_a_join_lxd_took_in_a_failed_hook_is_recorded_not_repeated(
    deployment: Deployment,
) -> None:
    """Juju drops a failed hook's data and stored state, but LXD kept the join."""
    first = bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    before = deployment.state_for(1)
    bag_before = dict(deployment.unit_bags[1])
    deployment.run(1, relation_changed(0))
    assert cluster_names(first) == ["node-a", "node-b"]
    deployment.unit_bags[1] = bag_before  # as if the hook had failed after joining
    deployment.states.pop(1)

    out = deployment.run(
        1, relation_changed(0), replace(before, unit_status=testing.UnknownStatus())
    )
    assert len(second.lxd.preseeds) == 1, "no second join"
    assert deployment.unit_bags[1]["joined"] == "node-b"
    assert "expired-token" not in deployment.unit_bags[1]
    assert out.unit_status.name == "active"
    deployment.run(0, relation_changed(1))
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b"}


def test_a_machine_in_another_cluster_is_refused(deployment: Deployment) -> None:
    bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    second.lxd.cluster.enable("node-b", "10.0.0.2:8443")  # someone else's cluster
    deployment.run(0, relation_changed(1))
    out = deployment.run(1, relation_changed(0))
    assert out.unit_status == testing.BlockedStatus(
        "this machine's LXD is already a member of another cluster (as 'node-b'): remove it "
        "from that cluster, or deploy this unit to another machine"
    )
    assert "joined" not in deployment.unit_bags[1]


def test_leader_replaces_a_token_reported_expired(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    second = deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    old_id, old_token = deployment.app_bag["lxd/1"], deployment.token_of(1)
    deployment.unit_bags[1]["expired-token"] = old_id

    deployment.run(0, relation_changed(1))
    new_id = deployment.app_bag["lxd/1"]
    assert new_id != old_id
    assert old_id not in deployment.app_secrets, "the old token's secret is removed"
    assert deployment.token_secret(1).remote_grants == {PEER_ID: frozenset({"lxd/1"})}
    new_token = deployment.token_of(1)
    assert new_token != old_token
    assert [t.token for t in first.lxd.cluster.join_tokens()] == [new_token]

    deployment.run(1, relation_changed(0))  # the new token works
    assert deployment.unit_bags[1]["joined"] == "node-b"
    assert "expired-token" not in deployment.unit_bags[1]
    assert cluster_names(second) == ["node-a", "node-b"]


def test_report_about_an_older_token_gets_no_new_one(deployment: Deployment) -> None:
    """The report arrived after the leader had replaced that token already."""
    bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    current = deployment.app_bag["lxd/1"]
    deployment.unit_bags[1]["expired-token"] = "secret:an-older-one"
    deployment.run(0, relation_changed(1))
    assert deployment.app_bag["lxd/1"] == current
    assert list(deployment.app_secrets) == [current]


# --- the leader confirms joins ----------------------------------------------------


def test_leader_confirms_a_join_lxd_lists_and_removes_its_token(deployment: Deployment) -> None:
    bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    deployment.run(1, relation_changed(0))
    assert deployment.unit_bags[1]["joined"] == "node-b"

    out = deployment.run(0, relation_changed(1))
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "lxd/1" not in deployment.app_bag
    assert deployment.app_secrets == {}
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def test_leader_does_not_confirm_a_join_lxd_does_not_list(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    issued = deployment.app_bag["lxd/1"]
    deployment.unit_bags[1]["joined"] = "node-b"  # claimed, but LXD has no such member
    deployment.run(0, relation_changed(1))
    assert deployment.members() == {"lxd/0": "node-a"}
    assert deployment.app_bag["lxd/1"] == issued
    assert cluster_names(first) == ["node-a"]


def test_three_units_form_one_cluster_in_three_leader_hooks(deployment: Deployment) -> None:
    """Bootstrap, one hook issuing both tokens, one confirming both joins."""
    a, b, c = formed(deployment, 3)
    leader_status = deployment.outputs[0].unit_status
    assert leader_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.1:8443"
    )
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/2": "node-c"}
    assert [key for key in deployment.app_bag if "/" in key] == []
    assert deployment.app_secrets == {}
    assert a.lxd.cluster.join_tokens() == []
    assert cluster_names(c) == ["node-a", "node-b", "node-c"]
    assert b.lxd.config["cluster.https_address"] == "10.0.0.2:8443"
    for unit in (1, 2):
        assert deployment.outputs[unit].unit_status.name == "active"


# --- the leader refuses -----------------------------------------------------------


def test_hostname_already_in_use_blocks_and_gets_no_token(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-a", "10.0.0.2", announce("node-a"))
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    out = deployment.run(0, relation_changed(1))
    assert out.unit_status == testing.BlockedStatus(
        "lxd/1 wants to join as 'node-a', which another unit already uses: "
        "give that machine another hostname"
    )
    assert "lxd/1" not in deployment.app_bag
    assert [t.server_name for t in first.lxd.cluster.join_tokens()] == ["node-c"]
    assert deployment.token_secret(2).remote_grants == {PEER_ID: frozenset({"lxd/2"})}


def test_two_waiting_units_announcing_one_hostname_get_one_token(
    deployment: Deployment,
) -> None:
    """LXD keeps one token per name: a second would revoke the first."""
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.add_unit(2, "node-b", "10.0.0.3", announce("node-b"))
    out = deployment.run(0, relation_changed(2))
    assert out.unit_status == testing.BlockedStatus(
        "lxd/2 wants to join as 'node-b', which another unit already uses: "
        "give that machine another hostname"
    )
    assert [t.server_name for t in first.lxd.cluster.join_tokens()] == ["node-b"]
    assert "lxd/2" not in deployment.app_bag
    deployment.run(1, relation_changed(0))
    deployment.run(0, relation_changed(1))
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert deployment.outputs[0].unit_status.name == "blocked"  # lxd/2 still needs renaming


def test_join_in_flight_is_not_taken_for_a_hostname_collision(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    before_join = dict(deployment.unit_bags[1])
    deployment.run(1, relation_changed(0))
    assert cluster_names(first) == ["node-a", "node-b"]
    deployment.unit_bags[1] = before_join  # lxd/1's hook has not been committed yet
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    out = deployment.run(0, relation_changed(2))
    assert out.unit_status.name == "active", out.unit_status.message


def test_unit_speaking_another_protocol_version_blocks(deployment: Deployment) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", {"version": "2.0", "hostname": "node-b"})
    out = deployment.run(0, relation_changed(1))
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("lxd/1 speak another cluster protocol version")
    assert "lxd/1" not in deployment.app_bag
    assert first.lxd.cluster.join_tokens() == []


# --- units leave ------------------------------------------------------------------


def test_departed_members_unit_is_removed_from_the_cluster(deployment: Deployment) -> None:
    a, _, _ = formed(deployment, 3)
    deployment.depart(2)
    out = deployment.run(0, relation_departed(2))
    assert cluster_names(a) == ["node-a", "node-b"]
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "removing" not in deployment.app_bag
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def test_non_leader_leaves_removals_to_the_leader(deployment: Deployment) -> None:
    a, b, _ = formed(deployment, 3)
    calls = b.lxd.calls
    deployment.depart(2)
    deployment.run(1, relation_departed(2))
    assert b.lxd.calls == calls
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]


def test_member_holding_instances_stays_until_they_are_gone(deployment: Deployment) -> None:
    a, b = formed(deployment, 2)
    a.lxd.cluster.launch("keepme", target="node-b")
    deployment.depart(1)
    out = deployment.run(0, relation_departed(1))

    assert out.unit_status == testing.BlockedStatus(
        "cannot remove lxd/1: member 'node-b' still holds 1 instance(s) (keepme); "
        "move or delete them before removing the member"
    )
    assert json.loads(deployment.app_bag["removing"]) == {"lxd/1": "node-b"}
    assert cluster_names(a) == ["node-a", "node-b"]
    assert a.lxd.cluster.instances_on("node-b") == ["keepme"]

    still = deployment.run(0, hook("update_status"))  # nothing changed: still refused
    assert still.unit_status.name == "blocked"
    assert a.lxd.cluster.instances_on("node-b") == ["keepme"]

    a.lxd.cluster.delete_instance("keepme")  # the operator moved it away
    done = deployment.run(0, hook("update_status"))
    assert cluster_names(a) == ["node-a"]
    assert not b.lxd.cluster.enabled
    assert deployment.members() == {"lxd/0": "node-a"}
    assert "removing" not in deployment.app_bag
    assert done.unit_status == testing.ActiveStatus(
        "cluster: 1/1 members online, 1 units; cluster on 10.0.0.1:8443"
    )


def test_waiting_unit_that_departs_loses_its_token(deployment: Deployment) -> None:
    bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    deployment.depart(1)
    deployment.run(0, relation_departed(1))
    assert "lxd/1" not in deployment.app_bag
    assert deployment.app_secrets == {}


def test_refused_removal_does_not_hold_up_joins(deployment: Deployment) -> None:
    a, _ = formed(deployment, 2)
    a.lxd.cluster.launch("keepme", target="node-b")
    deployment.depart(1)
    deployment.run(0, relation_departed(1))
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    out = deployment.run(0, relation_changed(2))
    assert out.unit_status.message.startswith("cannot remove lxd/1")
    assert [t.server_name for t in a.lxd.cluster.join_tokens()] == ["node-c"]
    assert decode_join_token(deployment.token_of(2)).server_name == "node-c"


def test_leader_applies_its_own_config_while_a_removal_is_refused(deployment: Deployment) -> None:
    """Another unit's member is the cluster's problem: the leader's own machine still converges."""
    a, _ = formed(deployment, 2)
    a.lxd.cluster.launch("keepme", target="node-b")
    deployment.depart(1)
    deployment.run(0, relation_departed(1))
    listening = deployment.state_for(0, config={"mode": "cluster", "lxd-listen-metrics": True})
    out = deployment.run(0, hook("config_changed"), listening)
    assert out.unit_status.message.startswith("cannot remove lxd/1")
    assert a.lxd.config["core.metrics_address"].endswith(":8444")
    assert testing.TCPPort(8444) in out.opened_ports


def test_unit_that_departs_before_its_join_is_confirmed_leaves_no_member(
    deployment: Deployment,
) -> None:
    first = bootstrapped(deployment)
    deployment.add_unit(1, "node-b", "10.0.0.2", announce("node-b"))
    deployment.run(0, relation_changed(1))
    deployment.run(1, relation_changed(0))
    assert cluster_names(first) == ["node-a", "node-b"]
    deployment.depart(1)  # Juju drops the leader's pending relation-changed for lxd/1
    deployment.run(0, relation_departed(1))
    assert deployment.app_secrets == {}
    assert cluster_names(first) == ["node-a"]


# --- leadership moves -------------------------------------------------------------


def test_new_leader_finishes_a_removal_the_old_one_was_refused(deployment: Deployment) -> None:
    a, b, c = formed(deployment, 3)
    a.lxd.cluster.launch("keepme", target="node-c")
    deployment.depart(2)
    deployment.run(0, relation_departed(2))
    assert json.loads(deployment.app_bag["removing"]) == {"lxd/2": "node-c"}

    a.lxd.cluster.delete_instance("keepme")
    deployment.leader = 1
    out = deployment.run(1, hook("leader_elected"))
    assert cluster_names(b) == ["node-a", "node-b"]
    assert not c.lxd.cluster.enabled
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "removing" not in deployment.app_bag
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.2:8443"
    )


def test_new_leader_removes_the_member_of_the_leader_that_left(deployment: Deployment) -> None:
    a, b, _ = formed(deployment, 3)
    deployment.depart(0)
    deployment.run(0, relation_departed(0))  # the old leader's own hook does nothing
    assert cluster_names(b) == ["node-a", "node-b", "node-c"]
    deployment.leader = 1
    deployment.run(1, hook("leader_elected"))
    assert cluster_names(b) == ["node-b", "node-c"]
    assert not a.lxd.cluster.enabled
    assert deployment.members() == {"lxd/1": "node-b", "lxd/2": "node-c"}


def test_new_leader_keeps_the_token_outstanding(deployment: Deployment) -> None:
    a, b = formed(deployment, 2)
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    deployment.run(0, relation_changed(2))
    issued_id, issued_token = deployment.app_bag["lxd/2"], deployment.token_of(2)

    deployment.leader = 1
    out = deployment.run(1, hook("leader_elected"))
    assert out.unit_status.name == "active"
    assert deployment.app_bag["lxd/2"] == issued_id
    assert list(deployment.app_secrets) == [issued_id]
    assert [t.token for t in b.lxd.cluster.join_tokens()] == [issued_token]

    deployment.run(2, relation_changed(0))  # the old leader's token still works
    deployment.run(1, relation_changed(2))
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    assert deployment.members() == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/2": "node-c"}
    assert deployment.app_secrets == {}


# --- every member -----------------------------------------------------------------


@pytest.mark.parametrize("unit", [0, 1], ids=["leader", "member"])
def test_moving_the_cluster_binding_blocks_until_undone(deployment: Deployment, unit: int) -> None:
    machines = formed(deployment, 2)
    old = machines[unit].address
    moved = testing.Network("cluster", [testing.BindAddress([testing.Address("10.9.9.9")])])
    out = deployment.run(
        unit, hook("config_changed"), deployment.state_for(unit, networks=frozenset({moved}))
    )
    assert out.unit_status == testing.BlockedStatus(
        f"the cluster binding moved from {old} to 10.9.9.9:8443: "
        "LXD cannot change a member's cluster address; bind cluster back"
    )
    assert machines[unit].lxd.config["cluster.https_address"] == old
    assert [m.url for m in machines[0].lxd.cluster.members()] == [
        "https://10.0.0.1:8443",
        "https://10.0.0.2:8443",
    ]

    bound_back = frozenset({machines[unit].binding})
    undone = deployment.run(
        unit, hook("config_changed"), deployment.state_for(unit, networks=bound_back)
    )
    assert undone.unit_status.name == "active"


def test_leader_status_counts_members_online_and_units(deployment: Deployment) -> None:
    a, _, _ = formed(deployment, 3)
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    deployment.add_unit(3, "node-d", "10.0.0.4")  # in the relation, not a member yet
    out = deployment.run(0, hook("update_status"))
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/3 members online, 4 units; cluster on 10.0.0.1:8443"
    )


def test_leader_lists_the_members_once_per_peer_hook(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token plan and the status count share one listing: hooks pay per LXD call."""
    a, _ = formed(deployment, 2)
    listings = []
    real_members = a.lxd.cluster.members
    monkeypatch.setattr(a.lxd.cluster, "members", lambda: listings.append(1) or real_members())
    out = deployment.run(0, relation_changed(1))
    assert len(listings) == 1
    assert out.unit_status.message.startswith("cluster: 2/2 members online, 2 units")


def test_member_ignores_its_peers_changes(deployment: Deployment) -> None:
    """Only the leader and joining units have work in a peer change: members skip LXD."""
    _, b = formed(deployment, 2)
    deployment.add_unit(2, "node-c", "10.0.0.3", announce("node-c"))
    deployment.run(0, relation_changed(2))  # the application bag changes
    calls, bag = b.lxd.calls, dict(deployment.unit_bags[1])
    out = deployment.run(1, relation_changed(2))
    assert b.lxd.calls == calls
    assert deployment.unit_bags[1] == bag
    assert out.unit_status.name == "active"


# --- the fake agrees with real LXD (tests/functional/test_lxd_cluster.py) -----------


def fake_daemon(address: str) -> FakeLxd:
    """A standalone daemon with a dir pool, as the functional tier's daemons start."""
    lxd = FakeLxd()
    lxd.apply_preseed(
        {
            "config": {"core.https_address": address},
            "storage_pools": [{"name": "local", "driver": "dir"}],
        }
    )
    return lxd


def fake_join(leader: FakeLxd, joiner: FakeLxd, name: str, address: str) -> None:
    token = leader.cluster.add_join_token(name)
    joiner.join_cluster(name, address, token.token, leader.cluster.member_config())


def test_fake_cluster_forms_grows_and_shrinks_like_lxd() -> None:
    a, b, c = (fake_daemon(f"127.0.0.{n}:8443") for n in (1, 2, 3))
    a.cluster.enable("m1", "127.0.0.1:8443")
    assert a.cluster.enabled and a.cluster.server_name == "m1"
    assert a.cluster.member_config() == [
        {"entity": "storage-pool", "name": "local", "key": "source", "value": ""}
    ]
    fake_join(a, b, "m2", "127.0.0.2:8443")
    fake_join(a, c, "m3", "127.0.0.3:8443")
    assert sorted(m.name for m in a.cluster.members()) == ["m1", "m2", "m3"]
    assert sorted(m.name for m in c.cluster.members()) == ["m1", "m2", "m3"]
    assert all(m.online for m in a.cluster.members())

    a.cluster.launch("keepme", target="m3")
    with pytest.raises(MemberHasInstancesError, match="keepme") as refused:
        a.cluster.remove_member("m3")
    assert refused.value.instances == ["keepme"]
    assert len(a.cluster.members()) == 3
    a.cluster.delete_instance("keepme")
    a.cluster.remove_member("m3")
    assert sorted(m.name for m in a.cluster.members()) == ["m1", "m2"]


def test_fake_join_tokens_are_listed_replaced_and_revoked_like_lxd() -> None:
    a = fake_daemon("127.0.0.1:8443")
    a.cluster.enable("m1", "127.0.0.1:8443")
    first = a.cluster.add_join_token("newbie")
    second = a.cluster.add_join_token("newbie")
    pending = a.cluster.join_tokens()
    assert [t.server_name for t in pending] == ["newbie"], "a new token replaces the old one"
    assert pending[0].token == second.token != first.token
    decoded = decode_join_token(second.token)
    assert decoded.server_name == "newbie" and decoded.expires_at is not None
    assert not decoded.expired()
    assert decoded.expired(datetime.now(timezone.utc) + timedelta(days=30))
    assert a.cluster.revoke_join_tokens("newbie") == 1
    assert a.cluster.join_tokens() == []


def test_fake_refuses_what_lxd_refuses() -> None:
    a = fake_daemon("127.0.0.1:8443")
    with pytest.raises(ClusterError, match="not clustered"):
        a.cluster.add_join_token("x")
    assert a.cluster.members() == []
    a.cluster.enable("m1", "127.0.0.1:8443")
    a.cluster.enable("m1", "127.0.0.1:8443")  # idempotent
    with pytest.raises(ClusterError, match="already clustered"):
        a.cluster.enable("other-name", "127.0.0.1:8443")
    with pytest.raises(MemberExistsError, match="m1"):
        a.cluster.add_join_token("m1")
    with pytest.raises(MemberNotFoundError, match="ghost"):
        a.cluster.remove_member("ghost")

    b = fake_daemon("127.0.0.2:8443")
    used = a.cluster.add_join_token("m2")
    with pytest.raises(LxdApiError, match="Missing member config"):
        b.join_cluster("m2", "127.0.0.2:8443", used.token)
    b.join_cluster("not-m2", "127.0.0.2:8443", used.token, a.cluster.member_config())
    assert b.cluster.server_name == "m2"  # the token's name wins, as in LXD 5.0
    with pytest.raises(LxdApiError, match="No matching cluster join operation found"):
        fake_daemon("127.0.0.3:8443").join_cluster(
            "m2", "127.0.0.3:8443", used.token, a.cluster.member_config()
        )  # and works once
