"""Boot code for lxd-cloud-integrator hooks run by the unit-agent stand-in: a test's waits.

The integrator waits up to `lxd_integrator.connection.CONNECT_WAIT` for a
server and bounds a hook's LXD talk by `HOOK_DEADLINE`; a test that points
it at a closed port or a trickling server shortens them. In-process, the
test sets the module's names; a built charm's fresh process per hook cannot
be reached that way, so `UnitAgentRunner(boot=<this file>)` runs this at
interpreter start of every hook process, with `INTEGRATOR_AGENT_WAITS`
(JSON: name -> seconds) saying which to set. Nothing of this ships in the charm.
"""

from __future__ import annotations

import json
import os

WAITS_VARIABLE = "INTEGRATOR_AGENT_WAITS"


def main() -> None:
    """Set the waits the test asked for on the charm's connection module."""
    raw = os.environ.get(WAITS_VARIABLE)
    if not raw:
        return
    import lxd_integrator.connection as connection

    for name, seconds in json.loads(raw).items():
        if not hasattr(connection, name):
            raise AttributeError(f"lxd_integrator.connection has no {name}")
        setattr(connection, name, float(seconds))


if __name__ == "_boot":
    main()
