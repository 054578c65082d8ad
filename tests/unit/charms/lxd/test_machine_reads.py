"""LXD round trips the machine steps make, counted with `FakeLxd`'s counters (never timed).

`Machine.server_config` answers from what the hook's connection read to
connect (pylxd's ``GET /1.0``), on an LXD initialised before that connection
opened, until the charm writes server config itself; everywhere else it asks
LXD. The adoption check lists storage pools, networks and profiles, and takes
cluster membership from the connection it opened for that.
"""

from __future__ import annotations

from typing import Any

import pytest
from ops import testing

from lxd_charm.config import LxdConfig
from lxd_charm.listeners import ListenerPlan
from lxd_charm.machine import Machine
from lxd_charm.memory import Memory
from lxd_charm.outcomes import BlockedError
from lxd_common.lxd import ExistingSetup
from tests.harness.fake_host import FakeHost
from tests.harness.fake_lxd import FakeLxd
from tests.unit.charms.lxd.test_charm import installed, run

HTTPS_ON = ListenerPlan({"core.https_address": "10.0.0.1:8443"}, [("tcp", 8443)], {}, [])


def machine_for(host: FakeHost, memory: Memory, **options: Any) -> Machine:
    return Machine(host, memory, LxdConfig(**options), environ={})


def initialised() -> Memory:
    return Memory(initialised=True, init_options={"mode": "standalone", "lxd-preseed": ""})


# --- the server config: the connection's read, while it holds --------------------------------


def test_on_an_initialised_lxd_the_connections_read_answers_without_a_request(
    host: FakeHost,
) -> None:
    lxd = host.fake_lxd
    lxd.config = {"core.https_address": "10.0.0.1:8443", "images.auto_update_interval": "0"}
    machine = machine_for(host, initialised())
    with machine.lxd() as client:
        calls = lxd.calls
        assert machine.server_config(client) == lxd.config
        assert machine.server_config(client) == lxd.config
        assert (lxd.calls, lxd.server_reads) == (calls, 0)


