"""The LXD charm's configuration as a typed, validated object.

The charm loads it with `self.load_config(LxdConfig)`, which passes each Juju
option as a keyword argument (dashes turned into underscores). Validation
happens at construction, so code that holds an `LxdConfig` can trust it.
Invalid values raise `ValueError` whose message tells the operator what to
set, because the charm shows that message as its blocked status.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal, get_args

from lxd_common import projects
from lxd_common.errors import PreseedError, SnapChannelError
from lxd_common.lxd import parse_preseed
from lxd_common.snap import AUTO_CHANNEL, CONFIG_KEYS, parse_channel

Mode = Literal["standalone", "cluster"]
"""How the units of the application relate: independent servers, or one cluster."""

MODES: Final[tuple[str, ...]] = get_args(Mode)
STORAGE_DRIVERS: Final = ("dir", "btrfs", "lvm", "zfs")
LISTENERS: Final = ("https", "bgp", "dns", "metrics")
DEFAULT_STORAGE_DRIVER: Final = "dir"
DEFAULT_NETWORK: Final = "lxdbr0"
SNAP_POLICIES: Final = ("auto", "true", "false")
"""`snap-cohort` and `snap-hold`: `auto` is on in cluster mode and off standalone."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LxdConfig:
    """Every charm option, typed.

    Defaults mirror charmcraft.yaml so the class can be built on its own in
    tests. `snap-config-*` options have no default in charmcraft.yaml: unset
    (None) means "leave the snap's own default alone". The exception is
    `snap-config-ovn-builtin` and `snap-config-ceph-builtin`, true by default,
    and `snap-config-ui-enable`, false by default, as in the charm our users
    switch from (the OVN and Ceph relations need the builtin tools).

    `lxd-init-storage` and `lxd-init-network` are booleans (create the
    default pool / bridge, or not) with the type, default and meaning they
    have in the charm operators switch from, so its bundles deploy and
    `juju refresh --switch` keeps their values; what to create is named by
    `lxd-init-storage-driver` and `lxd-init-network-bridge`
    (`storage_driver` and `network_bridge` combine the two).
    """

    mode: Mode = "standalone"
    snap_channel: str = AUTO_CHANNEL
    snap_cohort: str = "auto"
    snap_hold: str = "auto"
    lxd_preseed: str = ""
    lxd_init_storage: bool = True
    lxd_init_storage_driver: str = DEFAULT_STORAGE_DRIVER
    lxd_init_network: bool = True
    lxd_init_network_bridge: str = DEFAULT_NETWORK
    https_allowed_projects: str = ""
    lxd_listen_https: bool = False
    lxd_listen_bgp: bool = False
    lxd_listen_dns: bool = False
    lxd_listen_metrics: bool = False
    sysctl_tuning: bool = True
    kernel_hardening: bool = True
    snap_config_ceph_builtin: bool | None = True
    snap_config_ceph_external: bool | None = None
    snap_config_criu_enable: bool | None = None
    snap_config_daemon_debug: bool | None = None
    snap_config_daemon_group: str | None = None
    snap_config_daemon_syslog: bool | None = None
    snap_config_lvm_external: bool | None = None
    snap_config_lxcfs_cfs: bool | None = None
    snap_config_lxcfs_debug: bool | None = None
    snap_config_lxcfs_loadavg: bool | None = None
    snap_config_lxcfs_pidfd: bool | None = None
    snap_config_openvswitch_builtin: bool | None = None
    snap_config_openvswitch_external: bool | None = None
    snap_config_ovn_builtin: bool | None = True
    snap_config_shiftfs_enable: str | None = None
    snap_config_ui_enable: bool | None = False
    ceph_create_pool: bool = False
    ceph_rbd_pool: str = "lxd"
    ceph_rbd_replicas: int = 3

    def __post_init__(self) -> None:
        """Reject values the charm cannot act on, with a message saying what to fix.

        Raises:
            ValueError: an option has a value the charm cannot use.
        """
        if self.mode not in MODES:
            raise ValueError(f"invalid mode {self.mode!r}: set mode to standalone or cluster")
        try:
            if self.snap_channel != AUTO_CHANNEL:
                parse_channel(self.snap_channel)
        except SnapChannelError as e:
            raise ValueError(f"invalid snap-channel: {e} (or `auto`)") from None
        for option in ("snap_cohort", "snap_hold"):
            if getattr(self, option) not in SNAP_POLICIES:
                raise ValueError(
                    f"invalid {option.replace('_', '-')} {getattr(self, option)!r}: set auto "
                    "(on in cluster mode, off standalone), true or false"
                )
        if self.lxd_preseed.strip():
            try:
                parse_preseed(self.lxd_preseed)
            except PreseedError as e:
                raise ValueError(f"invalid lxd-preseed: {e}") from None
        if self.lxd_init_storage_driver not in STORAGE_DRIVERS:
            raise ValueError(
                f"invalid lxd-init-storage-driver {self.lxd_init_storage_driver!r}: set one of "
                f"{', '.join(STORAGE_DRIVERS)} (lxd-init-storage=false: no storage pool)"
            )
        _, bad = projects.split(self.https_allowed_projects)
        if bad:
            raise ValueError(
                f"invalid https-allowed-projects: {bad[0]!r} is not a project name "
                f"({projects.RULES}); give comma-separated names, e.g. ci,staging"
            )
        bridge = self.lxd_init_network_bridge
        if not bridge or len(bridge) > 15 or not bridge.replace("-", "").isalnum():
            raise ValueError(
                f"invalid lxd-init-network-bridge {bridge!r}: use an interface name of up to "
                "15 letters, digits or dashes (lxd-init-network=false: no network)"
            )

        pool = self.ceph_rbd_pool
        if not pool or len(pool) > 63 or not pool.replace("-", "").replace("_", "").isalnum():
            raise ValueError(
                f"invalid ceph-rbd-pool {pool!r}: use up to 63 letters, digits, dashes "
                "or underscores"
            )
        if self.ceph_rbd_replicas < 1:
            raise ValueError(f"invalid ceph-rbd-replicas {self.ceph_rbd_replicas}: set 1 or more")

    @property
    def storage_driver(self) -> str:
        """The driver of the pool to create at initialisation; "" for none."""
        return self.lxd_init_storage_driver if self.lxd_init_storage else ""

    @property
    def network_bridge(self) -> str:
        """The bridge to create at initialisation; "" for none."""
        return self.lxd_init_network_bridge if self.lxd_init_network else ""

    def snap_in_cohort(self) -> bool:
        """Whether LXD installs and refreshes in the `+` cohort (`snap-cohort`)."""
        return self._policy(self.snap_cohort)

    def snap_leaves_cohort(self) -> bool:
        """Whether a refresh leaves the cohort: only when `snap-cohort` says false outright."""
        return self.snap_cohort == "false"

    def snap_held(self) -> bool:
        """Whether snapd's automatic refreshes of LXD are held (`snap-hold`)."""
        return self._policy(self.snap_hold)

    def _policy(self, value: str) -> bool:
        return self.mode == "cluster" if value == "auto" else value == "true"

    def https_project_ceiling(self) -> frozenset[str] | None:
        """The projects `https` requirers may be trusted with; None: no ceiling."""
        names, _ = projects.split(self.https_allowed_projects)
        return frozenset(names) if names else None

    def listeners(self) -> dict[str, bool]:
        """Which `lxd-listen-*` listeners are switched on, by endpoint name."""
        return {name: bool(getattr(self, f"lxd_listen_{name}")) for name in LISTENERS}

    def snap_config(self) -> dict[str, bool | str | None]:
        """The `snap-config-*` options, keyed by their suffix (`daemon-debug`...)."""
        values: dict[str, Any] = {}
        for suffix in CONFIG_KEYS:
            values[suffix] = getattr(self, "snap_config_" + suffix.replace("-", "_"))
        return values
