"""LXD project names as operators type them: in action parameters and in options.

Checked against the characters LXD refuses in a project name, so that a
typo fails with a precise message where it was typed, not later as
"project does not exist".
"""

from __future__ import annotations

import re
from typing import Final

# What LXD itself refuses in a project name (captured from LXD 5.0's
# `lxc project create` and API answers): slashes, spaces, underscores, quotes,
# and the reserved names below. Other whitespace and control characters are
# refused too: no one means them, and they would make the entry unreadable.
_BAD_CHARS: Final = re.compile(r"[/_'\"\s\x00-\x1f\x7f]")
_RESERVED: Final = frozenset({"*", ".", ".."})

RULES: Final = (
    "LXD project names cannot contain slashes, spaces, underscores or quotes, nor be "
    "'*', '.' or '..'"
)


def invalid(name: str) -> bool:
    """Whether LXD would refuse ``name`` as a project name."""
    return bool(_BAD_CHARS.search(name)) or name in _RESERVED


def split(text: str) -> tuple[list[str], list[str]]:
    """Comma-separated names, without blanks or repeats: (valid names in order, invalid ones)."""
    names: list[str] = []
    bad: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name or name in names or name in bad:
            continue
        (bad if invalid(name) else names).append(name)
    return names, bad
