"""How the charms are packed, checked without building them.

What a built .charm holds is tested on the real files in tests/packing
(`tox -e pack` builds every charm, runs ``charmcraft analyse`` and then those
tests). Here: each uv.lock (what the uv plugin installs) against
constraints.txt and its pyproject.toml, each charmcraft.yaml against the
monorepo layout the build relies on and the metadata this project ships,
and the pure parts of the packing scripts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.packing import PackingError, analyse, build, locks
from scripts.packing.__main__ import main as pack_main
from scripts.packing.projects import COMMON, REPO, CharmProject, all_charms, product_charms

CHARMS = all_charms()
IDS = [project.name for project in CHARMS]
PRODUCTS = product_charms()
PRODUCT_IDS = [project.name for project in PRODUCTS]
#: Every platform LXD's snap is built for, on both LTS bases.
UPSTREAM_PLATFORMS = [
    f"ubuntu@{base}:{arch}"
    for base in ("22.04", "24.04")
    for arch in ("amd64", "arm64", "armhf", "ppc64el", "s390x")
]


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_uv_lock_follows_constraints(project: CharmProject) -> None:
    lock = project.path / "uv.lock"
    assert lock.is_file(), f"{lock} missing: run `scripts/pack --lock`"
    assert locks.mismatches(lock) == [], "run `scripts/pack --lock` after changing constraints.txt"
    versions = locks.locked_versions(lock)
    assert "ops" in versions and "lxd-charms-interfaces" in versions
    if project in PRODUCTS:
        assert "lxd-charms-common" in versions
    else:
        # The test requirers are what a charm elsewhere is: ops and the
        # interfaces' package, nothing of lxd_common (nor its cryptography).
        assert not {"lxd-charms-common", "cryptography", "pylxd"} & set(versions)


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
    ours = {"lxd-charms-interfaces": REPO / "lxd-charms-interfaces"}
    if project in PRODUCTS:
        ours["lxd-charms-common"] = COMMON
    for name, where in ours.items():
        (package,) = (p for p in lock["package"] if p["name"] == name)
        source = (project.path / package["source"]["directory"]).resolve()
        assert source == where, f"{name} must come from this repository's {where.name}/"


@pytest.mark.parametrize("project", CHARMS, ids=IDS)
def test_charmcraft_yaml_builds_from_the_repository_root(project: CharmProject) -> None:
    """Charmcraft's monorepo support: source is the Git root, source-subdir the charm."""
    part = project.charmcraft["parts"]["charm"]
    assert part["plugin"] == "uv"
    assert (project.path / part["source"]).resolve() == REPO
    assert REPO / part["source-subdir"] == project.path
    assert project.platforms(), "one .charm per platform: at least one is needed"


@pytest.mark.parametrize("project", PRODUCTS, ids=PRODUCT_IDS)
def test_product_charms_ship_icon_and_licence(project: CharmProject) -> None:
    files = project.charmcraft["parts"]["files"]
    assert files["plugin"] == "dump"
    assert (project.path / files["source"]).resolve() == REPO
    (icon_source,) = files["organize"]
    assert REPO / icon_source == project.path / "icon.svg"
    assert sorted(files["prime"]) == ["LICENSE", "icon.svg"]
    assert (project.path / "icon.svg").read_text().lstrip().startswith("<svg")
    assert "Apache License" in (REPO / "LICENSE").read_text()
    assert "Version 2.0, January 2004" in (REPO / "LICENSE").read_text()


@pytest.mark.parametrize("project", PRODUCTS, ids=PRODUCT_IDS)
def test_product_charms_metadata(project: CharmProject) -> None:
    data = project.charmcraft
    assert data["platforms"] == dict.fromkeys(UPSTREAM_PLATFORMS)
    (assumes,) = data["assumes"]
    assert assumes.startswith("juju >= 3.")
    assert "links" not in data, "no project URL is published yet; never canonical/lxd's"
    assert "canonical/lxd" not in (project.path / "charmcraft.yaml").read_text()


