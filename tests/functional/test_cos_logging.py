"""The `logging` relation on Debian's LXD 5.0.2, which has no `loki` API extension."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_common.errors import LxdApiError
from tests.harness.lxd_daemons import LxdDaemon
from tests.harness.lxd_units import EMPTY_RESOURCES, lxd_charm_on


@pytest.fixture
def ctx(daemon: LxdDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return lxd_charm_on(daemon, tmp_path, monkeypatch)


def test_lxd_502_refuses_loki_and_the_unit_says_which_snap_has_it(
    ctx: Any, daemon: LxdDaemon
) -> None:
    lxd = daemon.client()
    assert "loki" not in lxd.server_info()["api_extensions"]
    with pytest.raises(LxdApiError) as refused:
        lxd.set_server_config({"loki.api.url": "http://127.0.0.1:3100"})
    # LXD 5.0.2's own words (captured here), after our client's prefix.
    assert str(refused.value).endswith(
        "cannot set 'loki.api.url' to 'http://127.0.0.1:3100': unknown key"
    )

    rel = testing.Relation(
        "logging",
        interface="loki_push_api",
        remote_app_name="loki",
        id=5,
        remote_units_data={
            0: {"endpoint": json.dumps({"url": "http://127.0.0.1:3100/loki/api/v1/push"})}
        },
    )
    state = testing.State(
        config={"lxd-init-network": False}, relations={rel}, resources=frozenset(EMPTY_RESOURCES)
    )
    state = ctx.run(ctx.on.install(), state)
    state = ctx.run(ctx.on.relation_changed(state.get_relation(5), remote_unit=0), state)
    assert state.unit_status == testing.BlockedStatus(
        "logging: this LXD has no 'loki' API extension: refresh to a snap that has it "
        "(juju config lxd snap-channel=5.21/stable or later)"
    )
    assert "loki.api.url" not in lxd.server_config()
    # Without the relation the unit is healthy again.
    state = ctx.run(ctx.on.relation_broken(state.get_relation(5)), state)
    state = ctx.run(ctx.on.update_status(), replace(state, relations=set()))
    assert state.unit_status.name == "active", state.unit_status.message
