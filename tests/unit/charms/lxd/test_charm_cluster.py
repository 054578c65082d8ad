"""The LXD charm in cluster mode, hook by hook: databags, secrets and LXD in, the same out.

Each unit runs on its own `Machine` (hostname, cluster address, its own
`FakeLxd`); the machines' daemons form one LXD cluster through `FakeCluster`
as real daemons would, so what one unit's hook did to LXD is what the next
unit's hook finds. The Juju simulator (`tests.harness.juju_sim.Sim`) plays
Juju's part between hooks: it hands each unit the application databag, its
peers' bags and the secrets granted to it, and keeps what the unit's hook
left behind; each test chooses which unit runs which hook next
(`Sim.run_hook`), to check each step of the protocol from the side that
takes it. Tests drive the charm only through events and read only what came
out: the protocol under test is docs/interfaces/lxd-cluster.md.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
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
from lxd_common.lxd import ClusterMember, decode_join_token
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeLxd, go_time, token_payload
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim, SimUnit

EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)
PROTOCOL_1 = re.compile(r"1\.\d+")
"""Any 1.x version of the peer protocol: what every unit of this charm must speak."""


def announce(hostname: str, **extra: str) -> dict[str, str]:
    """A unit bag as a peer's charm leaves it: the protocol version and its member name.

    1.1 is the oldest version this charm's protocol writes (1.0 is the earlier
    charm's, see `lxd_charm.mixed`): any 1.x peer of ours is served alike.
    """
    return {"version": "1.1", "hostname": hostname, **extra}


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


@pytest.fixture
def sim(charm_module: ModuleType, host: FakeHost) -> Sim:
    """The `lxd` application in cluster mode; each unit's hooks run on its own `Machine`.

    Units see only the application secrets granted to them, so the tests
    prove the leader grants each token to its unit.
    """
    state_root = host.state_dir

    def on_its_machine(unit: SimUnit) -> None:
        machine: Machine = unit.machine
        host.fake_lxd, host.hostname = machine.lxd, machine.hostname
        host.state_dir = state_root / f"unit-{unit.number}"

    return Sim(
        charm_module.LxdCharm,
        app="lxd",
        peer="cluster",
        config={"mode": "cluster"},
        before_hook=on_its_machine,
        networks=lambda unit: [unit.machine.binding],
        resources=EMPTY_RESOURCES,
        peers_read_app_secrets=False,
    )


def add_unit(
    sim: Sim, unit: int, hostname: str, ip: str, said: dict[str, str] | None = None
) -> Machine:
    """Unit ``unit`` in the relation; ``said`` is its bag so far (none: no hook of it ran yet)."""
    assert sim.next_number == unit, "units are added in order"
    machine = Machine(hostname, ip)
    sim.place_unit(said, machine=machine)
    return machine


def run(sim: Sim, unit: int, kind: str, source: int | None = None, **state: Any) -> testing.State:
    """Run hook ``kind`` of unit ``unit`` (from peer ``source``) and return what it left."""
    return sim.run_hook(f"lxd/{unit}", kind, None if source is None else f"lxd/{source}", **state)


def bag_of(sim: Sim, unit: int) -> dict[str, str]:
    return sim.unit_data[f"lxd/{unit}"]


def update_bag(sim: Sim, unit: int, keys: dict[str, str]) -> None:
    """As if a hook of ``unit`` had added ``keys`` to its bag."""
    sim.write_unit_bag(f"lxd/{unit}", {**bag_of(sim, unit), **keys})


def output(sim: Sim, unit: int) -> testing.State:
    """The State the unit's last hook left."""
    return sim.units[f"lxd/{unit}"].state


def members(sim: Sim) -> dict[str, str]:
    """The ``members`` map the leader published."""
    published: dict[str, str] = json.loads(sim.app_data["members"])
    return published


def content_of(secret: testing.Secret) -> dict[str, str]:
    """A secret's latest content: what its owner sees, and a reader after a refresh."""
    assert secret.latest_content is not None
    return dict(secret.latest_content)


def token_secret(sim: Sim, unit: int) -> testing.Secret:
    """The secret whose id the leader published for ``unit``."""
    return sim.app_secrets[sim.app_data[f"lxd/{unit}"]]


def token_of(sim: Sim, unit: int) -> str:
    return content_of(token_secret(sim, unit))["token"]


def every_bag(sim: Sim) -> Iterable[dict[str, str]]:
    yield sim.app_data
    yield from sim.unit_data.values()


def cluster_names(machine: Machine) -> list[str]:
    """The members LXD lists, asked on ``machine`` (any member answers for all)."""
    return sorted(member.name for member in machine.lxd.cluster.members())


def bootstrapped(sim: Sim) -> Machine:
    """Unit 0 leads and has bootstrapped the cluster as node-a."""
    first = add_unit(sim, 0, "node-a", "10.0.0.1")
    run(sim, 0, "install")
    assert cluster_names(first) == ["node-a"]
    return first


def formed(sim: Sim, count: int) -> list[Machine]:
    """Units 0..count-1 (node-a, node-b...) are members, leader 0 has confirmed them all."""
    machines = [bootstrapped(sim)]
    for unit in range(1, count):
        hostname = f"node-{chr(ord('a') + unit)}"
        machines.append(add_unit(sim, unit, hostname, f"10.0.0.{unit + 1}"))
        run(sim, unit, "relation_changed", 0)  # announces its hostname
    run(sim, 0, "relation_changed", 1)  # issues every token
    for unit in range(1, count):
        run(sim, unit, "relation_changed", 0)  # joins
    run(sim, 0, "relation_changed", 1)  # confirms every join
    assert cluster_names(machines[0]) == sorted(m.hostname for m in machines)
    assert set(members(sim)) == {f"lxd/{unit}" for unit in range(count)}
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
    sim: Sim,
) -> None:
    first = add_unit(sim, 0, "node-a", "10.0.0.1")
    out = run(sim, 0, "install")

    (preseed,) = first.lxd.preseeds
    assert preseed["config"]["cluster.https_address"] == "10.0.0.1:8443"
    assert preseed["cluster"] == {"server_name": "node-a", "enabled": True}
    assert preseed["storage_pools"] == [{"name": "default", "driver": "dir"}]
    assert [(m.name, m.url, m.online) for m in first.lxd.cluster.members()] == [
        ("node-a", "https://10.0.0.1:8443", True)
    ]
    assert members(sim) == {"lxd/0": "node-a"}
    assert PROTOCOL_1.fullmatch(sim.app_data["version"])
    assert json.loads(sim.app_data["member_config"]) == first.lxd.cluster.member_config()
    assert json.loads(sim.app_data["member_config"]) == [
        {"entity": "storage-pool", "name": "default", "key": "source", "value": ""}
    ]
    bag = bag_of(sim, 0)
    assert bag["hostname"] == "node-a" and PROTOCOL_1.fullmatch(bag["version"])
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 1/1 members online, 1 units; cluster on 10.0.0.1:8443"
    )


def test_bootstrap_happens_once(sim: Sim) -> None:
    """A second hook must not re-initialise: LXD would refuse a second cluster section."""
    first = bootstrapped(sim)
    run(sim, 0, "config_changed")
    run(sim, 0, "start")
    assert len(first.lxd.preseeds) == 1
    assert members(sim) == {"lxd/0": "node-a"}


# --- the leader issues tokens -----------------------------------------------------


HELD = (
    "{} of {} planned units have announced themselves: join tokens go out when all have, "
    "or at the next update-status"
)


