"""Run ``charmcraft pack`` for real.

Each charm imports ``lxd_common`` from ``common/``, outside the charm's own
directory, so charmcraft must see the whole repository: that is Charmcraft's
monorepo support (Charmcraft 4.5 or later, switched on with
``CHARMCRAFT_EXPERIMENTAL_MONOREPO=1``), which mounts the Git repository
root into the build instance; each charmcraft.yaml's part has
``source: <repository root>`` and ``source-subdir: <the charm>``. The reasons
for this choice are written down in charms/lxd/charmcraft.yaml.

Charmcraft needs snapd and LXD (or Multipass) for its build instances; this
module checks for it and says so rather than failing half-way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from scripts.packing import PackingError
from scripts.packing.projects import CharmProject

MINIMUM_VERSION = (4, 5)
MONOREPO_ENV = "CHARMCRAFT_EXPERIMENTAL_MONOREPO"


def charmcraft_version() -> tuple[int, int]:
    """The installed charmcraft's (major, minor).

    Raises:
        PackingError: charmcraft is missing or too old for monorepo support.
    """
    if shutil.which("charmcraft") is None:
        raise PackingError(
            "charmcraft is not installed: `sudo snap install charmcraft --classic` "
            "(it needs snapd and LXD; where they cannot run, `scripts/pack --stage DIR` "
            "shows what the .charm would hold)"
        )
    result = subprocess.run(["charmcraft", "version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)\.(\d+)", result.stdout + result.stderr)
    if result.returncode != 0 or not match:
        raise PackingError(f"cannot tell charmcraft's version: {result.stderr.strip()}")
    version = (int(match[1]), int(match[2]))
    if version < MINIMUM_VERSION:
        wanted = ".".join(map(str, MINIMUM_VERSION))
        raise PackingError(
            f"charmcraft {match[0]} cannot pack a charm that uses ../../common: "
            f"monorepo support needs {wanted} or later (`sudo snap refresh charmcraft`)"
        )
    return version


def pack(
    project: CharmProject, platforms: Sequence[str] = (), *, destructive: bool = False
) -> list[Path]:
    """Pack one charm; return the .charm files, left in the charm's directory.

    Args:
        project: the charm.
        platforms: build only these platforms (default: every one in
            charmcraft.yaml).
        destructive: build on this machine instead of in a build instance
            (CI runners that are throwaway machines of the right base).

    Raises:
        PackingError: charmcraft is unusable or the build failed.
    """
    charmcraft_version()
    if not (project.path / "uv.lock").is_file():
        raise PackingError(
            f"{project.path}/uv.lock is missing: the uv plugin installs from it "
            "(create it with `scripts/pack --lock`)"
        )
    cmd = ["charmcraft", "pack", "--verbose"]
    if destructive:
        cmd.append("--destructive-mode")
    for platform_name in platforms:
        cmd += ["--platform", platform_name]
    env = {**os.environ, MONOREPO_ENV: "1"}
    if subprocess.run(cmd, cwd=project.path, env=env, check=False).returncode != 0:
        raise PackingError(f"charmcraft pack failed for {project.name} (see its output above)")
    wanted = list(platforms) or project.platforms()
    built = [project.charm_file(p) for p in wanted]
    missing = [str(path) for path in built if not path.is_file()]
    if missing:
        raise PackingError(f"charmcraft reported success but left no {', '.join(missing)}")
    return built
