"""The LXD charm's own logic, kept apart from `charm.py` and free of `ops`.

`charm.py` only wires Juju events to handlers and decides the unit status;
what those handlers need to know (is this configuration valid? what should
be done about it?) lives here in small modules that can be read and tested
without Juju.

Modules:
    config: the charm's typed configuration (`LxdConfig`), loaded by the charm
        with `self.load_config(LxdConfig)`; raises `ValueError` with an
        operator-facing message when an option has a value the charm cannot use.

The package is named `lxd_charm` (not `charm` or `config`) because both
charms' `src/` directories end up on `sys.path` together in the tests, so
every top-level name here must be unique across the repository.
"""
