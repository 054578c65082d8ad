"""Build a .charm on this machine with charmcraft's own machinery.

``charmcraft pack --destructive-mode`` builds only on a host whose system is
the charm's base (Ubuntu 24.04 for ``ubuntu@24.04:amd64``), and its managed
mode needs snapd and LXD instances. Neither runs everywhere this project is
developed (a Debian machine, a container). The pieces that make a charm are
charmcraft's and craft-parts' public modules, so this module runs them
directly:

1. charmcraft's project model validates charmcraft.yaml (so an ``assumes``,
   a ``type: secret`` option or a platform charmcraft would refuse is
   refused here too);
2. craft-parts runs each part with charmcraft's plugins registered (the
   ``uv`` plugin syncs the venv from ``uv.lock``, frozen, and copies
   ``src/`` and ``lib/``), pulling the repository root with charmcraft's own
   source-ignore patterns plus the local junk listed in `SOURCE_IGNORE`;
3. charmcraft's ``create_dispatch`` writes ``dispatch``, as charmcraft's
   lifecycle does after priming;
4. metadata.yaml, config.yaml, actions.yaml and manifest.yaml are rendered
   by charmcraft's models the way its package service renders them;
5. charmcraft's ``build_zip`` zips the prime directory.

Only the parts' ``build-snaps`` are dropped: snapd is what is missing, and
``uv`` comes from PyPI at the version constraints.txt pins.

The venv holds the host's Python minor version (``lib/python3.X``): a charm
built on a host whose Python differs from the base's runs only where python3
is that version. `build` says so (`BuiltCharm.host_mismatch`); the .charm
files for Charmhub are built by ``charmcraft pack`` on each base in the
release workflow.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.packing import PackingError
from scripts.packing.projects import REPO, CharmProject, host_platform

#: Top-level entries of the repository that no part needs, on top of what
#: charmcraft itself ignores (``*.charm``, ``charmcraft.yaml``, ``.venv``,
#: ``.tox``). craft-parts applies these to the top of each part's source.
SOURCE_IGNORE = (
    ".git",
    ".craft",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "dist",
)

#: The PATH the parts are built with (a build instance's, without pyenv or venvs).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Debian's python3-apt, which craft-parts imports to know the host's packages.
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
_APT_MODULES = ("apt", "apt_pkg", "apt_inst", "aptsources")


@dataclass(frozen=True)
class BuiltCharm:
    """One .charm this module built, and what it cost."""

    path: Path
    platform: str
    seconds: float
    pulled_bytes: int
    host_mismatch: str | None


def _expose_python_apt() -> None:
    """Make Debian's python3-apt importable in this virtualenv.

    craft-parts needs the ``apt`` module, which is not on PyPI; it comes with
    the system's python3-apt. Only its modules are linked into the venv: the
    rest of the system's dist-packages (an old pyOpenSSL) breaks charmcraft.

    Raises:
        PackingError: python3-apt is not installed.
    """
    try:
        import apt  # type: ignore[import-not-found]  # noqa: F401 - Debian's python3-apt
    except ImportError:
        pass
    else:
        return
    found = [
        p
        for p in (DEBIAN_DIST_PACKAGES.glob("*") if DEBIAN_DIST_PACKAGES.is_dir() else [])
        if p.name.split(".")[0] in _APT_MODULES and not p.name.endswith("-stubs")
    ]
    if sys.prefix == sys.base_prefix or not any(p.name == "apt" for p in found):
        raise PackingError(
            "craft-parts needs python3-apt: `apt-get install python3-apt`, then "
            "run `tox -e pack` (its venv links the system's apt module)"
        )
    site = Path(sysconfig.get_paths()["purelib"])
    for path in found:
        link = site / path.name
        if not link.exists():
            link.symlink_to(path)


_emitter_started = False


def _start_emitter() -> None:
    """craft-cli's emitter, which charmcraft's functions report progress through."""
    global _emitter_started
    if _emitter_started:
        return
    from craft_cli import EmitterMode, emit

    mode = EmitterMode.VERBOSE if os.environ.get("PACK_VERBOSE") else EmitterMode.QUIET
    emit.init(mode, "scripts-pack", "Building charms with charmcraft's parts and plugins")
    _emitter_started = True


def _import_charmcraft() -> None:
    try:
        import charmcraft  # noqa: F401
        import craft_parts  # noqa: F401
    except ImportError as e:
        raise PackingError(
            f"charmcraft is not importable here ({e.name}): run `tox -e pack`, "
            "whose venv installs charmcraft at the version constraints.txt pins"
        ) from e


def host_base() -> tuple[str, str]:
    """This machine's (distribution, version), from /etc/os-release."""
    fields: dict[str, str] = {}
    for path in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        if path.is_file():
            for line in path.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key] = value.strip().strip('"')
            break
    return fields.get("ID", "unknown"), fields.get("VERSION_ID", "unknown")


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def _parts_for_host(project: CharmProject) -> dict[str, Any]:
    """charmcraft.yaml's parts, with sources made absolute and build-snaps dropped."""
    parts: dict[str, Any] = {}
    for name, part in (project.charmcraft.get("parts") or {}).items():
        part = dict(part)
        source = part.get("source")
        if source and "://" not in str(source):
            part["source"] = str((project.path / str(source)).resolve())
        part.pop("build-snaps", None)
        parts[str(name)] = part
    return parts


