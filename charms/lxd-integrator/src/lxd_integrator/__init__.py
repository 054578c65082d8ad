"""The lxd-integrator charm's own logic, kept apart from `charm.py` and free of `ops`.

`charm.py` wires Juju events to handlers and decides the unit status; the
decisions themselves live here so they can be read and tested without Juju.

Modules:
    config: the charm's typed configuration (`IntegratorConfig`): the
        fallback LXD endpoint and certificates for when the charm is not trusted.
    credentials: which source of LXD credentials to use, `juju trust` or the
        fallback config, and whether what it holds is usable
        (`load_credentials` -> `Credentials`, endpoint normalised like Juju's
        `EnsureHTTPS`/`EnsureHostPort`); raises `CredentialsProblem` with an
        operator-facing message otherwise.
    connection: connecting to LXD with those credentials (`open_lxd`) and
        listing its members (`read_nodes`); raises `LxdConnectionProblem`
        when LXD is unreachable, presents the wrong certificate, or does not
        trust the client.
    registration: which requirer certificates LXD's trust store should hold,
        under which names (`EntryNames`), and getting it there
        (`plan_trust`, `apply_plan`, `trusted_by_relation`).

The relation data models (`lxd` interface) live in
`lxd_common.interfaces.lxd`, shared with requirer charms.

The package is named `lxd_integrator` (not `charm` or `config`) because both
charms' `src/` directories end up on `sys.path` together in the tests, so
every top-level name here must be unique across the repository.
"""
