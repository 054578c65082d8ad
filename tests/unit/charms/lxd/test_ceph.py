"""The `ceph` relation (requirer of ceph-client), every event, against the fake machine.

ceph-mon's databags are shaped as the ceph-mon charm writes them; the key
and the LXD answers are ones captured from a real Ceph 16.2 and LXD 5.0.2
(tests/functional/test_ceph.py runs the same steps for real).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm import ceph
from lxd_common.lxd import StoragePool
from tests.harness.databags import local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.fake_storage import FakeStoragePools

KEY = "AQBKjA5rHe5WEBAALWvAS4Nfhz5Ye27XGJmpmg=="
"""A key `ceph auth get-or-create-key` issued (Ceph 16.2)."""
EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
CEPH_DIR = Path("var/snap/lxd/common/ceph")


def mon(address: str = "10.0.0.11", *, key: str = KEY, **extra: str) -> dict[str, str]:
    """A ceph-mon unit's bag, once its cluster formed."""
    bag = {"auth": "cephx", "key": key, "ceph-public-address": address}
    bag.update(extra)
    return {k: v for k, v in bag.items() if v}


def ceph_rel(*units: dict[str, str], local: dict[str, str] | None = None) -> testing.Relation:
    return testing.Relation(
        "ceph",
        remote_app_name="ceph-mon",
        id=9,
        remote_units_data=dict(enumerate(units)),
        local_unit_data=local or {},
    )


def options(**extra: Any) -> dict[str, Any]:
    return {"lxd-init-network": False, "snap-config-ceph-builtin": True, **extra}


@pytest.fixture
def pools(host: FakeHost) -> FakeStoragePools:
    fake = FakeStoragePools()
    host.fake_lxd.storage = fake
    return fake


def installed(ctx: testing.Context[Any], **config: Any) -> testing.State:
    return ctx.run(ctx.on.install(), testing.State(config=options(**config), resources=EMPTY))


def changed(
    ctx: testing.Context[Any], state: testing.State, rel: testing.Relation
) -> testing.State:
    state = replace(state, relations=frozenset({rel}))
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def conf(host: FakeHost) -> str:
    return (host.root / CEPH_DIR / "ceph.conf").read_text()


def keyring(host: FakeHost) -> Path:
    return host.root / CEPH_DIR / "ceph.client.lxd.keyring"


# --- the files -----------------------------------------------------------------


