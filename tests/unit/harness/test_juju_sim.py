"""Unit tests for the Juju simulator (tests/harness/juju_sim.py), on a toy charm.

The toy charm does, in miniature, what a clustering charm does over its peer
relation: every unit says hello in its unit bag; the leader lists the hellos in
the application bag, creates one token secret per peer, grants it to that
peer and publishes its id under the peer's name; each peer reads its token and
echoes a hash back. On departure the leader forgets the unit and its secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import ops
import pytest
from ops import testing

from tests.harness.juju_sim import APP, LivelockError, Sim, SimError, SimUnit

META: dict[str, Any] = {"name": "toy", "peers": {"cluster": {"interface": "toy"}}}
ACTIONS: dict[str, Any] = {
    "peek": {"params": {"id": {"type": "string"}}},
    "rotate": {"params": {"unit": {"type": "string"}}},
    "forget": {"params": {"unit": {"type": "string"}}},
    "fail": {},
    "share": {"params": {"unit": {"type": "string"}}},
    "address": {},
}
CONFIG: dict[str, Any] = {"options": {"colour": {"type": "string", "default": "red"}}}
CONTEXT: dict[str, Any] = {"meta": META, "actions": ACTIONS, "config": CONFIG}

LOG: list[dict[str, Any]] = []
"""What the toy charm saw, hook by hook (reset for every test)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class Toy(ops.CharmBase):
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._stored.set_default(hooks=0)
        for event in (
            self.on.install,
            self.on.leader_elected,
            self.on.config_changed,
            self.on.start,
            self.on.cluster_relation_created,
            self.on.cluster_relation_joined,
            self.on.cluster_relation_changed,
            self.on.secret_changed,
        ):
            framework.observe(event, self._on_hook)
        framework.observe(self.on.cluster_relation_departed, self._on_departed)
        framework.observe(self.on.cluster_relation_broken, self._on_broken)
        framework.observe(self.on.peek_action, self._on_peek)
        framework.observe(self.on.rotate_action, self._on_rotate)
        framework.observe(self.on.forget_action, self._on_forget)
        framework.observe(self.on.fail_action, self._on_fail)
        framework.observe(self.on.share_action, self._on_share)
        framework.observe(self.on.address_action, self._on_address)

    def _record(self, event: ops.EventBase, **extra: Any) -> None:
        self._stored.hooks += 1
        entry: dict[str, Any] = {
            "unit": self.unit.name,
            "event": type(event).__name__,
            "leader": self.unit.is_leader(),
            "env": os.environ.get("TOY_UNIT"),
        }
        if isinstance(event, ops.RelationEvent):
            entry["remote"] = event.unit.name if event.unit else None
            entry["relation_units"] = sorted(u.name for u in event.relation.units)
        entry.update(extra)
        LOG.append(entry)

    def _on_hook(self, event: ops.EventBase) -> None:
        self._record(event)
        self._reconcile()

    def _reconcile(self, gone: ops.Unit | None = None) -> None:
        peer = self.model.get_relation("cluster")
        if peer is None:
            return
        peer.data[self.unit]["hello"] = self.unit.name
        app = peer.data[self.app]
        if self.unit.is_leader():
            units = [u for u in peer.units if u != gone]
            hellos = [peer.data[u].get("hello") for u in units] + [self.unit.name]
            app["hellos"] = ",".join(sorted(h for h in hellos if h))
            for unit in units:
                if unit.name not in app:
                    secret = self.app.add_secret({"token": f"token-{unit.name}"})
                    secret.grant(peer, unit=unit)
                    app[unit.name] = str(secret.id)
        elif secret_id := app.get(self.unit.name):
            content = self.model.get_secret(id=secret_id).get_content(refresh=True)
            peer.data[self.unit]["token-hash"] = token_hash(content["token"])

    def _on_departed(self, event: ops.RelationDepartedEvent) -> None:
        departing = event.departing_unit
        assert departing is not None
        self._record(event, departing=departing.name)
        if not self.unit.is_leader() or departing == self.unit:
            return
        secret_id = event.relation.data[self.app].pop(departing.name, None)
        if secret_id:
            self.model.get_secret(id=secret_id).remove_all_revisions()
        self._reconcile(gone=departing)

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._record(event)

    def _on_peek(self, event: ops.ActionEvent) -> None:
        try:
            content = self.model.get_secret(id=event.params["id"]).get_content()
        except ops.SecretNotFoundError:
            event.set_results({"found": "no"})
        else:
            event.set_results({"found": "yes", "token": content["token"]})

    def _on_rotate(self, event: ops.ActionEvent) -> None:
        peer = self.model.get_relation("cluster")
        assert peer is not None
        secret = self.model.get_secret(id=peer.data[self.app][event.params["unit"]])
        secret.set_content({"token": f"rotated-{event.params['unit']}"})

    def _on_forget(self, event: ops.ActionEvent) -> None:
        peer = self.model.get_relation("cluster")
        assert peer is not None
        secret_id = peer.data[self.app].pop(event.params["unit"])
        self.model.get_secret(id=secret_id).remove_all_revisions()

    def _on_fail(self, event: ops.ActionEvent) -> None:
        peer = self.model.get_relation("cluster")
        assert peer is not None
        peer.data[self.unit]["tried"] = "yes"
        event.fail("asked to fail")

    def _on_share(self, event: ops.ActionEvent) -> None:
        peer = self.model.get_relation("cluster")
        assert peer is not None
        secret = self.unit.add_secret({"token": f"from-{self.unit.name}"})
        secret.grant(peer, unit=self.model.get_unit(event.params["unit"]))
        event.set_results({"id": str(secret.id)})

    def _on_address(self, event: ops.ActionEvent) -> None:
        binding = self.model.get_binding("cluster")
        assert binding is not None
        event.set_results({"address": str(binding.network.ingress_address)})


