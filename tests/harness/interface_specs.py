"""Run the interface tests of ``interfaces/<name>/v<N>/`` against a charm here.

pytest-interface-tester reads the specs (``schema.py``, ``interface_tests/``)
from a git repository it clones: ``InterfaceTester(repo=..., branch=...)``,
charm-relation-interfaces on GitHub by default. The specs these charms speak
live in this repository, and the tests must check the working tree as it is
(uncommitted edits included), so `spec_repository` copies ``interfaces/``
into a throwaway git repository and the tester clones that: its public API
only, nothing patched.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from interface_tester import InterfaceTester

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS = REPO_ROOT / "interfaces"
#: The test charms that speak the interfaces as requirers (tests/integration/charms/).
TEST_CHARMS = REPO_ROOT / "tests" / "integration" / "charms"


def spec_repository(dest: Path) -> str:
    """A git repository (branch main) holding a copy of ``interfaces/``; its path."""
    root = dest / "specs"
    shutil.copytree(SPECS, root / "interfaces", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(root), "-c", "user.name=tests", "-c", "user.email=tests@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "specs"], check=True)
    return str(root)


def configured_tester(
    repo: str, interface: str, charm_type: type[Any], **options: Any
) -> InterfaceTester:
    """An `InterfaceTester` for version 1 of ``interface``, reading specs from ``repo``."""
    found = InterfaceTester(repo=repo, branch="main")
    found.configure(
        charm_type=charm_type, interface_name=interface, interface_version=1, **options
    )
    return found


def load_test_charm(name: str) -> ModuleType:
    """Import ``tests/integration/charms/<name>/src/charm.py`` as ``<name>_test_charm``.

    Registered in `sys.modules`, so Scenario (and the tester) find the
    charm's charmcraft.yaml from the module's file.
    """
    module_name = f"{name.replace('-', '_')}_test_charm"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = TEST_CHARMS / name / "src" / "charm.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
