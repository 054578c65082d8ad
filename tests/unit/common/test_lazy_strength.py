"""`lxd_common._lazy`, one wrong answer each: import on first use, once, and refuse unknown names.

Written for the mutants the unit tier let through (docs/mutation.md): the
packages' lazy names were only ever reached through `from package import
name`, whose own look-up (`hasattr`, which runs the package `__getattr__`
and caches the value) hides a wrong return value, and `lazy_module` was only
reached through the snapd seam, whose tests stand in for charmlibs-snap. Here
both are driven directly, against a module of the test's own that notes
each time it is imported.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lxd_common._lazy import lazy_exports, lazy_module


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A module of our own, `lazy_probe`, that appends a line to a log each time it runs."""
    log = tmp_path / "imports.log"
    (tmp_path / "lazy_probe.py").write_text(
        f"with open({str(log)!r}, 'a') as log:\n    log.write('imported\\n')\nVALUE = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_probe", raising=False)
    yield "lazy_probe", log
    sys.modules.pop("lazy_probe", None)


def imports(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_lazy_module_is_imported_on_its_first_attribute_only(probe: tuple[str, Path]) -> None:
    name, log = probe
    lazy = lazy_module(name)
    assert imports(log) == 0
    assert "lazy_probe" not in sys.modules
    assert lazy.VALUE == 42
    assert lazy.VALUE == 42
    assert imports(log) == 1
    assert lazy.__getattr__("VALUE") == 42


def test_a_lazy_modules_missing_attribute_is_an_attribute_error(
    probe: tuple[str, Path],
) -> None:
    name, _log = probe
    with pytest.raises(AttributeError):
        lazy_module(name).MISSING  # noqa: B018 (the look-up is the test)


def test_lazy_exports_load_a_name_from_its_home_once_and_keep_it(
    probe: tuple[str, Path],
) -> None:
    name, log = probe
    namespace: dict[str, Any] = {}
    getattr_ = lazy_exports("", {"VALUE": name}, namespace)
    assert imports(log) == 0
    assert getattr_("VALUE") == 42
    # Kept in the package's namespace, so Python finds it there without asking again.
    assert namespace == {"VALUE": 42}
    assert imports(log) == 1


def test_lazy_exports_refuse_a_name_they_do_not_export_as_python_expects(
    probe: tuple[str, Path],
) -> None:
    name, log = probe
    namespace: dict[str, Any] = {}
    getattr_ = lazy_exports("lxd_common.lxd", {"VALUE": name}, namespace)
    # An AttributeError is what `hasattr`, `getattr(..., default)` and `from ... import`
    # turn into False, the default and an ImportError.
    with pytest.raises(
        AttributeError, match=exactly("module 'lxd_common.lxd' has no attribute 'nope'")
    ):
        getattr_("nope")
    assert namespace == {}
    assert imports(log) == 0


def test_the_packages_refuse_unknown_names() -> None:
    import lxd_common.lxd
    import lxd_common.snap

    assert not hasattr(lxd_common.lxd, "no_such_name")
    assert not hasattr(lxd_common.snap, "no_such_name")
    with pytest.raises(ImportError):
        from lxd_common.lxd import no_such_name  # noqa: F401
