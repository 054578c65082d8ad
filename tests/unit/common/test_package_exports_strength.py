"""`lxd_common.lxd` and `lxd_common.snap`: every exported name loads from its private module.

Each package's `_HOMES` table routes a name to the private module that
defines it, loaded on first use (`lxd_common._lazy`). A wrong entry breaks
only the hooks that use that name, with an ImportError, and only once the
name was not loaded before in the same process; most tests import a few
names, already loaded by an earlier test. Here each package is imported
afresh, as in a new hook process, each name of `__all__` is loaded from it,
and the table is checked against the `TYPE_CHECKING` imports mypy reads, so
what mypy checks is what runs. (The fresh import is also what lets the
mutation tool see these tests run the package's lines: the first import, at
collection, is no test's.)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable
from types import ModuleType

import pytest

PACKAGES = ("lxd_common.lxd", "lxd_common.snap")


def _private_modules(package: ModuleType) -> list[ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.startswith("_")
    ]


def _exports() -> list[tuple[str, str]]:
    return [(p, name) for p in PACKAGES for name in importlib.import_module(p).__all__]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a package afresh, as a new hook does; the loaded one is put back after."""

    def load(name: str) -> ModuleType:
        parent_name, _, attribute = name.rpartition(".")
        parent = importlib.import_module(parent_name)
        monkeypatch.setattr(parent, attribute, getattr(parent, attribute))
        monkeypatch.delitem(sys.modules, name)
        return importlib.import_module(name)

    return load


@pytest.mark.parametrize(("package_name", "name"), _exports())
def test_each_exported_name_loads_on_first_use_from_a_private_module(
    package_name: str, name: str, fresh: Callable[[str], ModuleType]
) -> None:
    package = fresh(package_name)
    assert name not in vars(package)  # not loaded yet: the package's `__getattr__` answers
    value = getattr(package, name)
    homes = [m for m in _private_modules(package) if vars(m).get(name, None) is value]
    assert homes, f"{package_name}.{name} is no private module's {name}"
    assert vars(package)[name] is value  # kept: the next use does not look it up again


def _typed_homes(package: ModuleType) -> dict[str, str]:
    """The names the package's `if TYPE_CHECKING:` block imports, and from where."""
    tree = ast.parse(inspect.getsource(package))
    homes: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                for alias in statement.names:
                    homes[alias.name] = "." * statement.level + (statement.module or "")
    return homes


@pytest.mark.parametrize("package_name", PACKAGES)
def test_the_runtime_homes_are_the_ones_mypy_reads(
    package_name: str, fresh: Callable[[str], ModuleType]
) -> None:
    package = fresh(package_name)
    assert _typed_homes(package) == package._HOMES
    assert sorted(package._HOMES) == sorted(package.__all__)
