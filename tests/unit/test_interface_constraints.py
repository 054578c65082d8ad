"""scripts/interface_constraints.py: constraints.txt with the interface tier's overrides."""

from __future__ import annotations

import pytest

from scripts.interface_constraints import CONSTRAINTS, interface_constraints


def test_the_overrides_replace_their_pins_and_nothing_else() -> None:
    text = "ops==3.9.0\nPyYAML==6.0.3\n#   interfaces: ops==3.6.0\n"
    assert interface_constraints(text) == "ops==3.6.0\nPyYAML==6.0.3\n#   interfaces: ops==3.6.0\n"


def test_an_override_of_an_unpinned_package_is_refused() -> None:
    with pytest.raises(ValueError, match="unpinned packages: nope"):
        interface_constraints("ops==3.9.0\n#   interfaces: nope==1\n")


def test_the_repositorys_file_pins_one_version_of_each_package() -> None:
    lines = interface_constraints(CONSTRAINTS.read_text()).splitlines()
    pins = [line.split("==")[0].lower() for line in lines if "==" in line and line[0] != "#"]
    assert len(pins) == len(set(pins))
    assert "ops==3.6.0" in lines and "ops-scenario==8.6.0" in lines