def test_leader_holds_first_tokens_until_every_planned_unit_has_announced(
    sim: Sim,
) -> None:
    """Units deployed together get their tokens in one leader hook: Juju shows them one by one."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    add_unit(sim, 3, "node-d", "10.0.0.4")  # planned and in the relation, still silent
    held = run(sim, 0, "relation_changed", 2)

    assert held.unit_status == testing.WaitingStatus(HELD.format(3, 4))
    assert not {"lxd/1", "lxd/2", "lxd/3"} & set(sim.app_data)
    assert sim.app_secrets == {}
    assert first.lxd.cluster.join_tokens() == []

    sim.write_unit_bag("lxd/3", announce("node-d"))
    out = run(sim, 0, "relation_changed", 3)

    assert out.unit_status == testing.WaitingStatus(
        "1/4 units are members; lxd/1 is not: joining with its token (+2 more)"
    )
    tokens = {}
    for unit, hostname in ((1, "node-b"), (2, "node-c"), (3, "node-d")):
        secret = token_secret(sim, unit)
        assert secret.owner == "app"
        assert secret.remote_grants == {sim.relation_id: frozenset({f"lxd/{unit}"})}
        assert set(content_of(secret)) == {"token"}
        decoded = decode_join_token(content_of(secret)["token"])
        assert decoded.server_name == hostname and not decoded.expired()
        tokens[unit] = decoded.token
    assert len(sim.app_secrets) == 3
    pending = {t.server_name: t.token for t in first.lxd.cluster.join_tokens()}
    assert pending == {"node-b": tokens[1], "node-c": tokens[2], "node-d": tokens[3]}
    for bag in every_bag(sim):
        for value in bag.values():
            for token in tokens.values():
                assert token not in value
                assert token_payload(token)["secret"] not in value


def test_a_holding_leader_counts_each_unit_juju_shows_it_without_asking_lxd(
    sim: Sim, snapd: FakeSnapd
) -> None:
    """Juju shows the leader its peers one hook at a time; a hook that only counts skips LXD."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    for unit, name in ((2, "node-c"), (3, "node-d")):
        add_unit(sim, unit, name, f"10.0.0.{unit + 1}")  # planned, silent
    assert run(sim, 0, "relation_changed", 1).unit_status == testing.WaitingStatus(
        HELD.format(2, 4)
    )
    asked = first.lxd.calls, list(snapd.calls)

    sim.write_unit_bag("lxd/2", announce("node-c"))
    out = run(sim, 0, "relation_changed", 2)

    assert out.unit_status == testing.WaitingStatus(HELD.format(3, 4))
    assert (first.lxd.calls, snapd.calls) == asked
    assert not {"lxd/1", "lxd/2"} & set(sim.app_data)

    sim.write_unit_bag("lxd/3", announce("node-d"))  # the last planned unit: tokens go out
    out = run(sim, 0, "relation_changed", 3)
    assert out.unit_status == testing.WaitingStatus(
        "1/4 units are members; lxd/1 is not: joining with its token (+2 more)"
    )
    assert {"lxd/1", "lxd/2", "lxd/3"} <= set(sim.app_data)


def test_a_holding_leader_still_refuses_a_name_a_member_uses(sim: Sim) -> None:
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3")  # planned, silent
    assert run(sim, 0, "relation_changed", 1).unit_status == testing.WaitingStatus(
        HELD.format(2, 3)
    )

    sim.write_unit_bag("lxd/2", announce("node-a"))  # the leader's own member name
    out = run(sim, 0, "relation_changed", 2)

    assert out.unit_status == testing.BlockedStatus(
        "lxd/2 wants to join as 'node-a', which another unit already uses: "
        "give that machine another hostname"
    )


def test_the_leader_hook_that_issues_three_tokens_lists_members_once(sim: Sim) -> None:
    """A peer event on the leader lists members once (see docs/benchmarks.md)."""
    first = bootstrapped(sim)
    for unit, hostname in ((1, "node-b"), (2, "node-c"), (3, "node-d")):
        add_unit(sim, unit, hostname, f"10.0.0.{unit + 1}", announce(hostname))
    before = first.lxd.cluster.listings
    run(sim, 0, "relation_changed", 3)
    assert len(first.lxd.cluster.join_tokens()) == 3
    assert first.lxd.cluster.listings - before == 1


def test_a_leader_peer_event_reads_its_own_member_from_its_one_listing(sim: Sim) -> None:
    first, _ = formed(sim, 2)
    listings, reads = first.lxd.cluster.listings, first.lxd.cluster.member_reads
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status.name == "active", out.unit_status.message
    assert first.lxd.cluster.listings - listings == 1
    assert first.lxd.cluster.member_reads == reads


def test_a_leaders_routine_peer_event_reads_the_server_config_only_to_connect(sim: Sim) -> None:
    """The connection's ``GET /1.0`` answers the cluster address check and the listeners'
    diff (`Machine.server_config`): the connection, the listing, the fan note's networks."""
    first, _ = formed(sim, 2)
    calls, reads = first.lxd.calls, first.lxd.server_reads
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status.name == "active", out.unit_status.message
    assert first.lxd.server_reads == reads
    assert first.lxd.calls - calls == 3


def test_a_members_routine_reconcile_reads_the_server_config_only_to_connect(sim: Sim) -> None:
    """The connection, its own member's record, the fan note's networks."""
    _, second = formed(sim, 2)
    calls, reads = second.lxd.calls, second.lxd.server_reads
    out = run(sim, 1, "config_changed")
    assert out.unit_status.name == "active", out.unit_status.message
    assert second.lxd.server_reads == reads
    assert second.lxd.calls - calls == 3


def test_a_joiner_waiting_for_its_token_asks_three_listings_whether_lxd_is_in_use(
    sim: Sim,
) -> None:
    """Its adoption check (`Machine.adopt_existing`) lists storage pools, networks and
    profiles and takes membership from its connection; the reconcile's own connection
    then proves LXD answers."""
    bootstrapped(sim)
    third = add_unit(sim, 1, "node-b", "10.0.0.2")
    out = run(sim, 1, "install")
    assert out.unit_status == testing.WaitingStatus("waiting for the leader to issue a join token")
    assert (third.lxd.calls, third.lxd.connections) == (5, 2)
    assert third.lxd.cluster.state_reads == 0


