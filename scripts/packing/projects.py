"""The charm projects in this repository, as their charmcraft.yaml describes them.

Two product charms live under ``charms/``; the integration tests' requirer
charms live under ``tests/integration/charms/``. All of them are packed the
same way (Charmcraft's ``uv`` plugin, with the repository root as the part's
source), so packing, staging and the bundle checks treat them alike.
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from scripts.packing import PackingError

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "constraints.txt"
COMMON = REPO / "common"

#: The directories under charms/ of the charms this project publishes (their
#: Charmhub names, in charmcraft.yaml, are lxd-host and lxd-cloud-integrator).
PRODUCT_CHARMS = ("lxd", "lxd-integrator")
#: Where the integration tests keep the small charms they relate to ours.
TEST_CHARMS_DIR = REPO / "tests" / "integration" / "charms"

#: Keys of charmcraft.yaml that charmcraft copies into the packed metadata.yaml.
#: Everything else there is about building (parts, platforms) or has its own
#: file (config, actions).
METADATA_KEYS = frozenset(
    {
        "assumes",
        "containers",
        "description",
        "devices",
        "documentation",
        "extra-bindings",
        "links",
        "name",
        "peers",
        "provides",
        "requires",
        "resources",
        "storage",
        "subordinate",
        "summary",
        "terms",
        "title",
    }
)

_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "armv8l": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
}


def host_platform(base: str = "ubuntu@24.04") -> str:
    """The charmcraft platform name for ``base`` on this machine's architecture."""
    machine = platform.machine().lower()
    return f"{base}:{_MACHINE_TO_ARCH.get(machine, machine)}"


@dataclass(frozen=True)
class CharmProject:
    """One directory holding a charmcraft.yaml."""

    path: Path

    @cached_property
    def charmcraft(self) -> dict[str, Any]:
        """The parsed charmcraft.yaml."""
        data = yaml.safe_load((self.path / "charmcraft.yaml").read_text())
        if not isinstance(data, dict) or "name" not in data:
            raise PackingError(f"{self.path}/charmcraft.yaml does not describe a named charm")
        return data

    @property
    def name(self) -> str:
        """The charm's name, as Juju and Charmhub know it."""
        return str(self.charmcraft["name"])

    def metadata(self) -> dict[str, Any]:
        """What the packed charm's metadata.yaml holds."""
        return {k: v for k, v in self.charmcraft.items() if k in METADATA_KEYS}

    def config(self) -> dict[str, Any] | None:
        """What the packed charm's config.yaml holds, if the charm has options."""
        config = self.charmcraft.get("config")
        return dict(config) if config else None

    def actions(self) -> dict[str, Any] | None:
        """What the packed charm's actions.yaml holds, if the charm has actions."""
        actions = self.charmcraft.get("actions")
        return dict(actions) if actions else None

    def platforms(self) -> list[str]:
        """The platform names charmcraft builds one .charm for each of."""
        return [str(name) for name in self.charmcraft.get("platforms") or {}]

    def endpoints(self) -> dict[str, str]:
        """Every relation endpoint (and extra binding) name -> its role."""
        found: dict[str, str] = {}
        for role in ("provides", "requires", "peers"):
            for name in self.charmcraft.get(role) or {}:
                found[str(name)] = role
        for name in self.charmcraft.get("extra-bindings") or {}:
            found[str(name)] = "extra-binding"
        return found

    def charm_file(self, platform_name: str) -> Path:
        """Where ``charmcraft pack`` in this directory leaves the .charm for a platform."""
        return self.path / f"{self.name}_{platform_name.replace(':', '-')}.charm"


def product_charms() -> list[CharmProject]:
    """The charms this project publishes."""
    return [CharmProject(REPO / "charms" / name) for name in PRODUCT_CHARMS]


def requirer_charms() -> list[CharmProject]:
    """The requirer charms the integration tests deploy next to ours."""
    if not TEST_CHARMS_DIR.is_dir():
        return []
    return [
        CharmProject(path.parent) for path in sorted(TEST_CHARMS_DIR.glob("*/charmcraft.yaml"))
    ]


def all_charms() -> list[CharmProject]:
    """Every charm project in the repository."""
    return [*product_charms(), *requirer_charms()]


def find(ref: str) -> CharmProject:
    """A charm project by name (``lxd``, ``https-requirer``) or by directory.

    Raises:
        PackingError: nothing by that name, and no charmcraft.yaml there.
    """
    for project in all_charms():
        if ref == project.name:
            return project
    path = Path(ref)
    if (path / "charmcraft.yaml").is_file():
        return CharmProject(path.resolve())
    names = ", ".join(p.name for p in all_charms())
    raise PackingError(f"no charm called {ref!r} and no charmcraft.yaml in it; known: {names}")


def load_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file (pyproject.toml, uv.lock) on any supported Python.

    Python 3.10 has no tomllib; pip, which every environment here has,
    carries the same parser.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        from pip._vendor import tomli as tomllib
    return dict(tomllib.loads(path.read_text()))


def constraint_pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``name==version`` lines of constraints.txt, by normalised name."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" not in line:
            continue
        name, version = (part.strip() for part in line.split("==", 1))
        pins[normalise_name(name)] = version
    return pins


def normalise_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()
