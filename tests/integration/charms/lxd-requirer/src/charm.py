#!/usr/bin/env python3
"""Test charm: asks the lxd-integrator for trust over `lxd`, and shows the answer.

This is the shape of a real requirer: the interface library sends the
certificates when the relation joins (and on `update`), and `nodes()`,
`is_trusted()` and `error()` read back the provider's answer. The
integration tests set the certificate (they keep its key, so they can then
connect to LXD as this client) and read the answer with the `nodes` action.
"""

from __future__ import annotations

import json
import logging

import ops

from lxd_charms_interfaces.lxd import InterfaceError, LxdRequirer, RequirerData

logger = logging.getLogger(__name__)


class LxdRequirerCharm(ops.CharmBase):
    """Sends the configured client certificate to the related lxd-integrator."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.problem = ""
        certificate = str(self.config.get("client-certificate") or "")
        certificates = [certificate] if certificate else []
        try:
            RequirerData.from_pems(certificates)
        except InterfaceError as e:
            # A bad certificate in config is the operator's to fix; keep
            # observing the relation with nothing to send meanwhile.
            self.problem = f"client-certificate: {e}"
            certificates = []
        self.lxd = LxdRequirer(self, "lxd", certificates=certificates)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.nodes_action, self._on_nodes)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        """A new certificate: send it (the provider trusts it and drops the old one)."""
        self.lxd.update()

    def _on_nodes(self, event: ops.ActionEvent) -> None:
        try:
            nodes = self.lxd.nodes()
            trusted = self.lxd.is_trusted()
            error = self.lxd.error() or ""
        except InterfaceError as e:
            event.fail(f"the integrator's answer does not follow lxd: {e}")
            return
        event.set_results(
            {
                "nodes": json.dumps([node.to_json() for node in nodes]),
                "trusted": str(trusted).lower(),
                "error": error,
            }
        )

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        if self.problem:
            event.add_status(ops.BlockedStatus(self.problem))
            return
        if not self.config.get("client-certificate"):
            event.add_status(ops.BlockedStatus("set client-certificate"))
            return
        if not self.model.relations["lxd"]:
            event.add_status(ops.BlockedStatus("relate to lxd-integrator:api"))
            return
        try:
            error = self.lxd.error()
            trusted = self.lxd.is_trusted()
            nodes = self.lxd.nodes()
        except InterfaceError as e:
            event.add_status(ops.BlockedStatus(f"bad answer from the integrator: {e}"))
            return
        if error:
            event.add_status(ops.BlockedStatus(f"refused: {error}"))
        elif trusted:
            event.add_status(ops.ActiveStatus(f"trusted on {len(nodes)} LXD node(s)"))
        else:
            event.add_status(ops.WaitingStatus("waiting for the integrator to trust us"))


if __name__ == "__main__":
    ops.main(LxdRequirerCharm)
