"""Importing an interface module prints nothing: its schema JSON is for ``python -m`` only.

A charm imports these modules on every hook; a module that printed on
import would write its schemas into every hook's output.
"""

from __future__ import annotations

import importlib
import sys

import pytest

import lxd_charms_interfaces


@pytest.mark.parametrize("name", ["lxd", "lxd_https"])
def test_importing_an_interface_module_prints_nothing(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    full = f"lxd_charms_interfaces.{name}"
    importlib.import_module(full)
    # A fresh import for this test only: the module and the package's
    # attribute go back to the ones every other test holds afterwards.
    monkeypatch.delitem(sys.modules, full)
    monkeypatch.setattr(lxd_charms_interfaces, name, getattr(lxd_charms_interfaces, name))
    capsys.readouterr()
    fresh = importlib.import_module(full)
    assert fresh.__name__ == full
    assert capsys.readouterr() == ("", "")
