"""The bundles in bundles/ name only what our charms really have.

A bundle is read by Juju only at deploy time, on a controller; a misspelt
option or endpoint would surface there, minutes into a deployment. These
tests read every bundle against the charmcraft.yaml of the charms it names
(ours and the integration tests' requirer charms), so such mistakes fail
here instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tests.harness.charms  # noqa: F401  (puts each charm's src/ on sys.path)
from scripts.packing import bundles
from scripts.packing.projects import REPO, CharmProject, all_charms

BUNDLES = sorted((REPO / "bundles").glob("*.yaml"))
BUNDLE_KEYS = {
    "applications",
    "default-base",
    "description",
    "machines",
    "relations",
    "saas",
    "series",
    "tags",
}
APPLICATION_KEYS = {
    "annotations",
    "base",
    "bindings",
    "channel",
    "charm",
    "constraints",
    "devices",
    "expose",
    "num_units",
    "offers",
    "options",
    "resources",
    "revision",
    "series",
    "storage",
    "to",
    "trust",
}
OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "int": (int,),
    "float": (int, float),
    "secret": (str,),
}


def _load(name: str) -> dict[str, Any]:
    return bundles.load(REPO / "bundles" / name)


def _project(app: dict[str, Any], bundle_dir: Path) -> CharmProject:
    """The charm project an application deploys: by Charmhub name or local .charm path."""
    reference = bundles.charm_reference(app, bundle_dir)
    for project in all_charms():
        if isinstance(reference, str) and reference == project.name:
            return project
        if isinstance(reference, Path) and reference.parent == project.path:
            assert reference.name.startswith(f"{project.name}_"), reference
            assert reference.suffix == ".charm", reference
            return project
    pytest.fail(f"charm {app.get('charm')!r} is none of ours: {[p.name for p in all_charms()]}")


def _endpoint(bundle: dict[str, Any], ref: str, bundle_dir: Path) -> tuple[str, str]:
    """``app:endpoint`` -> (role, interface), checking both exist."""
    app_name, _, endpoint = ref.partition(":")
    assert app_name in bundle["applications"], f"relation names unknown application {app_name}"
    charm = _project(bundle["applications"][app_name], bundle_dir).charmcraft
    for role in ("provides", "requires", "peers"):
        if endpoint in (charm.get(role) or {}):
            return role, charm[role][endpoint]["interface"]
    pytest.fail(f"{ref}: {charm['name']} has no endpoint {endpoint!r}")


def test_there_are_the_three_bundles() -> None:
    assert [p.name for p in BUNDLES] == ["cluster.yaml", "integrator.yaml", "standalone.yaml"]


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.stem)
def test_bundle_uses_only_known_keys(path: Path) -> None:
    bundle = bundles.load(path)
    assert set(bundle) <= BUNDLE_KEYS, set(bundle) - BUNDLE_KEYS
    for name, app in bundle["applications"].items():
        assert set(app) <= APPLICATION_KEYS, (name, set(app) - APPLICATION_KEYS)
        assert isinstance(app.get("num_units", 0), int), name


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.stem)
def test_options_exist_with_the_right_type(path: Path) -> None:
    for name, app in bundles.load(path)["applications"].items():
        options = (_project(app, path.parent).config() or {}).get("options", {})
        for key, value in (app.get("options") or {}).items():
            assert key in options, f"{name}: the charm has no option {key!r}"
            expected = OPTION_TYPES[options[key]["type"]]
            assert isinstance(value, expected), f"{name}: {key}={value!r} is not {expected}"


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.stem)
def test_bindings_and_storage_name_real_endpoints(path: Path) -> None:
    for name, app in bundles.load(path)["applications"].items():
        project = _project(app, path.parent)
        for endpoint, space in (app.get("bindings") or {}).items():
            assert endpoint == "" or endpoint in project.endpoints(), (name, endpoint)
            assert isinstance(space, str) and space, (name, endpoint)
        storage = project.charmcraft.get("storage") or {}
        for store in app.get("storage") or {}:
            assert store in storage, f"{name}: the charm has no storage {store!r}"


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.stem)
def test_relations_join_matching_endpoints(path: Path) -> None:
    bundle = bundles.load(path)
    for pair in bundle.get("relations") or []:
        (role_a, interface_a), (role_b, interface_b) = (
            _endpoint(bundle, ref, path.parent) for ref in pair
        )
        assert interface_a == interface_b, pair
        assert {role_a, role_b} == {"provides", "requires"}, pair


def test_standalone_bundle() -> None:
    lxd = _load("standalone.yaml")["applications"]["lxd"]
    assert lxd["options"]["mode"] == "standalone"
    assert lxd["options"]["lxd-listen-https"] is True
    assert "https" in lxd["bindings"]


def test_cluster_bundle_has_three_members_on_spaces_and_juju_storage() -> None:
    from lxd_charm import initialise

    lxd = _load("cluster.yaml")["applications"]["lxd"]
    assert lxd["num_units"] == 3
    assert lxd["options"]["mode"] == "cluster"
    assert {"cluster", "https"} <= set(lxd["bindings"])
    assert "local" in lxd["storage"]
    # With a block device attached the charm refuses drivers that cannot use one.
    assert lxd["options"]["lxd-init-storage"] in initialise.BLOCK_DRIVERS


def test_integrator_bundle_is_trusted_and_related_to_a_requirer() -> None:
    bundle = _load("integrator.yaml")
    assert bundle["applications"]["lxd-integrator"]["trust"] is True
    assert ["lxd-integrator:api", "lxd-requirer:lxd"] in bundle["relations"]


def test_localise_points_our_charms_at_local_files(tmp_path: Path) -> None:
    packed = tmp_path / "lxd_ubuntu@24.04-amd64.charm"
    bundle = _load("integrator.yaml")
    local = bundles.localise(bundle, {"lxd-integrator": packed}, bundle_dir=REPO / "bundles")
    integrator = local["applications"]["lxd-integrator"]
    assert integrator["charm"] == str(packed)
    assert "channel" not in integrator
    assert integrator["trust"] is True
    requirer = local["applications"]["lxd-requirer"]
    assert Path(requirer["charm"]).is_absolute()
    assert Path(requirer["charm"]).parent == REPO / "tests/integration/charms/lxd-requirer"
    assert bundle["applications"]["lxd-integrator"]["charm"] == "lxd-integrator", "copied"
