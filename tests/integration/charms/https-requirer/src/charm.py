#!/usr/bin/env python3
"""Test charm: asks the LXD charm for trust over `lxd-https`, and shows the answer.

This is the shape of a real requirer outside this repository: its only
dependencies are `ops` and the interface's PyPI package,
`lxd-charms-interfaces` (see pyproject.toml), not `lxd_common`; the packing
tests check that its venv holds nothing else. The library sends the
certificate and projects on every relation event, and `servers()` reads back
where to connect. The integration tests set the certificate (they keep its
key, so they can then connect to LXD as this client) and read the answer
with the `servers` action.
"""

from __future__ import annotations

import json
import logging

import ops

from lxd_charms_interfaces.lxd_https import InterfaceError, LxdHttpsRequirer

logger = logging.getLogger(__name__)


class HttpsRequirerCharm(ops.CharmBase):
    """Sends the configured client certificate to the related LXD."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = LxdHttpsRequirer(
            self,
            "lxd",
            certificate=str(self.config.get("client-certificate") or ""),
            projects=self._projects(),
        )
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.servers_action, self._on_servers)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        """A new certificate or projects: send them (the provider replaces the old entry)."""
        self.lxd.update()

    def _on_servers(self, event: ops.ActionEvent) -> None:
        try:
            servers = self.lxd.servers()
        except InterfaceError as e:
            event.fail(f"the LXD charm's answer does not follow lxd-https: {e}")
            return
        event.set_results(
            {
                "servers": json.dumps(
                    [
                        {
                            "addresses": list(server.addresses),
                            "certificate": server.certificate,
                            "certificate-fingerprint": server.certificate_fingerprint,
                            "version": server.version,
                        }
                        for server in servers
                    ]
                )
            }
        )

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        if not self.config.get("client-certificate"):
            event.add_status(ops.BlockedStatus("set client-certificate"))
            return
        if not self.model.relations["lxd"]:
            event.add_status(ops.BlockedStatus("relate to lxd:https"))
            return
        try:
            servers = self.lxd.servers()
        except InterfaceError as e:
            event.add_status(ops.BlockedStatus(f"bad answer from LXD: {e}"))
            return
        addresses = sorted({a for server in servers for a in server.addresses})
        if not addresses:
            event.add_status(ops.WaitingStatus("waiting for LXD's addresses"))
            return
        event.add_status(ops.ActiveStatus(f"LXD at {','.join(addresses)}"))

    def _projects(self) -> list[str] | None:
        """None (unset) asks for unrestricted access; "" for no project at all."""
        projects = self.config.get("projects")
        if projects is None:
            return None
        return [p.strip() for p in str(projects).split(",") if p.strip()]


if __name__ == "__main__":
    ops.main(HttpsRequirerCharm)
