"""Write each charm's config options and actions into README.md, from charmcraft.yaml.

The README tables are generated, never edited by hand, so they cannot drift
from the metadata Juju reads: `python scripts/charm_docs.py` rewrites them,
and a unit test fails when they are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CHARMS = ("lxd", "lxd-integrator")


def _cell(text: object) -> str:
    """One table cell: the first paragraph, on one line, pipes escaped."""
    paragraph = str(text or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split()).replace("|", "\\|")


def _default(option: dict[str, Any]) -> str:
    if "default" not in option:
        return "(unset)"
    value = option["default"]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != "" else '`""`'


def tables(charm: str) -> str:
    """Markdown for one charm: its config options, then its actions."""
    meta = yaml.safe_load((REPO / "charms" / charm / "charmcraft.yaml").read_text())
    lines = ["| option | type | default | description |", "| --- | --- | --- | --- |"]
    for name, option in sorted((meta.get("config") or {}).get("options", {}).items()):
        description = _cell(option.get("description"))
        lines.append(f"| `{name}` | {option['type']} | {_default(option)} | {description} |")
    actions = meta.get("actions") or {}
    if actions:
        lines += ["", "| action | parameters | description |", "| --- | --- | --- |"]
        for name, action in actions.items():
            required = set(action.get("required") or [])
            params = ", ".join(
                f"`{p}`" + ("" if p in required else "?") for p in (action.get("params") or {})
            )
            lines.append(f"| `{name}` | {params or '-'} | {_cell(action.get('description'))} |")
    return "\n".join(lines)


def render(readme: str) -> str:
    """The README with every generated section brought up to date."""
    for charm in CHARMS:
        begin, end = f"<!-- BEGIN {charm} options -->", f"<!-- END {charm} options -->"
        if begin not in readme:
            continue
        head, _, rest = readme.partition(begin)
        _, _, tail = rest.partition(end)
        readme = f"{head}{begin}\n{tables(charm)}\n{end}{tail}"
    return readme


def main() -> int:
    """Rewrite README.md, or with --check say whether it is up to date."""
    current = README.read_text()
    wanted = render(current)
    if "--check" in sys.argv[1:]:
        if current != wanted:
            print("README.md tables are stale: run python scripts/charm_docs.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
