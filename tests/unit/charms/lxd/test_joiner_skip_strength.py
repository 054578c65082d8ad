"""A waiting joiner skips a peer event only when nothing it waits on moved: what that costs.

`LxdCharm._joiner_still_waiting` lets a cluster unit that is not a member
yet (and not the leader) return from a peer event on databag reads alone,
when the bags give the same wait reason its status already says, and its
bag's `join-status` is empty (the leader tells the plan's waits from the
bags). Every other case reconciles, and most of those
reconciles end in the same status the skip would have left: a test that
looks only at the final status cannot tell a skip from a reconcile. So
these tests measure what the hook asked: LXD (`FakeLxd.connections` and
`calls`) and snapd (`CountingSnapd`: reads and changes). A skipped event
asks neither anything; each case the skip must not take asks both, and
where the reconcile says something new, its whole status is checked.

Found by `tox -e mutation -- charms/lxd/src/charm.py --function
LxdCharm._joiner_still_waiting` (16 survivors before these tests).

Each case starts from the state the unit's first peer event left (snap
installed, status saying it waits for its token, no `join-status`), as a
real joiner's earlier reconcile leaves it, then changes the one thing the
case is about and runs the next peer event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_common.snap import InstalledSnap
from tests.harness.databags import local_app_data, local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeLxd
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.juju_sim import Sim

from .test_charm_cluster import (  # the cluster simulator and its helpers
    add_unit,
    bag_of,
    bootstrapped,
    cluster_names,
    run,
    sim,  # noqa: F401 (a fixture)
)

EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)
TOKEN_WAIT = "waiting for the leader to issue a join token"
EXPIRED_WAIT = "waiting for the leader to replace an expired join token"
LEADER_BAG = {"version": "1.4", "hostname": "node0", "joined": "node0"}
"""The leader's unit bag: a member that joined (it bootstrapped the cluster)."""


class CountingSnapd(FakeSnapd):
    """`FakeSnapd` that also counts reads (its `calls` records only what changes snapd)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def installed(self, name: str) -> InstalledSnap | None:
        self.reads += 1
        return super().installed(name)

    def get_config(self, name: str) -> dict[str, Any]:
        self.reads += 1
        return super().get_config(name)


@pytest.fixture
def snapd() -> CountingSnapd:
    """Replaces conftest's `snapd`, so the `host` fixture's machine counts its snapd reads."""
    return CountingSnapd()


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one hook asked of the machine."""

    lxd_connections: int
    lxd_requests: int
    snapd_reads: int
    snapd_changes: int


NOTHING = Cost(0, 0, 0, 0)


class Meter:
    """Counts what a hook asks of one machine's LXD and of snapd."""

    def __init__(self, lxd: FakeLxd, snapd: CountingSnapd) -> None:
        self.lxd, self.snapd = lxd, snapd

    def now(self) -> Cost:
        return Cost(self.lxd.connections, self.lxd.calls, self.snapd.reads, len(self.snapd.calls))

    def since(self, before: Cost) -> Cost:
        after = self.now()
        return Cost(
            after.lxd_connections - before.lxd_connections,
            after.lxd_requests - before.lxd_requests,
            after.snapd_reads - before.snapd_reads,
            after.snapd_changes - before.snapd_changes,
        )


def reconciled(cost: Cost) -> bool:
    """The hook connected to LXD, asked it something, and read snapd: a full reconcile."""
    return cost.lxd_connections > 0 and cost.lxd_requests > 0 and cost.snapd_reads > 0


@dataclasses.dataclass
class Joiner:
    """Unit lxd/1 of a cluster led by lxd/0, after the peer event in which it began to wait."""

    ctx: testing.Context[Any]
    state: testing.State
    relation_id: int
    meter: Meter

    @property
    def peer(self) -> testing.PeerRelation:
        relation = self.state.get_relation(self.relation_id)
        assert isinstance(relation, testing.PeerRelation), relation
        return relation

    def with_bags(
        self,
        app: Mapping[str, str] | None = None,
        mine: Mapping[str, str] | None = None,
        leader: Mapping[str, str] | None = None,
    ) -> testing.State:
        """This state with keys changed in the app bag, its own bag, the leader's bag.

        A key given "" is deleted, as Juju deletes a key written empty.
        """
        peer = self.peer

        def changed(bag: Mapping[str, str], keys: Mapping[str, str] | None) -> dict[str, str]:
            merged = {**bag, **(keys or {})}
            return {key: value for key, value in merged.items() if value}

        relation = dataclasses.replace(
            peer,
            local_app_data=changed(local_app_data(peer), app),
            local_unit_data=changed(local_unit_data(peer), mine),
            peers_data={0: changed(peer.peers_data[0], leader)},
        )
        return dataclasses.replace(self.state, relations=frozenset({relation}))

    def peer_changed(self, state: testing.State) -> tuple[testing.State, Cost]:
        """Run the leader's relation-changed on ``state``: what it left, and what it asked."""
        before = self.meter.now()
        relation = state.get_relation(self.relation_id)
        out = self.ctx.run(self.ctx.on.relation_changed(relation, remote_unit=0), state)
        return out, self.meter.since(before)

    def join_status(self, state: testing.State) -> str:
        relation = state.get_relation(self.relation_id)
        return local_unit_data(relation).get("join-status", "")