def test_a_members_peer_event_does_not_look_at_the_cos_relations(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a cluster only the leader serves COS: a member's peer event asks Juju nothing of it."""
    import lxd_charm.cos

    formed(sim, 2)
    asked: list[object] = []

    def wanted(*args: object) -> bool:
        asked.append(args)
        return False

    monkeypatch.setattr(lxd_charm.cos, "wanted", wanted)
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status.name == "active", out.unit_status.message
    assert asked == []


def test_a_leader_missing_from_its_own_listing_tends_no_member(sim: Sim) -> None:
    """Its member gone from LXD's listing (removed by hand): nothing of its own to tend."""
    first, _ = formed(sim, 2)
    database = first.lxd.cluster.database
    assert database is not None
    del database.members["node-a"]
    reads = first.lxd.cluster.member_reads
    run(sim, 0, "relation_changed", 1)  # the hook completes: no member to read a domain of
    assert first.lxd.cluster.member_reads == reads  # not asked for: it is not in the listing
    assert bag_of(sim, 0).get("evacuated", "") == ""


def test_units_holding_tokens_join_one_at_a_time(sim: Sim) -> None:
    """LXD 5.0 can wedge a daemon that joins while another join is under way."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    third = add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)  # both tokens in one hook

    out = run(sim, 2, "relation_changed", 0)  # lxd/2's hook happens to run first
    assert out.unit_status == testing.WaitingStatus(
        "waiting for lxd/1 to join first: LXD takes one join at a time"
    )
    assert third.lxd.preseeds == []
    run(sim, 1, "relation_changed", 0)
    run(sim, 2, "relation_changed", 1)  # lxd/1 said `joined`
    assert cluster_names(first) == ["node-a", "node-b", "node-c"]


def test_a_joiner_whose_wait_did_not_change_skips_the_peer_event(
    sim: Sim, snapd: FakeSnapd
) -> None:
    """Waiting for its turn, said already: the next peer event asks neither LXD nor snapd."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    third = add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)
    waiting = run(sim, 2, "relation_changed", 0)
    turn = "waiting for lxd/1 to join first: LXD takes one join at a time"
    assert waiting.unit_status == testing.WaitingStatus(turn)
    assert "join-status" not in bag_of(sim, 2)  # the leader tells a turn from the bags
    calls, snap_calls = third.lxd.calls, list(snapd.calls)

    again = run(sim, 2, "relation_changed", 0)  # the leader's bag moved; lxd/1 has not joined

    assert again.unit_status == testing.WaitingStatus(turn)
    assert (third.lxd.calls, snapd.calls) == (calls, snap_calls)
    run(sim, 1, "relation_changed", 0)
    joined = run(sim, 2, "relation_changed", 1)  # lxd/1 said `joined`: its turn
    assert joined.unit_status.name == "active", joined.unit_status.message
    assert cluster_names(first) == ["node-a", "node-b", "node-c"]


def test_a_turn_that_moves_renames_the_unit_ahead_without_writing_the_bag(
    sim: Sim, snapd: FakeSnapd
) -> None:
    """Each join moves every later unit's turn: its status follows, its bag stays.

    A changed unit bag wakes every peer (a hook each), and the leader says
    "joining with its token" of a unit holding one whatever its bag says.
    """
    first = bootstrapped(sim)
    for unit, name in ((1, "node-b"), (2, "node-c")):
        add_unit(sim, unit, name, f"10.0.0.{unit + 1}", announce(name))
    fourth = add_unit(sim, 3, "node-d", "10.0.0.4", announce("node-d"))
    run(sim, 0, "relation_changed", 3)  # every token in one hook
    assert run(sim, 3, "relation_changed", 0).unit_status == testing.WaitingStatus(
        "waiting for lxd/1 to join first: LXD takes one join at a time"
    )
    said = dict(bag_of(sim, 3))
    assert "join-status" not in said
    run(sim, 1, "relation_changed", 0)  # lxd/1 joins
    calls, snap_calls = fourth.lxd.calls, list(snapd.calls)

    out = run(sim, 3, "relation_changed", 1)  # lxd/1 said `joined`: lxd/2 is ahead now

    assert out.unit_status == testing.WaitingStatus(
        "waiting for lxd/2 to join first: LXD takes one join at a time"
    )
    assert bag_of(sim, 3) == said
    assert (fourth.lxd.calls, snapd.calls) == (calls, snap_calls)
    leader = run(sim, 0, "relation_changed", 1)
    assert leader.unit_status == testing.WaitingStatus(
        "2/4 units are members; lxd/2 is not: joining with its token (+1 more)"
    )
    run(sim, 2, "relation_changed", 0)
    joined = run(sim, 3, "relation_changed", 2)  # its turn
    assert joined.unit_status.name == "active", joined.unit_status.message
    assert cluster_names(first) == ["node-a", "node-b", "node-c", "node-d"]


def test_a_turn_wait_after_a_wait_of_another_kind_reconciles(sim: Sim) -> None:
    """Only a status that already was a turn wait is renamed without a reconcile.

    Its last hook waited on something else (here, as if LXD had not answered
    in time): that is checked again, not covered over with the turn.
    """
    bootstrapped(sim)
    for unit, name in ((1, "node-b"), (2, "node-c")):
        add_unit(sim, unit, name, f"10.0.0.{unit + 1}", announce(name))
    third = sim.units["lxd/2"].machine
    run(sim, 0, "relation_changed", 2)  # both tokens
    calls = third.lxd.calls

    out = run(
        sim, 2, "relation_changed", 0, unit_status=testing.WaitingStatus("LXD is not answering")
    )

    assert out.unit_status == testing.WaitingStatus(
        "waiting for lxd/1 to join first: LXD takes one join at a time"
    )
    assert third.lxd.calls > calls  # reconciled


def test_a_joiner_whose_token_came_does_not_skip_the_peer_event(sim: Sim) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2")
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status == testing.WaitingStatus("waiting for the leader to issue a join token")
    run(sim, 0, "relation_changed", 1)  # issues the token
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status.name == "active", out.unit_status.message
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert second.lxd.cluster.server_name == "node-b"


def test_update_status_joins_when_the_unit_ahead_never_does(sim: Sim) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))  # its machine died
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)
    assert run(sim, 2, "relation_changed", 0).unit_status.name == "waiting"
    out = run(sim, 2, "update_status")
    assert bag_of(sim, 2)["joined"] == "node-c"
    assert out.unit_status.name == "active"
    assert cluster_names(first) == ["node-a", "node-c"]


def test_update_status_issues_tokens_held_for_a_unit_that_never_comes_up(
    sim: Sim,
) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3")  # its machine never finishes provisioning
    run(sim, 0, "relation_changed", 1)
    assert sim.app_secrets == {}

    out = run(sim, 0, "update_status")

    assert [t.server_name for t in first.lxd.cluster.join_tokens()] == ["node-b"]
    assert decode_join_token(token_of(sim, 1)).server_name == "node-b"
    assert out.unit_status == testing.WaitingStatus(
        "1/3 units are members; lxd/1 is not: joining with its token (+1 more)"
    )
    run(sim, 1, "relation_changed", 0)
    assert cluster_names(first) == ["node-a", "node-b"]

    sim.write_unit_bag("lxd/2", announce("node-c"))  # it came up after all: served at once
    run(sim, 0, "relation_changed", 2)
    assert decode_join_token(token_of(sim, 2)).server_name == "node-c"


def test_a_replacement_token_is_never_held(sim: Sim) -> None:
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    first_token = sim.app_data["lxd/1"]
    add_unit(sim, 2, "node-c", "10.0.0.3")  # `juju add-unit`: planned, not yet announced
    update_bag(sim, 1, {"expired-token": first_token})
    out = run(sim, 0, "relation_changed", 1)
    assert sim.app_data["lxd/1"] not in ("", first_token)
    assert decode_join_token(token_of(sim, 1)).server_name == "node-b"
    # Nothing is held (node-c never asked): only the units on their way are shown.
    assert out.unit_status == testing.WaitingStatus(
        "1/3 units are members; lxd/1 is not: joining with its token (+1 more)"
    )


def test_leader_issues_nothing_more_while_a_token_is_on_its_way(sim: Sim) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    issued = token_of(sim, 1)
    run(sim, 0, "relation_changed", 1)
    run(sim, 0, "update_status")
    assert token_of(sim, 1) == issued
    assert len(sim.app_secrets) == 1
    assert [t.token for t in first.lxd.cluster.join_tokens()] == [issued]


# --- a unit joins -----------------------------------------------------------------


def test_unit_joins_with_its_granted_token_and_says_so(sim: Sim) -> None:
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    token = token_of(sim, 1)
    local = testing.Storage("local")
    out = run(sim, 1, "relation_changed", 0, storages=frozenset({local}))

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
                    "value": str(local.get_filesystem(sim.units["lxd/1"].ctx)),
                }
            ],
        }
    }
    assert cluster_names(first) == cluster_names(second) == ["node-a", "node-b"]
    assert first.lxd.cluster.join_tokens() == []  # a token works once
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert "expired-token" not in bag_of(sim, 1)
    assert out.unit_status == testing.ActiveStatus(
        "cluster: member node-b; cluster on 10.0.0.2:8443"  # counting is the leader's
    )


