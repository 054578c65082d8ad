"""Upload packed charms to Charmhub and release them to a channel.

CI's release workflow runs this with ``CHARMCRAFT_AUTH`` set (a credential
exported with ``charmcraft login --export``). Every .charm of one charm is
uploaded (one revision per platform), and all of them are released together.

Charmhub releases a charm that declares resources only together with a
revision of each. Our file resources (``lxd-binary``, ``lxd-snap``) are
optional debug overrides that the charm ignores when empty, so each release
attaches a fresh empty file: releasing never ships somebody's debug build.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scripts.packing import PackingError
from scripts.packing.projects import find

Runner = Callable[[list[str]], dict[str, Any]]


def _run_json(cmd: list[str]) -> dict[str, Any]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackingError(f"{' '.join(cmd[:3])} failed: {result.stderr.strip()}")
    return dict(json.loads(result.stdout or "{}"))


def charm_name(path: Path) -> str:
    """``lxd-cloud-integrator_ubuntu@24.04-amd64.charm`` -> ``lxd-cloud-integrator``."""
    return path.name.split("_", 1)[0]


def release(files: Sequence[Path], channel: str, run: Runner = _run_json) -> list[str]:
    """Upload each .charm and release every revision of a charm to ``channel``.

    Returns:
        One line per charm saying what was released.

    Raises:
        PackingError: no files, an unknown charm, or a charmcraft failure.
    """
    if not files:
        raise PackingError("no .charm files to release: pack them first")
    by_charm: dict[str, list[Path]] = {}
    for path in files:
        by_charm.setdefault(charm_name(path), []).append(path)
    done = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, paths in sorted(by_charm.items()):
            project = find(name)
            revisions = [
                run(["charmcraft", "upload", "--format=json", str(path)])["revision"]
                for path in sorted(paths)
            ]
            resource_args = []
            for resource, spec in sorted((project.charmcraft.get("resources") or {}).items()):
                if spec.get("type") != "file":
                    continue
                empty = Path(tmp) / f"{name}-{resource}"
                empty.write_bytes(b"")
                uploaded = run(
                    [
                        "charmcraft",
                        "upload-resource",
                        "--format=json",
                        name,
                        resource,
                        f"--filepath={empty}",
                    ]
                )
                resource_args.append(f"--resource={resource}:{uploaded['revision']}")
            for revision in revisions:
                run(
                    [
                        "charmcraft",
                        "release",
                        "--format=json",
                        name,
                        f"--revision={revision}",
                        f"--channel={channel}",
                        *resource_args,
                    ]
                )
            done.append(f"released {name} revisions {revisions} to {channel}")
    return done
