"""What goes into each .charm, checked without charmcraft.

Charmcraft cannot run here (it needs snapd and LXD-managed build
instances), so `scripts/pack --stage` lays out what it would pack and these
tests inspect that: the metadata Juju reads, the ``dispatch`` script, and
``lxd_common`` installed as a regular package that the charm imports from
the staged tree, not from this checkout. The staging installs only
``lxd_common`` (``--no-deps``), offline when this Python's setuptools can
build it, so the unit tier stays fast.

The uv.lock files that the real build installs from are checked against
constraints.txt, and each charmcraft.yaml against the monorepo layout the
build relies on.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import ops
import pytest
import yaml

from scripts.packing import PackingError, locks, stage
from scripts.packing.__main__ import main as pack_main
from scripts.packing.projects import COMMON, REPO, CharmProject, all_charms, product_charms

CHARMS = all_charms()
IDS = [project.name for project in CHARMS]
COMMON_MODULES = sorted(
    path.relative_to(COMMON / "src").as_posix()
    for path in (COMMON / "src" / "lxd_common").rglob("*.py")
)

# Imports the charm the way `dispatch` runs it (src/ and lib/ first), then
# reports where each module came from. Third-party packages come from the
# test environment, handed over through PYTHONPATH; PYTHONPATH entries do not
# process .pth files, so the editable install of common in the test
# environment cannot leak in.
IMPORT_PROBE = """
import importlib, json, sys
charm = importlib.import_module("charm")
import lxd_common
base = charm.ops.CharmBase
classes = [n for n, v in vars(charm).items()
           if isinstance(v, type) and issubclass(v, base) and v is not base]
print(json.dumps({"charm": charm.__file__, "lxd_common": lxd_common.__file__,
                  "classes": classes, "path": sys.path}))
"""


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every charm staged once for the module: charm name -> staged root."""
    workdir = tmp_path_factory.mktemp("packing")
    wheel = stage.build_common_wheel(workdir)
    return {
        project.name: stage.stage(project, workdir / project.name, common_wheel=wheel)
        for project in CHARMS
    }


def _third_party_site() -> str:
    """The test environment's site-packages, where ops, pylxd and cryptography live."""
    return str(Path(ops.__file__).resolve().parent.parent)


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_staged_metadata_is_what_charmcraft_yaml_says(
    project: CharmProject, staged: dict[str, Path]
) -> None:
    root = staged[project.name]
    metadata = yaml.safe_load((root / "metadata.yaml").read_text())
    assert metadata == project.metadata()
    assert "parts" not in metadata and "platforms" not in metadata
    config = project.config()
    if config:
        assert yaml.safe_load((root / "config.yaml").read_text()) == config
    actions = project.actions()
    if actions:
        assert yaml.safe_load((root / "actions.yaml").read_text()) == actions
    manifest = yaml.safe_load((root / "manifest.yaml").read_text())
    assert manifest["platforms"] == project.platforms()
    # ops reads the same files Juju does; it must understand them.
    meta = ops.CharmMeta.from_yaml(
        (root / "metadata.yaml").read_text(),
        (root / "actions.yaml").read_text() if actions else None,
    )
    assert meta.name == project.name
    assert set(meta.relations) | set(meta.extra_bindings) == set(project.endpoints())


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_dispatch_runs_src_charm_py_with_the_venv(
    project: CharmProject, staged: dict[str, Path]
) -> None:
    dispatch = staged[project.name] / "dispatch"
    assert os.access(dispatch, os.X_OK)
    text = dispatch.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "venv/bin/python" in text and "src/charm.py" in text
    assert subprocess.run(["sh", "-n", str(dispatch)], check=False).returncode == 0
    assert (staged[project.name] / "src" / "charm.py").is_file()


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_charm_imports_lxd_common_from_the_staged_tree(
    project: CharmProject, staged: dict[str, Path]
) -> None:
    root = staged[project.name]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(root / "lib"), str(root / "src"), _third_party_site()]),
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
    site = stage.site_packages(root / "venv").resolve()
    assert Path(found["lxd_common"]).resolve().is_relative_to(site), found["lxd_common"]
    assert len(found["classes"]) == 1, found["classes"]
    assert not any(str(COMMON) in entry for entry in found["path"])


def test_lxd_common_is_installed_whole_and_not_editable(staged: dict[str, Path]) -> None:
    site = stage.site_packages(staged["lxd"] / "venv")
    installed = sorted(
        path.relative_to(site).as_posix() for path in (site / "lxd_common").rglob("*.py")
    )
    assert installed == COMMON_MODULES, "a module of common/ is missing from the wheel"
    assert (site / "lxd_common" / "py.typed").is_file()
    (dist_info,) = site.glob("lxd_charms_common-*.dist-info")
    direct_url = dist_info / "direct_url.json"
    if direct_url.is_file():
        assert '"editable": true' not in direct_url.read_text()
    assert not list(site.glob("__editable__*"))


