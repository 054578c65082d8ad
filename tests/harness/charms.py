"""Import each charm's `src/charm.py` under its own name, for tests and the demo.

Both charms have a `src/charm.py`, so neither can be imported as plain
`charm` without the other shadowing it. `load_charm_module` imports each file
under its own module name instead. Each charm's `src/` directory also goes on
`sys.path`, so the charms' helper packages (`lxd_charm`, `lxd_integrator`)
import as they do in a packed charm.

Scenario finds a charm's charmcraft.yaml from the file that defines the charm
class (`<charm dir>/src/charm.py` -> `<charm dir>/charmcraft.yaml`), so
callers need not pass `charm_root` (with it, Scenario would write
metadata.yaml, config.yaml and actions.yaml into the real charm directory).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARM_DIRS: dict[str, Path] = {
    "lxd": REPO_ROOT / "charms" / "lxd",
    "lxd-integrator": REPO_ROOT / "charms" / "lxd-integrator",
}

for _charm_dir in CHARM_DIRS.values():
    _src = str(_charm_dir / "src")
    if _src not in sys.path:
        sys.path.insert(0, _src)


def load_charm_module(charm: str) -> ModuleType:
    """Import `charms/<charm>/src/charm.py` as the module `<charm>_charm_main`.

    The module is registered in `sys.modules`, which Scenario needs to find
    the charm's source file (and so its charmcraft.yaml); importing it again
    returns the same module.

    Args:
        charm: the charm's directory name under `charms/`, e.g. `lxd-integrator`.

    Returns:
        The imported module.
    """
    name = f"{charm.replace('-', '_')}_charm_main"
    if name in sys.modules:
        return sys.modules[name]
    path = CHARM_DIRS[charm] / "src" / "charm.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


BUILT_CHARMS: dict[str, str] = {
    "lxd": "lxd-host_*.charm",
    "lxd-integrator": "lxd-cloud-integrator_*.charm",
}
"""The files `tox -e pack` writes next to each charm's charmcraft.yaml."""

PACK_COMMAND = "tox -e pack"

IN_PROCESS_VARIABLE = "LXD_CHARM_TESTS_IN_PROCESS"
"""Set to 1 to run the functional tier's charms in the test process (ops.testing), to debug."""


def run_in_process() -> bool:
    """Whether the functional tier runs the charms in-process instead of the built `.charm`."""
    return os.environ.get(IN_PROCESS_VARIABLE, "").strip() not in ("", "0")


def built_charm(charm: str) -> Path | None:
    """The packed `.charm` of `charms/<charm>`, or None when `tox -e pack` has not built it."""
    found = sorted(CHARM_DIRS[charm].glob(BUILT_CHARMS[charm]))
    return found[-1] if found else None


def missing_charm_message(charm: str) -> str:
    """The one line that says what to run when a charm is not built."""
    return (
        f"no charms/{charm}/{BUILT_CHARMS[charm]}: run `{PACK_COMMAND}` first "
        f"(or set {IN_PROCESS_VARIABLE}=1 to run the charm in-process)"
    )
