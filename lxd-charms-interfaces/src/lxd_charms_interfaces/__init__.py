"""Requirer libraries for the relation interfaces of the LXD charms.

The charms are lxd-host and lxd-cloud-integrator.

Install it (``pip install lxd-charms-interfaces``, or list
``lxd-charms-interfaces`` in your charm's ``pyproject.toml``); it needs
nothing but ``ops``. One module per interface, imported by name, so a charm
loads only the interface it uses:

- `lxd_charms_interfaces.lxd_https`: the ``lxd-https`` interface of the
  lxd-host charm's ``https`` endpoint. `LxdHttpsRequirer` sends your client
  certificate (and the projects you want) and reads back the addresses and
  server certificate of each related LXD::

      from lxd_charms_interfaces.lxd_https import LxdHttpsRequirer

      self.lxd = LxdHttpsRequirer(self, "lxd", certificate=cert_pem, projects=["ci"])
      for server in self.lxd.servers():
          connect(server.addresses, server.certificate)

- `lxd_charms_interfaces.lxd`: the ``lxd`` interface of the
  lxd-cloud-integrator's ``api`` endpoint. `LxdRequirer` sends your client
  certificates and reads back every cluster member's endpoint and whether
  LXD trusts them yet::

      from lxd_charms_interfaces.lxd import LxdRequirer

      self.lxd = LxdRequirer(self, "lxd", certificates=[cert_pem])
      if self.lxd.is_trusted():
          for node in self.lxd.nodes():
              connect(node.endpoint, cert_pem, key_pem)

Both modules also hold the databag models both sides share (``to_databag``
/ ``from_databag``) and the JSON schemas of each side's databag.

Errors: relation data that does not follow an interface (or a bad argument,
such as a private key given as the certificate) raises `InterfaceError`, a
`ValueError` whose message names the field and never holds certificate text.
Nothing else is raised on purpose.

The interfaces are versioned by their wire ``version`` field: this release
speaks version 1 (``"1.0"``) of both, and reads any ``1.x``.
"""

from __future__ import annotations

from ._errors import InterfaceError

__all__ = ["InterfaceError", "__version__"]

__version__ = "1.0.0"