def _write_package_files(model: Any, prime: Path, base: Any, arch: str) -> None:
    """metadata/config/actions/manifest.yaml as charmcraft's package service writes them."""
    from charmcraft import linters, models, utils
    from charmcraft.models.lint import CheckType
    from charmcraft.models.manifest import Attribute, Manifest
    from charmcraft.models.metadata import CharmMetadata

    (prime / "metadata.yaml").write_text(
        yaml.safe_dump(CharmMetadata.from_charm(model).marshal(), sort_keys=True)
    )
    marshalled = model.marshal()
    for key, filename in (("actions", "actions.yaml"), ("config", "config.yaml")):
        if marshalled.get(key):
            (prime / filename).write_text(yaml.safe_dump(marshalled[key], sort_keys=True))
    attributes = []
    for checker_class in linters.CHECKERS:
        checker = checker_class()
        if checker.check_type == CheckType.ATTRIBUTE:
            result = checker.get_result(prime)
            attributes.append(Attribute(name=result.name, result=result.result))
    manifest = Manifest(
        charmcraft_started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        analysis={"attributes": attributes},
        bases=[models.Base(name=base.distribution, channel=base.series, architectures=[arch])],
    )
    (prime / "manifest.yaml").write_text(
        utils.dump_yaml(
            manifest.model_dump(mode="json", by_alias=True, exclude_unset=False, exclude_none=True)
        )
    )


def build(
    project: CharmProject,
    platform_name: str | None = None,
    *,
    out_dir: Path | None = None,
    work_dir: Path | None = None,
) -> BuiltCharm:
    """Build one .charm for one platform on this machine.

    Args:
        project: the charm.
        platform_name: one of charmcraft.yaml's platforms (default: Ubuntu
            24.04 on this machine's architecture).
        out_dir: where the .charm goes (default: the charm's directory, where
            ``charmcraft pack`` leaves it).
        work_dir: craft-parts' work directory (default: a temporary one).

    Raises:
        PackingError: charmcraft or python3-apt is missing, charmcraft.yaml is
            invalid or lacks the platform, or a part failed.
    """
    platform_name = platform_name or host_platform()
    if platform_name not in project.platforms():
        raise PackingError(
            f"{project.name} has no platform {platform_name!r} in charmcraft.yaml; "
            f"it has: {', '.join(project.platforms())}"
        )
    _import_charmcraft()
    _expose_python_apt()
    _start_emitter()
    import craft_parts
    import craft_platforms
    from charmcraft import dispatch, parts, utils
    from charmcraft.models.project import CharmcraftProject

    try:
        model = CharmcraftProject.unmarshal(project.charmcraft)
    except Exception as e:  # charmcraft raises pydantic and craft errors alike
        raise PackingError(f"charmcraft refuses {project.path}/charmcraft.yaml: {e}") from e
    base, _ = craft_platforms.parse_base_and_name(platform_name)
    arch = platform_name.rsplit(":", 1)[-1]
    if base is None:
        raise PackingError(f"{platform_name!r} names no base")
    host = host_base()
    mismatch = None
    if host != (base.distribution, base.series):
        mismatch = (
            f"built on {host[0]} {host[1]} with Python "
            f"{sys.version_info.major}.{sys.version_info.minor}, not on {base.distribution} "
            f"{base.series}: the venv runs only where python3 is that version"
        )

    parts.setup_parts()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"pack-{project.name}-") as tmp:
        work = work_dir or Path(tmp)
        from charmcraft.application.main import APP_METADATA

        ignore = [*APP_METADATA.source_ignore_patterns, *SOURCE_IGNORE]
        # The parts run with a system PATH, as in charmcraft's build instance:
        # `python3` is the system's (its path goes into the venv's pyvenv.cfg,
        # and dispatch links the unit's python3 in its place), and `uv` is
        # the one this venv installed from constraints.txt, alone in its dir,
        # next to craft-parts' `craftctl` (what a part's `override-build` calls).
        env_path = os.environ.get("PATH", "")
        tools = work / "tools"
        tools.mkdir(parents=True, exist_ok=True)
        for tool in ("uv", "craftctl"):
            found = shutil.which(tool, path=str(Path(sys.executable).parent)) or shutil.which(tool)
            if found is None:
                raise PackingError(
                    f"{tool} is not installed: run `tox -e pack` (constraints.txt pins it)"
                )
            (tools / tool).unlink(missing_ok=True)
            (tools / tool).symlink_to(found)
        os.environ["PATH"] = os.pathsep.join([str(tools), SYSTEM_PATH])
        log = work / "build.log"
        try:
            manager = craft_parts.LifecycleManager(
                {"parts": _parts_for_host(project)},
                application_name="charmcraft",
                work_dir=work,
                cache_dir=work / "cache",
                arch=arch,
                ignore_local_sources=ignore,
                project_name=project.name,
            )
            log = work / "build.log"
            with log.open("w") as out, manager.action_executor() as executor:
                executor.execute(manager.plan(craft_parts.Step.PRIME), stdout=out, stderr=out)
        except (craft_parts.PartsError, OSError) as e:
            tail = "\n".join(log.read_text().splitlines()[-25:]) if log.is_file() else ""
            raise PackingError(f"building {project.name} failed: {e}\n{tail}") from e
        finally:
            os.environ["PATH"] = env_path
        pulled = sum(
            _dir_bytes(part_dir / "src")
            for part_dir in (work / "parts").iterdir()
            if (part_dir / "src").is_dir()
        )
        prime = manager.project_info.prime_dir
        dispatch.create_dispatch(prime_dir=prime)
        _write_package_files(model, prime, base, arch)
        dest_dir = out_dir or project.path
        dest_dir.mkdir(parents=True, exist_ok=True)
        charm = dest_dir / f"{project.name}_{platform_name.replace(':', '-')}.charm"
        charm.unlink(missing_ok=True)
        utils.build_zip(charm, prime)
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return BuiltCharm(charm, platform_name, time.monotonic() - started, pulled, mismatch)


def relative(path: Path) -> str:
    """``path`` relative to the repository when inside it, for messages."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)
