"""Point a bundle at charms packed here instead of Charmhub.

The bundles in ``bundles/`` name our charms as Charmhub publishes them
(``charm: lxd``, a channel). To deploy what was just built, each such
application gets the local ``.charm`` file instead, and loses ``channel``
and ``revision``, which Juju refuses for local charms. The integration tests
deploy the bundles this way; operators can too::

    scripts/pack --platform ubuntu@24.04:amd64
    scripts/pack --local-bundle bundles/cluster.yaml > /tmp/cluster.yaml
    juju deploy /tmp/cluster.yaml
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


def _name_of_charm_file(path: Path) -> str:
    """``lxd-requirer_ubuntu@24.04-amd64.charm`` -> ``lxd-requirer``."""
    return path.name.split("_", 1)[0]
