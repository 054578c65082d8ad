"""Write constraints.txt with the interface tier's overrides, for `tox -e interfaces`.

constraints.txt is the one place for pins. The interface tier needs two of
them different (see the ``#   interfaces: NAME==VERSION`` lines there and
why); pip refuses two pins for one package, so this writes a copy with
those pins replaced, which that env installs with.

Usage: python scripts/interface_constraints.py OUTPUT
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"
_OVERRIDE = re.compile(r"^#\s+interfaces:\s+(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)\s*$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def interface_constraints(text: str) -> str:
    """``text`` (constraints.txt) with each ``interfaces:`` override applied.

    Raises:
        ValueError: an override names a package constraints.txt does not pin.
    """
    lines = text.splitlines()
    overrides = {
        _normal(m["name"]): f"{m['name']}=={m['version']}"
        for m in map(_OVERRIDE.match, lines)
        if m
    }
    out, replaced = [], set()
    for line in lines:
        pin = _PIN.match(line)
        name = _normal(pin["name"]) if pin else ""
        if name in overrides:
            out.append(overrides[name])
            replaced.add(name)
        else:
            out.append(line)
    missing = set(overrides) - replaced
    if missing:
        raise ValueError(
            f"interfaces overrides for unpinned packages: {', '.join(sorted(missing))}"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(interface_constraints(CONSTRAINTS.read_text()))
