#!/usr/bin/env python3
"""Juju charm for LXD, standalone or clustered.

This module only wires Juju events to handlers and decides the unit status;
the logic lives in the `lxd_charm` package (charm-specific, no `ops`) and in
`lxd_common` (shared with the lxd-integrator charm).

This is the skeleton: the handlers log what they will do once the snap, LXD
and cluster features land, and the status reports only what is actually
known (whether the configuration is usable), never a workload that is not
running.
"""

from __future__ import annotations

import logging

import ops

from lxd_charm.config import LxdConfig

logger = logging.getLogger(__name__)


class LxdCharm(ops.CharmBase):
    """Deploys LXD on a machine, as an independent server or a cluster member."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        framework.observe(self.on.install, self._on_install)
        framework.observe(self.on.start, self._on_start)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_install(self, _: ops.InstallEvent) -> None:
        """Install LXD (not yet: logs the intent)."""
        config = self._config()
        if config is None:
            return
        logger.info("install: LXD snap from %s (not implemented yet)", config.snap_channel)

    def _on_start(self, _: ops.StartEvent) -> None:
        """Initialise LXD for the configured mode (not yet: logs the intent)."""
        config = self._config()
        if config is None:
            return
        logger.info("start: initialise LXD in %s mode (not implemented yet)", config.mode)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        """Apply the live-updatable options (not yet: logs the intent)."""
        config = self._config()
        if config is None:
            return
        logger.info(
            "config-changed: apply mode=%s snap-channel=%s (not implemented yet)",
            config.mode,
            config.snap_channel,
        )

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        """Nothing to poll yet; status itself is decided in collect-status."""
        logger.debug("update-status: nothing to check yet")

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        """Decide the unit status, once per hook, from the current configuration.

        Bad configuration is operator-fixable, so it blocks with a message
        saying what to set; otherwise the status names the mode in use.
        """
        try:
            config = self.load_config(LxdConfig)
        except ValueError as e:
            event.add_status(ops.BlockedStatus(str(e)))
            return
        event.add_status(ops.ActiveStatus(f"{config.mode} mode"))

    def _config(self) -> LxdConfig | None:
        """Load the typed config, or log and return None if it is invalid.

        Handlers skip their work on invalid config rather than fail the hook:
        the operator has to fix it, a retry would not help, and
        collect-status reports the problem as the blocked status.
        """
        try:
            return self.load_config(LxdConfig)
        except ValueError as e:
            logger.warning("invalid config, doing nothing until it is fixed: %s", e)
            return None


if __name__ == "__main__":
    ops.main(LxdCharm)