@pytest.fixture
def joiner(charm_module: ModuleType, host: FakeHost, snapd: CountingSnapd) -> Joiner:
    """lxd/1's first peer event: it installs LXD's snap, announces node1, waits for its token."""
    host.hostname = "node1"
    peer = testing.PeerRelation(
        "cluster",
        local_app_data={"version": "1.4", "members": '{"lxd/0": "node0"}'},
        peers_data={0: dict(LEADER_BAG)},
    )
    state = testing.State(
        leader=False, config={"mode": "cluster"}, relations={peer}, resources=EMPTY_RESOURCES
    )
    ctx = testing.Context(charm_module.LxdCharm, app_name="lxd", unit_id=1)
    meter = Meter(host.fake_lxd, snapd)
    out = ctx.run(ctx.on.relation_changed(peer, remote_unit=0), state)
    first = Joiner(ctx, out, peer.id, meter)
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)
    assert first.join_status(out) == ""
    assert local_unit_data(first.peer)["hostname"] == "node1"
    assert reconciled(meter.since(NOTHING)), "the first event reconciled"
    assert ("install", "lxd", None) in snapd.calls
    return first


# --- the skip ----------------------------------------------------------------


def test_the_same_wait_again_asks_neither_lxd_nor_snapd(joiner: Joiner) -> None:
    """The app bag moved (another unit's token), the wait did not: the event ends on bag reads."""
    state = joiner.with_bags(app={"lxd/5": "secret:for-another-unit"})

    out, cost = joiner.peer_changed(state)

    assert cost == NOTHING
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)
    assert local_unit_data(out.get_relation(joiner.relation_id)) == local_unit_data(joiner.peer)


def test_the_same_expired_token_wait_is_skipped_too(joiner: Joiner) -> None:
    """Any wait the plan gives is skipped when the status says it: the expired token's."""
    state = joiner.with_bags(app={"lxd/1": "secret:old"}, mine={"expired-token": "secret:old"})
    waiting, _ = joiner.peer_changed(state)
    assert waiting.unit_status == testing.WaitingStatus(EXPIRED_WAIT)
    assert joiner.join_status(waiting) == ""
    joiner.state = waiting

    out, cost = joiner.peer_changed(joiner.with_bags(leader={"lxd-version": "5.21.0"}))

    assert cost == NOTHING
    assert out.unit_status == testing.WaitingStatus(EXPIRED_WAIT)


# --- who never skips ---------------------------------------------------------


def test_an_initialised_unit_reconciles(joiner: Joiner) -> None:
    """Memory says LXD was initialised (joined or adopted): not a joiner, whatever bags say.

    A unit that is initialised but not active tries again on a peer event.
    """
    memory = {"initialised": True, "init_options": {"mode": "cluster", "lxd-preseed": ""}}
    stored = testing.StoredState("_stored", owner_path="LxdCharm", content={"memory": memory})
    state = dataclasses.replace(joiner.state, stored_states=frozenset({stored}))

    _, cost = joiner.peer_changed(state)

    assert reconciled(cost), cost


def test_the_leader_reconciles(joiner: Joiner) -> None:
    """A leader that is not a member yet gets its token from a deputy, not from itself."""
    out, cost = joiner.peer_changed(dataclasses.replace(joiner.state, leader=True))

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(
        "this leader is not a member yet: waiting for lxd/0 to issue its join token"
    )


def test_a_standalone_unit_reconciles(joiner: Joiner) -> None:
    """mode=standalone: no join to wait for (the option changed since it waited)."""
    state = dataclasses.replace(joiner.state, config={"mode": "standalone"})

    out, cost = joiner.peer_changed(state)

    assert reconciled(cost), cost
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")


@pytest.mark.parametrize(
    "status",
    [
        testing.BlockedStatus(TOKEN_WAIT),
        testing.MaintenanceStatus(TOKEN_WAIT),
        testing.ActiveStatus(TOKEN_WAIT),
    ],
    ids=["blocked", "maintenance", "active"],
)
def test_a_status_that_is_not_waiting_reconciles(
    joiner: Joiner,
    status: testing.BlockedStatus | testing.MaintenanceStatus | testing.ActiveStatus,
) -> None:
    """The same words under another status kind are not the wait: it reconciles into it."""
    out, cost = joiner.peer_changed(dataclasses.replace(joiner.state, unit_status=status))

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)


def test_a_leader_waiting_for_a_deputy_token_makes_the_joiner_reconcile(joiner: Joiner) -> None:
    """`leader-joining` is deputy work: a peer event that may carry it is never skipped."""
    out, cost = joiner.peer_changed(joiner.with_bags(app={"leader-joining": "lxd/0"}))

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)


def test_a_refresh_round_makes_the_joiner_reconcile(joiner: Joiner) -> None:
    """A refresh round this unit has not refreshed in is work for every unit."""
    out, cost = joiner.peer_changed(joiner.with_bags(app={"refresh-round": "1"}))

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(
        "refresh round 1 to the tracked channel: waiting for node0 (lxd/0)"
    )
    assert local_unit_data(out.get_relation(joiner.relation_id))["refresh-done"] == "1"


