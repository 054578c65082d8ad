"""The LXD snap's config keys: the charm's names for them, their values, reboot needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lxd_common.errors import SnapConfigError

CONFIG_KEYS: dict[str, str] = {
    "ceph-builtin": "ceph.builtin",
    "ceph-external": "ceph.external",
    "criu-enable": "criu.enable",
    "daemon-debug": "daemon.debug",
    "daemon-group": "daemon.group",
    "daemon-syslog": "daemon.syslog",
    "lvm-external": "lvm.external",
    "lxcfs-cfs": "lxcfs.cfs",
    "lxcfs-debug": "lxcfs.debug",
    "lxcfs-loadavg": "lxcfs.loadavg",
    "lxcfs-pidfd": "lxcfs.pidfd",
    "openvswitch-builtin": "openvswitch.builtin",
    "openvswitch-external": "openvswitch.external",
    "ovn-builtin": "ovn.builtin",
    "shiftfs-enable": "shiftfs.enable",
    "ui-enable": "ui.enable",
}
"""Charm config-key suffix (after `snap-config-`) to the LXD snap's config key."""

REBOOT_REQUIRED: frozenset[str] = frozenset(
    k for k in CONFIG_KEYS.values() if k.startswith("lxcfs.")
)
"""Snap keys that only take effect after a reboot: LXCFS serves every running container's
/proc, so restarting it to pick up new options would break them all."""

CHARM_CONFIG_PREFIX = "snap-config-"

SNAP_KEYS = frozenset(CONFIG_KEYS.values())
_STRING_KEYS = frozenset({"daemon.group", "shiftfs.enable"})
_BOOL_VALUES = frozenset({"true", "false"})


def snap_key(key: str) -> str:
    """The snap's config key for any of the names a caller may use.

    Accepts the snap key itself (`lxcfs.cfs`), the charm config suffix (`lxcfs-cfs`) or
    the whole charm config key (`snap-config-lxcfs-cfs`), so a charm can pass its config
    through without renaming it.

    Raises:
        SnapConfigError: the key is none of the LXD snap keys this charm manages.
    """
    if key in SNAP_KEYS:
        return key
    suffix = key.removeprefix(CHARM_CONFIG_PREFIX)
    if suffix in CONFIG_KEYS:
        return CONFIG_KEYS[suffix]
    raise SnapConfigError(
        f"unknown snap config key {key!r}; known keys: {', '.join(sorted(CONFIG_KEYS))}"
    )


def split_pending(changes: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split config keys into those LXD applies live and those that need a reboot.

    Args:
        changes: config keys in any form `snap_key` accepts (e.g. what `set_config`
            returned, or the keys of a desired change).

    Returns:
        `(live, needs_reboot)`, each in input order and spelling.

    Raises:
        SnapConfigError: a key is unknown.
    """
    live: list[str] = []
    needs_reboot: list[str] = []
    for key in changes:
        (needs_reboot if snap_key(key) in REBOOT_REQUIRED else live).append(key)
    return live, needs_reboot


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten snapd's nesting of dotted keys (`{"ceph": {"builtin": true}}`) to compare keys."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def as_config_string(value: Any) -> str:
    """Render a value as the snap's hooks see it: snapd may hold `true` as JSON or a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def desired_value(key: str, value: bool | str | None) -> str | None:
    """The string the snap gets for `value`, or None to unset the key.

    An empty string unsets too: it is what Juju gives for a string option the operator
    cleared, and the snap treats an empty key as a bad value, not as its default.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        raise SnapConfigError(
            f"snap config {key!r} takes a boolean or a string, not {type(value).__name__}"
        )
    if value == "":
        return None
    if key not in _STRING_KEYS and value.lower() not in _BOOL_VALUES:
        raise SnapConfigError(f"snap config {key!r} takes true or false, not {value!r}")
    return value if key in _STRING_KEYS else value.lower()
