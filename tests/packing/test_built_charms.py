"""What each built .charm holds, checked on the files `tox -e pack` just built.

`tox -e pack` builds every charm for this machine's architecture (charmcraft's
uv plugin, dispatch and package files; scripts/packing/build.py), runs
``charmcraft analyse`` on each, then runs these tests on the zips it left
next to each charmcraft.yaml: the files Juju reads, charmcraft's own
``dispatch``, a venv that is exactly what ``uv.lock`` says (``lxd_common``
installed whole and not editable), and a charm that imports from its own
tree alone, as dispatch runs it, with no package from this checkout or from
the test environment.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import charmcraft
import pytest
import yaml
from charmcraft.dispatch import DISPATCH_SCRIPT_TEMPLATE

from scripts.packing.projects import (
    COMMON,
    CharmProject,
    all_charms,
    host_platform,
    load_toml,
    normalise_name,
    product_charms,
)

CHARMS = all_charms()
IDS = [project.name for project in CHARMS]
PRODUCT = {project.name for project in product_charms()}
PLATFORM = host_platform()
CHARMS_BY_NAME = {project.name: project for project in CHARMS}

# Imports the charm the way `dispatch` runs it, then reports where each
# module came from.
IMPORT_PROBE = """
import importlib, importlib.util, json, sys
charm = importlib.import_module("charm")
import lxd_charms_interfaces, ops
def where(name):
    spec = importlib.util.find_spec(name)
    return spec.origin if spec else None
base = ops.CharmBase
classes = [n for n, v in vars(charm).items()
           if isinstance(v, type) and issubclass(v, base) and v is not base]
print(json.dumps({"charm": charm.__file__, "lxd_common": where("lxd_common"),
                  "cryptography": where("cryptography"),
                  "lxd_charms_interfaces": lxd_charms_interfaces.__file__,
                  "ops": ops.__file__, "classes": classes, "path": sys.path}))
