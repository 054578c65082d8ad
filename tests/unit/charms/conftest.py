"""Shared setup for the charms' unit tests: see `tests.harness.charms`."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from tests.harness.charms import load_charm_module


@pytest.fixture(scope="session")
def load_charm() -> Callable[[str], ModuleType]:
    """The `load_charm_module` helper, for tests: `load_charm("lxd").LxdCharm`."""
    return load_charm_module
