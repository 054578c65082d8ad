"""The bundles deploy the charms built from this repository.

Each bundle in ``bundles/`` names our charms by the local ``.charm`` file
that packing leaves next to each charmcraft.yaml
(``../charms/lxd/lxd-host_ubuntu@24.04-amd64.charm``), relative to the
bundle, as Juju reads it. `resolve` checks that every such file exists,
naming the command that builds it when one does not, and writes the paths
absolute so the copy can be deployed from anywhere the juju snap can read
(under ``$HOME``)::

    tox -e pack
    scripts/pack --local-bundle bundles/cluster.yaml > ~/cluster.yaml
    juju deploy ~/cluster.yaml

Once published, ``bundles/charmhub/*.yaml`` are overlays that deploy the
Charmhub charms instead. `localise` points a bundle at other files (the
integration tests' packed charms).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from scripts.packing import PackingError


def load(path: Path) -> dict[str, Any]:
    """Read a bundle file.

    Raises:
        PackingError: the file is not a bundle (no ``applications`` mapping).
    """
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("applications"), dict):
        raise PackingError(f"{path} is not a bundle: it has no `applications` mapping")
    return data


def charm_reference(app: Mapping[str, Any], bundle_dir: Path) -> str | Path:
    """What an application's ``charm:`` names: a Charmhub name, or a local file.

    Local files are written as paths (``./x.charm``, ``../x.charm``, or
    absolute) and are relative to the bundle's directory, as Juju reads them.
    """
    charm = str(app.get("charm", ""))
    if charm.startswith(("./", "../", "/")):
        return (bundle_dir / charm).resolve()
    return charm.removeprefix("ch:")


def localise(
    bundle: Mapping[str, Any], charm_files: Mapping[str, Path], *, bundle_dir: Path
) -> dict[str, Any]:
    """A copy of ``bundle`` deploying ``charm_files`` (charm name -> .charm file).

    Applications whose charm is not in ``charm_files`` are left alone;
    local paths already in the bundle become absolute, so the copy can be
    written anywhere.
    """
    result = copy.deepcopy(dict(bundle))
    for app in result["applications"].values():
        reference = charm_reference(app, bundle_dir)
        name = reference if isinstance(reference, str) else _name_of_charm_file(reference)
        if name in charm_files:
            app["charm"] = str(Path(charm_files[name]).resolve())
            app.pop("channel", None)
            app.pop("revision", None)
        elif isinstance(reference, Path):
            app["charm"] = str(reference)
    return result


def resolve(bundle: Mapping[str, Any], *, bundle_dir: Path, platform: str) -> dict[str, Any]:
    """A copy of ``bundle`` with every local charm path absolute and checked.

    Args:
        bundle: a bundle as `load` read it.
        bundle_dir: the directory the bundle's relative paths start from.
        platform: the platform whose .charm files to deploy
            (``ubuntu@24.04:amd64``); a path naming another platform of the
            same charm is pointed at this one's file.

    Raises:
        PackingError: a local .charm is missing; the message names the
            command that builds it.
    """
    result = copy.deepcopy(dict(bundle))
    suffix = f"_{platform.replace(':', '-')}.charm"
    missing = []
    for app in result["applications"].values():
        reference = charm_reference(app, bundle_dir)
        if isinstance(reference, str):
            continue
        path = reference.with_name(_name_of_charm_file(reference) + suffix)
        if not path.is_file():
            missing.append(str(path))
        app["charm"] = str(path)
    if missing:
        raise PackingError(
            "not built yet: " + ", ".join(missing) + "; build them with `tox -e pack` "
            f"(this machine) or `scripts/pack --charmcraft --platform {platform} all`"
        )
    return result


def _name_of_charm_file(path: Path) -> str:
    """``lxd-host_ubuntu@24.04-amd64.charm`` -> ``lxd-host``."""
    return path.name.split("_", 1)[0]
