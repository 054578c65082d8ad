"""InterfaceError: one class in lxd_common's hierarchy, its own class in the standalone library.

The lxd-https module is also published as a one-file charm library, which cannot
import lxd_common; scripts/charm_libs.py copies the error class into it with
only its builtin bases. These tests pin both halves of that.
"""

from __future__ import annotations

import ast

import pytest

from lxd_common import errors
from lxd_common.interfaces import lxd, lxd_https
from scripts import charm_libs


def test_one_interface_error_in_the_hierarchy() -> None:
    assert lxd.InterfaceError is errors.InterfaceError
    assert lxd_https.InterfaceError is errors.InterfaceError
    assert issubclass(errors.InterfaceError, errors.LxdCommonError)
    assert issubclass(errors.InterfaceError, ValueError)
    with pytest.raises(errors.LxdCommonError, match="unsupported lxd-https version"):
        lxd_https.ClientRequest.from_databag({"version": "2.0", "certificate": "x"})


def _classes(text: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(text).body if isinstance(n, ast.ClassDef)}


def test_library_defines_its_own_interface_error() -> None:
    library = charm_libs.generate()
    cls = _classes(library)["InterfaceError"]
    assert [ast.unparse(base) for base in cls.bases] == ["ValueError"]
    assert ast.get_docstring(cls) == ast.get_docstring(
        _classes(charm_libs.ERRORS.read_text())["InterfaceError"]
    )
    relative = [
        n for n in ast.walk(ast.parse(library)) if isinstance(n, ast.ImportFrom) and n.level
    ]
    assert relative == []


def test_generator_inlines_any_error_it_is_asked_for() -> None:
    source = charm_libs.SOURCE.read_text()
    ours = "from ..errors import InterfaceError as InterfaceError"
    library = charm_libs.render(
        source.replace(ours, f"{ours}\nfrom ..errors import CertificateError")
    )
    assert [ast.unparse(b) for b in _classes(library)["CertificateError"].bases] == ["ValueError"]
    assert [ast.unparse(b) for b in _classes(library)["InterfaceError"].bases] == ["ValueError"]
    # SysctlError has no builtin base: a standalone copy would have none to stand on.
    with pytest.raises(charm_libs.GenerationError, match="SysctlError cannot be copied"):
        charm_libs.render(source.replace(ours, f"{ours}\nfrom ..errors import SysctlError"))


def test_generator_refuses_other_lxd_common_imports() -> None:
    source = charm_libs.SOURCE.read_text().replace(
        "import ops\n", "import ops\n\nfrom ..certs import fingerprint\n", 1
    )
    with pytest.raises(charm_libs.GenerationError, match="must stand alone"):
        charm_libs.render(source)
    with pytest.raises(charm_libs.GenerationError, match="defines no class Nope"):
        charm_libs.render(
            charm_libs.SOURCE.read_text().replace(
                "import InterfaceError as InterfaceError", "import Nope"
            )
        )
