"""Unit tests of the LXD charm skeleton: config validation and the status it reports."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import ops
import pytest
from ops import testing

from lxd_charm.config import LxdConfig


@pytest.fixture
def ctx(load_charm: Callable[[str], ModuleType]) -> testing.Context[Any]:
    return testing.Context(load_charm("lxd").LxdCharm)


def test_metadata_comes_from_charmcraft_yaml(ctx: testing.Context[Any]) -> None:
    with ctx(ctx.on.update_status(), testing.State()) as mgr:
        assert mgr.charm.meta.name == "lxd"
        assert mgr.charm.config["mode"] == "standalone"
        assert mgr.charm.config["snap-channel"] == "latest/stable"


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_valid_mode_is_active_and_named(ctx: testing.Context[Any], mode: str) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State(config={"mode": mode}))
    assert state.unit_status == testing.ActiveStatus(f"{mode} mode")


def test_default_config_is_standalone(ctx: testing.Context[Any]) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State())
    assert state.unit_status == testing.ActiveStatus("standalone mode")


@pytest.mark.parametrize("mode", ["x", "Cluster", "", "standalone "])
def test_invalid_mode_blocks_with_fix(ctx: testing.Context[Any], mode: str) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State(config={"mode": mode}))
    assert state.unit_status == testing.BlockedStatus(
        f"invalid mode {mode!r}: set mode to standalone or cluster"
    )


def test_invalid_mode_message_matches_spec(ctx: testing.Context[Any]) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State(config={"mode": "x"}))
    assert state.unit_status == testing.BlockedStatus(
        "invalid mode 'x': set mode to standalone or cluster"
    )


@pytest.mark.parametrize("event", ["install", "start", "config_changed", "update_status"])
@pytest.mark.parametrize("mode", ["standalone", "x"])
def test_lifecycle_hooks_run_without_error(
    ctx: testing.Context[Any], event: str, mode: str
) -> None:
    """Every observed hook completes, whatever the config: bad config never crashes a hook."""
    state = ctx.run(getattr(ctx.on, event)(), testing.State(config={"mode": mode}))
    expected: ops.StatusBase = (
        testing.ActiveStatus("standalone mode")
        if mode == "standalone"
        else testing.BlockedStatus("invalid mode 'x': set mode to standalone or cluster")
    )
    assert state.unit_status == expected


def test_install_logs_the_snap_channel(ctx: testing.Context[Any]) -> None:
    ctx.run(ctx.on.install(), testing.State(config={"snap-channel": "5.21/stable"}))
    assert any("5.21/stable" in line.message for line in ctx.juju_log)


def test_invalid_config_is_logged_not_raised(ctx: testing.Context[Any]) -> None:
    ctx.run(ctx.on.start(), testing.State(config={"mode": "x"}))
    warnings = [line.message for line in ctx.juju_log if line.level == "WARNING"]
    assert any("invalid mode 'x'" in message for message in warnings)


def test_config_class_defaults_mirror_charmcraft_yaml() -> None:
    assert LxdConfig() == LxdConfig(mode="standalone", snap_channel="latest/stable")


def test_config_class_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="set mode to standalone or cluster"):
        LxdConfig(mode="both")  # type: ignore[arg-type]
