"""The Ceph and OVN overlays docs/deploy.md shows, read against the LXD charm's charmcraft.yaml.

An operator copies them as they are, so their `lxd` options must exist with
the right types, and every relation of `lxd` must name one of its endpoints
with the interface the other side speaks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
DEPLOY = REPO / "docs" / "deploy.md"
CHARMCRAFT = REPO / "charms" / "lxd" / "charmcraft.yaml"
TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "int": int,
    "float": (int, float),
}
INTERFACES = {"ceph": "ceph-client", "ovsdb-cms": "ovsdb-cms", "certificates": "tls-certificates"}
"""What the other side of each relation speaks (ceph-mon:client, ovn-central, vault)."""


def overlay(name: str) -> dict[str, Any]:
    """The YAML block of docs/deploy.md that starts with ``# <name>``."""
    for block in re.findall(r"```yaml\n(.*?)```", DEPLOY.read_text(), flags=re.DOTALL):
        if block.startswith(f"# {name}"):
            loaded: dict[str, Any] = yaml.safe_load(block)
            return loaded
    raise AssertionError(f"docs/deploy.md has no overlay {name}")


def charm() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CHARMCRAFT.read_text())
    return loaded


@pytest.mark.parametrize("name", ["ceph-overlay.yaml", "ovn.yaml"])
def test_the_overlays_lxd_options_exist_with_their_types(name: str) -> None:
    options = charm()["config"]["options"]
    given = (overlay(name)["applications"].get("lxd") or {}).get("options") or {}
    for option, value in given.items():
        assert option in options, option
        assert isinstance(value, TYPES[options[option]["type"]]), (option, value)


@pytest.mark.parametrize(
    ("name", "endpoints"),
    [("ceph-overlay.yaml", {"ceph"}), ("ovn.yaml", {"ovsdb-cms", "certificates"})],
)
def test_the_overlays_relate_lxd_on_its_endpoints(name: str, endpoints: set[str]) -> None:
    requires = charm()["requires"]
    related = set()
    for pair in overlay(name)["relations"]:
        for side in pair:
            app, _, endpoint = side.partition(":")
            if app == "lxd":
                assert requires[endpoint]["interface"] == INTERFACES[endpoint]
                related.add(endpoint)
    assert related == endpoints


def test_the_ovn_overlay_brings_a_certificate_authority_and_central() -> None:
    apps = overlay("ovn.yaml")["applications"]
    assert {"vault", "ovn-central"} <= set(apps)
    assert {"ceph-mon", "ceph-osd"} <= set(overlay("ceph-overlay.yaml")["applications"])
