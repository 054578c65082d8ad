"""The one place the test harness touches ops-scenario's private names.

The Juju simulator (`juju_sim`) needs three things Scenario has no public
API for: a hook environment that says what Juju says where Scenario cannot
(an empty JUJU_REMOTE_UNIT for application data, JUJU_DEPARTING_UNIT for
unit 0), a charm directory written once instead of once per hook, and the
revision numbers of a secret as each unit tracks it. All three reach into
private names (`Runtime._get_event_env`, `Runtime._virtual_charm_root`,
`Runtime._charm_spec`, `Secret._tracked_revision`, `Secret._latest_revision`)
that may change in any release, so they are used only through this module,
and this module checks at import that the installed ops-scenario is the one
it was written for and still has those names with the shapes used here. A
new pin in constraints.txt then fails every test that uses the simulator
with one message saying where to look, instead of a confusing error deep in
a hook.

Raises:
    ScenarioShimError: at import, when the check fails.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from ops import testing

WRITTEN_FOR = "8.9.0"
"""The ops-scenario release whose private names this module was checked against."""

_RUNTIME_METHODS: dict[str, list[str]] = {
    "_get_event_env": ["self", "state", "event", "charm_root"],
    "_virtual_charm_root": ["self"],
}
_SECRET_REVISIONS = ("_tracked_revision", "_latest_revision")


class ScenarioShimError(ImportError):
    """The installed ops-scenario is not the one this shim was written for."""


def _problem(version: str, runtime: type | None, secret: type) -> str | None:
    """What differs from the Scenario this module expects, or None if nothing does."""
    if version != WRITTEN_FOR:
        return f"it is release {version}"
    if runtime is None:
        return "scenario._runtime.Runtime cannot be imported"
    for name, params in _RUNTIME_METHODS.items():
        method = inspect.getattr_static(runtime, name, None)
        if not callable(method):
            return f"Runtime.{name} is gone"
        found = list(inspect.signature(method).parameters)
        if found != params:
            return f"Runtime.{name} takes ({', '.join(found)}), not ({', '.join(params)})"
    init: Any = inspect.getattr_static(runtime, "__init__")
    if "_charm_spec" not in getattr(getattr(init, "__code__", None), "co_names", ()):
        return "Runtime no longer keeps its CharmSpec in _charm_spec"
    for name in _SECRET_REVISIONS:
        if not isinstance(getattr(secret, name, None), int):
            return f"Secret.{name} is gone"
    return None


def check(version: str, runtime: type | None, secret: type) -> None:
    """Fail loudly if ``version``, ``runtime`` and ``secret`` are not what the shim expects.

    Raises:
        ScenarioShimError: naming the installed release, the expected one and this file.
    """
    problem = _problem(version, runtime, secret)
    if problem is not None:
        raise ScenarioShimError(
            f"ops-scenario {version} is not the version this shim was written for "
            f"({WRITTEN_FOR}): re-check tests/harness/scenario_shim.py ({problem})"
        )


def _installed() -> tuple[str, type | None]:
    version = importlib.metadata.version("ops-scenario")
    try:
        from scenario._runtime import Runtime
    except ImportError:
        return version, None
    return version, Runtime


_VERSION, _RUNTIME = _installed()
check(_VERSION, _RUNTIME, testing.Secret)
assert _RUNTIME is not None  # check() refused otherwise
Runtime: Any = _RUNTIME


@contextlib.contextmanager
def event_env(overrides: Mapping[str, str]) -> Iterator[None]:
    """Within the block, every hook's environment gets ``overrides`` on top of Scenario's."""
    if not overrides:
        yield
        return
    original = Runtime._get_event_env

    def patched(runtime: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
        env: dict[str, str] = original(runtime, *args, **kwargs)
        env.update(overrides)
        return env

    with mock.patch.object(Runtime, "_get_event_env", patched):
        yield


CharmRootFor = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], int], Path]
"""Given (metadata, config, actions, a key unique to the charm spec), the charm directory."""


@contextlib.contextmanager
def charm_root(root_for: CharmRootFor) -> Iterator[None]:
    """Within the block, hooks run in the charm directory ``root_for`` returns.

    Scenario otherwise renders the charm's YAML into a fresh directory for
    every hook. ``root_for`` gets the spec's metadata, config and actions and
    a key that is the same for every hook of one `testing.Context`.
    """

    @contextlib.contextmanager
    def fixed(runtime: Any) -> Iterator[Path]:
        spec = runtime._charm_spec
        yield root_for(spec.meta, spec.config or {}, spec.actions or {}, id(spec))

    with mock.patch.object(Runtime, "_virtual_charm_root", fixed):
        yield


def tracked_revision(secret: testing.Secret) -> int:
    """The revision of ``secret`` its holder tracks (what `get_content()` returns)."""
    revision: int = secret._tracked_revision
    return revision


def latest_revision(secret: testing.Secret) -> int:
    """The newest revision of ``secret`` (what `peek_content()` returns)."""
    revision: int = secret._latest_revision
    return revision


def set_revisions(secret: testing.Secret, *, tracked: int, latest: int) -> None:
    """Make ``secret`` (not yet handed to a hook) track ``tracked`` of ``latest`` revisions."""
    object.__setattr__(secret, "_tracked_revision", tracked)
    object.__setattr__(secret, "_latest_revision", latest)
