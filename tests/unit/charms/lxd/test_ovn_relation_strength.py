"""`lxd_charm.ovn_relation` at its edges, driven directly inside one hook.

test_ovn_relation.py runs the relations through whole hooks; these build
`OvnRelation` with the memory, mode and leadership each case needs (as its
cluster tests do) and assert the whole report, what LXD holds, the peer
record, and the log lines an operator reads.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import ops
import pytest
from ops import testing

from lxd_charm import ovn, ovn_relation
from lxd_charm.config import LxdConfig
from lxd_charm.machine import Machine
from lxd_charm.memory import Memory
from lxd_charm.outcomes import BlockedError, WaitingError
from tests.harness.fake_host import FakeHost
from tests.harness.fake_ovn import FakeProbes, OvnFakeLxd
from tests.unit.charms.lxd.test_ovn_relation import (
    CMS_ID,
    NEEDS_CERTS,
    PEER_ID,
    base,
    cms,
    legacy,
    nb,
    serve_as_member,
)

NB = "network.ovn.northbound_connection"
LOGGER = "lxd_charm.ovn_relation"


@pytest.fixture
def lxd(host: FakeHost) -> OvnFakeLxd:
    host.fake_lxd = OvnFakeLxd()
    return host.fake_lxd


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> FakeProbes:
    fake = FakeProbes()
    monkeypatch.setattr(ovn, "probe_northbound", fake)
    return fake


def serve(
    ctx: testing.Context[Any],
    host: FakeHost,
    *relations: testing.RelationBase,
    memory: Memory | None = None,
    mode: Literal["standalone", "cluster"] = "standalone",
    leader: bool = True,
) -> ovn_relation.OvnReport:
    state = base(relations=set(relations), leader=leader)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(
            host,
            memory or Memory(initialised=True),
            LxdConfig(mode=mode),
            environ={},
        )
        return ovn_relation.OvnRelation(manager.charm, machine, None).serve()


def ovn_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# --- the report ------------------------------------------------------------------------


def test_a_problem_is_shown_only_by_its_own_status() -> None:
    waiting = ovn_relation.OvnReport(problem=WaitingError("w"))
    assert waiting.shown_in(ops.WaitingStatus("w")) is True
    assert waiting.shown_in(ops.BlockedStatus("w")) is False
    blocked = ovn_relation.OvnReport(problem=BlockedError("b"))
    assert blocked.status() == ops.BlockedStatus("b")
    assert blocked.shown_in(ops.BlockedStatus("b")) is True


def test_a_summary_is_shown_only_by_an_active_status_holding_it() -> None:
    report = ovn_relation.OvnReport(summary="ovn northbound reachable (1/1)")
    assert report.status() is None
    assert report.suffix == "; ovn northbound reachable (1/1)"
    assert report.shown_in(ops.ActiveStatus("standalone; ovn northbound reachable (1/1)"))
    assert not report.shown_in(ops.WaitingStatus("x; ovn northbound reachable (1/1)"))
    assert not report.shown_in(ops.ActiveStatus("standalone"))
    assert ovn_relation.OvnReport().suffix == ""


# --- when there is nothing to do -------------------------------------------------------


def test_nothing_related_is_an_empty_report(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd
) -> None:
    assert serve(ctx, host) == ovn_relation.OvnReport()


def test_before_lxd_is_initialised_the_relations_wait_without_lxd(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = base(relations={cms('"10.0.0.9"'), legacy()}, leader=True)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=False), LxdConfig(), environ={})
        calls = lxd.calls
        report = ovn_relation.OvnRelation(manager.charm, machine, None).serve()
        assert lxd.calls == calls
        assert report == ovn_relation.OvnReport()
        assert probes.asked == []


def test_recheck_without_initialised_lxd_or_ovsdb_cms_is_none(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd
) -> None:
    for relations, initialised in (((cms('"10.0.0.9"'),), False), ((legacy(),), True)):
        state = base(relations=set(relations), leader=True)
        with ctx(ctx.on.update_status(), state) as manager:
            machine = Machine(host, Memory(initialised=initialised), LxdConfig(), environ={})
            assert ovn_relation.OvnRelation(manager.charm, machine, None).recheck() is None


def test_recheck_without_a_certificate_waits_for_it(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = base(relations={cms('"10.0.0.9"')}, leader=True)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(), environ={})
        report = ovn_relation.OvnRelation(manager.charm, machine, None).recheck()
    assert report is not None
    assert isinstance(report.problem, WaitingError)
    assert str(report.problem) == "waiting for a client certificate from "
    assert probes.asked == []


def test_recheck_with_unusable_material_blocks_naming_it(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = base(relations={cms('"10.0.0.9"'), legacy(key="")}, leader=True)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(), environ={})
        report = ovn_relation.OvnRelation(manager.charm, machine, None).recheck()
    assert report is not None
    assert isinstance(report.problem, BlockedError)
    assert str(report.problem) == "certificates: vault/0 sent no key"


# --- the stale-status check on update-status -------------------------------------------


class Found:
    def __init__(self, problem: object = None) -> None:
        self.problem = problem
        self.ovn: object = "untouched"


def test_a_hook_with_a_problem_of_its_own_is_not_rechecked(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = base(relations={cms('"10.0.0.9"'), legacy()}, leader=True)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(), environ={})
        found = Found(problem=WaitingError("cluster"))
        assert ovn_relation.stale_on_update_status(manager.charm, machine, None, found) is False
        assert found.ovn == "untouched"
        assert probes.asked == []
        fresh = Found()
        assert ovn_relation.stale_on_update_status(manager.charm, machine, None, fresh) is False
        assert fresh.ovn == ovn_relation.OvnReport(summary="ovn northbound reachable (1/1)")


def test_without_ovsdb_cms_update_status_is_not_stale(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd
) -> None:
    state = base(leader=True, unit_status=testing.BlockedStatus("ovn: old"))
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(), environ={})
        assert ovn_relation.stale_on_update_status(manager.charm, machine, None, None) is False


def test_a_status_that_still_says_it_is_not_stale(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    status = testing.ActiveStatus("standalone; ovn northbound reachable (1/1)")
    state = base(relations={cms('"10.0.0.9"'), legacy()}, leader=True, unit_status=status)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(), environ={})
        assert ovn_relation.stale_on_update_status(manager.charm, machine, None, None) is False


# --- what LXD is told, and the log -----------------------------------------------------


def test_each_setting_is_logged_once_when_it_changes(
    ctx: testing.Context[Any],
    host: FakeHost,
    lxd: OvnFakeLxd,
    probes: FakeProbes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        report = serve(ctx, host, cms('"10.0.0.9"'), legacy())
        assert report.summary == "ovn northbound reachable (1/1)"
        first = ovn_logs(caplog)
        caplog.clear()
        serve(ctx, host, cms('"10.0.0.9"'), legacy())
        again = ovn_logs(caplog)
    directory = host.root / ovn.SNAP_OVN_DIR
    assert first == [
        "ovn: LXD's northbound connection is now ssl:10.0.0.9:6641",
        f"ovn: TLS material from vault/0 written to {directory}",
    ]
    assert again == []


def test_server_keys_are_logged_once_and_certificates_alone_use_them(
    ctx: testing.Context[Any], host: FakeHost, probes: FakeProbes, caplog: pytest.LogCaptureFixture
) -> None:
    fake = OvnFakeLxd(extensions=("network_type_ovn", "ovn_ssl_config"))
    host.fake_lxd = fake
    with caplog.at_level(logging.INFO, logger=LOGGER):
        report = serve(ctx, host, legacy())
        first = ovn_logs(caplog)
        caplog.clear()
        serve(ctx, host, legacy())
        again = ovn_logs(caplog)
    assert report == ovn_relation.OvnReport()
    assert fake.config["network.ovn.client_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert not ovn.OvnFiles(host.root).present()
    assert first == ["ovn: LXD's OVN TLS keys set from vault/0"]
    assert again == []


def test_a_unit_without_an_address_yet_is_not_ignored(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    relation = testing.Relation(
        "ovsdb-cms",
        remote_app_name="ovn-central",
        id=CMS_ID,
        remote_units_data={0: {"bound-address": '"10.0.0.9"'}, 1: {}},
    )
    report = serve(ctx, host, relation, legacy())
    assert report == ovn_relation.OvnReport(summary="ovn northbound reachable (1/1)")


def test_tls_files_that_cannot_be_written_block_with_the_reason(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    blocker = host.root / ovn.SNAP_OVN_DIR
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    report = serve(ctx, host, cms('"10.0.0.9"'), legacy())
    assert isinstance(report.problem, BlockedError)
    assert (
        str(report.problem) == f"cannot write OVN's TLS files: [Errno 17] File exists: '{blocker}'"
    )


def test_a_member_that_does_not_lead_without_certificates_blocks(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = base(relations={cms('"10.0.0.9"')}, leader=False)
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(mode="cluster"), environ={})
        report = ovn_relation.OvnRelation(manager.charm, machine, None).serve()
        assert nb(lxd) is None
    assert isinstance(report.problem, BlockedError)
    assert str(report.problem) == NEEDS_CERTS


# --- the cluster's shared record -------------------------------------------------------


def test_a_new_leader_undoes_what_a_leader_recorded_without_any_relation(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd
) -> None:
    lxd.config[NB] = "ssl:10.0.0.9:6641"
    record = json.dumps({"northbound": "ssl:10.0.0.9:6641"})
    report, bag, _ = serve_as_member(ctx, host, app_bag={"ovn-server-config": record})
    assert report == ovn_relation.OvnReport()
    assert nb(lxd) is None
    assert "ovn-server-config" not in bag


def test_a_member_that_does_not_lead_leaves_the_record_to_the_leader(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd
) -> None:
    lxd.config[NB] = "ssl:10.0.0.9:6641"
    record = json.dumps({"northbound": "ssl:10.0.0.9:6641"})
    _, bag, _ = serve_as_member(ctx, host, leader=False, app_bag={"ovn-server-config": record})
    assert nb(lxd) == "ssl:10.0.0.9:6641"
    assert bag == {"ovn-server-config": record}


def test_a_standalone_unit_ignores_a_peer_record(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd
) -> None:
    lxd.config[NB] = "ssl:10.0.0.9:6641"
    peer = testing.PeerRelation(
        "cluster",
        id=PEER_ID,
        local_app_data={"ovn-server-config": json.dumps({"northbound": "ssl:10.0.0.9:6641"})},
    )
    assert serve(ctx, host, peer) == ovn_relation.OvnReport()
    assert nb(lxd) == "ssl:10.0.0.9:6641"


def test_server_keys_an_earlier_revision_kept_in_memory_are_moved_and_unset(
    ctx: testing.Context[Any], host: FakeHost, probes: FakeProbes
) -> None:
    fake = OvnFakeLxd(extensions=("network_type_ovn", "ovn_ssl_config"))
    fake.config.update(
        {
            "network.ovn.ca_cert": "CA",
            "network.ovn.client_cert": "C",
            "network.ovn.client_key": "K",
        }
    )
    host.fake_lxd = fake
    report, bag, memory = serve_as_member(ctx, host, ovn_memory={"server-keys": "true"})
    assert report == ovn_relation.OvnReport()
    assert not any(key.startswith("network.ovn.") for key in fake.config)
    assert memory == {}
    assert "ovn-server-config" not in bag


def test_a_malformed_record_counts_as_none(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    report, bag, _ = serve_as_member(
        ctx, host, cms('"10.0.0.9"'), legacy(), app_bag={"ovn-server-config": "{not json"}
    )
    assert report.problem is None
    assert json.loads(bag["ovn-server-config"]) == {"northbound": "ssl:10.0.0.9:6641"}


def test_the_record_is_rewritten_canonical(
    ctx: testing.Context[Any], host: FakeHost, probes: FakeProbes
) -> None:
    fake = OvnFakeLxd(extensions=("network_type_ovn", "ovn_ssl_config"))
    host.fake_lxd = fake
    unsorted = json.dumps({"server-keys": "true", "northbound": "ssl:10.0.0.9:6641"})
    _, bag, _ = serve_as_member(
        ctx, host, cms('"10.0.0.9"'), legacy(), app_bag={"ovn-server-config": unsorted}
    )
    assert bag["ovn-server-config"] == (
        '{"northbound": "ssl:10.0.0.9:6641", "server-keys": "true"}'
    )


def test_without_an_address_on_the_binding_none_is_published(
    ctx: testing.Context[Any], host: FakeHost, lxd: OvnFakeLxd, probes: FakeProbes
) -> None:
    state = testing.State(
        config={"lxd-init-network": False},
        networks={testing.Network("ovsdb-cms", bind_addresses=[])},
        resources=base().resources,
        relations={cms('"10.0.0.9"'), legacy()},
        leader=True,
    )
    with ctx(ctx.on.update_status(), state) as manager:
        machine = Machine(host, Memory(initialised=True), LxdConfig(), environ={})
        report = ovn_relation.OvnRelation(manager.charm, machine, None).serve()
        relation = manager.charm.model.get_relation("ovsdb-cms", CMS_ID)
        assert relation is not None
        assert "cms-client-bound-address" not in relation.data[manager.charm.unit]
    assert report == ovn_relation.OvnReport(summary="ovn northbound reachable (1/1)")
