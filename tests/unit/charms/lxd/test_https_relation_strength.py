"""`lxd_charm.https_relation.HttpsRelation` driven directly, each decision at its edge.

test_https.py runs whole hooks on a standalone unit; these build the
relation inside one hook with the memory, leadership and mode each case
needs (a cluster's leader included, which keeps its record in the peer
application bag), against a stand-in LXD with the harness's trust store,
and assert the whole outcome: the problems returned, the trust entries,
the record kept and the answer published.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm.https_relation import HttpsRelation
from lxd_charm.memory import Memory
from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.interfaces.lxd_https import ServerInfo
from lxd_common.lxd import ClusterMember
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeTrust

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
ALICE = generate_client_certificate("alice")
BOB = generate_client_certificate("bob")
SERVER = generate_client_certificate("server")
LISTEN = "juju config lxd lxd-listen-https=true"


class Lxd:
    """What `serve` uses of `LxdClient`: the trust store, `GET /1.0`, the cluster's members."""

    def __init__(self, *member_urls: str) -> None:
        self.trust = FakeTrust({"default"})
        self.cluster = self
        self.urls = member_urls
        self.requests = 0

    def server_info(self) -> dict[str, Any]:
        self.requests += 1
        return {
            "environment": {
                "certificate": SERVER.certificate,
                "certificate_fingerprint": fingerprint(SERVER.certificate),
            }
        }

    def members(self) -> list[ClusterMember]:
        self.requests += 1
        return [ClusterMember(f"m{i}", url, "Online", []) for i, url in enumerate(self.urls)]


def request(cert: str) -> dict[str, str]:
    return {"version": "1.0", "certificate": cert}


def https(*units: dict[str, str], relation_id: int = 7) -> testing.Relation:
    return testing.Relation(
        "https", remote_app_name="client", id=relation_id, remote_units_data=dict(enumerate(units))
    )


def peer(records: str | None = None) -> testing.PeerRelation:
    return testing.PeerRelation(
        "cluster", local_app_data={} if records is None else {"https-clients": records}
    )


@contextmanager
def relation(
    ctx: testing.Context[Any],
    *relations: testing.Relation | testing.PeerRelation,
    memory: Memory | None = None,
    leader: bool = True,
    clustered: bool = False,
    listeners: dict[str, str] | None = None,
) -> Iterator[tuple[HttpsRelation, Any]]:
    """An HttpsRelation inside one hook, and the model (the hook itself runs as the block ends)."""
    state = testing.State(
        leader=leader,
        config={"lxd-init-network": False},
        resources=EMPTY,
        relations=frozenset(relations),
    )
    with ctx(ctx.on.update_status(), state) as manager:
        yield (
            HttpsRelation(
                manager.charm,
                memory if memory is not None else Memory(initialised=True),
                clustered=clustered,
                listeners={"https": "10.0.0.5:8443"} if listeners is None else listeners,
            ),
            manager.charm.model,
        )


JUJU_KEYS = {"egress-subnets", "ingress-address", "private-address"}


def answer(bag: Any) -> dict[str, str]:
    """A databag without the addresses Juju itself puts in every unit's bag."""
    return {k: v for k, v in bag.items() if k not in JUJU_KEYS}


def names(lxd: Lxd) -> list[str]:
    return sorted(e.name for e in lxd.trust.entries())


# --- when this unit serves nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("initialised", "leader", "clustered"),
    [(False, True, False), (False, True, True), (True, False, True)],
    ids=["uninitialised", "uninitialised-cluster-leader", "cluster-member-not-leading"],
)
def test_no_request_before_initialisation_or_on_a_member_that_does_not_lead(
    ctx: testing.Context[Any], host: FakeHost, initialised: bool, leader: bool, clustered: bool
) -> None:
    lxd = Lxd("https://10.0.0.1:8443")
    rel = https(request(ALICE.certificate))
    memory = Memory(initialised=initialised)
    with relation(ctx, rel, peer(), memory=memory, leader=leader, clustered=clustered) as (
        served,
        model,
    ):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
        assert answer(model.get_relation("https").data[model.unit]) == {}
    assert (lxd.requests, names(lxd), memory.https_clients) == (0, [], {})


