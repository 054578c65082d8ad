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
import yaml

import tests.harness.charms  # noqa: F401  (puts each charm's src/ on sys.path)
from scripts.packing import bundles
from scripts.packing.projects import REPO, CharmProject, all_charms, product_charms

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
    assert lxd["options"]["lxd-init-storage-driver"] in initialise.BLOCK_DRIVERS


def test_integrator_bundle_is_trusted_and_related_to_a_requirer() -> None:
    bundle = _load("integrator.yaml")
    assert bundle["applications"]["lxd-integrator"]["trust"] is True
    assert ["lxd-integrator:api", "lxd-requirer:lxd"] in bundle["relations"]


def test_localise_points_our_charms_at_local_files(tmp_path: Path) -> None:
    packed = tmp_path / "lxd-cloud-integrator_ubuntu@24.04-amd64.charm"
    bundle = _load("integrator.yaml")
    local = bundles.localise(bundle, {"lxd-cloud-integrator": packed}, bundle_dir=REPO / "bundles")
    integrator = local["applications"]["lxd-integrator"]
    assert integrator["charm"] == str(packed)
    assert "channel" not in integrator
    assert integrator["trust"] is True
    requirer = local["applications"]["lxd-requirer"]
    assert Path(requirer["charm"]).is_absolute()
    assert Path(requirer["charm"]).parent == REPO / "tests/integration/charms/lxd-requirer"
    original = bundle["applications"]["lxd-integrator"]["charm"]
    assert original == "../charms/lxd-integrator/lxd-cloud-integrator_ubuntu@24.04-amd64.charm"


@pytest.mark.parametrize("path", BUNDLES, ids=[p.name for p in BUNDLES])
def test_bundles_deploy_this_repository_s_charms_under_our_names(path: Path) -> None:
    """Local builds by default: no application deploys a Charmhub charm."""
    for name, app in bundles.load(path)["applications"].items():
        reference = bundles.charm_reference(app, path.parent)
        assert isinstance(reference, Path), f"{name} deploys {reference!r} from Charmhub"
        assert "channel" not in app and "revision" not in app
    names = {
        _project(app, path.parent).name for app in bundles.load(path)["applications"].values()
    }
    assert names & {"lxd", "lxd-integrator"} == set(), "those Charmhub names are Canonical's"


def _fake_bundle_tree(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    bundle_dir = tmp_path / "bundles"
    bundle_dir.mkdir()
    (tmp_path / "charms" / "lxd").mkdir(parents=True)
    bundle = {
        "applications": {
            "lxd": {"charm": "../charms/lxd/lxd-host_ubuntu@24.04-amd64.charm", "num_units": 1},
            "other": {"charm": "some-charmhub-charm", "channel": "latest/edge"},
        }
    }
    return bundle, bundle_dir


def test_resolve_names_the_pack_command_when_a_charm_is_not_built(tmp_path: Path) -> None:
    from scripts.packing import PackingError

    bundle, bundle_dir = _fake_bundle_tree(tmp_path)
    with pytest.raises(PackingError, match=r"lxd-host_ubuntu@24.04-amd64.charm.*`tox -e pack`"):
        bundles.resolve(bundle, bundle_dir=bundle_dir, platform="ubuntu@24.04:amd64")


def test_resolve_writes_absolute_paths_for_the_platform_asked(tmp_path: Path) -> None:
    bundle, bundle_dir = _fake_bundle_tree(tmp_path)
    built = tmp_path / "charms" / "lxd" / "lxd-host_ubuntu@22.04-arm64.charm"
    built.write_bytes(b"")
    local = bundles.resolve(bundle, bundle_dir=bundle_dir, platform="ubuntu@22.04:arm64")
    assert local["applications"]["lxd"]["charm"] == str(built)
    assert local["applications"]["other"] == bundle["applications"]["other"], "Charmhub kept"


def test_charmhub_overlays_name_our_charms_for_the_bundles_applications() -> None:
    overlays = {
        p.stem: yaml.safe_load(p.read_text())
        for p in (REPO / "bundles" / "charmhub").glob("*.yaml")
    }
    assert overlays == {
        "lxd-host": {"applications": {"lxd": {"charm": "lxd-host", "channel": "latest/stable"}}},
        "lxd-cloud-integrator": {
            "applications": {
                "lxd-integrator": {"charm": "lxd-cloud-integrator", "channel": "latest/stable"}
            }
        },
    }
    names = {p.name for p in product_charms()}
    for overlay in overlays.values():
        for app in overlay["applications"].values():
            assert app["charm"] in names
