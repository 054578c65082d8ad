"""The `logging` relation (loki_push_api), requirer side: LXD's `loki.*` keys, set and unset.

What the fake LXD answers comes from two sources:

- Debian's LXD 5.0.2, captured: its API extensions (tests/data) lack
  `loki`, and it refuses the key with "cannot set 'loki.api.url' to '...':
  unknown key" (tests/functional/test_cos_logging.py asserts both on a
  real daemon). The charm never sends the key there.
- LXD with the `loki` extension (snap 5.21+, not runnable here), from
  LXD's documentation: doc/api-extensions.md, section `loki` (adds
  `loki.api.url`, `loki.api.ca_cert`, `loki.auth.*`, `loki.labels`,
  `loki.loglevel`, `loki.types`), and doc/server.md, "Loki configuration":
  `loki.api.url` is a string of scope `global` (cluster-wide, so a
  cluster's leader sets it once), with no default; setting a server key to
  "" removes it (what `lxc config unset` sends, and how our client unsets),
  which the fake plays by dropping the key.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm.cos.loki import base_url
from tests.harness.fake_host import FakeHost
from tests.harness.juju_sim import Sim
from tests.unit.charms.lxd.test_charm_cluster import formed, run
from tests.unit.charms.lxd.test_metrics_endpoint import sim  # noqa: F401  (fixture)

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
CAPTURED = Path(__file__).parents[3] / "data" / "lxd-5.0.2-api-extensions.txt"
LXD_502 = [line for line in CAPTURED.read_text().splitlines() if not line.startswith("#")]
WITH_LOKI = [*LXD_502, "loki"]


def loki(*urls: str, relation_id: int = 31) -> testing.Relation:
    return testing.Relation(
        "logging",
        interface="loki_push_api",
        remote_app_name="loki",
        id=relation_id,
        remote_units_data={n: {"endpoint": json.dumps({"url": u})} for n, u in enumerate(urls)},
    )


def state(*relations: testing.RelationBase, **kw: Any) -> testing.State:
    return testing.State(
        config={"lxd-init-network": False}, resources=EMPTY, relations=set(relations), **kw
    )


def test_lxd_502_has_no_loki_extension() -> None:
    assert "metrics" in LXD_502
    assert "loki" not in LXD_502


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ('{"url": "http://10.1.1.1:3100/loki/api/v1/push"}', "http://10.1.1.1:3100"),
        (
            '{"url": "https://loki.example/cos-loki-0/loki/api/v1/push"}',
            "https://loki.example/cos-loki-0",
        ),
        ('{"url": "http://10.1.1.1:3100/"}', "http://10.1.1.1:3100"),
        ('{"url": "ftp://x"}', None),
        ('{"url": 5}', None),
        ("[1]", None),
        ("{{", None),
        (None, None),
    ],
)
def test_base_url(endpoint: str | None, expected: str | None) -> None:
    assert base_url(endpoint) == expected


def test_set_then_unset_when_the_relation_goes(ctx: testing.Context[Any], host: FakeHost) -> None:
    host.fake_lxd.api_extensions = WITH_LOKI
    rel = loki("http://10.1.1.1:3100/loki/api/v1/push", "http://10.1.1.2:3100/loki/api/v1/push")
    out = ctx.run(ctx.on.install(), state(rel, leader=True))
    out = ctx.run(ctx.on.relation_changed(out.get_relation(31), remote_unit=0), out)
    assert out.unit_status.name == "active", out.unit_status.message
    assert host.fake_lxd.config["loki.api.url"] == "http://10.1.1.1:3100"

    out = ctx.run(ctx.on.relation_broken(out.get_relation(31)), out)
    assert "loki.api.url" not in host.fake_lxd.config
    again = ctx.run(ctx.on.update_status(), replace(out, relations=frozenset()))
    assert "loki.api.url" not in host.fake_lxd.config
    assert again.unit_status.name == "active"


def test_an_operators_own_url_is_left_alone(ctx: testing.Context[Any], host: FakeHost) -> None:
    host.fake_lxd.api_extensions = WITH_LOKI
    out = ctx.run(ctx.on.install(), state(loki("http://10.1.1.1:3100/loki/api/v1/push")))
    out = ctx.run(ctx.on.relation_changed(out.get_relation(31), remote_unit=0), out)
    host.fake_lxd.config["loki.api.url"] = "http://operator:3100"  # changed by hand since
    ctx.run(ctx.on.relation_broken(out.get_relation(31)), out)
    assert host.fake_lxd.config["loki.api.url"] == "http://operator:3100"


def test_lxd_without_the_extension_blocks_naming_a_snap_channel(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    host.fake_lxd.api_extensions = LXD_502
    out = ctx.run(ctx.on.install(), state(loki("http://10.1.1.1:3100/loki/api/v1/push")))
    out = ctx.run(ctx.on.relation_changed(out.get_relation(31), remote_unit=0), out)
    assert out.unit_status == testing.BlockedStatus(
        "logging: this LXD has no 'loki' API extension: refresh to a snap that has it "
        "(juju config lxd snap-channel=5.21/stable or later)"
    )
    assert "loki.api.url" not in host.fake_lxd.config


def test_bad_endpoints_are_skipped_and_none_at_all_sets_nothing(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    host.fake_lxd.api_extensions = WITH_LOKI
    bad = testing.Relation(
        "logging",
        remote_app_name="loki",
        id=31,
        remote_units_data={0: {"endpoint": "nonsense"}, 1: {}},
    )
    out = ctx.run(ctx.on.install(), state(bad))
    out = ctx.run(ctx.on.relation_changed(out.get_relation(31), remote_unit=0), out)
    assert out.unit_status.name == "active"
    assert "loki.api.url" not in host.fake_lxd.config
    good = replace(
        bad,
        remote_units_data={
            0: {"endpoint": "nonsense"},
            1: {"endpoint": json.dumps({"url": "http://l:3100/loki/api/v1/push"})},
        },
    )
    out = ctx.run(
        ctx.on.relation_changed(good, remote_unit=1), replace(out, relations=frozenset({good}))
    )
    assert host.fake_lxd.config["loki.api.url"] == "http://l:3100"


def test_a_changed_endpoint_moves_lxd_along(ctx: testing.Context[Any], host: FakeHost) -> None:
    host.fake_lxd.api_extensions = WITH_LOKI
    out = ctx.run(ctx.on.install(), state(loki("http://a:3100/loki/api/v1/push")))
    moved = loki("http://b:3100/loki/api/v1/push")
    out = ctx.run(
        ctx.on.relation_changed(moved, remote_unit=0), replace(out, relations=frozenset({moved}))
    )
    assert host.fake_lxd.config["loki.api.url"] == "http://b:3100"


def test_cluster_leader_sets_the_cluster_wide_key_and_a_new_leader_unsets_it(
    sim: Sim,  # noqa: F811
) -> None:
    machines = formed(sim, 2)
    for machine in machines:
        machine.lxd.api_extensions = WITH_LOKI
    rel = loki("http://a:3100/loki/api/v1/push")
    for n in (0, 1):
        unit = sim.units[f"lxd/{n}"]
        unit.state = replace(unit.state, relations=frozenset({*unit.state.relations, rel}))
    run(sim, 1, "config_changed")
    assert "loki.api.url" not in machines[1].lxd.config, "members leave it to the leader"
    run(sim, 0, "config_changed")
    assert machines[0].lxd.config["loki.api.url"] == "http://a:3100"
    assert sim.app_data["logging-loki-url"] == "http://a:3100"
    # Leadership moves, then the relation goes: the new leader knows what was set.
    sim.set_leader("lxd/1")
    machines[1].lxd.config["loki.api.url"] = "http://a:3100"  # LXD's cluster-wide key
    sim.run("lxd/1", sim.on.relation_broken(sim.units["lxd/1"].state.get_relation(31)))
    assert "loki.api.url" not in machines[1].lxd.config
    assert "logging-loki-url" not in sim.app_data


def test_standalone_unset_does_not_depend_on_leadership(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """A standalone unit remembers in its own memory: gaining leadership changes nothing."""
    host.fake_lxd.api_extensions = WITH_LOKI
    rel = loki("http://a:3100/loki/api/v1/push")
    out = ctx.run(ctx.on.install(), state(rel, leader=False))
    assert host.fake_lxd.config["loki.api.url"] == "http://a:3100"
    out = ctx.run(ctx.on.leader_elected(), replace(out, leader=True))
    assert host.fake_lxd.config["loki.api.url"] == "http://a:3100"
    ctx.run(ctx.on.relation_broken(out.get_relation(31)), out)
    assert "loki.api.url" not in host.fake_lxd.config


def test_cluster_old_leader_leaves_the_unset_to_the_new_one(
    sim: Sim,  # noqa: F811
) -> None:
    """Relation broken after a leader change: only the new leader touches the cluster's key."""
    machines = formed(sim, 2)
    for machine in machines:
        machine.lxd.api_extensions = WITH_LOKI
    rel = loki("http://a:3100/loki/api/v1/push")
    for n in (0, 1):
        unit = sim.units[f"lxd/{n}"]
        unit.state = replace(unit.state, relations=frozenset({*unit.state.relations, rel}))
    run(sim, 0, "config_changed")
    sim.set_leader("lxd/1")
    sim.run("lxd/0", sim.on.relation_broken(sim.units["lxd/0"].state.get_relation(31)))
    assert machines[0].lxd.config["loki.api.url"] == "http://a:3100", "not the old leader's job"
    assert sim.app_data["logging-loki-url"] == "http://a:3100"
    machines[1].lxd.config["loki.api.url"] = "http://a:3100"  # LXD's cluster-wide key
    sim.run("lxd/1", sim.on.relation_broken(sim.units["lxd/1"].state.get_relation(31)))
    assert "loki.api.url" not in machines[1].lxd.config
    assert "logging-loki-url" not in sim.app_data
