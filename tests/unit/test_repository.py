"""House rules a machine can check: what Juju and charmcraft need from the tree itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT_CHARMS = sorted(p.parent.parent for p in REPO.glob("charms/*/src/charm.py"))


def git_mode(path: Path) -> str:
    """The mode git records for ``path`` (what a fresh clone, and a build, gets)."""
    out = subprocess.run(
        ["git", "ls-files", "--stage", "--", str(path.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if not out:
        pytest.skip("not a git checkout")
    return out.split()[0]


def test_there_are_product_charms() -> None:
    assert [p.name for p in PRODUCT_CHARMS] == ["lxd", "lxd-integrator"]


@pytest.mark.parametrize("charm", PRODUCT_CHARMS, ids=lambda p: p.name)
def test_the_entrypoint_is_executable_in_git(charm: Path) -> None:
    """Juju's dispatch runs src/charm.py directly; charmcraft analyse rejects it otherwise."""
    entrypoint = charm / "src" / "charm.py"
    assert git_mode(entrypoint) == "100755", f"git update-index --chmod=+x {entrypoint}"
    assert entrypoint.read_text().startswith("#!/usr/bin/env python3\n")
