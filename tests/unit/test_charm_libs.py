"""The Charmhub library ``charms.lxd.v0.lxd_https``, generated from lxd_common.

Charm authors outside this repository get the https relation's requirer as
one file under their ``lib/``. These tests check that the committed copies
are what ``scripts/charm_libs.py`` generates, that the file works on its own
(standard library and ops, without ``lxd_common``), that charmcraft would
accept its metadata, and that a charm wired with the library copy (not
lxd_common) sends its certificate and reads the LXD charm's answer. The
interface's behaviour itself is tested on lxd_common in
tests/unit/common/interfaces/test_lxd_https_interface.py.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import jsonschema
import ops
import pytest
from ops import testing

from lxd_common.certs import generate_client_certificate
from scripts import charm_libs

LIBRARY = charm_libs.TARGETS[0]
PAIR = generate_client_certificate("library-requirer")


def test_committed_library_copies_are_up_to_date() -> None:
    assert charm_libs.check() == [], "run: python scripts/charm_libs.py"
    assert charm_libs.main(["--check"]) == 0


def test_the_published_copy_is_where_publish_lib_looks() -> None:
    """``charmcraft publish-lib charms.lxd.v0.lxd_https`` run in charms/lxd reads this file."""
    assert charm_libs.REPO / "charms/lxd/lib/charms/lxd/v0/lxd_https.py" == LIBRARY
    assert charm_libs.MODULE == "charms.lxd.v0.lxd_https"


def test_check_names_a_stale_copy_and_a_missing_patch_bump() -> None:
    edited = charm_libs.generate().replace("class LxdHttpsRequirer", "class Renamed")
    problems = [p.message for p in charm_libs.check(edited)]
    assert any("charms/lxd/lib/charms/lxd/v0/lxd_https.py is stale" in p for p in problems)
    (bump,) = [p for p in problems if "LIBPATCH" in p]
    assert f"LIBPATCH = {charm_libs.LIBPATCH + 1}" in bump
    assert charm_libs.content_hash(edited) in bump


def test_content_hash_ignores_the_version_lines_as_charmcraft_does() -> None:
    text = charm_libs.generate()
    registered = text.replace(f'LIBID = "{charm_libs.LIBID}"', 'LIBID = "' + "a" * 32 + '"')
    bumped = text.replace(f"LIBPATCH = {charm_libs.LIBPATCH}", "LIBPATCH = 99")
    assert registered != text and bumped != text
    assert charm_libs.content_hash(registered) == charm_libs.content_hash(text)
    assert charm_libs.content_hash(bumped) == charm_libs.content_hash(text)
    assert charm_libs.content_hash(text + "x = 1\n") != charm_libs.content_hash(text)


def _metadata(path: Path) -> dict[str, object]:
    """The library's metadata fields, read the way charmcraft reads them.

    charmcraft walks the module's top-level statements and takes only plain
    assignments of constants (an annotated ``LIBAPI: int = 0`` is not seen).
    """
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant | ast.List):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in (
                    "LIBID",
                    "LIBAPI",
                    "LIBPATCH",
                    "PYDEPS",
                ):
                    found[target.id] = ast.literal_eval(node.value)
    return found


def test_metadata_is_what_charmcraft_accepts() -> None:
    meta = _metadata(LIBRARY)
    libid, libapi, libpatch = meta["LIBID"], meta["LIBAPI"], meta["LIBPATCH"]
    # charmcraft: LIBAPI and LIBPATCH are ints >= 0, not both zero; LIBID a
    # non-empty ASCII str; LIBAPI matches the vN directory.
    assert type(libapi) is int and type(libpatch) is int
    assert libapi >= 0 and libpatch >= 0 and (libapi, libpatch) != (0, 0)
    assert isinstance(libid, str) and libid and libid.isascii()
    assert LIBRARY.parent.name == f"v{libapi}"
    assert (libid, libapi, libpatch) == (
        charm_libs.LIBID,
        charm_libs.LIBAPI,
        charm_libs.LIBPATCH,
    )
    # Only the standard library and ops are imported, which is why there is no PYDEPS.
    assert "PYDEPS" not in meta


def test_library_imports_only_the_standard_library_and_ops() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(LIBRARY.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"ops"}


def test_unregistered_libid_is_refused_for_publishing(capsys: pytest.CaptureFixture[str]) -> None:
    assert not charm_libs.libid_is_registered("NOT-REGISTERED-YET")
    assert not charm_libs.libid_is_registered("")
    assert charm_libs.libid_is_registered("0123456789abcdef0123456789abcdef")
    if charm_libs.libid_is_registered():
        pytest.skip("LIBID is registered: nothing to refuse")
    assert charm_libs.main(["--require-libid"]) == 1
    assert "LIBID is not registered yet" in capsys.readouterr().err


# Run with -I (no PYTHONPATH, no current directory on the path) from the test
# environment's interpreter, so ops is importable as in a charm's venv. The
# editable install of common/ would still put lxd_common on sys.path through
# its .pth file: those entries are dropped, and any import of lxd_common is
# refused, so the library must stand on its own.
STANDALONE_PROBE = """
import importlib.abc, json, sys
from pathlib import Path

