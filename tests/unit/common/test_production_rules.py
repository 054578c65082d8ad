"""House rules the production packages keep, checked on their source.

Production code never reaches into a library's private modules or rewrites a
library module's attributes (a seam of our own does that job), and no fake
ships in a charm: fakes live in tests/harness.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = [REPO / "common" / "src", *sorted((REPO / "charms").glob("*/src"))]
SOURCES = sorted(path for top in PRODUCTION for path in top.rglob("*.py"))
PRIVATE_LIBRARY_NAME = re.compile(r"charmlibs\.[a-z_]+\._[a-z]")


def test_production_sources_found() -> None:
    assert REPO / "common" / "src" / "lxd_common" / "sysctl.py" in SOURCES
    assert any(path.name == "charm.py" for path in SOURCES)


def _module_aliases(tree: ast.Module) -> set[str]:
    """Names bound to imported modules (``import x as y``, ``from a import b``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            ours = node.module.startswith("lxd_")
            names.update(alias.asname or alias.name for alias in node.names if not ours)
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_library_patching(path: Path) -> None:
    text = path.read_text()
    assert not PRIVATE_LIBRARY_NAME.search(text), "uses a library's private module"
    tree = ast.parse(text)
    modules = _module_aliases(tree)
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name):
                    assert leaf.value.id not in modules, (
                        f"line {leaf.lineno} assigns {leaf.value.id}.{leaf.attr}"
                    )


def test_no_fakes_in_production() -> None:
    fakes = [str(p.relative_to(REPO)) for top in PRODUCTION for p in top.rglob("*fake*")]
    assert fakes == []