class Chatty(ops.CharmBase):
    """Rewrites its unit bag in every hook: each write wakes every peer."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        framework.observe(self.on.cluster_relation_changed, self._on_changed)
        framework.observe(self.on.cluster_relation_joined, self._on_changed)

    def _on_changed(self, event: ops.RelationEvent) -> None:
        bag = event.relation.data[self.unit]
        bag["n"] = str(int(bag.get("n", "0")) + 1)


@pytest.fixture(autouse=True)
def _clear_log() -> Iterator[None]:
    LOG.clear()
    yield
    LOG.clear()


def make_sim(units: int = 3, **kwargs: Any) -> Sim:
    sim = Sim(Toy, app="app", peer="cluster", context=CONTEXT, **kwargs)
    for _ in range(units):
        sim.add_unit()
    sim.settle()
    return sim


def peek(sim: Sim, unit: str, secret_id: str) -> dict[str, Any] | None:
    return sim.run(unit, sim.on.action("peek", params={"id": secret_id}))


def events(unit: str, event: str) -> list[dict[str, Any]]:
    return [e for e in LOG if e["unit"] == unit and e["event"] == event]


# --- forming the group --------------------------------------------------------------


def test_three_units_settle_with_the_expected_bags() -> None:
    sim = make_sim(3)

    assert list(sim.units) == ["app/0", "app/1", "app/2"]
    assert [u.leader for u in sim.units.values()] == [True, False, False]
    assert sim.app_data["hellos"] == "app/0,app/1,app/2"
    assert set(sim.app_data) == {"hellos", "app/1", "app/2"}
    for name in ("app/1", "app/2"):
        assert sim.unit_data[name]["hello"] == name
        assert sim.unit_data[name]["token-hash"] == token_hash(f"token-{name}")
        # Juju's own keys are in every unit bag.
        assert "ingress-address" in sim.unit_data[name]
    assert "token-hash" not in sim.unit_data["app/0"]
    assert sim.pending == []


def test_each_unit_state_holds_the_shared_relation_as_that_unit_sees_it() -> None:
    sim = make_sim(3)

    unit = sim.units["app/1"]
    relation = unit.state.get_relation(sim.relation_id)
    assert isinstance(relation, testing.PeerRelation)
    assert relation.local_app_data == sim.app_data
    assert relation.local_unit_data == sim.unit_data["app/1"]
    assert relation.peers_data == {0: sim.unit_data["app/0"], 2: sim.unit_data["app/2"]}
    for other in sim.units.values():
        assert other.state.get_relation(sim.relation_id).id == sim.relation_id


def test_first_hooks_follow_juju_order() -> None:
    sim = Sim(Toy, context=CONTEXT)
    sim.add_unit()
    assert sim.pending == [
        ("app/0", "install"),
        ("app/0", "cluster_relation_created"),
        ("app/0", "leader_elected"),
        ("app/0", "config_changed"),
        ("app/0", "start"),
    ]
    sim.settle()
    sim.add_unit()
    assert sim.pending == [
        ("app/1", "install"),
        ("app/1", "cluster_relation_created"),
        ("app/1", "config_changed"),
        ("app/1", "start"),
        ("app/1", "cluster_relation_joined"),
        ("app/1", "cluster_relation_changed"),
        ("app/0", "cluster_relation_joined"),
        ("app/0", "cluster_relation_changed"),
    ]


def test_units_added_together_start_before_their_relation_hooks() -> None:
    """`juju deploy -n 3`: machines come up side by side, then the units meet."""
    sim = Sim(Toy, context=CONTEXT)
    arrived: list[int] = []
    sim.add_units(3, before_each=lambda: arrived.append(len(sim.units)))
    assert arrived == [0, 1, 2]
    relation_hooks = {"cluster_relation_joined", "cluster_relation_changed"}
    first = [(u, e) for u, e in sim.pending if e not in relation_hooks]
    assert sim.pending[: len(first)] == first, "every unit's first hooks come first"
    assert len(first) == 5 + 4 + 4
    joins = [(u, e) for u, e in sim.pending if e == "cluster_relation_joined"]
    assert len(joins) == 6  # each of the 3 pairs, both ways
    sim.settle()
    assert {name: sorted(u.joined) for name, u in sim.units.items()} == {
        "app/0": ["app/1", "app/2"],
        "app/1": ["app/0", "app/2"],
        "app/2": ["app/0", "app/1"],
    }


def test_app_bag_changes_reach_peers_without_a_remote_unit() -> None:
    make_sim(3)

    app_changes = [e for e in LOG if e["event"] == "RelationChangedEvent" and e["remote"] is None]
    assert app_changes
    assert all(not e["leader"] for e in app_changes)
    unit_changes = [e for e in LOG if e["event"] == "RelationChangedEvent" and e["remote"]]
    assert all(e["remote"] in e["relation_units"] for e in unit_changes)


def test_stored_state_carries_over_between_hooks() -> None:
    sim = make_sim(2)

    for unit in sim.units.values():
        stored = unit.state.get_stored_state("_stored", owner_path="Toy")
        assert stored.content["hooks"] == len([e for e in LOG if e["unit"] == unit.name])
        assert stored.content["hooks"] > 3


def test_before_hook_wraps_every_hook_of_its_unit() -> None:
    seen: list[str] = []

    @contextlib.contextmanager
    def as_unit(unit: SimUnit) -> Iterator[None]:
        seen.append(unit.name)
        os.environ["TOY_UNIT"] = unit.name
        try:
            yield
        finally:
            del os.environ["TOY_UNIT"]

    sim = make_sim(2, before_hook=as_unit)

    assert seen == [unit for unit, _ in sim.hooks]
    assert all(e["env"] == e["unit"] for e in LOG)
    assert "TOY_UNIT" not in os.environ


def test_each_unit_gets_its_own_networks_and_juju_keys_in_its_bag() -> None:
    def networks(unit: SimUnit) -> list[testing.Network]:
        address = f"10.1.0.{unit.number + 1}"
        return [
            testing.Network(
                "cluster",
                [testing.BindAddress([testing.Address(address)])],
                ingress_addresses=[address],
                egress_subnets=[f"{address}/32"],
            )
        ]

    sim = make_sim(2, networks=networks)

    assert sim.run("app/1", sim.on.action("address")) == {"address": "10.1.0.2"}
    assert sim.unit_data["app/0"]["ingress-address"] == "10.1.0.1"
    assert sim.unit_data["app/1"]["private-address"] == "10.1.0.2"
    assert sim.unit_data["app/1"]["egress-subnets"] == "10.1.0.2/32"


def test_config_changed_reaches_every_unit_once() -> None:
    sim = make_sim(2)
    sim.config_changed(colour="blue")
    sim.config_changed(colour="green")  # coalesced with the first

    assert sim.pending == [("app/0", "config_changed"), ("app/1", "config_changed")]
    sim.settle()
    assert all(u.state.config["colour"] == "green" for u in sim.units.values())


# --- secrets ------------------------------------------------------------------------


def test_peers_read_app_secrets_by_default_as_juju_does() -> None:
    sim = make_sim(3)
    secret_id = sim.app_data["app/1"]

    assert peek(sim, "app/1", secret_id) == {"found": "yes", "token": "token-app/1"}
    # Juju: "all units can read secrets owned by application", grant or not.
    assert peek(sim, "app/2", secret_id) == {"found": "yes", "token": "token-app/1"}


def test_with_grants_only_an_ungranted_unit_cannot_see_the_secret() -> None:
    sim = make_sim(3, peers_read_app_secrets=False)
    secret_id = sim.app_data["app/1"]

    assert peek(sim, "app/1", secret_id) == {"found": "yes", "token": "token-app/1"}
    assert peek(sim, "app/2", secret_id) == {"found": "no"}
    # The unit's State holds only what it may read.
    assert [s.owner for s in sim.units["app/1"].state.secrets] == [None]
    assert {s.owner for s in sim.units["app/0"].state.secrets} == {"app"}


def test_a_unit_secret_is_seen_only_by_its_owner_and_grantees() -> None:
    sim = make_sim(3)

    results = sim.run("app/1", sim.on.action("share", params={"unit": "app/2"}))
    assert results is not None
    secret_id = results["id"]

    assert peek(sim, "app/2", secret_id) == {"found": "yes", "token": "from-app/1"}
    assert peek(sim, "app/0", secret_id) == {"found": "no"}  # not even the leader
    assert sim.units["app/1"].state.get_secret(id=secret_id).owner == "unit"

    sim.remove_unit("app/1")
    sim.settle()
    assert peek(sim, "app/2", secret_id) == {"found": "no"}  # gone with its owner


def test_secrets_added_names_the_hook_and_owner_of_each_new_secret() -> None:
    sim = make_sim(3)
    added = [(sim.hooks[hook], owner) for hook, owner in sim.secrets_added]
    # The toy leader adds a secret for each peer in the hook where it first sees it.
    assert [owner for _, owner in added] == ["app", "app"]
    assert {hook[0] for hook, _ in added} == {"app/0"}
    assert len({hook for hook, _ in sim.secrets_added}) == 2

    results = sim.run("app/1", sim.on.action("share", params={"unit": "app/2"}))
    assert results is not None
    assert sim.secrets_added[-1] == (len(sim.hooks) - 1, "app/1")


def test_new_content_sends_secret_changed_to_its_reader() -> None:
    sim = make_sim(3, peers_read_app_secrets=False)

    sim.run("app/0", sim.on.action("rotate", params={"unit": "app/1"}))
    assert sim.pending == [("app/1", "secret_changed")]
    sim.settle()

    assert sim.unit_data["app/1"]["token-hash"] == token_hash("rotated-app/1")
    assert sim.unit_data["app/2"]["token-hash"] == token_hash("token-app/2")
    assert not events("app/2", "SecretChangedEvent")


def test_new_leader_manages_secrets_the_old_leader_created() -> None:
    sim = make_sim(3)
    secret_id = sim.app_data["app/2"]

    sim.set_leader("app/1")
    sim.settle()
    assert ("app/1", "leader_elected") in sim.hooks
    assert sim.leader is sim.units["app/1"]
    assert sim.units["app/1"].state.get_secret(id=secret_id).owner == "app"
    assert sim.units["app/0"].state.get_secret(id=secret_id).owner is None

    sim.run("app/1", sim.on.action("forget", params={"unit": "app/2"}))
    sim.settle()

    assert "app/2" not in sim.app_data
    for unit in ("app/0", "app/1", "app/2"):
        assert peek(sim, unit, secret_id) == {"found": "no"}


def test_old_leader_can_no_longer_manage_the_app_secrets() -> None:
    sim = make_sim(3)
    sim.set_leader("app/1")
    sim.settle()

    with pytest.raises(testing.errors.UncaughtCharmError):
        sim.run("app/0", sim.on.action("rotate", params={"unit": "app/2"}))
    assert sim.unit_data["app/2"]["token-hash"] == token_hash("token-app/2")


# --- departures ---------------------------------------------------------------------


def test_remove_unit_departs_it_everywhere() -> None:
    sim = make_sim(3)
    secret_id = sim.app_data["app/2"]

    sim.remove_unit("app/2")
    sim.settle()

    for unit in ("app/0", "app/1"):
        (departed,) = events(unit, "RelationDepartedEvent")
        assert departed["departing"] == departed["remote"] == "app/2"
        # As under Juju: out of relation-list, and ops does not add a departing peer back.
        assert "app/2" not in departed["relation_units"]
    own = events("app/2", "RelationDepartedEvent")
    assert sorted(e["remote"] for e in own) == ["app/0", "app/1"]
    assert {e["departing"] for e in own} == {"app/2"}
    assert [e["event"] for e in LOG if e["unit"] == "app/2"][-1] == "RelationBrokenEvent"
    own_hooks = [event for unit, event in sim.hooks if unit == "app/2"]
    assert own_hooks[-5:] == [
        "cluster_relation_departed",
        "cluster_relation_departed",
        "cluster_relation_broken",
        "stop",
        "remove",
    ]

    assert list(sim.units) == ["app/0", "app/1"]
    assert "app/2" in sim.removed
    assert sim.app_data["hellos"] == "app/0,app/1"
    assert "app/2" not in sim.app_data
    assert "app/2" not in sim.unit_data
    assert peek(sim, "app/1", secret_id) == {"found": "no"}
    relation = sim.units["app/1"].state.get_relation(sim.relation_id)
    assert isinstance(relation, testing.PeerRelation)
    assert list(relation.peers_data) == [0]


def test_removing_the_leader_unit_0_elects_another() -> None:
    sim = make_sim(3)

    sim.remove_unit("app/0")
    sim.settle()

    own = events("app/0", "RelationDepartedEvent")
    # Unit 0 departing itself: Scenario alone would report the remote unit here.
    assert {e["departing"] for e in own} == {"app/0"}
    assert sim.leader is sim.units["app/1"]
    assert ("app/1", "leader_elected") in sim.hooks
    assert sim.app_data["hellos"] == "app/1,app/2"


def test_removed_unit_numbers_are_not_reused() -> None:
    sim = make_sim(2)
    sim.remove_unit("app/1")
    sim.settle()

    assert sim.add_unit().name == "app/2"
    sim.settle()
    assert sim.app_data["hellos"] == "app/0,app/2"


def test_a_unit_removed_before_it_joined_skips_its_relation_hooks() -> None:
    sim = make_sim(1)
    sim.add_unit()
    sim.remove_unit("app/1")
    sim.settle()

    assert not events("app/0", "RelationJoinedEvent")
    assert not events("app/0", "RelationDepartedEvent")
    assert list(sim.units) == ["app/0"]
    with pytest.raises(SimError):
        sim.remove_unit("app/1")


# --- the run loop -------------------------------------------------------------------


def test_hooks_are_deterministic() -> None:
    first = make_sim(3)
    LOG.clear()
    second = make_sim(3)

    assert first.hooks == second.hooks
    assert [u.hooks_run for u in first.units.values()] == [
        u.hooks_run for u in second.units.values()
    ]
    assert sum(u.hooks_run for u in first.units.values()) == len(first.hooks)


def test_settle_raises_on_a_livelock() -> None:
    sim = Sim(Chatty, context={"meta": META})
    sim.add_unit()
    sim.add_unit()

    with pytest.raises(LivelockError):
        sim.settle(max_hooks=50)


def test_actions_return_results_and_failures_keep_their_changes() -> None:
    sim = make_sim(2)

    assert peek(sim, "app/0", "secret:nothing0000000000000") == {"found": "no"}
    with pytest.raises(testing.ActionFailed, match="asked to fail"):
        sim.run("app/1", sim.on.action("fail"))
    assert sim.unit_data["app/1"]["tried"] == "yes"
    assert sim.pending == [("app/0", "cluster_relation_changed")]
    assert sim.run("app/1", sim.on.update_status()) is None


def test_app_source_marker_is_not_a_unit_name() -> None:
    assert "/" not in APP


# --- one hook at a time (tests that play Juju's part themselves) ----------------------


def place(sim: Sim, count: int) -> list[SimUnit]:
    return [sim.place_unit({"said": f"hi from {sim.next_number}"}) for _ in range(count)]


def test_placed_units_are_in_each_others_relation_and_ran_no_hook() -> None:
    sim = Sim(Toy, context=CONTEXT)
    units = place(sim, 3)

    assert [u.name for u in units] == ["app/0", "app/1", "app/2"]
    assert [u.leader for u in units] == [True, False, False]
    assert sim.hooks == [] and sim.pending == []
    assert sim.unit_data["app/2"]["said"] == "hi from 2"
    assert "ingress-address" in sim.unit_data["app/2"]  # Juju's keys are there too
    out = sim.run_hook("app/1", "relation_changed", "app/0")

    (seen,) = LOG
    assert seen["event"] == "RelationChangedEvent" and seen["remote"] == "app/0"
    assert seen["relation_units"] == ["app/0", "app/2"]
    assert out is sim.units["app/1"].state
    assert sim.unit_data["app/1"]["hello"] == "app/1"
    # Its write is a change its peers hear of, as after any hook.
    assert sim.pending == [
        ("app/0", "cluster_relation_changed"),
        ("app/2", "cluster_relation_changed"),
    ]


def test_run_hook_takes_the_queued_hook_out_of_the_queue() -> None:
    sim = make_sim(3)
    sim.remove_unit("app/2")
    assert ("app/0", "cluster_relation_departed") in sim.pending

    sim.run_hook("app/0", "relation_departed", "app/2")

    (departed,) = events("app/0", "RelationDepartedEvent")
    assert departed["departing"] == "app/2" and departed["remote"] == "app/2"
    assert departed["relation_units"] == ["app/1"]
    assert ("app/0", "cluster_relation_departed") not in sim.pending
    sim.settle()
    assert len(events("app/0", "RelationDepartedEvent")) == 1, "it ran once"


def test_run_hook_refuses_hooks_juju_would_not_run() -> None:
    sim = Sim(Toy, context=CONTEXT)
    place(sim, 2)
    with pytest.raises(SimError, match="own"):
        sim.run_hook("app/1", "relation_changed", "app/1")
    sim.remove_unit("app/1")
    sim.run_hook("app/0", "relation_departed", "app/1")
    with pytest.raises(SimError, match="cannot run relation_changed"):
        sim.run_hook("app/0", "relation_changed", "app/1")  # no longer in its relation-list
    with pytest.raises(SimError, match="no unit"):
        sim.run_hook("app/7", "install")


def test_run_hook_state_changes_hold_for_that_hook_where_the_sim_rebuilds_the_state() -> None:
    home = testing.Network("cluster", [testing.BindAddress([testing.Address("10.1.0.1")])])
    moved = testing.Network("cluster", [testing.BindAddress([testing.Address("10.9.9.9")])])
    sim = Sim(Toy, context=CONTEXT, networks=lambda unit: [home])
    place(sim, 1)

    out = sim.run_hook("app/0", "config_changed", networks=frozenset({moved}))
    assert out.networks == {moved}
    assert sim.run_hook("app/0", "config_changed").networks == {home}


def test_write_unit_bag_is_heard_as_if_the_unit_had_written_it() -> None:
    sim = make_sim(2)
    sim.write_unit_bag("app/1", {"hello": "someone-else"})

    assert sim.unit_data["app/1"]["hello"] == "someone-else"
    assert "ingress-address" in sim.unit_data["app/1"]
    assert "token-hash" not in sim.unit_data["app/1"], "the whole bag is replaced"
    assert sim.pending == [("app/0", "cluster_relation_changed")]
    sim.run_hook("app/0", "relation_changed", "app/1")
    assert sim.app_data["hellos"] == "app/0,someone-else"


def test_set_secret_content_is_a_new_revision_its_readers_hear_of() -> None:
    sim = make_sim(2)
    secret_id = sim.app_data["app/1"]
    sim.set_secret_content(secret_id, {"token": "new"})

    assert sim.app_secrets[secret_id].latest_content == {"token": "new"}
    assert sim.pending == [("app/1", "secret_changed")]
    sim.settle()
    assert sim.unit_data["app/1"]["token-hash"] == token_hash("new")
    with pytest.raises(SimError, match="no secret"):
        sim.set_secret_content("secret:nope", {})


def test_app_secrets_are_the_leaders_copies() -> None:
    sim = make_sim(3)
    secrets = sim.app_secrets
    assert set(secrets) == {sim.app_data["app/1"], sim.app_data["app/2"]}
    assert {s.owner for s in secrets.values()} == {"app"}
    assert secrets[sim.app_data["app/2"]].latest_content == {"token": "token-app/2"}


def test_units_carry_the_machines_they_were_given() -> None:
    def networks(unit: SimUnit) -> list[testing.Network]:
        address = testing.Address(unit.machine)
        bind = [testing.BindAddress([address])]
        return [testing.Network("cluster", bind, ingress_addresses=[unit.machine])]

    sim = Sim(Toy, context=CONTEXT, networks=networks)
    assert sim.next_number == 0
    first = sim.add_unit(machine="10.1.0.1")
    rest = sim.add_units(2, machines=["10.1.0.2", "10.1.0.3"])
    placed = sim.place_unit(machine="10.1.0.4")

    assert [u.machine for u in [first, *rest, placed]] == [f"10.1.0.{n}" for n in (1, 2, 3, 4)]
    assert sim.unit_data["app/2"]["ingress-address"] == "10.1.0.3"
    assert sim.next_number == 4
    with pytest.raises(SimError, match="2 units but 1 machines"):
        sim.add_units(2, machines=["10.1.0.5"])


# --- failed hooks are retried, as Juju retries them ------------------------------


class Flaky(ops.CharmBase):
    """Fails its first `fails` config-changed hooks (counted outside the unit: a failed
    hook's stored state is rolled back), then records that it ran."""

    fails = 0
    attempts: ClassVar[list[str]] = []

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        Flaky.attempts.append(self.unit.name)
        if len([u for u in Flaky.attempts if u == self.unit.name]) <= Flaky.fails:
            raise RuntimeError(f"{self.unit.name}: transient failure")
        self.unit.status = ops.ActiveStatus("configured")


FLAKY_META = {"name": "flaky", "peers": {"cluster": {"interface": "flaky"}}}


FLAKY_CONFIG = {"options": {"anything": {"type": "string", "default": ""}}}


def flaky_sim(fails: int, **kwargs: Any) -> Sim:
    Flaky.fails = 0
    sim = Sim(Flaky, app="flaky", context={"meta": FLAKY_META, "config": FLAKY_CONFIG}, **kwargs)
    sim.add_units(2)
    sim.settle()
    Flaky.fails = fails
    Flaky.attempts = []
    return sim


def test_a_failed_hook_is_retried_after_the_other_units_hooks() -> None:
    sim = flaky_sim(fails=2)
    sim.config_changed(anything="new")
    sim.settle()
    # Each unit's failing hook is retried after the other unit had its turn.
    assert Flaky.attempts == ["flaky/0", "flaky/1", "flaky/0", "flaky/1", "flaky/0", "flaky/1"]
    assert [(u, k) for u, k, _ in sim.failed_hooks] == [
        ("flaky/0", "config_changed"),
        ("flaky/1", "config_changed"),
        ("flaky/0", "config_changed"),
        ("flaky/1", "config_changed"),
    ]
    for unit in sim.units.values():
        assert unit.state.unit_status == testing.ActiveStatus("configured")


def test_a_hook_failing_more_often_than_the_retries_propagates() -> None:
    sim = flaky_sim(fails=5, hook_retries=3)
    sim.config_changed(anything="new")
    with pytest.raises(testing.errors.UncaughtCharmError, match="transient failure"):
        sim.settle()
    # The first run and three retries of the unit that gave up first.
    assert [u for u, _, _ in sim.failed_hooks].count("flaky/0") == 4


def test_retries_can_be_turned_off() -> None:
    sim = flaky_sim(fails=1, hook_retries=0)
    sim.config_changed(anything="new")
    with pytest.raises(testing.errors.UncaughtCharmError, match="flaky/0: transient failure"):
        sim.settle()
