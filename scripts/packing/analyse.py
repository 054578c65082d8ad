"""``charmcraft analyse`` on a built .charm, with no errors allowed.

Charmcraft 4.5's entrypoint linter reads the entrypoint from the last word
of ``dispatch``, but the dispatch script charmcraft 4.5 itself writes ends
with ``"${dispatch_path}/src/charm.py"``, which the linter takes literally:
it reports "Cannot find the entrypoint file: .../${dispatch_path}/src/charm.py"
for every charm charmcraft builds with a Python plugin, and, not finding
the entrypoint, cannot tell the language or the framework either.

That one error is recognised by its literal ``${dispatch_path}``; the charm
is then analysed a second time from a copy whose dispatch names the same
entrypoint relative to the charm's root, and that copy must pass the
entrypoint linter (exists, is a file, is executable),
so the check the first run could not make is still made. Every other error
fails the build.

The framework and ops-main-call linters look for ``venv/ops`` (where the
older ``charm`` plugin put packages); the uv plugin installs into
``venv/lib/python3.X/site-packages``, so they report "nonapplicable" for
every uv-built charm, ours included. tests/packing checks what they would
have: ops in the venv and an ``ops.main`` call in the entrypoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from scripts.packing import PackingError

SELF_INCONSISTENT = "${dispatch_path}"
MUST_PASS_ON_COPY = ("entrypoint",)


def run_charmcraft_analyse(charm: Path) -> list[dict[str, Any]]:
    """The JSON results of ``charmcraft analyse`` on one .charm file.

    Raises:
        PackingError: charmcraft cannot run or says nothing readable.
    """
    charmcraft = Path(sys.executable).parent / "charmcraft"
    cmd = [str(charmcraft) if charmcraft.exists() else "charmcraft"]
    cmd += ["analyse", "--format=json", str(charm)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        found = json.loads(result.stdout)
    except json.JSONDecodeError as e:
        raise PackingError(
            f"charmcraft analyse {charm.name} failed: {result.stderr.strip()}"
        ) from e
    return [dict(item) for item in found]


def errors_in(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results charmcraft reports as errors (``result: error``)."""
    return [r for r in results if r.get("result") == "error"]


def is_self_inconsistent(result: dict[str, Any]) -> bool:
    """True for charmcraft 4.5 failing to read its own dispatch template."""
    return result.get("name") == "entrypoint" and SELF_INCONSISTENT in str(result.get("text"))


def relative_dispatch(text: str) -> str:
    """The dispatch text with its last line naming the entrypoint from the charm's root."""
    lines = text.rstrip("\n").split("\n")
    lines[-1] = lines[-1].replace(f'"{SELF_INCONSISTENT}/', '"')
    return "\n".join(lines) + "\n"


def _copy_with_relative_dispatch(charm: Path, dest: Path) -> Path:
    copy = dest / charm.name
    with zipfile.ZipFile(charm) as source, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "dispatch":
                data = relative_dispatch(data.decode()).encode()
            out.writestr(info, data)
    return copy


def analyse(charm: Path) -> list[dict[str, Any]]:
    """Analyse a built charm; return every result charmcraft gave.

    Raises:
        PackingError: charmcraft reported an error, or the entrypoint checks
            fail on the copy with a relative dispatch.
    """
    results = run_charmcraft_analyse(charm)
    problems = [r for r in errors_in(results) if not is_self_inconsistent(r)]
    if len(problems) < len(errors_in(results)):
        with tempfile.TemporaryDirectory() as tmp:
            again = run_charmcraft_analyse(_copy_with_relative_dispatch(charm, Path(tmp)))
        by_name = {r["name"]: r for r in again}
        problems += errors_in(again)
        for name in MUST_PASS_ON_COPY:
            if by_name.get(name, {}).get("result") not in ("ok", "error"):  # errors: listed
                problems.append(by_name.get(name, {"name": name, "text": "not reported"}))
        results = again
    if problems:
        lines = "\n".join(f"  {p['name']}: {p.get('text')}" for p in problems)
        raise PackingError(f"charmcraft analyse {charm.name} found errors:\n{lines}")
    return results
