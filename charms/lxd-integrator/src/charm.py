#!/usr/bin/env python3
"""Juju charm that lets related charms use the LXD cloud hosting the model.

This module only wires Juju events to handlers and decides the unit status;
the decisions live in the `lxd_integrator` package (no `ops`) and the LXD
work will live in `lxd_common`, shared with the lxd charm.

This is the skeleton: it reports whether LXD credentials are available, from
`juju trust` or from the fallback config, and does not yet connect to LXD or
answer on the `api` relation, so its status never claims a connection.
"""

from __future__ import annotations

import logging

import ops

from lxd_integrator.config import IntegratorConfig
from lxd_integrator.credentials import (
    CredentialsUnavailable,
    TrustedCloud,
    credential_source,
)

logger = logging.getLogger(__name__)


class LxdIntegratorCharm(ops.CharmBase):
    """Hands the model's LXD cloud to charms related on the `lxd` interface."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        framework.observe(self.on.install, self._on_install)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_install(self, _: ops.InstallEvent) -> None:
        """Nothing to install: the integrator only talks to an existing LXD."""
        logger.info("install: nothing to install; LXD is reached over its API")

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        """Re-check the credentials (not yet: logs which source would be used)."""
        try:
            source = credential_source(
                self._trusted_cloud(), self.load_config(IntegratorConfig), app_name=self.app.name
            )
        except CredentialsUnavailable as e:
            logger.info("config-changed: no LXD credentials yet: %s", e)
            return
        logger.info("config-changed: would connect with credentials from %s", source.value)

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        """Nothing to poll yet; status itself is decided in collect-status."""
        logger.debug("update-status: nothing to check yet")

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        """Decide the unit status, once per hook, from the available credentials.

        Missing credentials are operator-fixable (grant trust or set the
        fallback options), so they block with what to do. Having credentials
        is all that is known so far: the status says so and no more.
        """
        try:
            credential_source(
                self._trusted_cloud(), self.load_config(IntegratorConfig), app_name=self.app.name
            )
        except CredentialsUnavailable as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        event.add_status(ops.ActiveStatus("credentials available"))

    def _trusted_cloud(self) -> TrustedCloud | None:
        """The model's cloud spec from `juju trust`, or None if the charm is not trusted.

        Juju answers an untrusted charm's request with an error (ModelError),
        which is the normal state before `juju trust`, not a failure.
        """
        try:
            spec = self.model.get_cloud_spec()
        except ops.ModelError as e:
            logger.debug("no cloud spec (charm not trusted?): %s", e)
            return None
        attributes = spec.credential.attributes if spec.credential else {}
        return TrustedCloud(cloud_type=spec.type, endpoint=spec.endpoint, attributes=attributes)


if __name__ == "__main__":
    ops.main(LxdIntegratorCharm)
