"""Each charm's uv.lock, kept in line with constraints.txt.

Charmcraft's uv plugin installs exactly what ``uv.lock`` says (it syncs with
the lock frozen), so the lock decides what runs inside a .charm. The
project's versions are pinned in one place, ``constraints.txt``; `lock`
writes each lock with those pins imposed (``uv lock --upgrade-package
NAME==VERSION``) and `mismatches` reports any lock that has drifted from
them, which a unit test checks on every run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from scripts.packing import PackingError
from scripts.packing.projects import CharmProject, constraint_pins, normalise_name

_PACKAGE = re.compile(r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', re.MULTILINE)


def locked_versions(lock: Path) -> dict[str, set[str]]:
    """Normalised name -> the versions a uv.lock resolves it to.

    A package can have more than one version when the resolution forks by
    Python version (``python_full_version < '3.11'``); each is listed.
    """
    found: dict[str, set[str]] = {}
    for name, version in _PACKAGE.findall(lock.read_text()):
        found.setdefault(normalise_name(name), set()).add(version)
    return found


def mismatches(lock: Path, pins: dict[str, str] | None = None) -> list[str]:
    """Each package the lock resolves to a version other than constraints.txt pins."""
    pins = constraint_pins() if pins is None else pins
    problems = []
    for name, versions in sorted(locked_versions(lock).items()):
        pinned = pins.get(name)
        if pinned is not None and versions != {pinned}:
            problems.append(f"{name}: locked {', '.join(sorted(versions))}, pinned {pinned}")
    return problems


def lock(project: CharmProject) -> Path:
    """Write ``uv.lock`` for one charm with constraints.txt's pins imposed.

    Raises:
        PackingError: uv is missing, cannot resolve, or the lock still
            disagrees with constraints.txt (a pin uv cannot satisfy).
    """
    if shutil.which("uv") is None:
        raise PackingError("uv is not installed: `pip install uv` or `snap install astral-uv`")
    cmd = ["uv", "lock", "--quiet"]
    for name, version in sorted(constraint_pins().items()):
        cmd += ["--upgrade-package", f"{name}=={version}"]
    result = subprocess.run(cmd, cwd=project.path, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackingError(f"uv lock failed for {project.name}:\n{result.stderr.strip()}")
    path = project.path / "uv.lock"
    problems = mismatches(path)
    if problems:
        raise PackingError(f"{path} cannot follow constraints.txt: " + "; ".join(problems))
    return path