def test_it_is_what_the_connection_read_a_copy_a_caller_cannot_change(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.config = {"core.https_address": "10.0.0.1:8443"}
    machine = machine_for(host, initialised())
    with machine.lxd() as client:
        lxd.config = {"core.https_address": "10.9.9.9:8443"}  # behind the charm's back
        seen = machine.server_config(client)
        assert seen == {"core.https_address": "10.0.0.1:8443"}
        seen["core.https_address"] = "changed"
        assert machine.server_config(client) == {"core.https_address": "10.0.0.1:8443"}


def test_on_an_lxd_not_initialised_yet_every_answer_is_asked_for(host: FakeHost) -> None:
    """A bootstrap, a join or the first preseed may run on this connection and set keys."""
    lxd = host.fake_lxd
    machine = machine_for(host, Memory())
    with machine.lxd() as client:
        lxd.config["cluster.https_address"] = "10.0.0.1:8443"  # as a join's preseed would
        assert machine.server_config(client) == {"cluster.https_address": "10.0.0.1:8443"}
        assert lxd.server_reads == 1


def test_outside_a_block_and_on_another_connection_it_is_asked_for(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.config = {"core.https_address": "10.0.0.1:8443"}
    machine = machine_for(host, initialised())
    assert machine.server_config(lxd) == lxd.config  # type: ignore[arg-type]
    assert lxd.server_reads == 1
    other = FakeLxd()
    other.config = {"core.https_address": "10.0.0.2:8443"}
    with machine.lxd():
        assert machine.server_config(other) == other.config  # type: ignore[arg-type]
        assert other.server_reads == 1
    assert lxd.server_reads == 1
    with machine.lxd() as client:
        lxd.config = {}
    assert machine.server_config(client) == {}  # its block is over: asked again
    assert lxd.server_reads == 2


def test_a_later_block_reads_what_its_own_connection_found(host: FakeHost) -> None:
    lxd = host.fake_lxd
    machine = machine_for(host, initialised())
    with machine.lxd() as client:
        assert machine.server_config(client) == {}
    lxd.config = {"core.https_address": "10.0.0.1:8443"}
    with machine.lxd() as client:
        assert machine.server_config(client) == {"core.https_address": "10.0.0.1:8443"}
    assert lxd.server_reads == 0


def test_recording_an_initialisation_asks_again(host: FakeHost) -> None:
    lxd = host.fake_lxd
    machine = machine_for(host, initialised())
    with machine.lxd() as client:
        lxd.config["cluster.https_address"] = "10.0.0.1:8443"  # a join's preseed set it
        machine.record_initialised()
        assert machine.server_config(client) == {"cluster.https_address": "10.0.0.1:8443"}
        assert lxd.server_reads == 1


def test_undoing_a_cleared_proxy_diffs_against_the_connections_read_then_asks_again(
    host: FakeHost,
) -> None:
    lxd = host.fake_lxd
    lxd.config = {"core.proxy_http": "http://a", "core.https_address": "10.0.0.1:8443"}
    memory = initialised()
    memory.proxy = {"core.proxy_http": "http://a"}
    machine = machine_for(host, memory)
    with machine.lxd() as client:
        calls = lxd.calls
        machine.undo_cleared_proxy(client)
        assert lxd.calls - calls == 1  # the PATCH: the config it compared was the connection's
        assert lxd.config == {"core.https_address": "10.0.0.1:8443"}
        lxd.config["core.proxy_https"] = "http://b"  # as if anything had changed since
        assert machine.server_config(client) == lxd.config
        assert lxd.server_reads == 1


def test_the_listeners_diff_against_the_connections_read_then_ask_again(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.config = {"core.https_address": "10.0.0.1:8443", "core.metrics_address": ":8444"}
    machine = machine_for(host, initialised())
    plan = ListenerPlan(
        {"core.https_address": "10.0.0.1:8443", "core.metrics_address": None}, [], {}, []
    )
    with machine.lxd() as client:
        calls = lxd.calls
        machine.apply_listeners(client, plan, "")
        assert lxd.calls - calls == 1  # the PATCH only
        assert lxd.config == {"core.https_address": "10.0.0.1:8443"}
        assert machine.server_config(client) == lxd.config
        assert lxd.server_reads == 1


def test_listeners_already_as_planned_cost_no_request(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.config = {"core.https_address": "10.0.0.1:8443"}
    machine = machine_for(host, initialised())
    with machine.lxd() as client:
        calls = lxd.calls
        machine.apply_listeners(client, HTTPS_ON, "")
        assert lxd.calls == calls


def test_listeners_on_an_lxd_not_initialised_at_connect_are_diffed_against_lxd(
    host: FakeHost,
) -> None:
    """What a bootstrap set on the connection is compared with, not the connection's read."""
    lxd = host.fake_lxd
    machine = machine_for(host, Memory())
    with machine.lxd() as client:
        lxd.config = {"core.https_address": "10.0.0.1:8443", "core.dns_address": ":53"}
        machine.apply_listeners(client, ListenerPlan({"core.dns_address": None}, [], {}, []), "")
        assert lxd.config == {"core.https_address": "10.0.0.1:8443"}


def test_a_standalone_reconcile_reads_the_server_config_only_to_connect(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """The listeners' diff is against the connection's answer: the connection is all."""
    state = installed(ctx)
    lxd = host.fake_lxd
    calls, reads = lxd.calls, lxd.server_reads
    out = run(ctx, "config_changed", state)
    assert out.unit_status == state.unit_status
    assert (lxd.calls - calls, lxd.server_reads - reads) == (1, 0)


def test_a_listener_changed_by_hand_is_put_back_from_the_connections_answer(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """The connection opens after the operator's change: its answer has it, and the diff
    puts the planned value back."""
    state = installed(ctx, **{"lxd-listen-https": True})
    lxd = host.fake_lxd
    planned = lxd.config["core.https_address"]
    lxd.config["core.https_address"] = "127.0.0.1:9999"
    lxd.config["core.metrics_address"] = "127.0.0.1:8444"
    run(ctx, "config_changed", state)
    assert lxd.config["core.https_address"] == planned
    assert "core.metrics_address" not in lxd.config


# --- the adoption check -----------------------------------------------------------------------


def test_the_adoption_check_of_a_fresh_lxd_is_its_connection_and_three_listings(
    host: FakeHost,
) -> None:
    lxd = host.fake_lxd
    memory = Memory()
    assert machine_for(host, memory, mode="cluster").adopt_existing({}) == ""
    assert memory == Memory()
    assert (lxd.connections, lxd.calls) == (1, 4)
    assert lxd.cluster.state_reads == 0  # membership: the connection's answer said it


def test_membership_the_connection_reports_is_adopted(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.set_up_by_hand = ExistingSetup(cluster_member="m2")
    memory = Memory()
    machine = machine_for(host, memory, mode="cluster")
    assert machine.adopt_existing({"members": '{"lxd/4": "m2"}'}) == "cluster member m2"
    assert memory.initialised is True
    assert lxd.cluster.state_reads == 0


def test_membership_the_connection_reports_refuses_standalone_as_before(host: FakeHost) -> None:
    host.fake_lxd.set_up_by_hand = ExistingSetup(storage_pools=("local",), cluster_member="m1")
    memory = Memory()
    with pytest.raises(BlockedError) as info:
        machine_for(host, memory).adopt_existing({})
    assert str(info.value) == (
        "LXD here is already member m1 of an LXD cluster, but mode=standalone: set "
        "mode=cluster to manage that cluster with this application, or remove the member "
        "from its cluster by hand (lxc cluster remove m1 on another member)"
    )
    assert memory == Memory()


def test_inside_an_open_block_the_adoption_check_asks_for_membership(host: FakeHost) -> None:
    """An outer connection's answer may be older than a membership made since: ask LXD."""
    lxd = host.fake_lxd
    machine = machine_for(host, Memory(), mode="cluster")
    with machine.lxd():
        lxd.set_up_by_hand = ExistingSetup(cluster_member="m2")
        assert machine.adopt_existing({"members": '{"lxd/4": "m2"}'}) == "cluster member m2"
    assert lxd.cluster.state_reads == 1
    assert lxd.connections == 1
