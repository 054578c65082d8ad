"""Generate the Charmhub library ``charms.lxd.v0.lxd_https`` from ``lxd_common``.

Charm authors outside this repository use the ``https`` relation's requirer
the way charm libraries are used: one Python file under their charm's
``lib/charms/lxd/v0/``, fetched with ``charmcraft fetch-lib`` (or copied).
That file is generated here from ``common/src/lxd_common/interfaces/lxd_https.py``,
which imports only the standard library, ``ops`` and the errors it raises
from ``lxd_common.errors``, so there is one source of truth and no
hand-maintained copy. The generator changes three things only:

- the module docstring gains a paragraph saying what the file is, how to get
  it and where it comes from (merged into the one docstring: a second string
  would have to follow ``from __future__ import annotations``, which must come
  first);
- the ``LIBID``, ``LIBAPI`` and ``LIBPATCH`` assignments charmcraft requires are
  inserted after the imports (plain ``NAME = constant`` assignments: charmcraft
  reads them from the syntax tree and ignores annotated ones);
- ``from ..errors import X`` is replaced by the class ``X`` itself, copied from
  ``lxd_common/errors.py`` with only its builtin bases (``ValueError``): in
  ``lxd_common`` the error belongs to the one hierarchy (``LxdCommonError``),
  which the standalone file cannot import. Any other import from
  ``lxd_common`` is refused.

Usage::

    python scripts/charm_libs.py            # (re)write every copy of the library
    python scripts/charm_libs.py --check    # exit 1 if a copy is stale or LIBPATCH needs a bump
    python scripts/charm_libs.py --require-libid   # exit 1 while LIBID is not registered

Bumping LIBPATCH
----------------
Charmhub keeps one content per (LIBAPI, LIBPATCH) and refuses a different
content under a version it already has. ``LIBPATCH_CONTENT_SHA256`` records
the content (hashed as charmcraft hashes it: without the LIBID, LIBAPI and
LIBPATCH lines) that the current LIBPATCH stands for. When the library changes
(an edit to the common module, or to the header written here), ``--check``
fails and prints the next LIBPATCH and the new hash: set both below and
regenerate. Patch numbers may skip on Charmhub; they never repeat. A breaking
change to the requirer's API needs a new LIBAPI instead (and a ``v1``
directory): that is not automated here.

LIBID
-----
Charmhub assigns LIBID when the library is registered: ``charmcraft create-lib
lxd_https``, logged in to Charmhub as an owner of the ``lxd`` charm name, run
in a scratch directory holding a copy of ``charms/lxd/charmcraft.yaml`` (it
writes a template library, and will not overwrite the generated one); the
template's LIBID goes into LIBID below. That has not been done, so LIBID holds
``NOT-REGISTERED-YET``:
charmcraft accepts it when it parses the library (``pack``), and
``--require-libid`` (which the release workflow runs before ``charmcraft
publish-lib``) refuses it. Anything but Charmhub's 32-hex-digit identifier
counts as not registered. Note: charmcraft 4.5's reference for ``create-lib``
says Charmhub no longer accepts new library registrations; if that holds
when someone tries, the library can only be vendored (copied) or packaged
for PyPI instead.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
SOURCE: Final = REPO / "common" / "src" / "lxd_common" / "interfaces" / "lxd_https.py"
#: Where the errors the library raises are defined (see the module docstring).
ERRORS: Final = REPO / "common" / "src" / "lxd_common" / "errors.py"

#: Charmhub's identifier of the library, assigned by ``charmcraft create-lib``.
#: Not registered yet: replace with the 32-hex-digit id Charmhub returns.
LIBID: Final = "NOT-REGISTERED-YET"
#: Major API version; a breaking change to the requirer's API raises it.
LIBAPI: Final = 0
#: Patch version; charmcraft refuses LIBAPI and LIBPATCH both zero, so it starts at 1.
LIBPATCH: Final = 4
#: charmcraft's content hash of the library LIBPATCH stands for (see "Bumping LIBPATCH").
LIBPATCH_CONTENT_SHA256: Final = "4e4f6057d64f33693b33f60ed0b865ea97e15e33ba44904d1e503e4515c601d2"

CHARM: Final = "lxd"
LIBNAME: Final = "lxd_https"
#: The import path charm authors use, and what ``charmcraft publish-lib`` takes.
MODULE: Final = f"charms.{CHARM}.v{LIBAPI}.{LIBNAME}"
_LIB_RELPATH: Final = Path("lib", "charms", CHARM, f"v{LIBAPI}", f"{LIBNAME}.py")

#: Every copy the generator writes: the published one, in the charm that
#: provides the interface (``charmcraft publish-lib`` reads it there), and the
#: one the integration tests' requirer charm vendors, as ``fetch-lib`` would.
TARGETS: Final = (
    REPO / "charms" / CHARM / _LIB_RELPATH,
    REPO / "tests" / "integration" / "charms" / "https-requirer" / _LIB_RELPATH,
)

_LIBID_FORMAT: Final = re.compile(r"^[0-9a-f]{32}$")
#: Lines charmcraft leaves out of a library's content hash.
_VERSION_LINE_PREFIXES: Final = (b"LIBAPI", b"LIBPATCH", b"LIBID")

_HEADER: Final = f"""\
This file is the Charmhub library ``{MODULE}`` of the ``{CHARM}`` charm.
Once it is on Charmhub, fetch it with ``charmcraft fetch-lib {MODULE}``;
until then copy it into your charm as ``{_LIB_RELPATH.as_posix()}``. It needs
only the standard library and ``ops`` (which every charm has), so it declares
no PYDEPS. Import it as::

    from {MODULE} import InterfaceError, LxdHttpsRequirer