def test_names_are_ours_not_canonical_s() -> None:
    assert [p.name for p in PRODUCTS] == ["lxd-host", "lxd-cloud-integrator"]
    assert [p.path.name for p in PRODUCTS] == ["lxd", "lxd-integrator"], "folders stay"
    integrator = PRODUCTS[1].charmcraft
    assert integrator["assumes"] == ["juju >= 3.3"], "user secrets (lxd-client-key)"
    assert integrator["config"]["options"]["lxd-client-key-secret"]["type"] == "secret"


def test_pack_says_what_to_install_without_charmcraft(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    assert pack_main(["--charmcraft", "lxd-host"]) == 1
    assert "snap install charmcraft" in capsys.readouterr().err


def test_pack_knows_the_product_charms() -> None:
    with pytest.raises(PackingError, match="no charm called"):
        from scripts.packing.projects import find

        find("no-such-charm")


def test_build_drops_only_build_snaps_and_makes_sources_absolute() -> None:
    project = PRODUCTS[0]
    parts = build._parts_for_host(project)
    original = project.charmcraft["parts"]
    assert set(parts) == set(original)
    for name, part in parts.items():
        assert Path(part["source"]) == REPO
        expected = {k: v for k, v in original[name].items() if k not in ("build-snaps", "source")}
        assert {k: v for k, v in part.items() if k != "source"} == expected


def test_build_refuses_a_platform_the_charm_lacks() -> None:
    with pytest.raises(PackingError, match=r"no platform 'ubuntu@20\.04:amd64'"):
        build.build(PRODUCTS[0], "ubuntu@20.04:amd64")


DISPATCH_TAIL = 'exec "${python_path}" "${dispatch_path}/src/charm.py"\n'


def test_analyse_recognises_only_charmcraft_s_own_dispatch_misreading() -> None:
    own = {
        "name": "entrypoint",
        "result": "error",
        "text": "Cannot find the entrypoint file: '/tmp/x/${dispatch_path}/src/charm.py'",
    }
    not_executable = {
        "name": "entrypoint",
        "result": "error",
        "text": "The entrypoint file is not executable: '/tmp/x/src/charm.py'",
    }
    assert analyse.is_self_inconsistent(own)
    assert not analyse.is_self_inconsistent(not_executable)
    assert analyse.errors_in([own, not_executable, {"name": "x", "result": "ok"}]) == [
        own,
        not_executable,
    ]


def test_analyse_copy_names_the_entrypoint_from_the_charm_root() -> None:
    text = "#!/bin/sh\nexport X=1\n" + DISPATCH_TAIL
    assert analyse.relative_dispatch(text) == (
        '#!/bin/sh\nexport X=1\nexec "${python_path}" "src/charm.py"\n'
    )


def test_release_uploads_every_platform_and_releases_with_empty_resources(
    tmp_path: Path,
) -> None:
    from scripts.packing import release

    calls: list[list[str]] = []

    def fake_charmcraft(cmd: list[str]) -> dict[str, object]:
        calls.append(cmd)
        return {"revision": len(calls)}

    files = [
        tmp_path / "lxd-host_ubuntu@24.04-amd64.charm",
        tmp_path / "lxd-host_ubuntu@22.04-amd64.charm",
        tmp_path / "lxd-cloud-integrator_ubuntu@24.04-amd64.charm",
    ]
    lines = release.release(files, "latest/edge", run=fake_charmcraft)
    assert len(lines) == 2
    verbs = [cmd[1] for cmd in calls]
    assert verbs == [
        *["upload", "release"],
        *["upload", "upload", "upload-resource", "upload-resource", "release", "release"],
    ], "lxd-cloud-integrator, then lxd-host (two platforms, two file resources)"
    lxd_releases = [cmd for cmd in calls if cmd[1] == "release" and cmd[3] == "lxd-host"]
    assert len(lxd_releases) == 2, "one release per uploaded platform"
    for cmd in lxd_releases:
        assert "--channel=latest/edge" in cmd
        resources = sorted(
            arg.split("=")[1].split(":")[0] for arg in cmd if arg.startswith("--resource=")
        )
        assert resources == ["lxd-binary", "lxd-snap"]
    integrator_release = next(
        cmd for cmd in calls if cmd[1] == "release" and cmd[3] == "lxd-cloud-integrator"
    )
    assert not [arg for arg in integrator_release if arg.startswith("--resource=")]
