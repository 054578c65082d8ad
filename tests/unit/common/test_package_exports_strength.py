"""`lxd_common.lxd` and `lxd_common.snap`: every exported name loads from its private module.

Each package's `_HOMES` table routes a name to the private module that
defines it, loaded on first use (`lxd_common._lazy`). A wrong entry breaks
only the hooks that use that name, with an ImportError, and only once the
name was not loaded before in the same process; most tests import a few
names, already loaded by an earlier test. Here each name of `__all__` is
loaded the way a fresh hook loads it, and the table is checked against the
`TYPE_CHECKING` imports mypy reads, so what mypy checks is what runs.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
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


@pytest.mark.parametrize(("package_name", "name"), _exports())
def test_each_exported_name_loads_on_first_use_from_a_private_module(
    package_name: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = importlib.import_module(package_name)
    # As in a fresh hook: not loaded yet, so the package's `__getattr__` answers.
    monkeypatch.delitem(vars(package), name, raising=False)
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
def test_the_runtime_homes_are_the_ones_mypy_reads(package_name: str) -> None:
    package = importlib.import_module(package_name)
    assert _typed_homes(package) == package._HOMES
    assert sorted(package._HOMES) == sorted(package.__all__)
