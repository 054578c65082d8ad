"""Snap config waiting for a reboot: when it waits, when the reboot came, what is kept.

A wrong answer here either restarts LXCFS under running instances (applying
the queue before the reboot) or holds the operator's config back forever
(never noticing the reboot), so each decision is pinned on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lxd_charm.pending import BOOT_ID, PendingConfig, boot_id


def test_the_boot_id_is_read_from_the_kernel_under_the_root(tmp_path: Path) -> None:
    assert Path("proc/sys/kernel/random/boot_id") == BOOT_ID
    (tmp_path / BOOT_ID).parent.mkdir(parents=True)
    (tmp_path / BOOT_ID).write_text(" 0f1e2d3c-aaaa-bbbb-cccc-000000000001\n")
    assert boot_id(tmp_path) == "0f1e2d3c-aaaa-bbbb-cccc-000000000001"


@pytest.mark.parametrize(
    ("reboot_keys", "queued", "waiting"),
    [
        ({}, {}, False),
        ({"lxcfs.cfs": "true"}, {}, True),
        ({}, {"daemon.debug": "true"}, True),
        ({"lxcfs.cfs": None}, {"daemon.debug": None}, True),
    ],
)
def test_waiting_while_anything_is_pending(
    reboot_keys: dict[str, str | None], queued: dict[str, str | None], waiting: bool
) -> None:
    assert PendingConfig(reboot_keys, queued, "boot-1").waiting is waiting


def test_rebooted_only_with_something_pending_and_another_boot() -> None:
    pending = PendingConfig({"lxcfs.cfs": "true"}, {}, "boot-1")
    assert pending.rebooted("boot-2") is True
    assert pending.rebooted("boot-1") is False
    assert PendingConfig({}, {}, "boot-1").rebooted("boot-2") is False
    assert PendingConfig({}, {"daemon.debug": "true"}, "boot-1").rebooted("boot-2") is True


def test_all_changes_are_both_sets_with_the_queue_last() -> None:
    pending = PendingConfig(
        {"lxcfs.cfs": "true", "shared": "reboot"}, {"daemon.debug": None, "shared": "queued"}
    )
    assert pending.all_changes() == {
        "lxcfs.cfs": "true",
        "shared": "queued",
        "daemon.debug": None,
    }


def test_the_record_round_trips_and_copies() -> None:
    pending = PendingConfig({"lxcfs.cfs": "true"}, {"daemon.debug": None}, "boot-1")
    record = pending.to_dict()
    assert record == {
        "reboot_keys": {"lxcfs.cfs": "true"},
        "queued": {"daemon.debug": None},
        "boot": "boot-1",
    }
    pending.reboot_keys.clear()
    pending.queued.clear()
    assert record["reboot_keys"] == {"lxcfs.cfs": "true"}
    assert record["queued"] == {"daemon.debug": None}
    assert PendingConfig.from_dict(record) == PendingConfig(
        {"lxcfs.cfs": "true"}, {"daemon.debug": None}, "boot-1"
    )


def test_an_empty_or_malformed_record_is_nothing_pending() -> None:
    assert PendingConfig.from_dict({}) == PendingConfig({}, {}, "")
    assert PendingConfig.from_dict({"reboot_keys": "x", "queued": [1], "boot": None}) == (
        PendingConfig({}, {}, "")
    )
    assert PendingConfig().boot == ""
    assert PendingConfig.from_dict({"boot": 7}).boot == "7"


def test_the_boot_id_defaults_to_this_machines_own() -> None:
    """Read-only: the kernel's boot id of the machine the tests run on (Linux)."""
    assert boot_id() == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
