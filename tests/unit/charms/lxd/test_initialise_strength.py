"""Each decision of `lxd_charm.initialise`, one wrong answer each (pure: no Juju, no LXD).

The preseeds are compared whole: LXD applies exactly what the charm sends,
so one key more or less is a different server.
"""

from __future__ import annotations

import pytest

from lxd_charm.initialise import (
    ImmutableChange,
    InitError,
    default_preseed,
    fan_refused,
    immutable_changes,
    initial_preseed,
    proxy_settings,
)

ROOT = {"type": "disk", "path": "/", "pool": "default"}
BRIDGE = {
    "name": "lxdbr0",
    "type": "bridge",
    "config": {"ipv4.address": "auto", "ipv6.address": "auto"},
}
FAN = {
    "name": "lxdfan0",
    "type": "bridge",
    "config": {"bridge.mode": "fan", "fan.underlay_subnet": "10.1.0.0/16"},
}


# --- default_preseed ------------------------------------------------------------------------


def test_a_pool_and_a_bridge_wired_into_the_default_profile() -> None:
    assert default_preseed("dir", "lxdbr0") == {
        "storage_pools": [{"name": "default", "driver": "dir"}],
        "networks": [BRIDGE],
        "profiles": [
            {
                "name": "default",
                "devices": {
                    "root": ROOT,
                    "eth0": {"type": "nic", "name": "eth0", "network": "lxdbr0"},
                },
            }
        ],
    }


def test_nothing_to_create_is_an_empty_preseed() -> None:
    assert default_preseed("", "") == {}
    assert default_preseed("", "", fan_underlay="10.1.0.0/16") == {}


def test_a_pool_alone_has_only_the_root_disk() -> None:
    assert default_preseed("zfs", "", block_device="/dev/vdb") == {
        "storage_pools": [{"name": "default", "driver": "zfs", "config": {"source": "/dev/vdb"}}],
        "profiles": [{"name": "default", "devices": {"root": ROOT}}],
    }


@pytest.mark.parametrize("driver", ["btrfs", "lvm", "zfs"])
def test_every_block_driver_takes_the_attached_device(driver: str) -> None:
    pools = default_preseed(driver, "", block_device="/dev/vdb")["storage_pools"]
    assert pools == [{"name": "default", "driver": driver, "config": {"source": "/dev/vdb"}}]


def test_a_driver_that_cannot_use_the_attached_device_is_refused_saying_which_can() -> None:
    with pytest.raises(InitError) as caught:
        default_preseed("dir", "lxdbr0", block_device="/dev/vdb")
    assert str(caught.value) == (
        "lxd-init-storage-driver=dir cannot use the attached block device /dev/vdb: "
        "set one of btrfs, lvm, zfs"
    )


def test_a_bridge_alone_has_only_the_nic() -> None:
    assert default_preseed("", "br-x") == {
        "networks": [{**BRIDGE, "name": "br-x"}],
        "profiles": [
            {
                "name": "default",
                "devices": {"eth0": {"type": "nic", "name": "eth0", "network": "br-x"}},
            }
        ],
    }


def test_with_an_underlay_the_bridge_is_the_fan() -> None:
    assert default_preseed("", "lxdbr0", fan_underlay="10.1.0.0/16") == {
        "networks": [FAN],
        "profiles": [
            {
                "name": "default",
                "devices": {"eth0": {"type": "nic", "name": "eth0", "network": "lxdfan0"}},
            }
        ],
    }


# --- initial_preseed ------------------------------------------------------------------------

PROXY = {"core.proxy_http": "http://proxy:3128", "core.proxy_https": "http://proxy:3129"}


def test_without_an_operator_preseed_the_default_one_gets_the_proxy() -> None:
    preseed = initial_preseed("  \n", "dir", "lxdbr0", None, PROXY, "10.1.0.0/16")
    assert preseed == {**default_preseed("dir", "lxdbr0", None, "10.1.0.0/16"), "config": PROXY}


def test_the_operators_preseed_wins_over_the_defaults_the_fan_and_the_proxy() -> None:
    operator = "config:\n  core.proxy_http: http://mine:80\nnetworks: []\n"
    preseed = initial_preseed(operator, "dir", "lxdbr0", None, PROXY, "10.1.0.0/16")
    assert preseed == {
        "config": {"core.proxy_http": "http://mine:80", "core.proxy_https": "http://proxy:3129"},
        "networks": [],
    }


def test_no_proxy_adds_no_config() -> None:
    assert "config" not in initial_preseed("", "dir", "lxdbr0", None, {})
    assert initial_preseed("networks: []\n", "dir", "", None, {}) == {"networks": []}


# --- the fan's refusal, the proxy ----------------------------------------------------------


def test_the_fans_mtu_device_alone_is_its_refusal() -> None:
    assert fan_refused("Failed to run: ip link set dev lxdfan0-mtu mtu 1350 (Cannot find device)")
    assert fan_refused('Failed to create local member network "lxdfan0" in project "default"')
    assert not fan_refused('Failed to create local member network "lxdbr0" in project "default"')


def test_only_the_proxy_variables_set_become_lxd_keys() -> None:
    env = {
        "JUJU_CHARM_HTTP_PROXY": "http://proxy:3128",
        "JUJU_CHARM_HTTPS_PROXY": "",
        "JUJU_CHARM_NO_PROXY": "10.0.0.0/8,.internal",
        "HTTP_PROXY": "http://other:1",
    }
    assert proxy_settings(env) == {
        "core.proxy_http": "http://proxy:3128",
        "core.proxy_ignore_hosts": "10.0.0.0/8,.internal",
    }
    assert proxy_settings({"JUJU_CHARM_HTTPS_PROXY": "http://p:1"}) == {
        "core.proxy_https": "http://p:1"
    }


# --- options that cannot change -----------------------------------------------------------


def test_a_changed_option_says_what_to_set_it_back_to() -> None:
    change = ImmutableChange("lxd-init-storage-driver", "zfs", "dir")
    assert change.message() == (
        "lxd-init-storage-driver cannot change once LXD is initialised: "
        "set it back to 'zfs' (juju config <app> lxd-init-storage-driver=...)"
    )


@pytest.mark.parametrize(
    ("initial", "shown"),
    [("a" * 40, "a" * 40), ("a" * 41, "a" * 37 + "..."), ("b" * 39 + "cd", "b" * 37 + "...")],
)
def test_a_long_initial_value_is_cut_after_40_characters(initial: str, shown: str) -> None:
    message = ImmutableChange("lxd-preseed", initial, "").message()
    assert message == (
        f"lxd-preseed cannot change once LXD is initialised: set it back to {shown!r} "
        "(juju config <app> lxd-preseed=...)"
    )


def test_only_changed_options_are_listed_sorted_and_an_unset_one_counts_as_empty() -> None:
    initial = {"z-opt": "1", "a-opt": "x", "same": "s", "was-empty": ""}
    current = {"z-opt": "2", "same": "s"}
    assert immutable_changes(initial, current) == [
        ImmutableChange("a-opt", "x", ""),
        ImmutableChange("z-opt", "1", "2"),
    ]
