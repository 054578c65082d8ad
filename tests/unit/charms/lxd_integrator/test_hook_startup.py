"""What importing the integrator costs every hook: nothing beyond ops and its own config.

Juju starts a fresh process for every hook; the LXD client stack, cryptography
and the trust planning are imported by the handlers that reach LXD.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
HEAVY = (
    "pylxd",
    "requests",
    "cryptography",
    "tenacity",
    "lxd_integrator.connection",
    "lxd_integrator.credentials",
    "lxd_integrator.registration",
)


def loaded_after(code: str) -> list[str]:
    report = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    path = [REPO / "charms/lxd-integrator/src", REPO / "common/src", REPO]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\n{report}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_integrator_loads_nothing_heavy() -> None:
    assert loaded_after("import charm") == []


def test_the_probe_sees_what_a_reconcile_imports() -> None:
    assert "pylxd" in loaded_after("import charm\nimport lxd_integrator.connection")