def test_nothing_related_and_nothing_recorded_is_no_problem(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    lxd = Lxd()
    with relation(ctx) as (served, _):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
    assert lxd.requests == 0


# --- a standalone unit ----------------------------------------------------------------------


def test_without_the_https_listener_that_problem_comes_first(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    lxd = Lxd()
    rel = https(request(ALICE.private_key), request(BOB.certificate))
    with relation(ctx, rel, listeners={}) as (served, _):
        problems = served.serve(lxd)  # type: ignore[arg-type]
    assert problems == [
        f"clients cannot connect: {LISTEN}",
        "client/0: this is a private key, not a certificate; "
        "give the certificate (-----BEGIN CERTIFICATE-----) instead",
    ]


def test_a_unit_that_withdraws_its_certificate_loses_its_record(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    lxd = Lxd()
    memory = Memory(initialised=True)
    with relation(ctx, https(request(ALICE.certificate)), memory=memory) as (served, _):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
    assert memory.https_clients == {"7": {"client/0": fingerprint(ALICE.certificate)}}
    with relation(ctx, https({}), memory=memory) as (served, _):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
    assert (memory.https_clients, names(lxd)) == ({}, [])


# --- a cluster's leader ----------------------------------------------------------------------


def test_a_cluster_leader_answers_once_with_every_members_address_and_keeps_the_record(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    lxd = Lxd("https://10.0.0.1:8443", "https://[fd00::2]:8443")
    memory = Memory(initialised=True)
    rel = https(request(ALICE.certificate), request(BOB.certificate))
    with relation(ctx, rel, peer(), memory=memory, clustered=True) as (served, model):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
        bag = model.get_relation("https").data
        info = ServerInfo.from_databag(bag[model.app])
        assert answer(bag[model.unit]) == {}
        recorded = model.get_relation("cluster").data[model.app]["https-clients"]
    assert info is not None
    assert info.addresses == ("10.0.0.1:8443", "[fd00::2]:8443")
    assert info.certificate_fingerprint == fingerprint(SERVER.certificate)
    assert recorded == json.dumps(
        {
            "7": {
                "client/0": fingerprint(ALICE.certificate),
                "client/1": fingerprint(BOB.certificate),
            }
        },
        sort_keys=True,
    )
    assert memory.https_clients == {}, "a cluster's record is shared, not this unit's"
    assert names(lxd) == ["juju-relation-client/0", "juju-relation-client/1"]


def test_a_new_leader_removes_what_the_previous_one_trusted_for_a_relation_gone(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    lxd = Lxd("https://10.0.0.1:8443")
    entry = lxd.trust.add(ALICE.certificate, name="juju-relation-client/0")
    records = json.dumps({"5": {"client/0": entry.fingerprint}})
    with relation(ctx, peer(records), clustered=True) as (served, model):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
        assert "https-clients" not in model.get_relation("cluster").data[model.app]
    assert names(lxd) == []


def test_the_shared_record_is_written_canonical(ctx: testing.Context[Any], host: FakeHost) -> None:
    """Sorted keys ("10" before "9"), so a leader rewriting the same record changes no bag."""
    lxd = Lxd("https://10.0.0.1:8443")
    entry = lxd.trust.add(ALICE.certificate, name="juju-relation-client/0")
    old = https(request(ALICE.certificate), relation_id=9)
    new = testing.Relation(
        "https", remote_app_name="other", id=10, remote_units_data={0: request(BOB.certificate)}
    )
    records = json.dumps({"9": {"client/0": entry.fingerprint}})
    with relation(ctx, old, new, peer(records), clustered=True) as (served, model):
        assert served.serve(lxd) == []  # type: ignore[arg-type]
        recorded = model.get_relation("cluster").data[model.app]["https-clients"]
    assert recorded == (
        f'{{"10": {{"other/0": "{fingerprint(BOB.certificate)}"}}, '
        f'"9": {{"client/0": "{entry.fingerprint}"}}}}'
    )
