"""Typed relation data for the interfaces the LXD charms speak.

One module per interface, each with the databag models both sides share
(``to_databag`` / ``from_databag``), the JSON schemas that
``docs/interfaces/<interface>.md`` embeds and the tests validate against, and
a requirer class for charms that consume the interface:

- :mod:`lxd_common.interfaces.lxd`: the ``lxd`` interface of the
  lxd-integrator's ``api`` endpoint (cluster members' endpoints, client
  certificates registered in LXD's trust store); `LxdRequirer`.
- :mod:`lxd_common.interfaces.lxd_https`: the ``lxd-https`` interface of the
  LXD charm's ``https`` endpoint; `LxdHttpsRequirer`.

Nothing is imported here, so a charm only loads the interface it uses.
Relation data that does not follow an interface raises
``lxd_common.errors.InterfaceError`` (a ``ValueError``) naming the field at
fault; each module re-exports it.
"""
