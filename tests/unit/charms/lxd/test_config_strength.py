"""Each decision of `lxd_charm.config.LxdConfig`, one wrong answer each (pure).

Every refusal is the unit's blocked status, so each is compared whole; the
limits are tried on both sides of their boundary.
"""

from __future__ import annotations

from typing import Any

import pytest

from lxd_charm.config import LxdConfig

CHANNEL_RULE = (
    "expected RISK, TRACK, TRACK/RISK or TRACK/RISK/BRANCH, where RISK is one of stable, "
    "candidate, beta, edge and TRACK is 'latest' or a version such as 5.21 or 6"
)
PROJECT_RULES = (
    "LXD project names cannot contain slashes, spaces, underscores or quotes, "
    "nor be '*', '.' or '..'"
)
BRIDGE_RULE = (
    "use an interface name of up to 15 letters, digits or dashes "
    "(lxd-init-network=false: no network)"
)
POOL_RULE = "use up to 63 letters, digits, dashes or underscores"
POLICY_RULE = "set auto (on in cluster mode, off standalone), true or false"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "clustered"}, "invalid mode 'clustered': set mode to standalone or cluster"),
        (
            {"snap_channel": "latest/edgy"},
            f"invalid snap-channel: invalid snap channel 'latest/edgy': {CHANNEL_RULE} "
            "(or `auto`)",
        ),
        (
            {"snap_cohort": "yes"},
            f"invalid snap-cohort 'yes': {POLICY_RULE}",
        ),
        (
            {"snap_hold": "no"},
            f"invalid snap-hold 'no': {POLICY_RULE}",
        ),
        (
            {"lxd_preseed": "foo: 1"},
            "invalid lxd-preseed: unknown preseed key(s) foo (known: certificates, cluster, "
            "config, networks, profiles, projects, storage_pools, storage_volumes)",
        ),
        (
            {"lxd_init_storage_driver": "ceph"},
            "invalid lxd-init-storage-driver 'ceph': set one of dir, btrfs, lvm, zfs "
            "(lxd-init-storage=false: no storage pool)",
        ),
        (
            {"https_allowed_projects": "ci,my_proj"},
            f"invalid https-allowed-projects: 'my_proj' is not a project name ({PROJECT_RULES}); "
            "give comma-separated names, e.g. ci,staging",
        ),
        ({"lxd_init_network_bridge": ""}, f"invalid lxd-init-network-bridge '': {BRIDGE_RULE}"),
        (
            {"lxd_init_network_bridge": "b" * 16},
            f"invalid lxd-init-network-bridge '{'b' * 16}': {BRIDGE_RULE}",
        ),
        (
            {"lxd_init_network_bridge": "br_0"},
            f"invalid lxd-init-network-bridge 'br_0': {BRIDGE_RULE}",
        ),
        ({"ceph_rbd_pool": ""}, f"invalid ceph-rbd-pool '': {POOL_RULE}"),
        ({"ceph_rbd_pool": "p" * 64}, f"invalid ceph-rbd-pool '{'p' * 64}': {POOL_RULE}"),
        ({"ceph_rbd_pool": "a.b"}, f"invalid ceph-rbd-pool 'a.b': {POOL_RULE}"),
        ({"ceph_rbd_replicas": 0}, "invalid ceph-rbd-replicas 0: set 1 or more"),
    ],
)
def test_each_refusal_says_what_to_set(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        LxdConfig(**options)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "cluster"},
        {"snap_channel": "5.0/stable"},
        {"snap_cohort": "true", "snap_hold": "false"},
        {"lxd_preseed": "  \n"},
        {"lxd_preseed": "config: {}\n"},
        {"lxd_init_storage_driver": "zfs"},
        {"https_allowed_projects": "ci, staging"},
        {"lxd_init_network_bridge": "b" * 15},
        {"lxd_init_network_bridge": "br-0"},
        {"ceph_rbd_pool": "p" * 63},
        {"ceph_rbd_pool": "my-pool_1"},
        {"ceph_rbd_replicas": 1},
    ],
)
def test_the_limits_themselves_are_accepted(options: dict[str, Any]) -> None:
    config = LxdConfig(**options)
    for name, value in options.items():
        assert getattr(config, name) == value


def test_what_initialisation_creates_follows_the_switches() -> None:
    config = LxdConfig(lxd_init_storage_driver="zfs", lxd_init_network_bridge="br-x")
    assert (config.storage_driver, config.network_bridge) == ("zfs", "br-x")
    off = LxdConfig(
        lxd_init_storage=False,
        lxd_init_storage_driver="zfs",
        lxd_init_network=False,
        lxd_init_network_bridge="br-x",
    )
    assert (off.storage_driver, off.network_bridge) == ("", "")


@pytest.mark.parametrize(
    ("mode", "value", "on"),
    [
        ("cluster", "auto", True),
        ("standalone", "auto", False),
        ("cluster", "false", False),
        ("standalone", "true", True),
    ],
)
def test_cohort_and_hold_are_on_in_a_cluster_unless_said(mode: str, value: str, on: bool) -> None:
    config = LxdConfig(mode=mode, snap_cohort=value, snap_hold=value)  # type: ignore[arg-type]
    assert config.snap_in_cohort() is on
    assert config.snap_held() is on


@pytest.mark.parametrize(("value", "leaves"), [("false", True), ("auto", False), ("true", False)])
def test_only_an_outright_false_leaves_the_cohort(value: str, leaves: bool) -> None:
    assert LxdConfig(mode="standalone", snap_cohort=value).snap_leaves_cohort() is leaves


def test_the_project_ceiling() -> None:
    assert LxdConfig().https_project_ceiling() is None
    assert LxdConfig(https_allowed_projects=" , ").https_project_ceiling() is None
    assert LxdConfig(https_allowed_projects="staging,ci").https_project_ceiling() == frozenset(
        {"ci", "staging"}
    )


def test_listeners_by_endpoint_name() -> None:
    config = LxdConfig(lxd_listen_bgp=True, lxd_listen_metrics=True)
    assert config.listeners() == {"https": False, "bgp": True, "dns": False, "metrics": True}


def test_snap_config_by_suffix_with_the_builtin_defaults() -> None:
    config = LxdConfig(snap_config_daemon_group="lxd-admins", snap_config_lxcfs_pidfd=False)
    assert config.snap_config() == {
        "ceph-builtin": True,
        "ceph-external": None,
        "criu-enable": None,
        "daemon-debug": None,
        "daemon-group": "lxd-admins",
        "daemon-syslog": None,
        "lvm-external": None,
        "lxcfs-cfs": None,
        "lxcfs-debug": None,
        "lxcfs-loadavg": None,
        "lxcfs-pidfd": False,
        "openvswitch-builtin": None,
        "openvswitch-external": None,
        "ovn-builtin": True,
        "shiftfs-enable": None,
        "ui-enable": False,
    }


def test_the_config_is_constructed_by_keyword_only() -> None:
    """`load_config` passes options by name; a positional call could swap two of them."""
    with pytest.raises(TypeError):
        LxdConfig("cluster")  # type: ignore[call-arg]
