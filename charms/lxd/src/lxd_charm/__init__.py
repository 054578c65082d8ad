"""The LXD charm's own logic, kept apart from `charm.py`.

`charm.py` only wires Juju events to handlers and decides the unit status;
what those handlers do lives here in small modules with one job each. Most
are free of `ops`, so their rules can be read and tested without Juju; the
two relation modules are the exception, because carrying out a relation
protocol is mostly talking to Juju.

Modules:
    config: the typed configuration (`LxdConfig`); `ValueError` with an
        operator-facing message for an option the charm cannot use.
    host: the machine (snap, LXD socket, kernel), behind one seam for tests.
    outcomes: `BlockedError` / `WaitingError`, how a step says it cannot finish.
    initialise, listeners, pending: first preseed, network listeners on bound
        spaces, snap config waiting for a reboot.
    cluster: the `cluster` peer protocol's decisions (pure functions).
    cluster_join: joining, retried while LXD serialises joins.
    cluster_peer: the protocol carried out with Juju and LXD (uses `ops`).
    https_provider: trusting one requiring unit's certificate.
    https_relation: the `https` relations carried out with Juju (uses `ops`).
    actions: the charm's actions.

The package is named `lxd_charm` (not `charm` or `config`) because both
charms' `src/` directories end up on `sys.path` together in the tests, so
every top-level name here must be unique across the repository.
"""
