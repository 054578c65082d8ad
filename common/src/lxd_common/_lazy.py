"""Modules imported on first use, so that a hook pays only for the libraries it calls.

Juju starts a fresh process for every hook, so every import at module level
is paid on every hook of every unit, including the many that never talk to
snapd or LXD. A module bound with `lazy_module` is imported the first time
one of its attributes is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
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


def lazy_exports(
    package: str, homes: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> Callable[[str], Any]:
    """A package's module `__getattr__` (PEP 562): each name loads its private module on first use.

    Args:
        package: the package's ``__name__``.
        homes: each exported name -> the private module (``"._client"``) that defines it.
        namespace: the package's ``globals()``, where a loaded name is kept.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 (the name PEP 562 looks up)
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    return __getattr__
