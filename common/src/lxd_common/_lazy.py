"""Modules imported on first use, so that a hook pays only for the libraries it calls.

Juju starts a fresh process for every hook, so every import at module level
is paid on every hook of every unit, including the many that never talk to
snapd or LXD. A module bound with `lazy_module` is imported the first time
one of its attributes is read.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    """Stands in for a module until an attribute of it is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


def lazy_module(name: str) -> Any:
    """The module ``name``, imported when it is first used (type it under TYPE_CHECKING)."""
    return _LazyModule(name)