It is generated by ``scripts/charm_libs.py`` in the LXD charms' repository
from ``common/src/lxd_common/interfaces/lxd_https.py``: change that module,
not this file.
"""

# Not annotated: charmcraft reads only plain assignments of constants. The
# comments are part of the content hash, so they do not depend on whether
# LIBID is registered yet.
_CONSTANTS: Final = f"""
# Charmhub's identifier of this library (`charmcraft create-lib`); never change it.
LIBID = "{LIBID}"

# Increment this major API version when introducing breaking changes.
LIBAPI = {LIBAPI}

# Increment this PATCH version before using `charmcraft publish-lib`, or reset
# it to 0 when raising LIBAPI (both are set in scripts/charm_libs.py).
LIBPATCH = {LIBPATCH}
"""


class GenerationError(Exception):
    """The source module no longer has the shape the generator relies on."""


@dataclass(frozen=True)
class Problem:
    """One reason ``--check`` fails, with what to do about it."""

    message: str


def libid_is_registered(libid: str = LIBID) -> bool:
    """True when ``libid`` looks like an identifier Charmhub assigned (32 hex digits)."""
    return bool(_LIBID_FORMAT.match(libid))


def content_hash(text: str) -> str:
    """The library's content hash as charmcraft computes it.

    The LIBID, LIBAPI and LIBPATCH lines are left out, and line endings are
    normalised, so the hash says whether the code changed, not the version.
    """
    hasher = hashlib.sha256()
    for line in text.encode("utf-8").splitlines(keepends=True):
        line = line.replace(b"\r\n", b"\n")
        if not line.startswith(_VERSION_LINE_PREFIXES):
            hasher.update(line)
    return hasher.hexdigest()


def _docstring_line(tree: ast.Module) -> int:
    """The 0-based line the module docstring opens on."""
    first = tree.body[0] if tree.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        raise GenerationError(f"{SOURCE} has no module docstring for the library header to join")
    return first.lineno - 1


def _last_import_line(tree: ast.Module) -> int:
    """The 0-based last line of the imports that open the module (after its docstring)."""
    last: int | None = None
    for node in tree.body[1:]:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            break
        last = node.end_lineno
    if last is None:
        raise GenerationError(f"{SOURCE} does not open with imports after its docstring")
    return last - 1


def _is_errors_import(node: ast.stmt) -> bool:
    """Whether ``node`` is ``from ..errors import ...`` (lxd_common's errors module)."""
    return isinstance(node, ast.ImportFrom) and node.level == 2 and node.module == "errors"


def _standalone_errors(tree: ast.Module, errors_source: str) -> str:
    """The classes ``tree`` imports from ``lxd_common.errors``, with builtin bases only.

    Raises:
        GenerationError: another import from lxd_common, or an error class the
            generator cannot copy (decorated, keyword bases, no builtin base left).
    """
    names: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if _is_errors_import(node):
            names += [alias.name for alias in node.names]
        elif node.level > 0 or (node.module or "").split(".")[0] == "lxd_common":
            raise GenerationError(
                f"{SOURCE} imports from lxd_common (line {node.lineno}); the library must "
                "stand alone: only `from ..errors import ...` can be inlined"
            )
    errors_tree = ast.parse(errors_source)
    classes = {n.name: n for n in errors_tree.body if isinstance(n, ast.ClassDef)}
    blocks: list[str] = []
    for name in names:
        cls = classes.get(name)
        if cls is None:
            raise GenerationError(f"{ERRORS} defines no class {name}")
        bases = [b.id for b in cls.bases if isinstance(b, ast.Name) and b.id in dir(builtins)]
        if cls.decorator_list or cls.keywords or not bases or cls.lineno != cls.body[0].lineno - 1:
            raise GenerationError(f"{ERRORS}: {name} cannot be copied into the library")
        body = errors_source.splitlines(keepends=True)[cls.lineno : cls.end_lineno]
        blocks.append(f"class {name}({', '.join(bases)}):\n" + "".join(body))
    return "\n\n".join(blocks)


def render(source: str, errors_source: str | None = None) -> str:
    """The library file for the common module's text ``source``.

    ``errors_source`` is the text of ``lxd_common/errors.py``, read when None.
    """
    tree = ast.parse(source)
    top_level = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    clash = top_level & {"LIBID", "LIBAPI", "LIBPATCH", "PYDEPS"}
    if clash:
        raise GenerationError(f"{SOURCE} assigns {sorted(clash)}, which the generator sets")
    lines = source.splitlines(keepends=True)
    doc_first = _docstring_line(tree)
    opening = lines[doc_first]
    if not opening.startswith('"""') or opening.rstrip("\n").endswith('"""'):
        raise GenerationError(
            f"{SOURCE}'s docstring must open with its summary on the first line "
            "and close on a later one"
        )
    after_imports = _last_import_line(tree) + 1
    errors = _standalone_errors(
        tree, ERRORS.read_text() if errors_source is None else errors_source
    )
    dropped = {
        line
        for node in tree.body
        if _is_errors_import(node) and node.end_lineno is not None
        for line in range(node.lineno - 1, node.end_lineno)
    }
    imports = [
        line
        for n, line in enumerate(lines[doc_first + 1 : after_imports], doc_first + 1)
        if n not in dropped
    ]
    while imports and not imports[-1].strip():  # the blank line that set our import apart
        imports.pop()
    return "".join(
        [
            *lines[:doc_first],
            opening,  # the summary line stays the library's summary
            "\n",
            _HEADER,
            *imports,
            _CONSTANTS,
            *(["\n\n", errors, "\n"] if errors else []),
            *lines[after_imports:],
        ]
    )


def generate() -> str:
    """The library, from the common module as it is in this checkout."""
    return render(SOURCE.read_text())


def check(wanted: str | None = None) -> list[Problem]:
    """What stops the committed library copies from being publishable as they are.

    A stale copy (the common module or this script changed since it was
    generated), and a content that changed without a new LIBPATCH.
    """
    wanted = generate() if wanted is None else wanted
    problems = [
        Problem(
            f"{path.relative_to(REPO)} is stale (it is generated from "
            f"{SOURCE.relative_to(REPO)}): run python scripts/charm_libs.py"
        )
        for path in TARGETS
        if not path.is_file() or path.read_text() != wanted
    ]
    digest = content_hash(wanted)
    if digest != LIBPATCH_CONTENT_SHA256:
        problems.append(
            Problem(
                f"the library's content changed since LIBPATCH {LIBPATCH} was assigned: "
                f"in scripts/charm_libs.py set LIBPATCH = {LIBPATCH + 1} and "
                f'LIBPATCH_CONTENT_SHA256 = "{digest}", then run python scripts/charm_libs.py'
            )
        )
    return problems


def libid_problem() -> Problem | None:
    """Why the library cannot be published yet, if LIBID is not registered."""
    if libid_is_registered():
        return None
    return Problem(
        f"LIBID is not registered yet ({LIBID!r}), so {MODULE} cannot be published: "
        f"register it with `charmcraft create-lib {LIBNAME}` (needs a Charmhub login that "
        f"owns the `{CHARM}` charm name; run it next to a copy of charms/{CHARM}/charmcraft.yaml, "
        "not in charms/lxd, where the library exists already), put the 32-hex-digit LIBID "
        "of the template it writes in LIBID in scripts/charm_libs.py, and run "
        "python scripts/charm_libs.py. "
        "(charmcraft 4.5 documents that Charmhub no longer registers new libraries; if "
        "create-lib refuses, charm authors copy the file instead.)"
    )


def main(argv: list[str] | None = None) -> int:
    """Write the library copies, or check them; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="scripts/charm_libs.py", description=(__doc__ or "").split("\n\n")[0]
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a copy is stale"
    )
    mode.add_argument(
        "--require-libid",
        action="store_true",
        help="exit 1 unless LIBID holds the identifier Charmhub assigned (before publishing)",
    )
    args = parser.parse_args(argv)
    try:
        wanted = generate()
    except (GenerationError, SyntaxError) as e:
        print(f"charm_libs: {e}", file=sys.stderr)
        return 1

    if args.require_libid:
        problem = libid_problem()
        if problem is not None:
            print(f"charm_libs: {problem.message}", file=sys.stderr)
            return 1
        print(f"{MODULE}: LIBID {LIBID}")
        return 0

    if not args.check:
        for path in TARGETS:
            if not path.is_file() or path.read_text() != wanted:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(wanted)
                print(f"wrote {path.relative_to(REPO)}")
    problems = check(wanted)
    for problem in problems:
        print(f"charm_libs: {problem.message}", file=sys.stderr)
    if not problems:
        print(f"{MODULE} {LIBAPI}.{LIBPATCH} is up to date")
    if not libid_is_registered():
        print(f"note: LIBID is not registered yet ({LIBID!r}): the library cannot be published")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
