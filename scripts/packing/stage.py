"""Lay out a charm the way charmcraft packs it, without charmcraft.

Charmcraft builds in LXD-managed instances and needs snapd, so it cannot run
everywhere the tests run. What matters about its output can still be
checked: the staged tree has the files Juju reads (``metadata.yaml``,
``config.yaml``, ``actions.yaml``, ``manifest.yaml``), the ``dispatch``
script Juju runs for every hook, the charm's ``src/`` (and ``lib/``), and a
``venv/`` whose site-packages holds ``lxd_common``, installed from a wheel
of ``common/`` exactly as ``uv sync`` installs it in the real build
(a regular, non-editable package: the charm must not reach back into the
repository at run time).

By default only ``lxd_common`` goes into the venv (``--no-deps``), built
without network access when the running Python has a recent enough
setuptools, so the unit tier can stage charms offline in a few seconds;
``with_deps=True`` also installs the charm's third-party dependencies with
``-c constraints.txt``, which needs the package index.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import yaml

from scripts.packing import PackingError
from scripts.packing.projects import COMMON, CONSTRAINTS, CharmProject, load_toml

#: setuptools learnt SPDX ``license = "..."`` strings (PEP 639), which
#: common/pyproject.toml uses, in this release; older ones cannot build it.
SETUPTOOLS_PEP639 = 77
COMMON_DIST = "lxd-charms-common"

# The dispatch script of a charm built with one of charmcraft's Python
# plugins (uv here): Juju runs it for every event; it uses the venv's
# interpreter (which sees the venv's site-packages) and puts the charm's
# lib/ and src/ first on the import path.
DISPATCH = """\
#!/bin/sh
# Staged by scripts/pack --stage, as charmcraft's Python plugins write it.
charm_dir="$(dirname "$(realpath "$0")")"
python="$charm_dir/venv/bin/python"
if [ ! -e "$python" ]; then
    ln -s "$(command -v python3)" "$python"
fi
export PYTHONPATH="$charm_dir/lib:$charm_dir/src"
exec "$python" "$charm_dir/src/charm.py"
"""

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".*_cache")


def _run(cmd: list[str], doing: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise PackingError(f"{doing} failed ({' '.join(cmd[:4])} ...):\n{tail}")


def can_build_offline() -> bool:
    """True when this Python's setuptools can build common/ without the package index."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return major >= SETUPTOOLS_PEP639


def build_common_wheel(workdir: Path) -> Path:
    """Build the ``lxd-charms-common`` wheel once, for every charm staged in a run.

    The build runs on a copy of ``common/`` so that nothing (``build/``,
    egg-info) is written into the repository.

    Raises:
        PackingError: the build failed (offline without a recent setuptools,
            or the package index is unreachable).
    """
    source = workdir / "common-src"
    shutil.copytree(COMMON, source, ignore=_IGNORE)
    wheels = workdir / "wheels"
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-deps", "--wheel-dir", str(wheels)]
    if can_build_offline():
        cmd += ["--no-build-isolation", "--no-index"]
    _run([*cmd, str(source)], f"building the {COMMON_DIST} wheel")
    found = sorted(wheels.glob(f"{COMMON_DIST.replace('-', '_')}-*.whl"))
    if not found:
        raise PackingError(f"pip built no {COMMON_DIST} wheel in {wheels}")
    return found[-1]


def site_packages(venv_dir: Path) -> Path:
    """The site-packages directory of a venv made by this Python."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv_dir / "lib" / version / "site-packages"


def _charm_dependencies(project: CharmProject) -> list[str]:
    """The charm's direct dependencies from its pyproject.toml, without the path dependency."""
    pyproject = load_toml(project.path / "pyproject.toml")
    dependencies = pyproject.get("project", {}).get("dependencies", [])
    return [str(d) for d in dependencies if not str(d).startswith(COMMON_DIST)]


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, so the staged files read like charmcraft's."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.dump(data, Dumper=_BlockDumper, sort_keys=False))


def stage(
    project: CharmProject, dest: Path, *, common_wheel: Path, with_deps: bool = False
) -> Path:
    """Assemble in ``dest`` what charmcraft would put in the project's .charm.

    Args:
        project: the charm to stage.
        dest: an empty or missing directory; the staged charm's root.
        common_wheel: from `build_common_wheel`.
        with_deps: also install the charm's third-party dependencies (needs
            the package index); otherwise only ``lxd_common``.

    Returns:
        ``dest``.

    Raises:
        PackingError: ``dest`` is not empty, or installing into the venv failed.
    """
    if dest.exists() and any(dest.iterdir()):
        raise PackingError(f"{dest} is not empty: stage into a new directory")
    dest.mkdir(parents=True, exist_ok=True)

    _write_yaml(dest / "metadata.yaml", project.metadata())
    for filename, content in (
        ("config.yaml", project.config()),
        ("actions.yaml", project.actions()),
    ):
        if content:
            _write_yaml(dest / filename, content)
    _write_yaml(
        dest / "manifest.yaml",
        {"charmcraft-version": "none: staged by scripts/pack", "platforms": project.platforms()},
    )

    for tree in ("src", "lib"):
        if (project.path / tree).is_dir():
            shutil.copytree(project.path / tree, dest / tree, ignore=_IGNORE)

    venv_dir = dest / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(venv_dir)
    # Charmcraft keeps only the interpreter of the venv's bin/ (scripts and
    # activation files are of no use inside a charm).
    for path in (venv_dir / "bin").iterdir():
        if not path.name.startswith("python"):
            path.unlink()
    target = site_packages(venv_dir)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--target", str(target), "--upgrade", "--no-compile"]
    if with_deps:
        cmd += ["-c", str(CONSTRAINTS), str(common_wheel), *_charm_dependencies(project)]
    else:
        cmd += ["--no-deps", "--no-index", str(common_wheel)]
    _run(cmd, f"installing {COMMON_DIST} into {project.name}'s venv")

    dispatch = dest / "dispatch"
    dispatch.write_text(DISPATCH)
    dispatch.chmod(0o755)
    return dest
