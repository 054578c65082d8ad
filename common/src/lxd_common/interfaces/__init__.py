"""Typed relation data for the interfaces the LXD charms speak.

The interfaces' models, schemas and requirer classes are published on PyPI
as ``lxd-charms-interfaces`` (import ``lxd_charms_interfaces``, which needs
only ``ops``), so charms outside this repository use the same code. These
modules re-export them for the charms here:

- :mod:`lxd_common.interfaces.lxd`: the ``lxd`` interface of the
  lxd-integrator's ``api`` endpoint; `LxdRequirer`. Its `RequirerData`
  parses certificates with ``cryptography`` (the provider registers them).
- :mod:`lxd_common.interfaces.lxd_https`: the ``lxd-https`` interface of the
  LXD charm's ``https`` endpoint; `LxdHttpsRequirer`.

Nothing is imported here, so a charm only loads the interface it uses.
Relation data that does not follow an interface raises
``lxd_common.errors.InterfaceError``, which is
``lxd_charms_interfaces.InterfaceError`` (a ``ValueError``); each module
re-exports it.
"""