def test_unit_without_a_block_device_joins_with_the_clusters_defaults(
    sim: Sim,
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    run(sim, 1, "relation_changed", 0)
    assert second.lxd.preseeds[0]["cluster"]["member_config"] == [
        {"entity": "storage-pool", "name": "default", "key": "source", "value": ""}
    ]
    assert bag_of(sim, 1)["joined"] == "node-b"


def test_unit_waits_for_its_token(sim: Sim) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2")
    out = run(sim, 1, "relation_changed", 0)
    assert bag_of(sim, 1)["hostname"] == "node-b"
    assert PROTOCOL_1.fullmatch(bag_of(sim, 1)["version"])
    assert out.unit_status == testing.WaitingStatus("waiting for the leader to issue a join token")
    assert second.lxd.preseeds == []


def test_unit_with_an_expired_token_asks_for_a_new_one_and_waits(
    sim: Sim,
) -> None:
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    secret = token_secret(sim, 1)
    stale = expired_copy(token_of(sim, 1))
    assert decode_join_token(stale).expired(), "the test's token must really be expired"
    sim.set_secret_content(secret.id, {"token": stale})

    out = run(sim, 1, "relation_changed", 0)
    assert bag_of(sim, 1)["expired-token"] == secret.id
    assert "joined" not in bag_of(sim, 1)
    assert out.unit_status == testing.WaitingStatus(
        "the join token expired: asked the leader for a new one"
    )
    assert second.lxd.preseeds == [], "an expired token is not even tried"
    assert cluster_names(first) == ["node-a"]

    again = run(sim, 1, "update_status")
    assert again.unit_status == testing.WaitingStatus(
        "waiting for the leader to replace an expired join token"
    )
    assert second.lxd.preseeds == []


def test_lxd_refusing_the_join_asks_for_a_new_token(sim: Sim) -> None:
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    assert first.lxd.cluster.revoke_join_tokens("node-b") == 1  # e.g. by an operator

    out = run(sim, 1, "relation_changed", 0)
    assert bag_of(sim, 1)["expired-token"] == sim.app_data["lxd/1"]
    assert "joined" not in bag_of(sim, 1)
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
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new token would fail the same way: the operator is told, and the join retried."""
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", Refuses(BAD_SOURCE))
        out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status == testing.BlockedStatus(
        "LXD refused the join (Failed to initialize member: Failed to initialize storage "
        'pools and networks: Failed to create storage pool "default": Source path '
        "'/dev/vdb' doesn't exist): fix this machine or the charm's settings; the join is "
        "retried on the next hook"
    )
    assert "expired-token" not in bag_of(sim, 1)
    assert bag_of(sim, 1)["join-refused"] == sim.app_data["lxd/1"]
    assert sorted(t.server_name for t in first.lxd.cluster.join_tokens()) == ["node-b", "node-c"]

    run(sim, 2, "relation_changed", 1)  # lxd/1 is not joining now: lxd/2 goes ahead
    assert bag_of(sim, 2)["joined"] == "node-c"

    fixed = run(sim, 1, "update_status")  # the operator fixed the machine
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert "join-refused" not in bag_of(sim, 1)
    assert fixed.unit_status.name == "active"
    assert cluster_names(first) == ["node-a", "node-b", "node-c"]


def test_an_unreachable_cluster_keeps_the_token_and_waits(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    unreachable = Refuses(
        "LXD refused the preseed: Error: Failed to join cluster: Unable to connect to any "
        "of the cluster members specified in join token"
    )
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", unreachable)
        patched.setattr("lxd_charm.cluster_join.JOIN_RETRY_SECONDS", 0.0)
        out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status.name == "waiting"
    assert out.unit_status.message.endswith("retrying on the next hook")
    assert "Unable to connect" in out.unit_status.message
    assert "expired-token" not in bag_of(sim, 1)


def test_a_join_lxd_took_in_a_failed_hook_is_recorded_not_repeated(
    sim: Sim,
) -> None:
    """Juju drops a failed hook's data and stored state, but LXD kept the join."""
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    unit = sim.units["lxd/1"]
    before = unit.state
    bag_before = dict(bag_of(sim, 1))
    run(sim, 1, "relation_changed", 0)
    assert cluster_names(first) == ["node-a", "node-b"]
    sim.write_unit_bag("lxd/1", bag_before)  # as if the hook had failed after joining
    unit.state = replace(before, unit_status=testing.UnknownStatus())  # and its stored state

    out = run(sim, 1, "relation_changed", 0)
    assert len(second.lxd.preseeds) == 1, "no second join"
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert "expired-token" not in bag_of(sim, 1)
    assert out.unit_status.name == "active"
    run(sim, 0, "relation_changed", 1)
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}


def test_a_machine_in_another_cluster_is_refused(sim: Sim) -> None:
    bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    second.lxd.cluster.enable("node-b", "10.0.0.2:8443")  # someone else's cluster
    run(sim, 0, "relation_changed", 1)
    out = run(sim, 1, "relation_changed", 0)
    assert out.unit_status == testing.BlockedStatus(
        "this machine's LXD is already a member of another cluster (as 'node-b'): remove it "
        "from that cluster, or deploy this unit to another machine"
    )
    assert "joined" not in bag_of(sim, 1)


def test_leader_replaces_a_token_reported_expired(sim: Sim) -> None:
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    old_id, old_token = sim.app_data["lxd/1"], token_of(sim, 1)
    update_bag(sim, 1, {"expired-token": old_id})

    run(sim, 0, "relation_changed", 1)
    new_id = sim.app_data["lxd/1"]
    assert new_id != old_id
    assert old_id not in sim.app_secrets, "the old token's secret is removed"
    assert token_secret(sim, 1).remote_grants == {sim.relation_id: frozenset({"lxd/1"})}
    new_token = token_of(sim, 1)
    assert new_token != old_token
    assert [t.token for t in first.lxd.cluster.join_tokens()] == [new_token]

    run(sim, 1, "relation_changed", 0)  # the new token works
    assert bag_of(sim, 1)["joined"] == "node-b"
    assert "expired-token" not in bag_of(sim, 1)
    assert cluster_names(second) == ["node-a", "node-b"]


def test_report_about_an_older_token_gets_no_new_one(sim: Sim) -> None:
    """The report arrived after the leader had replaced that token already."""
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    current = sim.app_data["lxd/1"]
    update_bag(sim, 1, {"expired-token": "secret:an-older-one"})
    run(sim, 0, "relation_changed", 1)
    assert sim.app_data["lxd/1"] == current
    assert list(sim.app_secrets) == [current]


# --- the leader confirms joins ----------------------------------------------------


def test_leader_confirms_a_join_lxd_lists_and_removes_its_token(sim: Sim) -> None:
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    run(sim, 1, "relation_changed", 0)
    assert bag_of(sim, 1)["joined"] == "node-b"

    out = run(sim, 0, "relation_changed", 1)
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "lxd/1" not in sim.app_data
    assert sim.app_secrets == {}
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def test_leader_does_not_confirm_a_join_lxd_does_not_list(sim: Sim) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    issued = sim.app_data["lxd/1"]
    update_bag(sim, 1, {"joined": "node-b"})  # claimed, but LXD has no such member
    run(sim, 0, "relation_changed", 1)
    assert members(sim) == {"lxd/0": "node-a"}
    assert sim.app_data["lxd/1"] == issued
    assert cluster_names(first) == ["node-a"]