"""


def _unpack(charm: Path, dest: Path) -> Path:
    """Unpack a .charm keeping file modes, as Juju's unit agent does."""
    with zipfile.ZipFile(charm) as archive:
        for info in archive.infolist():
            archive.extract(info, dest)
            mode = info.external_attr >> 16
            if mode:
                (dest / info.filename).chmod(mode & 0o777)
    return dest


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every built charm, unpacked once: charm name -> its root."""
    roots = {}
    for project in CHARMS:
        charm = project.charm_file(PLATFORM)
        assert charm.is_file(), f"{charm} is missing: run `tox -e pack`"
        roots[project.name] = _unpack(charm, tmp_path_factory.mktemp(project.name))
    return roots


def _site_packages(root: Path) -> Path:
    (site,) = (root / "venv" / "lib").glob("python3.*/site-packages")
    return site


def _installed(site: Path) -> dict[str, str]:
    found = {}
    for dist_info in site.glob("*.dist-info"):
        fields = dict(
            line.split(": ", 1)
            for line in (dist_info / "METADATA").read_text().splitlines()
            if line.startswith(("Name: ", "Version: "))
        )
        found[normalise_name(fields["Name"])] = fields["Version"]
    return found


def _python_of(root: Path) -> str:
    """The Python version the venv was built with, from its pyvenv.cfg."""
    for line in (root / "venv" / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version_info":
            return value.strip()
    raise AssertionError("pyvenv.cfg names no version_info")


def _locked_for(project: CharmProject, python: str) -> tuple[dict[str, str], str]:
    """What ``uv sync --frozen`` installs from uv.lock for this Python: name -> version,
    walking the charm's dependencies with their markers, and the charm's own name."""
    from packaging.markers import Marker, default_environment

    # packaging types the environment as a TypedDict (of str values), which
    # mypy does not take for the Mapping[str, str] that Marker.evaluate reads.
    env = {**cast("Mapping[str, str]", default_environment()), "python_full_version": python}
    env["python_version"] = ".".join(python.split(".")[:2])
    lock = load_toml(project.path / "uv.lock")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        by_name.setdefault(normalise_name(package["name"]), []).append(package)

    def pick(name: str) -> dict[str, Any]:
        candidates = by_name[name]
        matching = [
            c
            for c in candidates
            if len(candidates) == 1
            or any(Marker(m).evaluate(env) for m in c.get("resolution-markers", []))
        ]
        assert len(matching) == 1, f"uv.lock forks {name} and no fork matches Python {python}"
        return matching[0]

    own = normalise_name(load_toml(project.path / "pyproject.toml")["project"]["name"])
    found: dict[str, str] = {}
    todo = [own]
    while todo:
        package = pick(todo.pop())
        for dep in package.get("dependencies", []):
            name = normalise_name(dep["name"])
            if "marker" in dep and not Marker(dep["marker"]).evaluate(env):
                continue
            if name not in found:
                found[name] = pick(name)["version"]
                todo.append(name)
    return found, own


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_the_charm_holds_what_charmcraft_packs(
    project: CharmProject, unpacked: dict[str, Path]
) -> None:
    root = unpacked[project.name]
    expected = {"dispatch", "manifest.yaml", "metadata.yaml", "src", "venv"}
    expected |= {"config.yaml"} if project.config() else set()
    expected |= {"actions.yaml"} if project.actions() else set()
    expected |= {"lib"} if (project.path / "lib").is_dir() else set()
    expected |= {"icon.svg", "LICENSE"} if project.name in PRODUCT else set()
    assert {p.name for p in root.iterdir()} == expected
    if project.name in PRODUCT:
        assert (root / "icon.svg").read_bytes() == (project.path / "icon.svg").read_bytes()
        assert "Apache License" in (root / "LICENSE").read_text()
    orphans = [
        pyc
        for pyc in root.rglob("*.pyc")
        if not (pyc.parent.parent / f"{pyc.name.split('.')[0]}.py").is_file()
    ]
    assert orphans == []
    if project.name not in PRODUCT:
        # Test charms: the venv byte-compiled by uv (charmcraft sets UV_COMPILE_BYTECODE),
        # src/ copied from the checkout with no stale cache.
        assert not list((root / "src").rglob("__pycache__")), "src/ holds a bytecode cache"
        return
    # Every module of src/ and the venv ships bytecode checked by its source's
    # hash (charmcraft.yaml's override-build), none of it stale.
    for tree in ("src", "venv"):
        sources = [p for p in (root / tree).rglob("*.py") if "__pycache__" not in p.parts]
        assert sources, tree
        for source in sources:
            assert_checked_hash_bytecode(source)


def assert_checked_hash_bytecode(source: Path) -> None:
    """``source`` has bytecode for this Python, validated by the hash of its current text."""
    pyc = Path(importlib.util.cache_from_source(str(source)))
    assert pyc.is_file(), f"no bytecode for {source}"
    header = pyc.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER, pyc
    flags = int.from_bytes(header[4:8], "little")
    assert flags == 0b11, f"{pyc}: not checked-hash bytecode (flags {flags})"
    assert header[8:16] == importlib.util.source_hash(source.read_bytes()), f"{pyc} is stale"


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_dispatch_is_the_charm_s_own_or_charmcraft_s_and_the_entrypoint_is_executable(
    project: CharmProject, unpacked: dict[str, Path]
) -> None:
    """A charm with a `dispatch` of its own ships that one; charmcraft writes the others'."""
    root = unpacked[project.name]
    dispatch = root / "dispatch"
    own = project.path / "dispatch"
    if own.is_file():
        assert dispatch.read_bytes() == own.read_bytes()
    else:
        assert dispatch.read_text() == DISPATCH_SCRIPT_TEMPLATE.format(entrypoint="src/charm.py")
    assert os.access(dispatch, os.X_OK)
    assert os.access(root / "src" / "charm.py", os.X_OK)