def test_joined_before_ceph_mon_sends_anything_waits(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    rel = ceph_rel({})
    state = installed(ctx)
    out = ctx.run(
        ctx.on.relation_joined(rel, remote_unit=0), replace(state, relations=frozenset({rel}))
    )
    assert out.unit_status == testing.WaitingStatus(
        "waiting for ceph-mon to send this application's key and monitors"
    )
    assert not (host.root / CEPH_DIR / "ceph.conf").exists()


def test_the_relation_without_units_waits_for_them(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    rel = testing.Relation("ceph", remote_app_name="ceph-mon", id=9, remote_units_data={})
    out = ctx.run(
        ctx.on.relation_created(rel), replace(installed(ctx), relations=frozenset({rel}))
    )
    assert out.unit_status == testing.WaitingStatus(
        "waiting for ceph-mon units on the ceph relation"
    )


def test_key_and_monitors_become_the_snaps_files(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = changed(ctx, installed(ctx), ceph_rel(mon("10.0.0.11")))
    text = conf(host)
    assert "mon host = 10.0.0.11\n" in text
    assert "auth client required = cephx\n" in text
    assert f"keyring = {host.root / CEPH_DIR}/$cluster.$name.keyring\n" in text
    assert keyring(host).read_text() == f"[client.lxd]\n\tkey = {KEY}\n"
    assert keyring(host).stat().st_mode & 0o777 == 0o600
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")
    assert pools.calls == []  # ceph-create-pool is off: files only, as upstream


def test_the_key_is_never_logged(
    ctx: testing.Context[Any],
    host: FakeHost,
    pools: FakeStoragePools,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    changed(ctx, installed(ctx), ceph_rel(mon("10.0.0.11")))
    assert "ceph.conf written" in caplog.text
    assert KEY not in caplog.text
    assert KEY not in repr(ceph.CephAccess(("10.0.0.11",), KEY))


def test_private_address_stands_in_for_a_missing_public_address(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    bag = {"auth": "cephx", "key": KEY, "private-address": "10.0.0.12"}
    changed(ctx, installed(ctx), ceph_rel(bag))
    assert "mon host = 10.0.0.12\n" in conf(host)


def test_every_monitor_sorted_ipv6_in_brackets(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    rel = ceph_rel(mon("10.0.0.13 2001:db8::2"), mon("10.0.0.11", key=""), mon("10.0.0.13"))
    changed(ctx, installed(ctx), rel)
    assert "mon host = 10.0.0.11 10.0.0.13 [2001:db8::2]\n" in conf(host)


def test_monitors_coming_and_going_keep_the_conf_current(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    rel = ceph_rel(mon("10.0.0.11"), mon("10.0.0.12"))
    state = changed(ctx, installed(ctx), rel)
    assert "mon host = 10.0.0.11 10.0.0.12\n" in conf(host)
    gone = replace(rel, remote_units_data={0: mon("10.0.0.11")})
    state = replace(state, relations=frozenset({gone}))
    ctx.run(ctx.on.relation_departed(gone, remote_unit=1, departing_unit=1), state)
    assert "mon host = 10.0.0.11\n" in conf(host)
    moved = replace(gone, remote_units_data={0: mon("10.0.0.21")})
    changed(ctx, replace(state, relations=frozenset({moved})), moved)
    assert "mon host = 10.0.0.21\n" in conf(host)


def test_a_new_key_replaces_the_keyring(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    state = changed(ctx, installed(ctx), ceph_rel(mon()))
    other = "AQCLDttVuHXINhAAvI144CB09dYchhHyTUY9BQ=="
    changed(ctx, state, ceph_rel(mon(key=other)))
    assert other in keyring(host).read_text()
    assert keyring(host).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("bag", "message"),
    [
        (mon(key="not base64!"), "ceph-mon/0 sent a key that is not base64"),
        (mon(key="QUJD"), "ceph-mon/0 sent a key of 3 bytes; a cephx key has 28"),
        (mon("mon-1.example"), "ceph-mon/0 sent a monitor address 'mon-1.example' that is not"),
        (mon("10.0.0.300"), "ceph-mon/0 sent a monitor address '10.0.0.300'"),
        (mon(auth="kerberos"), "ceph-mon/0 sent auth 'kerberos'"),
    ],
)
def test_bad_data_from_ceph_mon_blocks_naming_unit_and_field(
    ctx: testing.Context[Any],
    host: FakeHost,
    pools: FakeStoragePools,
    bag: dict[str, str],
    message: str,
) -> None:
    out = changed(ctx, installed(ctx), ceph_rel(bag))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"ceph relation: {message}")
    assert "check the ceph-mon application" in out.unit_status.message
    assert KEY not in out.unit_status.message
    assert not (host.root / CEPH_DIR / "ceph.conf").exists()


def test_a_key_without_monitors_waits(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = changed(ctx, installed(ctx), ceph_rel({"auth": "cephx", "key": KEY}))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for ceph-mon to send this application's key and monitors"
    )


# Unset (None) was refused too until snap-config-ceph-builtin defaulted to true;
# tests/unit/charms/lxd/test_migration_options.py checks that default.
@pytest.mark.parametrize("builtin", [False])
def test_without_the_snaps_own_ceph_config_it_blocks_naming_the_option(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools, builtin: bool | None
) -> None:
    config = options()
    if builtin is None:
        del config["snap-config-ceph-builtin"]
    else:
        config["snap-config-ceph-builtin"] = builtin
    state = ctx.run(ctx.on.install(), testing.State(config=config, resources=EMPTY))
    out = changed(ctx, state, ceph_rel(mon()))
    assert out.unit_status == testing.BlockedStatus(
        "the ceph relation needs the snap's own Ceph configuration: "
        "juju config lxd snap-config-ceph-builtin=true"
    )
    assert not (host.root / CEPH_DIR).exists()


# --- the pool ------------------------------------------------------------------


def broker_req(state: testing.State) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(local_unit_data(state.get_relation(9))["broker_req"])
    return request


def answer(request: dict[str, Any], code: int = 0, **extra: Any) -> dict[str, str]:
    body = {"exit-code": code, "request-id": request["request-id"], **extra}
    return mon(**{"broker-rsp-lxd-0": json.dumps(body)})


def pool_state(ctx: testing.Context[Any], **config: Any) -> testing.State:
    return installed(ctx, **{"ceph-create-pool": True, **config})


def test_create_pool_asks_ceph_mon_through_the_broker_and_waits(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = changed(ctx, pool_state(ctx), ceph_rel(mon()))
    request = broker_req(out)
    assert request["api-version"] == 1
    assert request["ops"] == [
        {"op": "create-pool", "name": "lxd", "replicas": 3, "app-name": "rbd"}
    ]
    assert request["request-id"]
    assert out.unit_status == testing.WaitingStatus(
        "waiting for ceph-mon to create the RBD pool lxd"
    )
    assert pools.pools == {}


def test_the_request_keeps_its_id_until_the_ops_change(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    first = changed(ctx, pool_state(ctx), ceph_rel(mon()))
    request = broker_req(first)
    rel = ceph_rel(mon(), local=first.get_relation(9).local_unit_data)
    again = changed(ctx, first, rel)
    assert broker_req(again)["request-id"] == request["request-id"]
    other = replace(again, config={**again.config, "ceph-rbd-replicas": 2})
    rel = ceph_rel(mon(), local=again.get_relation(9).local_unit_data)
    renewed = changed(ctx, other, rel)
    assert broker_req(renewed)["request-id"] != request["request-id"]
    assert broker_req(renewed)["ops"][0]["replicas"] == 2


def test_an_answer_to_an_older_request_does_not_count(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    first = changed(ctx, pool_state(ctx), ceph_rel(mon()))
    stale = {"exit-code": 0, "request-id": "0da543b8"}
    rel = ceph_rel(
        mon(**{"broker-rsp-lxd-0": json.dumps(stale)}),
        local=first.get_relation(9).local_unit_data,
    )
    out = changed(ctx, first, rel)
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert pools.pools == {}


def test_a_refused_request_blocks_with_ceph_mons_reason(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    first = changed(ctx, pool_state(ctx), ceph_rel(mon()))
    refusal = answer(broker_req(first), code=1, stderr="Error EINVAL: pool size 3 > 1 OSDs")
    rel = ceph_rel(refusal, local=first.get_relation(9).local_unit_data)
    out = changed(ctx, first, rel)
    assert out.unit_status == testing.BlockedStatus(
        "ceph-mon refused to create the RBD pool lxd: Error EINVAL: pool size 3 > 1 OSDs"
    )


def served(ctx: testing.Context[Any], pools: FakeStoragePools, **config: Any) -> testing.State:
    """Pool asked for, ceph-mon answered: the LXD pool exists."""
    first = changed(ctx, pool_state(ctx, **config), ceph_rel(mon()))
    rel = ceph_rel(answer(broker_req(first)), local=first.get_relation(9).local_unit_data)
    return changed(ctx, first, rel)


def test_once_ceph_mon_made_the_pool_lxd_gets_a_remote_pool_on_it(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = served(ctx, pools)
    pool = pools.pools["lxd"]
    assert pool.driver == "ceph"
    assert pool.config["source"] == "lxd"
    assert pool.config["ceph.user.name"] == "lxd"
    assert pool.config["ceph.cluster_name"] == "ceph"
    assert pools.calls == [("create", "lxd", "")]  # standalone: no pending definitions
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")
    rel = ceph_rel(answer(broker_req(out)), local=out.get_relation(9).local_unit_data)
    changed(ctx, out, rel)
    assert pools.calls == [("create", "lxd", "")]  # created once


def test_pool_name_option_names_both_pools(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = served(ctx, pools, **{"ceph-rbd-pool": "vm-disks"})
    assert broker_req(out)["ops"][0]["name"] == "vm-disks"
    assert pools.pools["vm-disks"].config["source"] == "vm-disks"


def test_a_pool_of_that_name_with_another_driver_blocks(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    pools.pools["lxd"] = StoragePool("lxd", "dir", "Created", {"source": "/x"})
    out = served(ctx, pools)
    assert out.unit_status == testing.BlockedStatus(
        "LXD already has a dir storage pool called lxd: "
        "juju config lxd ceph-rbd-pool=<another name>"
    )


def test_lxd_refusing_the_pool_blocks_with_lxds_words(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    pools.refuse_create = (
        "Failed to run: ceph --name client.lxd --cluster ceph osd pool create nopool 32: "
        "exit status 13 (Error EACCES: access denied)"
    )
    out = served(ctx, pools)
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("cannot create the LXD storage pool lxd on Ceph: ")
    assert "Error EACCES: access denied" in out.unit_status.message


def test_invalid_pool_options_block(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = ctx.run(
        ctx.on.config_changed(),
        testing.State(config=options(**{"ceph-rbd-pool": "a b"}), resources=EMPTY),
    )
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid ceph-rbd-pool 'a b'")
    out = ctx.run(
        ctx.on.config_changed(),
        testing.State(config=options(**{"ceph-rbd-replicas": 0}), resources=EMPTY),
    )
    assert out.unit_status == testing.BlockedStatus("invalid ceph-rbd-replicas 0: set 1 or more")


# --- the relation goes ---------------------------------------------------------------


def broken(ctx: testing.Context[Any], state: testing.State) -> testing.State:
    rel = state.get_relation(9)
    return ctx.run(ctx.on.relation_broken(rel), state)


def test_broken_deletes_the_empty_pool_keeping_the_osd_pool_then_the_files(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = broken(ctx, served(ctx, pools))
    assert pools.pools == {}
    assert ("keep-backing", "lxd", "") in pools.calls
    assert not (host.root / CEPH_DIR / "ceph.conf").exists()
    assert not keyring(host).exists()
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")


def test_broken_refuses_to_delete_a_pool_holding_volumes(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    state = served(ctx, pools)
    pools.volumes_in["lxd"] = ["custom/data", "container/c1"]
    out = broken(ctx, state)
    assert out.unit_status == testing.BlockedStatus(
        "the ceph relation is gone but storage pool 'lxd' still holds 2 volume(s) "
        "(container/c1, custom/data); move or delete them first; the Ceph files stay until then"
    )
    assert "lxd" in pools.pools
    assert keyring(host).exists()
    pools.volumes_in["lxd"] = []
    after = ctx.run(ctx.on.update_status(), replace(out, relations=frozenset()))
    assert pools.pools == {}
    assert not keyring(host).exists()
    assert after.unit_status == testing.ActiveStatus("standalone; no network listener")


def test_broken_keeps_files_another_ceph_pool_uses_naming_it(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    state = changed(ctx, installed(ctx), ceph_rel(mon()))
    pools.pools["fast"] = StoragePool("fast", "ceph", "Created", {"ceph.user.name": "lxd"})
    out = broken(ctx, state)
    assert out.unit_status == testing.BlockedStatus(
        "storage pool fast still uses Ceph without the ceph relation: "
        "delete it (lxc storage delete fast) or relate ceph again"
    )
    assert keyring(host).exists()
    assert "fast" in pools.pools  # the operator's pool: never deleted by the charm


def test_broken_leaves_a_pool_made_with_another_key_alone(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    state = changed(ctx, installed(ctx, **{"ceph-create-pool": True}), ceph_rel(mon()))
    pools.pools["lxd"] = StoragePool("lxd", "ceph", "Created", {"ceph.user.name": "admin"})
    out = broken(ctx, state)
    assert "lxd" in pools.pools
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "storage pool lxd still uses Ceph" in out.unit_status.message


def test_broken_with_files_only_removes_them(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools
) -> None:
    out = broken(ctx, changed(ctx, installed(ctx), ceph_rel(mon())))
    assert not (host.root / CEPH_DIR / "ceph.conf").exists()
    assert not keyring(host).exists()
    assert out.unit_status == testing.ActiveStatus("standalone; no network listener")


# --- the pure protocol -------------------------------------------------------------


def test_broker_outcome_reads_only_this_units_answer() -> None:
    request = ceph.broker_request([ceph.pool_op("lxd", 3)], None)
    rid = json.loads(request)["request-id"]
    other = {"broker-rsp-lxd-1": json.dumps({"exit-code": 0, "request-id": rid})}
    assert ceph.broker_outcome(request, "lxd/0", [("ceph-mon/0", other)]) == ceph.BrokerOutcome()
    mine = {"broker-rsp-lxd-0": json.dumps({"exit-code": "0", "request-id": rid})}
    assert ceph.broker_outcome(request, "lxd/0", [("ceph-mon/1", mine)]).done
    garbled = {"broker-rsp-lxd-0": "{not json"}
    assert not ceph.broker_outcome(request, "lxd/0", [("ceph-mon/0", garbled)]).done


def test_a_garbled_previous_request_is_replaced() -> None:
    request = ceph.broker_request([ceph.pool_op("lxd", 3)], "{not json")
    assert json.loads(request)["ops"][0]["name"] == "lxd"


# --- a cluster member after a break ---------------------------------------------


@pytest.mark.parametrize(("user", "waits"), [("lxd", True), ("admin", False)])
def test_after_a_break_a_member_waits_for_the_leader_to_delete_the_applications_pool(
    ctx: testing.Context[Any], host: FakeHost, pools: FakeStoragePools, user: str, waits: bool
) -> None:
    """The leader deletes the pool it made (or says why not); a member only waits for it.

    A pool made with another key is the operator's: every unit blocks, naming it.
    """
    from lxd_charm.ceph_relation import CephRelation
    from lxd_charm.config import LxdConfig
    from lxd_charm.machine import Machine
    from lxd_charm.memory import Memory
    from lxd_charm.outcomes import BlockedError, WaitingError

    directory = host.root / CEPH_DIR
    directory.mkdir(parents=True)
    (directory / "ceph.conf").write_text("[global]\nmon host = 10.0.0.11\n")
    keyring(host).write_text(f"[client.lxd]\n\tkey = {KEY}\n")
    pools.pools["lxd"] = StoragePool("lxd", "ceph", "Created", {"ceph.user.name": user})
    state = testing.State(leader=False, config=options(), resources=EMPTY)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(mode="cluster"), environ={})
        problem = CephRelation(manager.charm, machine, clustered=True).serve()
        # Checked before the context runs the (standalone) hook itself on leaving the block.
        assert "lxd" in pools.pools  # a member never deletes it
        assert keyring(host).exists()
    if waits:
        assert isinstance(problem, WaitingError)
        assert str(problem) == (
            "the ceph relation is gone: waiting for the leader to delete the storage pool "
            "lxd; the Ceph files stay until then"
        )
    else:
        assert isinstance(problem, BlockedError)
        assert str(problem).startswith("storage pool lxd still uses Ceph")