def test_three_units_form_one_cluster_in_three_leader_hooks(sim: Sim) -> None:
    """Bootstrap, one hook issuing both tokens, one confirming both joins."""
    a, b, c = formed(sim, 3)
    leader_status = output(sim, 0).unit_status
    assert leader_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.1:8443"
    )
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/2": "node-c"}
    assert [key for key in sim.app_data if "/" in key] == []
    assert sim.app_secrets == {}
    assert a.lxd.cluster.join_tokens() == []
    assert cluster_names(c) == ["node-a", "node-b", "node-c"]
    assert b.lxd.config["cluster.https_address"] == "10.0.0.2:8443"
    for unit in (1, 2):
        assert output(sim, unit).unit_status.name == "active"


# --- a round's joins are recorded once ---------------------------------------------


def round_of_three(sim: Sim) -> Machine:
    """Leader lxd/0 (node-a) has issued tokens to lxd/1-3 (node-b..node-d) in one hook."""
    first = bootstrapped(sim)
    for unit in (1, 2, 3):
        name = f"node-{chr(ord('a') + unit)}"
        add_unit(sim, unit, name, f"10.0.0.{unit + 1}", announce(name))
    run(sim, 0, "relation_changed", 3)
    assert all(f"lxd/{unit}" in sim.app_data for unit in (1, 2, 3))
    return first


def test_the_leader_records_a_rounds_joins_when_the_last_one_lands(sim: Sim) -> None:
    """Each change of the application bag wakes every unit: one record per round."""
    first = round_of_three(sim)
    for unit, left in (
        (1, "lxd/2 is not: joining with its token (+1 more)"),
        (2, "lxd/3 is not: joining with its token"),
    ):
        run(sim, unit, "relation_changed", 0)  # joins, says `joined`
        before = dict(sim.app_data)
        out = run(sim, 0, "relation_changed", unit)
        assert sim.app_data == before, "nothing for the other units to wake to"
        assert out.unit_status == testing.WaitingStatus(f"{unit + 1}/4 units are members; {left}")
    assert members(sim) == {"lxd/0": "node-a"}
    assert len(sim.app_secrets) == 3  # spent tokens stay until the record

    run(sim, 3, "relation_changed", 0)
    out = run(sim, 0, "relation_changed", 3)
    assert members(sim) == {
        "lxd/0": "node-a",
        "lxd/1": "node-b",
        "lxd/2": "node-c",
        "lxd/3": "node-d",
    }
    assert [key for key in sim.app_data if "/" in key] == []
    assert sim.app_secrets == {}
    assert cluster_names(first) == ["node-a", "node-b", "node-c", "node-d"]
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 4/4 members online, 4 units; cluster on 10.0.0.1:8443"
    )


def test_update_status_records_the_joins_a_join_that_never_ends_holds(sim: Sim) -> None:
    round_of_three(sim)
    run(sim, 1, "relation_changed", 0)
    run(sim, 0, "relation_changed", 1)
    assert members(sim) == {"lxd/0": "node-a"}

    run(sim, 0, "update_status")  # lxd/2 and lxd/3 never took their turns
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "lxd/1" not in sim.app_data
    assert {"lxd/2", "lxd/3"} <= set(sim.app_data)


def test_a_unit_that_leaves_mid_round_loses_its_member_and_the_rest_are_recorded(
    sim: Sim,
) -> None:
    first = round_of_three(sim)
    for unit in (1, 2):
        run(sim, unit, "relation_changed", 0)
        run(sim, 0, "relation_changed", unit)
    assert members(sim) == {"lxd/0": "node-a"}

    sim.remove_unit("lxd/2")
    run(sim, 0, "relation_departed", 2)
    assert cluster_names(first) == ["node-a", "node-b"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert set(sim.app_data) >= {"lxd/3"} and "lxd/2" not in sim.app_data


def test_a_new_leader_finds_the_joins_its_predecessor_held(sim: Sim) -> None:
    first = round_of_three(sim)
    run(sim, 1, "relation_changed", 0)
    run(sim, 0, "relation_changed", 1)
    run(sim, 2, "relation_changed", 1)
    run(sim, 0, "relation_changed", 2)
    assert members(sim) == {"lxd/0": "node-a"}

    sim.set_leader("lxd/1")
    out = run(sim, 1, "leader_elected")
    assert out.unit_status == testing.WaitingStatus(
        "3/4 units are members; lxd/3 is not: joining with its token"
    )
    run(sim, 3, "relation_changed", 2)
    run(sim, 1, "relation_changed", 3)
    assert members(sim) == {
        "lxd/0": "node-a",
        "lxd/1": "node-b",
        "lxd/2": "node-c",
        "lxd/3": "node-d",
    }
    assert sim.app_secrets == {}
    assert cluster_names(first) == ["node-a", "node-b", "node-c", "node-d"]


# --- the leader refuses -----------------------------------------------------------


def test_hostname_already_in_use_blocks_and_gets_no_token(sim: Sim) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-a", "10.0.0.2", announce("node-a"))
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status == testing.BlockedStatus(
        "lxd/1 wants to join as 'node-a', which another unit already uses: "
        "give that machine another hostname"
    )
    assert "lxd/1" not in sim.app_data
    assert [t.server_name for t in first.lxd.cluster.join_tokens()] == ["node-c"]
    assert token_secret(sim, 2).remote_grants == {sim.relation_id: frozenset({"lxd/2"})}


def test_two_waiting_units_announcing_one_hostname_get_one_token(
    sim: Sim,
) -> None:
    """LXD keeps one token per name: a second would revoke the first."""
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    add_unit(sim, 2, "node-b", "10.0.0.3", announce("node-b"))
    out = run(sim, 0, "relation_changed", 2)
    assert out.unit_status == testing.BlockedStatus(
        "lxd/2 wants to join as 'node-b', which another unit already uses: "
        "give that machine another hostname"
    )
    assert [t.server_name for t in first.lxd.cluster.join_tokens()] == ["node-b"]
    assert "lxd/2" not in sim.app_data
    run(sim, 1, "relation_changed", 0)
    run(sim, 0, "relation_changed", 1)
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert output(sim, 0).unit_status.name == "blocked"  # lxd/2 still needs renaming


def test_join_in_flight_is_not_taken_for_a_hostname_collision(sim: Sim) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    before_join = dict(bag_of(sim, 1))
    run(sim, 1, "relation_changed", 0)
    assert cluster_names(first) == ["node-a", "node-b"]
    sim.write_unit_bag("lxd/1", before_join)  # lxd/1's hook has not been committed yet
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    out = run(sim, 0, "relation_changed", 2)
    # Not a collision: lxd/1's join is in LXD, its confirmation still on its way.
    assert out.unit_status == testing.WaitingStatus(
        "1/3 units are members; lxd/1 is not: joining with its token (+1 more)"
    )


def test_unit_speaking_another_protocol_version_blocks(sim: Sim) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", {"version": "2.0", "hostname": "node-b"})
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("lxd/1 speak another cluster protocol version")
    assert "lxd/1" not in sim.app_data
    assert first.lxd.cluster.join_tokens() == []


# --- units leave ------------------------------------------------------------------


def test_departed_members_unit_is_removed_from_the_cluster(sim: Sim) -> None:
    a, _, _ = formed(sim, 3)
    sim.remove_unit("lxd/2")
    out = run(sim, 0, "relation_departed", 2)
    assert cluster_names(a) == ["node-a", "node-b"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "removing" not in sim.app_data
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def test_non_leader_leaves_removals_to_the_leader(sim: Sim) -> None:
    a, b, _ = formed(sim, 3)
    calls = b.lxd.calls
    sim.remove_unit("lxd/2")
    run(sim, 1, "relation_departed", 2)
    assert b.lxd.calls == calls
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]


def test_member_holding_instances_stays_until_they_are_gone(sim: Sim) -> None:
    a, b = formed(sim, 2)
    a.lxd.cluster.launch("keepme", target="node-b")
    sim.remove_unit("lxd/1")
    out = run(sim, 0, "relation_departed", 1)

    assert out.unit_status == testing.BlockedStatus(
        "cannot remove lxd/1: member 'node-b' still holds 1 instance(s) (keepme); "
        "move them first with `juju run lxd/1 evacuate` (`lxc cluster evacuate node-b` "
        "once the unit is gone), or delete them"
    )
    assert json.loads(sim.app_data["removing"]) == {"lxd/1": "node-b"}
    assert cluster_names(a) == ["node-a", "node-b"]
    assert a.lxd.cluster.instances_on("node-b") == ["keepme"]

    still = run(sim, 0, "update_status")  # nothing changed: still refused
    assert still.unit_status.name == "blocked"
    assert a.lxd.cluster.instances_on("node-b") == ["keepme"]

    a.lxd.cluster.delete_instance("keepme")  # the operator moved it away
    done = run(sim, 0, "update_status")
    assert cluster_names(a) == ["node-a"]
    assert not b.lxd.cluster.enabled
    assert members(sim) == {"lxd/0": "node-a"}
    assert "removing" not in sim.app_data
    assert done.unit_status == testing.ActiveStatus(
        "cluster: 1/1 members online, 1 units; cluster on 10.0.0.1:8443"
    )


def test_waiting_unit_that_departs_loses_its_token(sim: Sim) -> None:
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    sim.remove_unit("lxd/1")
    run(sim, 0, "relation_departed", 1)
    assert "lxd/1" not in sim.app_data
    assert sim.app_secrets == {}


def test_refused_removal_does_not_hold_up_joins(sim: Sim) -> None:
    a, _ = formed(sim, 2)
    a.lxd.cluster.launch("keepme", target="node-b")
    sim.remove_unit("lxd/1")
    run(sim, 0, "relation_departed", 1)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    out = run(sim, 0, "relation_changed", 2)
    assert out.unit_status.message.startswith("cannot remove lxd/1")
    assert [t.server_name for t in a.lxd.cluster.join_tokens()] == ["node-c"]
    assert decode_join_token(token_of(sim, 2)).server_name == "node-c"


def test_leader_applies_its_own_config_while_a_removal_is_refused(sim: Sim) -> None:
    """Another unit's member is the cluster's problem: the leader's own machine still converges."""
    a, _ = formed(sim, 2)
    a.lxd.cluster.launch("keepme", target="node-b")
    sim.remove_unit("lxd/1")
    run(sim, 0, "relation_departed", 1)
    sim.config_changed(**{"lxd-listen-metrics": True})
    out = run(sim, 0, "config_changed")
    assert out.unit_status.message.startswith("cannot remove lxd/1")
    assert a.lxd.config["core.metrics_address"].endswith(":8444")
    assert testing.TCPPort(8444) in out.opened_ports


def test_unit_that_departs_before_its_join_is_confirmed_leaves_no_member(
    sim: Sim,
) -> None:
    first = bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    run(sim, 1, "relation_changed", 0)
    assert cluster_names(first) == ["node-a", "node-b"]
    sim.remove_unit("lxd/1")  # Juju drops the leader's pending relation-changed for lxd/1
    run(sim, 0, "relation_departed", 1)
    assert sim.app_secrets == {}
    assert cluster_names(first) == ["node-a"]


# --- leadership moves -------------------------------------------------------------


def test_new_leader_finishes_a_removal_the_old_one_was_refused(sim: Sim) -> None:
    a, b, c = formed(sim, 3)
    a.lxd.cluster.launch("keepme", target="node-c")
    sim.remove_unit("lxd/2")
    run(sim, 0, "relation_departed", 2)
    assert json.loads(sim.app_data["removing"]) == {"lxd/2": "node-c"}

    a.lxd.cluster.delete_instance("keepme")
    run(sim, 1, "relation_departed", 2)  # lxd/2 leaves lxd/1's relation-list too
    sim.set_leader("lxd/1")
    out = run(sim, 1, "leader_elected")
    assert cluster_names(b) == ["node-a", "node-b"]
    assert not c.lxd.cluster.enabled
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b"}
    assert "removing" not in sim.app_data
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.2:8443"
    )


