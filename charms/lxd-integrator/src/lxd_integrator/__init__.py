"""The lxd-integrator charm's own logic, kept apart from `charm.py` and free of `ops`.

`charm.py` wires Juju events to handlers and decides the unit status; the
decisions themselves live here so they can be read and tested without Juju.

Modules:
    config: the charm's typed configuration (`IntegratorConfig`): the
        fallback LXD endpoint and certificates for when the charm is not trusted.
    credentials: which source of LXD credentials to use, `juju trust` or the
        fallback config (`credential_source`); raises `CredentialsUnavailable`
        with an operator-facing message when neither is usable.

The package is named `lxd_integrator` (not `charm` or `config`) because both
charms' `src/` directories end up on `sys.path` together in the tests, so
every top-level name here must be unique across the repository.
"""
