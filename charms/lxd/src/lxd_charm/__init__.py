"""The LXD charm's own logic, kept apart from `charm.py`.

`charm.py` only wires Juju events to handlers and decides the unit status.
Everything the handlers do lives here, split by who the code talks to:

- The machine (snap, LXD, kernel, files) is acted on by modules that do not
  import `ops`, so their rules can be read and tested without Juju. They
  take plain data (the typed options, resource paths, bound addresses) and
  the `Host`, and raise `outcomes.BlockedError` or `outcomes.WaitingError`
  when they cannot finish.
- Protocol decisions are pure functions over databags (`cluster` is the
  model), tested without Juju or LXD.
- Each relation has one class that carries its protocol out with Juju for
  one hook (`cluster_peer.ClusterPeer`, `https_relation.HttpsRelation`).
  `charm.py` builds it with what it needs (the charm for the model, the
  `machine.Machine` for LXD and the unit's memory) and calls it from the
  handler; it acts, and returns what the status needs (its problems, a
  summary) instead of calling back into the charm or setting a status. New
  relations follow the same pattern.
- What a unit remembers across hooks is `memory.Memory`, one typed record;
  everything else is worked out each hook from LXD and Juju.

The package is named `lxd_charm` (not `charm` or `config`) because both
charms' `src/` directories end up on `sys.path` together in the tests, so
every top-level name here must be unique across the repository.
"""