class NoLxdCommon(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "lxd_common":
            raise ImportError("lxd_common must not be needed by the library")
        return None

sys.meta_path.insert(0, NoLxdCommon())
sys.path[:] = [p for p in sys.path if not (Path(p) / "lxd_common").exists()]
sys.path.insert(0, sys.argv[1])
import charms.lxd.v0.lxd_https as lib
print(json.dumps({
    "file": lib.__file__,
    "lxd_common": sorted(m for m in sys.modules if m.startswith("lxd_common")),
    "requirer": lib.LxdHttpsRequirer.__name__,
    "version": [lib.LIBAPI, lib.LIBPATCH],
}))
"""


def test_library_imports_on_its_own_without_lxd_common(tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    copy = lib_dir / "charms" / "lxd" / "v0" / "lxd_https.py"
    copy.parent.mkdir(parents=True)
    shutil.copy(LIBRARY, copy)
    result = subprocess.run(
        [sys.executable, "-I", "-c", STANDALONE_PROBE, str(lib_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["file"]).resolve() == copy.resolve()
    assert found["lxd_common"] == []
    assert found["requirer"] == "LxdHttpsRequirer"
    assert found["version"] == [charm_libs.LIBAPI, charm_libs.LIBPATCH]


@pytest.fixture(scope="module")
def lib() -> Iterator[ModuleType]:
    """The committed library file, loaded as a module of its own (not lxd_common's)."""
    name = "lxd_https_charm_library_under_test"
    spec = importlib.util.spec_from_file_location(name, LIBRARY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


META = {"name": "library-requirer", "requires": {"lxd": {"interface": "lxd-https"}}}


def _charm_class(lib: ModuleType) -> type[ops.CharmBase]:
    class LibraryRequirerCharm(ops.CharmBase):
        """A charm author's requirer, wired with the library copy."""

        def __init__(self, framework: ops.Framework) -> None:
            super().__init__(framework)
            self.lxd = lib.LxdHttpsRequirer(
                self, "lxd", certificate=PAIR.certificate, projects=["ci"]
            )

    return LibraryRequirerCharm


def test_library_requirer_sends_its_certificate(lib: ModuleType) -> None:
    ctx = testing.Context(_charm_class(lib), meta=META)
    relation = testing.Relation("lxd", remote_app_name="lxd")
    with ctx(ctx.on.relation_joined(relation), testing.State(relations={relation})) as manager:
        assert type(manager.charm.lxd).__module__ == lib.__name__
        out = manager.run()
    bag = dict(out.get_relation(relation.id).local_unit_data)
    jsonschema.validate(bag, lib.REQUIRER_SCHEMA)
    assert bag["certificate"] == PAIR.certificate
    assert (bag["version"], bag["projects"], bag["autoremove"]) == ("1.0", "ci", "true")


def test_library_requirer_reads_server_info_from_provider_data(lib: ModuleType) -> None:
    # What the LXD charm answers from a cluster: once, in its application databag.
    answer = {
        "version": "1.0",
        "certificate": PAIR.certificate,
        "certificate_fingerprint": "c" * 64,
        "addresses": "10.0.0.9:8443,[2001:db8::9]:8443",
    }
    relation = testing.Relation("lxd", remote_app_name="lxd", remote_app_data=answer)
    ctx = testing.Context(_charm_class(lib), meta=META)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as manager:
        (server,) = manager.charm.lxd.servers()
    assert isinstance(server, lib.ServerInfo)
    assert server.addresses == ("10.0.0.9:8443", "[2001:db8::9]:8443")
    assert (server.certificate, server.certificate_fingerprint) == (PAIR.certificate, "c" * 64)


def test_the_documented_example_uses_what_the_library_has(lib: ModuleType) -> None:
    doc = (charm_libs.REPO / "docs/interfaces/lxd-https.md").read_text()
    (example,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", doc, re.DOTALL)
        if charm_libs.MODULE in block
    ]
    tree = ast.parse(example)  # it is valid Python
    (imported,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == charm_libs.MODULE
    ]
    assert all(hasattr(lib, alias.name) for alias in imported.names)
