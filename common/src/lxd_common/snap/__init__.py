"""The LXD snap: install, refresh, snap config and sideloading, on charmlibs-snap.

The charm keeps LXD on the channel the operator chose, pushes the
`snap-config-*` keys into the snap's own configuration, and can swap in a
debug build of LXD (a bare `lxd` binary or a whole `.snap`) attached as a
Juju resource. `LxdSnap` does all of it through a `SnapBackend`: the real
snapd (`CharmlibsSnapBackend`, the default) or, in tests, a stand-in::

    lxd = LxdSnap()  # the real snapd, through charmlibs-snap
    lxd.ensure("5.21/stable")  # True when it installed or refreshed
    lxd.ensure("5.21/stable", cohort=True)  # a cluster member: in the `+` cohort
    lxd.refresh(None, cohort=True)  # the newest revision of the tracked channel
    lxd.set_hold(True)  # no automatic refreshes by snapd
    changed = lxd.set_config({"daemon-debug": True, "lxcfs-loadavg": None})
    live, needs_reboot = split_pending(changed)

    binary = select_resource(resource_path, "binary")  # None when detached
    if binary:
        lxd.install_debug_binary(binary)
    else:
        lxd.remove_debug_binary()

Errors (all from `lxd_common.errors`, all subclasses of `SnapError`):

- `SnapdUnavailableError`: snapd did not answer (timed out, connection lost or
  refused while it restarts). Nothing was refused: retry later.
- `SnapChannelError`: a malformed channel, or one the store has no release on.
- `SnapDowngradeError`: the channel would move LXD to an older track.
- `SnapConfigError`: an unknown snap config key, or a value of the wrong kind.
- `SideloadError`: a resource that cannot be used on this machine.
- `SnapError`: anything else snapd refused or failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxd_common._lazy import lazy_exports

if TYPE_CHECKING:
    from ._channel import AUTO_CHANNEL, RISKS, Channel, parse_channel
    from ._config import CHARM_CONFIG_PREFIX, CONFIG_KEYS, REBOOT_REQUIRED, snap_key, split_pending
    from ._lxd_snap import COHORT, LxdSnap
    from ._sideload import DEBUG_BINARY, machine_arch, select_resource
    from ._snapd import CharmlibsSnapBackend, InstalledSnap, SnapBackend

# Each name loads its private module on first use (PEP 562): a hook that never
# talks to LXD (or snapd) never pays for importing what does.
_HOMES: dict[str, str] = {
    "AUTO_CHANNEL": "._channel",
    "CHARM_CONFIG_PREFIX": "._config",
    "COHORT": "._lxd_snap",
    "CONFIG_KEYS": "._config",
    "Channel": "._channel",
    "CharmlibsSnapBackend": "._snapd",
    "DEBUG_BINARY": "._sideload",
    "InstalledSnap": "._snapd",
    "LxdSnap": "._lxd_snap",
    "REBOOT_REQUIRED": "._config",
    "RISKS": "._channel",
    "SnapBackend": "._snapd",
    "machine_arch": "._sideload",
    "parse_channel": "._channel",
    "select_resource": "._sideload",
    "snap_key": "._config",
    "split_pending": "._config",
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())

__all__ = [
    "AUTO_CHANNEL",
    "CHARM_CONFIG_PREFIX",
    "COHORT",
    "CONFIG_KEYS",
    "DEBUG_BINARY",
    "REBOOT_REQUIRED",
    "RISKS",
    "Channel",
    "CharmlibsSnapBackend",
    "InstalledSnap",
    "LxdSnap",
    "SnapBackend",
    "machine_arch",
    "parse_channel",
    "select_resource",
    "snap_key",
    "split_pending",
]