def test_new_leader_removes_the_member_of_the_leader_that_left(sim: Sim) -> None:
    a, b, _ = formed(sim, 3)
    sim.remove_unit("lxd/0")
    run(sim, 0, "relation_departed", 1)  # the old leader's own hook does nothing
    assert cluster_names(b) == ["node-a", "node-b", "node-c"]
    run(sim, 1, "relation_departed", 0)  # not the leader yet: nothing either
    assert cluster_names(b) == ["node-a", "node-b", "node-c"]
    sim.set_leader("lxd/1")
    run(sim, 1, "leader_elected")
    assert cluster_names(b) == ["node-b", "node-c"]
    assert not a.lxd.cluster.enabled
    assert members(sim) == {"lxd/1": "node-b", "lxd/2": "node-c"}


def test_new_leader_keeps_the_token_outstanding(sim: Sim) -> None:
    a, b = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)
    issued_id, issued_token = sim.app_data["lxd/2"], token_of(sim, 2)

    sim.set_leader("lxd/1")
    out = run(sim, 1, "leader_elected")
    assert out.unit_status == testing.WaitingStatus(
        "2/3 units are members; lxd/2 is not: joining with its token"
    )
    assert sim.app_data["lxd/2"] == issued_id
    assert list(sim.app_secrets) == [issued_id]
    assert [t.token for t in b.lxd.cluster.join_tokens()] == [issued_token]

    run(sim, 2, "relation_changed", 0)  # the old leader's token still works
    run(sim, 1, "relation_changed", 2)
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/2": "node-c"}
    assert sim.app_secrets == {}


# --- every member -----------------------------------------------------------------


@pytest.mark.parametrize("unit", [0, 1], ids=["leader", "member"])
def test_moving_the_cluster_binding_blocks_until_undone(sim: Sim, unit: int) -> None:
    machines = formed(sim, 2)
    old = machines[unit].address
    moved = testing.Network("cluster", [testing.BindAddress([testing.Address("10.9.9.9")])])
    out = run(sim, unit, "config_changed", networks=frozenset({moved}))
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
    undone = run(sim, unit, "config_changed", networks=bound_back)
    assert undone.unit_status.name == "active"


def test_leader_status_counts_members_online_and_units(sim: Sim) -> None:
    formed(sim, 3)
    add_unit(sim, 3, "node-d", "10.0.0.4")  # in the relation, not a member yet
    out = run(sim, 0, "update_status")
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 4 units; cluster on 10.0.0.1:8443"
    )


def test_leader_is_never_active_while_a_member_is_offline(sim: Sim) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    out = run(sim, 0, "update_status")
    assert out.unit_status == testing.BlockedStatus(
        "node-c (lxd/2) is offline: bring it back, or remove the unit"
    )
    a.lxd.cluster.set_status("node-c", "Online")
    out = run(sim, 0, "update_status")
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.1:8443"
    )


def test_leader_below_quorum_is_blocked_and_says_so(sim: Sim) -> None:
    """LXD lists every voter but one offline: nothing can change until they are back."""
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-b", "Offline", "No heartbeat for 30s")
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    out = run(sim, 0, "update_status")
    assert out.unit_status == testing.BlockedStatus(
        "the cluster database has lost its quorum: node-b (lxd/1), node-c (lxd/2) offline "
        "(1/3 database members online); bring them back"
    )


