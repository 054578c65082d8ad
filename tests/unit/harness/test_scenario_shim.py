"""The shim over ops-scenario's private names (tests/harness/scenario_shim.py) checks them."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import ops
import pytest
import yaml
from ops import testing

from tests.harness import scenario_shim
from tests.harness.scenario_shim import WRITTEN_FOR, ScenarioShimError, check

ROOT = Path(__file__).resolve().parents[3]
MESSAGE = (
    "ops-scenario {} is not the version this shim was written for ({}): "
    "re-check tests/harness/scenario_shim.py"
)


def test_the_installed_scenario_passes() -> None:
    check(WRITTEN_FOR, scenario_shim.Runtime, testing.Secret)


def test_the_shim_is_written_for_the_pinned_release() -> None:
    """Bumping the pin in constraints.txt means re-checking the shim, and this says so."""
    pins = (ROOT / "constraints.txt").read_text()
    (pinned,) = re.findall(r"^ops-scenario==(\S+)$", pins, flags=re.M)
    assert pinned == WRITTEN_FOR


def test_another_release_fails_with_one_clear_message() -> None:
    with pytest.raises(ScenarioShimError) as failed:
        check("9.0.0", scenario_shim.Runtime, testing.Secret)
    assert str(failed.value).startswith(MESSAGE.format("9.0.0", WRITTEN_FOR))
    assert isinstance(failed.value, ImportError), "it fails the import of the simulator"


class MovedRuntime:
    def __init__(self, charm_spec: Any) -> None:
        self._charm_spec = charm_spec

    def _get_event_env(self, state: Any, event: Any, charm_root: Any) -> dict[str, str]:
        return {}

    @contextlib.contextmanager
    def _virtual_charm_root(self) -> Iterator[Path]:
        yield Path()


class RenamedSpec(MovedRuntime):
    def __init__(self, charm_spec: Any) -> None:
        self._spec = charm_spec


class NewParameter(MovedRuntime):
    def _get_event_env(  # type: ignore[override]
        self, state: Any, event: Any, charm_root: Any, juju_context: Any
    ) -> dict[str, str]:
        return {}


class NoCharmRoot:
    def __init__(self, charm_spec: Any) -> None:
        self._charm_spec = charm_spec

    def _get_event_env(self, state: Any, event: Any, charm_root: Any) -> dict[str, str]:
        return {}


class PlainSecret:
    _tracked_revision = 1


def test_a_runtime_shaped_as_expected_passes() -> None:
    check(WRITTEN_FOR, MovedRuntime, testing.Secret)


@pytest.mark.parametrize(
    ("runtime", "secret", "why"),
    [
        (None, testing.Secret, "scenario._runtime.Runtime cannot be imported"),
        (NoCharmRoot, testing.Secret, "Runtime._virtual_charm_root is gone"),
        (
            NewParameter,
            testing.Secret,
            "Runtime._get_event_env takes (self, state, event, charm_root, juju_context), "
            "not (self, state, event, charm_root)",
        ),
        (RenamedSpec, testing.Secret, "Runtime no longer keeps its CharmSpec in _charm_spec"),
        (MovedRuntime, PlainSecret, "Secret._latest_revision is gone"),
    ],
)
def test_changed_private_names_fail_with_the_same_message(
    runtime: type | None, secret: type, why: str
) -> None:
    with pytest.raises(ScenarioShimError) as failed:
        check(WRITTEN_FOR, runtime, secret)
    assert str(failed.value) == MESSAGE.format(WRITTEN_FOR, WRITTEN_FOR) + f" ({why})"


class Echo(ops.CharmBase):
    seen: ClassVar[list[tuple[str | None, bool]]] = []

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        framework.observe(self.on.start, self._on_start)

    def _on_start(self, _: ops.EventBase) -> None:
        root = self.framework.charm_dir
        Echo.seen.append((os.environ.get("SHIM_SAYS"), (root / "marker").exists()))


def test_event_env_and_charm_root_reach_the_hook(tmp_path: Path) -> None:
    (tmp_path / "marker").touch()
    roots: list[Any] = []

    def root_for(meta: Any, config: Any, actions: Any, key: int) -> Path:
        roots.append((meta["name"], key))
        (tmp_path / "metadata.yaml").write_text(yaml.safe_dump(dict(meta)))
        return tmp_path

    ctx = testing.Context(Echo, meta={"name": "echo"})
    Echo.seen.clear()
    with scenario_shim.event_env({"SHIM_SAYS": "hello"}), scenario_shim.charm_root(root_for):
        ctx.run(ctx.on.start(), testing.State())
        ctx.run(ctx.on.start(), testing.State())
    ctx.run(ctx.on.start(), testing.State())
    assert Echo.seen == [("hello", True), ("hello", True), (None, False)]
    assert len(roots) == 2 and roots[0] == roots[1] and roots[0][0] == "echo"


def test_secret_revisions_are_read_and_set_through_the_shim() -> None:
    secret = testing.Secret({"a": "1"}, latest_content={"a": "2"})
    scenario_shim.set_revisions(secret, tracked=3, latest=5)
    assert (scenario_shim.tracked_revision(secret), scenario_shim.latest_revision(secret)) == (
        3,
        5,
    )