def test_the_lxd_charm_ships_its_own_dispatch() -> None:
    """So the test above compares the LXD charm's with its source, not charmcraft's."""
    assert (CHARMS_BY_NAME["lxd-host"].path / "dispatch").is_file()


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_the_entrypoint_calls_ops_main(project: CharmProject, unpacked: dict[str, Path]) -> None:
    """What charmcraft 4.5's ops-main-call linter cannot see in a uv-built venv."""
    tree = ast.parse((unpacked[project.name] / "src" / "charm.py").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("ops.main", "ops.main.main", "main")
    ]
    assert calls, "src/charm.py never calls ops.main()"


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_metadata_config_and_actions_are_what_charmcraft_yaml_says(
    project: CharmProject, unpacked: dict[str, Path]
) -> None:
    import ops

    root = unpacked[project.name]
    metadata: dict[str, Any] = yaml.safe_load((root / "metadata.yaml").read_text())
    # charmcraft writes charmcraft.yaml's `title` as metadata.yaml's `display-name`.
    expected = project.metadata()
    if "title" in expected:
        expected["display-name"] = expected.pop("title")
    assert metadata == expected
    config = project.config()
    if config:
        assert yaml.safe_load((root / "config.yaml").read_text()) == config
    actions = project.actions()
    if actions:
        assert yaml.safe_load((root / "actions.yaml").read_text()) == actions
    meta = ops.CharmMeta.from_yaml(
        (root / "metadata.yaml").read_text(),
        (root / "actions.yaml").read_text() if actions else None,
    )
    assert meta.name == project.name
    assert set(meta.relations) | set(meta.extra_bindings) == set(project.endpoints())


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_manifest_names_charmcraft_and_the_platform(
    project: CharmProject, unpacked: dict[str, Path]
) -> None:
    manifest = yaml.safe_load((unpacked[project.name] / "manifest.yaml").read_text())
    assert manifest["charmcraft-version"] == charmcraft.__version__
    base, arch = PLATFORM.split(":")
    name, channel = base.split("@")
    assert manifest["bases"] == [{"name": name, "channel": channel, "architectures": [arch]}]


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_the_venv_is_what_uv_lock_says(project: CharmProject, unpacked: dict[str, Path]) -> None:
    root = unpacked[project.name]
    installed = _installed(_site_packages(root))
    locked, own = _locked_for(project, _python_of(root))
    assert installed == locked
    assert own not in installed, "the charm's own project is not installed (--no-install-project)"


def test_lxd_common_is_installed_whole_and_not_editable(unpacked: dict[str, Path]) -> None:
    for name in PRODUCT:
        site = _site_packages(unpacked[name])
        installed = sorted(
            p.relative_to(site).as_posix() for p in (site / "lxd_common").rglob("*.py")
        )
        expected = sorted(
            p.relative_to(COMMON / "src").as_posix()
            for p in (COMMON / "src" / "lxd_common").rglob("*.py")
        )
        assert installed == expected, "a module of common/ is missing from the venv"
        assert (site / "lxd_common" / "py.typed").is_file()
        (dist_info,) = site.glob("lxd_charms_common-*.dist-info")
        direct_url = dist_info / "direct_url.json"
        if direct_url.is_file():
            assert '"editable": true' not in direct_url.read_text()
        assert not list(site.glob("__editable__*")) and not list(site.glob("*.pth"))


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_the_charm_imports_from_its_own_tree_alone(
    project: CharmProject, unpacked: dict[str, Path], tmp_path: Path
) -> None:
    """As dispatch runs it: venv/bin/python linked to python3, lib/ and src/ on the path."""
    root = shutil.copytree(unpacked[project.name], tmp_path / "charm", symlinks=True)
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python, "no system python3"
    (root / "venv" / "bin").mkdir(exist_ok=True)
    (root / "venv" / "bin" / "python").symlink_to(python)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{root / 'lib'}:{root / 'src'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [str(root / "venv" / "bin" / "python"), "-c", IMPORT_PROBE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["charm"]).resolve() == (root / "src" / "charm.py").resolve()
    site = _site_packages(root).resolve()
    # Product charms use lxd_common; the test requirers are what a charm
    # outside this repository is: ops and the interfaces' package, nothing more.
    own = ("lxd_common",) if project.name in PRODUCT else ()
    for module in (*own, "lxd_charms_interfaces", "ops"):
        assert Path(found[module]).resolve().is_relative_to(site), found[module]
    if project.name not in PRODUCT:
        assert (found["lxd_common"], found["cryptography"]) == (None, None), found
    assert len(found["classes"]) == 1, found["classes"]
    assert not any(str(COMMON) in entry for entry in found["path"])
