"""The lxd-integrator charm's own logic, kept apart from `charm.py` and free of `ops`.

`charm.py` wires Juju events to handlers and decides the unit status; the
decisions live here so they can be read and tested without Juju. They are
split by the question each answers: which credentials to use and whether
they are usable, how to reach LXD with them, and which requirer
certificates LXD's trust store should hold. Each raises its own problem
type with an operator-facing message, which `charm.py` turns into a status.

The relation data models (`lxd` interface) live in
`lxd_common.interfaces.lxd`, shared with requirer charms.

The package is named `lxd_integrator` (not `charm` or `config`) because both
charms' `src/` directories end up on `sys.path` together in the tests, so
every top-level name here must be unique across the repository.
"""