def test_staged_charm_holds_nothing_from_outside_the_charm(staged: dict[str, Path]) -> None:
    root = staged["lxd"]
    assert sorted(p.name for p in root.iterdir()) == [
        "actions.yaml",
        "config.yaml",
        "dispatch",
        "lib",
        "manifest.yaml",
        "metadata.yaml",
        "src",
        "venv",
    ]
    # lib/ holds the charm library the LXD charm publishes (scripts/charm_libs.py), nothing else.
    assert [p.relative_to(root).as_posix() for p in (root / "lib").rglob("*.py")] == [
        "lib/charms/lxd/v0/lxd_https.py"
    ]
    assert not list(root.rglob("__pycache__"))


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_uv_lock_follows_constraints(project: CharmProject) -> None:
    lock = project.path / "uv.lock"
    assert lock.is_file(), f"{lock} missing: run `scripts/pack --lock`"
    assert locks.mismatches(lock) == [], "run `scripts/pack --lock` after changing constraints.txt"
    versions = locks.locked_versions(lock)
    assert "ops" in versions and "lxd-charms-common" in versions


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_uv_lock_matches_pyproject(project: CharmProject) -> None:
    from scripts.packing.projects import load_toml, normalise_name

    pyproject = load_toml(project.path / "pyproject.toml")
    lock = load_toml(project.path / "uv.lock")
    (root,) = (p for p in lock["package"] if p["name"] == pyproject["project"]["name"])
    declared = {
        normalise_name(d.split(";")[0].split("[")[0].strip())
        for d in pyproject["project"]["dependencies"]
    }
    locked = {normalise_name(d["name"]) for d in root["metadata"]["requires-dist"]}
    assert locked == declared, "pyproject.toml changed since uv.lock: run `scripts/pack --lock`"
    (common,) = (p for p in lock["package"] if p["name"] == "lxd-charms-common")
    source = (project.path / common["source"]["directory"]).resolve()
    assert source == COMMON, "common must come from this repository's common/"


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_charmcraft_yaml_builds_from_the_repository_root(project: CharmProject) -> None:
    """Charmcraft's monorepo support: source is the Git root, source-subdir the charm."""
    (part,) = project.charmcraft["parts"].values()
    assert part["plugin"] == "uv"
    assert (project.path / part["source"]).resolve() == REPO
    assert REPO / part["source-subdir"] == project.path
    assert project.platforms(), "one .charm per platform: at least one is needed"


def test_pack_says_what_to_install_without_charmcraft(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    assert pack_main(["lxd"]) == 1
    assert "snap install charmcraft" in capsys.readouterr().err


def test_pack_knows_the_product_charms() -> None:
    assert [p.name for p in product_charms()] == ["lxd", "lxd-integrator"]
    with pytest.raises(PackingError, match="no charm called"):
        from scripts.packing.projects import find

        find("no-such-charm")


def test_stage_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("")
    with pytest.raises(PackingError, match="not empty"):
        stage.stage(product_charms()[0], tmp_path, common_wheel=tmp_path / "x.whl")


def test_release_uploads_every_platform_and_releases_with_empty_resources(
    tmp_path: Path,
) -> None:
    from scripts.packing import release

    calls: list[list[str]] = []

    def fake_charmcraft(cmd: list[str]) -> dict[str, object]:
        calls.append(cmd)
        return {"revision": len(calls)}

    files = [
        tmp_path / "lxd_ubuntu@24.04-amd64.charm",
        tmp_path / "lxd_ubuntu@22.04-amd64.charm",
        tmp_path / "lxd-integrator_ubuntu@24.04-amd64.charm",
    ]
    lines = release.release(files, "latest/edge", run=fake_charmcraft)
    assert len(lines) == 2
    verbs = [cmd[1] for cmd in calls]
    assert verbs == [
        *["upload", "upload", "upload-resource", "upload-resource", "release", "release"],
        *["upload", "release"],
    ], "lxd (two platforms, two file resources), then lxd-integrator"
    lxd_releases = [cmd for cmd in calls if cmd[1] == "release" and cmd[3] == "lxd"]
    assert len(lxd_releases) == 2, "one release per uploaded platform"
    for cmd in lxd_releases:
        assert "--channel=latest/edge" in cmd
        resources = sorted(
            arg.split("=")[1].split(":")[0] for arg in cmd if arg.startswith("--resource=")
        )
        assert resources == ["lxd-binary", "lxd-snap"]
    integrator_release = next(
        cmd for cmd in calls if cmd[1] == "release" and cmd[3] == "lxd-integrator"
    )
    assert not [arg for arg in integrator_release if arg.startswith("--resource=")]