def test_no_peer_relation_is_no_wait(joiner: Joiner) -> None:
    """Without the peer relation there is no join to wait for, and no bag to read.

    Its one caller runs on the peer relation's own events, where the
    relation is always there, so this asks the method itself, in a hook
    without the relation: it must answer no wait (and not fail on the
    missing relation).
    """
    state = dataclasses.replace(joiner.state, relations=frozenset())
    with joiner.ctx(joiner.ctx.on.update_status(), state) as manager:
        assert not manager.charm._joiner_still_waiting()


@pytest.mark.parametrize(
    ("app", "leader", "said"),
    [
        (
            {},
            {"version": "1.0"},
            "refresh in progress: lxd/0 still runs the earlier charm; joining waits until "
            "`juju refresh` has reached every unit",
        ),
        (
            {"version": "1.0"},
            {},
            "refresh in progress: the leader has not run this charm yet; joining waits "
            "until `juju refresh` has reached every unit",
        ),
    ],
    ids=["a-peer-on-the-earlier-charm", "the-app-bag-of-the-earlier-charm"],
)
def test_a_mixed_refresh_hold_reconciles_into_the_hold(
    joiner: Joiner, app: dict[str, str], leader: dict[str, str], said: str
) -> None:
    """While `juju refresh --switch` is under way a joiner holds: it must say so, not skip.

    The plan alone would still say the token wait its status shows; the
    application bag of the earlier charm holds a unit that is not the
    leader only (the leader itself rewrites that bag).
    """
    out, cost = joiner.peer_changed(joiner.with_bags(app=app, leader=leader))

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(said)
    assert joiner.join_status(out) == said


def test_an_app_bag_it_cannot_read_reconciles_into_the_protocol_error(joiner: Joiner) -> None:
    """`members` that is not JSON: the reconcile blocks saying which field."""
    out, cost = joiner.peer_changed(joiner.with_bags(app={"members": "{lxd/0: node0"}))

    assert reconciled(cost), cost
    assert out.unit_status == testing.BlockedStatus(
        "cluster relation: the 'members' field is not valid JSON"
    )


# --- a wait that changed ------------------------------------------------------


def test_a_new_wait_reason_reconciles_and_says_it(joiner: Joiner) -> None:
    """The status says the expired token's wait; the leader took the token back.

    The plan now says the plain token wait: the status does not say it yet.
    """
    state = dataclasses.replace(joiner.state, unit_status=testing.WaitingStatus(EXPIRED_WAIT))

    out, cost = joiner.peer_changed(state)

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)
    assert joiner.join_status(out) == ""


def test_a_status_other_than_the_reason_reconciles(joiner: Joiner) -> None:
    """The bag says the reason, the status another wait (a hook since said something else)."""
    state = dataclasses.replace(joiner.state, unit_status=testing.WaitingStatus(EXPIRED_WAIT))

    out, cost = joiner.peer_changed(state)

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)


@pytest.mark.parametrize(
    "said",
    [TOKEN_WAIT, EXPIRED_WAIT, "blocked: LXD refused the join (a reason)"],
    ids=["the-wait-itself", "another-wait", "blocked"],
)
def test_a_join_status_left_in_the_bag_reconciles_and_clears_it(joiner: Joiner, said: str) -> None:
    """The leader's status quotes a `join-status` it finds: one left over is cleared.

    The wait itself in the bag: what this charm wrote before its plan's waits
    went unwritten (a revision's refresh mid-formation).
    """
    out, cost = joiner.peer_changed(joiner.with_bags(mine={"join-status": said}))

    assert reconciled(cost), cost
    assert out.unit_status == testing.WaitingStatus(TOKEN_WAIT)
    assert joiner.join_status(out) == ""


# --- the token arrives --------------------------------------------------------


def test_the_token_arriving_is_not_skipped_the_joiner_joins(
    sim: Sim,  # noqa: F811
    snapd: CountingSnapd,
) -> None:
    """Between waits nothing is asked; the event that brings its token joins it.

    Through the simulator, so the token is a real secret the leader granted
    and the join reaches the leader's LXD cluster.
    """
    first = bootstrapped(sim)
    second = add_unit(sim, 1, "node-b", "10.0.0.2")
    meter = Meter(second.lxd, snapd)
    waiting = run(sim, 1, "relation_changed", 0)  # announces node-b
    assert waiting.unit_status == testing.WaitingStatus(TOKEN_WAIT)
    assert "join-status" not in bag_of(sim, 1)

    before = meter.now()
    run(sim, 1, "relation_changed", 0)  # nothing it waits on moved
    assert meter.since(before) == NOTHING

    run(sim, 0, "relation_changed", 1)  # the leader issues lxd/1's token
    before = meter.now()
    joined = run(sim, 1, "relation_changed", 0)
    assert reconciled(meter.since(before))
    assert joined.unit_status.name == "active", joined.unit_status.message
    assert cluster_names(first) == ["node-a", "node-b"]
