"""`lxd_charm.cos.loki.LokiLogging` against a stand-in that records every LXD request.

Without a `logging` relation and without a URL the charm set, a hook must
not ask LXD anything (update-status runs this on every unit); these check
that for a standalone unit (the record in `Memory`) and a cluster's leader
(the record in the peer application bag), and the whole refusal without
the `loki` API extension.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from ops import testing

from lxd_charm.cos.loki import LokiLogging
from lxd_charm.memory import Memory
from lxd_common.lxd import LxdClient

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}


class RecordingLxd:
    """The three requests LokiLogging makes, recorded; LXD 5.0.2's answers (no `loki`)."""

    def __init__(self, extensions: list[str] | None = None, config: dict[str, Any] | None = None):
        self.calls: list[str] = []
        self.extensions = extensions or ["network_type_ovn"]
        self.config = config or {}

    def server_info(self) -> dict[str, Any]:
        self.calls.append("server_info")
        return {"api_extensions": self.extensions}

    def server_config(self) -> dict[str, Any]:
        self.calls.append("server_config")
        return dict(self.config)

    def set_server_config(self, values: dict[str, Any]) -> None:
        self.calls.append(f"set {values}")
        self.config.update(values)


def loki(relation_id: int = 30) -> testing.Relation:
    endpoint = json.dumps({"url": "http://10.0.0.9:3100/loki/api/v1/push"})
    return testing.Relation(
        "logging",
        remote_app_name="loki",
        id=relation_id,
        remote_units_data={0: {"endpoint": endpoint}},
    )


def test_a_standalone_unit_without_relation_or_record_asks_lxd_nothing(
    ctx: testing.Context[Any],
) -> None:
    state = testing.State(config={"lxd-init-network": False}, resources=EMPTY, leader=True)
    lxd = RecordingLxd()
    with ctx(ctx.on.update_status(), state) as manager:
        memory = Memory()
        assert (
            LokiLogging(manager.charm, memory, clustered=False).serve(cast(LxdClient, lxd)) == []
        )
    assert lxd.calls == []
    assert memory.loki_url == ""


def test_a_cluster_leader_without_relation_or_record_asks_lxd_nothing(
    ctx: testing.Context[Any],
) -> None:
    peer = testing.PeerRelation("cluster", local_app_data={"unrelated": "x"})
    state = testing.State(
        config={"lxd-init-network": False, "mode": "cluster"},
        resources=EMPTY,
        leader=True,
        relations={peer},
    )
    lxd = RecordingLxd()
    with ctx(ctx.on.update_status(), state) as manager:
        result = LokiLogging(manager.charm, Memory(), clustered=True).serve(cast(LxdClient, lxd))
        relation = manager.charm.model.get_relation("cluster")
        assert relation is not None
        bag = dict(relation.data[manager.charm.app])
    assert result == []
    assert lxd.calls == []
    assert bag == {"unrelated": "x"}


def test_a_broken_relation_with_its_record_unsets_what_the_charm_set(
    ctx: testing.Context[Any],
) -> None:
    state = testing.State(
        config={"lxd-init-network": False}, resources=EMPTY, leader=True, relations={loki()}
    )
    lxd = RecordingLxd(extensions=["loki"], config={"loki.api.url": "http://10.0.0.9:3100"})
    with ctx(ctx.on.update_status(), state) as manager:
        memory = Memory(loki_url="http://10.0.0.9:3100")
        problems = LokiLogging(manager.charm, memory, clustered=False, broken_relation=30).serve(
            cast(LxdClient, lxd)
        )
    assert problems == []
    assert lxd.calls == ["server_config", "set {'loki.api.url': None}"]
    assert memory.loki_url == ""


def test_without_the_loki_extension_the_whole_refusal(ctx: testing.Context[Any]) -> None:
    state = testing.State(
        config={"lxd-init-network": False}, resources=EMPTY, leader=True, relations={loki()}
    )
    lxd = RecordingLxd()
    with ctx(ctx.on.update_status(), state) as manager:
        memory = Memory()
        problems = LokiLogging(manager.charm, memory, clustered=False).serve(cast(LxdClient, lxd))
    assert problems == [
        "logging: this LXD has no 'loki' API extension: refresh to a snap that has it "
        "(juju config lxd snap-channel=5.21/stable or later)"
    ]
    assert lxd.calls == ["server_info"]
    assert memory.loki_url == ""