def test_a_removal_that_would_cost_the_quorum_is_refused_and_retried(sim: Sim) -> None:
    """Captured from LXD 5.0: removing a second voter of three while one is offline
    fails with "server has lost leadership" and leaves the database without a majority."""
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.remove_unit("lxd/1")
    out = run(sim, 0, "relation_departed", 1)
    assert out.unit_status == testing.BlockedStatus(
        "not removing node-b (lxd/1): node-c (lxd/2) is offline and the cluster would lose "
        "its quorum; bring node-c back or remove lxd/2 first"
    )
    assert sorted(m.name for m in a.lxd.cluster.members()) == ["node-a", "node-b", "node-c"]
    a.lxd.cluster.set_status("node-c", "Online")
    out = run(sim, 0, "update_status")
    assert sorted(m.name for m in a.lxd.cluster.members()) == ["node-a", "node-c"]
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 2/2 members online, 2 units; cluster on 10.0.0.1:8443"
    )


def test_leader_lists_the_members_once_per_peer_hook(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token plan and the status count share one listing: hooks pay per LXD call."""
    a, _ = formed(sim, 2)
    listings: list[int] = []
    real_members = a.lxd.cluster.members

    def members() -> list[ClusterMember]:
        listings.append(1)
        return real_members()

    monkeypatch.setattr(a.lxd.cluster, "members", members)
    out = run(sim, 0, "relation_changed", 1)
    assert len(listings) == 1
    assert out.unit_status.message.startswith("cluster: 2/2 members online, 2 units")


def test_member_ignores_its_peers_changes(sim: Sim) -> None:
    """Only the leader and joining units have work in a peer change: members skip LXD."""
    _, b = formed(sim, 2)
    add_unit(sim, 2, "node-c", "10.0.0.3", announce("node-c"))
    run(sim, 0, "relation_changed", 2)  # the application bag changes
    calls, bag = b.lxd.calls, dict(bag_of(sim, 1))
    out = run(sim, 1, "relation_changed", 2)
    assert b.lxd.calls == calls
    assert bag_of(sim, 1) == bag
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


def test_update_status_asks_lxd_once_on_members_and_twice_on_the_leader(sim: Sim) -> None:
    """A member only connects (pylxd's /1.0 is the check); the leader also counts members."""
    a, b, _ = formed(sim, 3)
    before = a.lxd.calls, b.lxd.calls
    run(sim, 0, "update_status")
    run(sim, 1, "update_status")
    assert (a.lxd.calls - before[0], b.lxd.calls - before[1]) == (2, 1)


def test_leader_names_a_unit_that_could_not_join_in_its_own_words(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit that announced itself but is not a member is never hidden behind active."""
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2", announce("node-b"))
    run(sim, 0, "relation_changed", 1)
    with monkeypatch.context() as patched:
        patched.setattr(second.lxd, "join_cluster", Refuses(BAD_SOURCE))
        joiner = run(sim, 1, "relation_changed", 0)
    assert joiner.unit_status.name == "blocked"
    said = bag_of(sim, 1)["join-status"]
    assert said == f"blocked: {joiner.unit_status.message}"
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status == testing.BlockedStatus(f"1/2 units are members; lxd/1 is not: {said}")
    assert cluster_names(first) == ["node-a"]

    run(sim, 1, "update_status")  # the operator fixed the machine: it joins
    assert "join-status" not in bag_of(sim, 1)
    out = run(sim, 0, "relation_changed", 1)
    assert out.unit_status.name == "active"


# --- maintenance (evacuate/restore) and failure domains, protocol 1.4 -----------------


def evacuate(sim: Sim, unit: int, **params: str) -> dict[str, Any]:
    results = sim.run(f"lxd/{unit}", sim.on.action("evacuate", params=params))
    assert results is not None
    return results


def domains(machine: Machine) -> dict[str, str]:
    return {m.name: m.failure_domain for m in machine.lxd.cluster.members()}


def test_members_take_their_units_zone_as_failure_domain(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az1")
    a, _ = formed(sim, 2)
    assert domains(a) == {"node-a": "az1", "node-b": "az1"}  # set at the join
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az2")
    run(sim, 1, "config_changed")
    assert domains(a) == {"node-a": "az1", "node-b": "az2"}  # followed when it changes
    monkeypatch.delenv("JUJU_AVAILABILITY_ZONE")
    run(sim, 1, "config_changed")
    assert domains(a) == {"node-a": "az1", "node-b": "default"}  # no zone: LXD's default


def test_a_unit_without_a_zone_leaves_the_domain_alone(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUJU_AVAILABILITY_ZONE", raising=False)
    a, _ = formed(sim, 2)
    assert domains(a) == {"node-a": "default", "node-b": "default"}


def test_a_renamed_machine_tends_its_member_under_the_name_lxd_keeps(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LXD keeps a member's name when its machine is renamed: the charm follows LXD's name.

    With the hostname, every later hook would find no member: the failure
    domain untended, the actions aimed at a name LXD does not know, the
    leader's status without its cluster address.
    """
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az1")
    a, b, _ = formed(sim, 3)
    a.hostname, b.hostname = "renamed-a", "renamed-b"
    a.lxd.cluster.launch("web", target="node-b")

    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az2")
    member = run(sim, 1, "config_changed")
    leader = run(sim, 0, "config_changed")
    assert domains(a) == {"node-a": "az2", "node-b": "az2", "node-c": "az1"}
    assert bag_of(sim, 1)["hostname"] == "node-b"  # announced as LXD knows it
    assert bag_of(sim, 0)["hostname"] == "node-a"
    assert member.unit_status == testing.ActiveStatus(
        "cluster: member node-b; cluster on 10.0.0.2:8443"
    )
    assert leader.unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.1:8443"
    )
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/2": "node-c"}

    got = evacuate(sim, 1)
    assert got["member"] == "node-b" and got["state"] == "evacuated"
    assert a.lxd.cluster.instances_on("node-b") == []
    restored = sim.run("lxd/1", sim.on.action("restore"))
    assert restored is not None and restored["state"] == "restored"
    assert a.lxd.cluster.instances_on("node-b") == ["web"]

    run(sim, 0, "update_status")  # the leader's short path finds its member too
    assert output(sim, 0).unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 3 units; cluster on 10.0.0.1:8443"
    )


@pytest.mark.parametrize("removed", [0, 2], ids=["the leader", "a member"])
def test_a_member_removed_outside_juju_blocks_at_its_next_hook(sim: Sim, removed: int) -> None:
    """``lxc cluster remove`` elsewhere leaves a standalone daemon: never "active" on it.

    Found by update-status (its one request's answer says so) and by any
    reconcile; the unit blocks with the way out, and joins nothing on its own.
    """
    machines = formed(sim, 3)
    other = machines[1]
    other.lxd.cluster.remove_member(machines[removed].hostname)
    assert not machines[removed].lxd.cluster.enabled  # reset, as LXD 5.0.2 does
    calls = machines[removed].lxd.calls
    out = run(sim, removed, "update_status")
    name = machines[removed].hostname
    assert out.unit_status == testing.BlockedStatus(
        f"LXD here is no longer a cluster member (it was {name}), removed outside Juju: "
        f"`juju remove-unit lxd/{removed}`, then `juju add-unit lxd`"
    )
    assert not machines[removed].lxd.cluster.enabled
    assert machines[removed].lxd.calls > calls  # the reconcile ran
    again = run(sim, removed, "config_changed")
    assert again.unit_status == out.unit_status
    assert cluster_names(other) == sorted(
        m.hostname for m in machines if m is not machines[removed]
    )


def test_update_status_of_a_member_still_in_the_cluster_is_one_request(sim: Sim) -> None:
    _, b, _ = formed(sim, 3)
    run(sim, 1, "config_changed")
    calls = b.lxd.calls
    out = run(sim, 1, "update_status")
    assert out.unit_status.name == "active"
    assert b.lxd.calls == calls + 1  # connecting


def test_evacuate_reports_where_instances_went_and_the_statuses_say_so(sim: Sim) -> None:
    a, b, _ = formed(sim, 3)
    a.lxd.cluster.launch("web", target="node-b")
    a.lxd.cluster.launch("db", target="node-b", project="ci")
    got = evacuate(sim, 1)
    assert got == {
        "member": "node-b",
        "mode": "auto",
        "state": "evacuated",
        "instances": "ci/db: node-b -> node-a (Running)\nweb: node-b -> node-c (Running)",
        "count": "2",
    }
    assert a.lxd.cluster.instances_on("node-b") == []
    assert output(sim, 1).unit_status == testing.ActiveStatus(
        "cluster: member node-b is evacuated: run the restore action to take instances "
        "again; cluster on 10.0.0.2:8443"
    )
    assert bag_of(sim, 1)["evacuated"] == "node-b"
    leader = run(sim, 0, "relation_changed", 1)  # the field's change wakes the leader
    assert leader.unit_status == testing.ActiveStatus(
        "cluster: 2/3 members online, 1 evacuated (node-b), 3 units; cluster on 10.0.0.1:8443"
    )

    restored = sim.run("lxd/1", sim.on.action("restore"))
    assert restored is not None and restored["state"] == "restored"
    assert a.lxd.cluster.instances_on("node-b") == ["ci/db", "web"]
    assert bag_of(sim, 1).get("evacuated", "") == ""
    assert output(sim, 1).unit_status.message.startswith("cluster: member node-b; ")
    assert b.lxd.cluster.member("node-b").online


def test_evacuating_a_second_voter_of_three_fails_the_action(sim: Sim) -> None:
    a, _, _ = formed(sim, 3)
    for machine in ("node-a", "node-b", "node-c"):
        a.lxd.cluster._database().members[machine] = replace(
            a.lxd.cluster.member(machine), roles=["database"]
        )
    evacuate(sim, 1)
    with pytest.raises(testing.ActionFailed, match=r"not evacuating node-c \(lxd/2\): node-b"):
        evacuate(sim, 2)
    assert not a.lxd.cluster.member("node-c").evacuated


def test_a_mode_lxd_would_ignore_fails_the_action(sim: Sim) -> None:
    a, b, _ = formed(sim, 3)
    a.lxd.cluster.launch("web", target="node-b")
    with pytest.raises(testing.ActionFailed, match="mode=migrate cannot be honoured"):
        evacuate(sim, 1, mode="migrate")
    assert a.lxd.cluster.instances_on("node-b") == ["web"]
    b.lxd.api_extensions.append("clustering_evacuation_mode")
    assert evacuate(sim, 1, mode="migrate")["state"] == "evacuated"


def test_an_unknown_mode_fails_the_action(sim: Sim) -> None:
    formed(sim, 2)
    with pytest.raises(testing.ActionFailed, match="mode must be one of auto, stop, migrate"):
        evacuate(sim, 1, mode="live")


def test_a_unit_that_is_not_a_member_cannot_evacuate(sim: Sim) -> None:
    bootstrapped(sim)
    add_unit(sim, 1, "node-b", "10.0.0.2")
    with pytest.raises(testing.ActionFailed, match="only a cluster member"):
        evacuate(sim, 1)


# --- replaced machines and members no unit owns ------------------------------------
# Captured from LXD 5.0.2: an unreachable member is only removed with force (without:
# 500 'Delete ".../storage-pools/local": Unable to connect to ...'), and force drops the
# records of the instances on it; a new daemon then joins under the old name.


def test_a_departed_units_unreachable_member_is_removed_with_force(sim: Sim) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.remove_unit("lxd/2")
    out = run(sim, 0, "relation_departed", 2)
    assert cluster_names(a) == ["node-a", "node-b"]
    assert set(members(sim)) == {"lxd/0", "lxd/1"}
    assert out.unit_status.name == "active"


def test_a_departed_units_unreachable_member_with_instances_stays(sim: Sim) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.launch("web", target="node-c")
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.remove_unit("lxd/2")
    out = run(sim, 0, "relation_departed", 2)
    assert out.unit_status == testing.BlockedStatus(
        "cannot remove lxd/2: its member 'node-c' is offline and holds 1 instance(s) (web); "
        "bring its machine back, or discard them with `lxc cluster remove --force node-c`"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]


def test_a_replacement_unit_takes_the_name_once_the_old_instances_are_dealt_with(
    sim: Sim,
) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.launch("web", target="node-c")
    a.lxd.cluster.set_status("node-c", "Offline", "No heartbeat for 30s")
    sim.remove_unit("lxd/2")
    run(sim, 0, "relation_departed", 2)
    add_unit(sim, 3, "node-c", "10.0.0.9")
    run(sim, 3, "relation_changed", 0)  # announces the old hostname
    out = run(sim, 0, "relation_changed", 3)
    # Not a collision with a live unit: the old member's instances are what keeps it out.
    assert "which another unit already uses" not in out.unit_status.message
    assert out.unit_status.name == "blocked"
    assert "lxd/3" not in sim.app_data or not sim.app_data["lxd/3"]

    a.lxd.cluster.delete_instance("web")  # the operator discarded it
    out = run(sim, 0, "update_status")
    assert cluster_names(a) == ["node-a", "node-b"]
    assert sim.app_data.get("lxd/3"), "the new unit got a token for the old name"
    run(sim, 3, "relation_changed", 0)  # joins
    run(sim, 0, "relation_changed", 3)
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]
    assert members(sim) == {"lxd/0": "node-a", "lxd/1": "node-b", "lxd/3": "node-c"}


def test_an_unreachable_member_never_recorded_is_replaced_when_empty(sim: Sim) -> None:
    a, _ = formed(sim, 2)
    database = a.lxd.cluster._database()
    FakeLxd().cluster._add_member(database, "node-z", "10.0.0.26:8443", [])
    a.lxd.cluster.set_status("node-z", "Offline", "No heartbeat for 30s")
    add_unit(sim, 2, "node-z", "10.0.0.3")
    run(sim, 2, "relation_changed", 0)
    run(sim, 0, "relation_changed", 2)
    assert cluster_names(a) == ["node-a", "node-b"]
    assert sim.app_data.get("lxd/2")


def test_a_live_units_name_is_still_a_collision(sim: Sim) -> None:
    a, _, _ = formed(sim, 3)
    a.lxd.cluster.set_status("node-b", "Offline", "No heartbeat for 30s")  # lxd/1 is present
    add_unit(sim, 3, "node-b", "10.0.0.4")
    run(sim, 3, "relation_changed", 0)
    out = run(sim, 0, "relation_changed", 3)
    assert out.unit_status == testing.BlockedStatus(
        "lxd/3 wants to join as 'node-b', which another unit already uses: give that "
        "machine another hostname"
    )
    assert cluster_names(a) == ["node-a", "node-b", "node-c"]


def test_members_no_unit_owns_are_in_the_leaders_count(sim: Sim) -> None:
    a, _ = formed(sim, 2)
    FakeLxd().cluster._add_member(a.lxd.cluster._database(), "by-hand", "10.0.0.30:8443", [])
    out = run(sim, 0, "update_status")
    assert out.unit_status == testing.ActiveStatus(
        "cluster: 3/3 members online, 2 units; owned by no unit: by-hand; cluster on 10.0.0.1:8443"
    )
    assert cluster_names(a) == ["by-hand", "node-a", "node-b"]  # never removed
