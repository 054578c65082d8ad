"""`lxd_charm.half_join` alone: each reading of LXD's words and of its directory, each boundary.

test_charm_state.py runs these through the machine steps (a half join reset
and LXD started again, never where it could lose something); here each pure
function is pinned on its own, so a wrong answer in one is named by the test
that sees it. The log lines and refusals are LXD 5.0's (captured in
tests/functional/test_lxd_charm_half_join.py); directories are made under
``tmp_path`` the way LXD lays them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lxd_charm.half_join import (
    Reset,
    half_joined,
    instances_on_disk,
    leftover_certificates,
    leftover_refusal,
    pools_named,
    reset_unregistered_member,
    start_failure,
)

UNREGISTERED = (
    "Failed to initialize global database: No node registered with address 10.0.0.2:8443"
)
EMPTY_KEY = "failed to load TLS certificate: tls: failed to find any PEM data in key input"
POOL_REFUSAL = (
    'Failed to initialize member: Failed to update storage pool "local": Pool source '
    "cannot be changed when not in pending state"
)
FINGERPRINT = "c0bbf6b28585bbaad8de5fcf5b0435e9fd38a31921d28e65bba40391d50a8229"
CERT_REFUSAL = (
    f'Failed to initialize member: Failed adding local trusted certificate "node1" '
    f'({FINGERPRINT}): This "certificates" entry already exists'
)


def failure_line(reason: str) -> str:
    """LXD 5.0's log line when its daemon fails to start (captured)."""
    prefix = 'time="2026-12-01T09:12:57Z" level=error msg="Failed to start the daemon"'
    return f'{prefix} err="{reason}"\n'


# --- why LXD does not start ---------------------------------------------------------------


@pytest.mark.parametrize("reason", [UNREGISTERED, EMPTY_KEY])
def test_each_captured_start_failure_of_a_half_join_is_one(reason: str) -> None:
    assert half_joined(reason)
    assert half_joined(f"daemon: {reason} (retrying)")  # found anywhere in the reason


@pytest.mark.parametrize(
    "reason",
    [
        "Failed to listen on 10.0.0.9:8443: bind: address not available",
        "",
        "no node registered with address",  # LXD's capitals are part of what was captured
    ],
)
def test_other_start_failures_are_not_half_joins(reason: str) -> None:
    assert not half_joined(reason)


def test_the_last_start_failure_in_the_log_is_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "lxd.log"
    log.write_text(
        failure_line("first")
        + 'time="2026-12-01T09:12:58Z" level=warning msg="Instance type not operational"\n'
        + failure_line("second")
        + failure_line(UNREGISTERED)
    )
    assert start_failure(log) == UNREGISTERED


def test_a_quoted_word_in_the_reason_is_unescaped(tmp_path: Path) -> None:
    log = tmp_path / "lxd.log"
    log.write_text(failure_line(r"Failed to update storage pool \"local\": busy"))
    assert start_failure(log) == 'Failed to update storage pool "local": busy'


def test_a_log_without_a_start_failure_or_without_a_file_gives_none(tmp_path: Path) -> None:
    log = tmp_path / "lxd.log"
    assert start_failure(log) is None  # no file (OSError), no reason
    log.write_text('time="2026-12-01T09:12:57Z" level=info msg="Daemon started"\n')
    assert start_failure(log) is None


def test_a_log_that_is_not_utf8_is_still_read(tmp_path: Path) -> None:
    log = tmp_path / "lxd.log"
    log.write_bytes(b"\xff\xfe garbage\n" + failure_line(EMPTY_KEY).encode())
    assert start_failure(log) == EMPTY_KEY


def test_a_failure_at_the_very_start_of_a_short_log_is_read(tmp_path: Path) -> None:
    log = tmp_path / "lxd.log"
    log.write_text(f'msg="Failed to start the daemon" err="{UNREGISTERED}"')
    assert start_failure(log) == UNREGISTERED


def test_only_the_last_64_kib_of_the_log_is_read(tmp_path: Path) -> None:
    tail = 64 * 1024
    line = f'msg="Failed to start the daemon" err="{UNREGISTERED}"\n'
    log = tmp_path / "lxd.log"
    # The line starts exactly where the tail begins: read.
    log.write_text("x" * 100 + "\n" + line + "y" * (tail - len(line) - 1) + "\n")
    assert log.stat().st_size - tail == 101
    assert start_failure(log) == UNREGISTERED
    # One byte earlier, its first letter falls outside the tail: not read.
    log.write_text("x" * 100 + "\n" + line + "y" * (tail - len(line)) + "\n")
    assert start_failure(log) is None


# --- join refusals over what a dead join left ---------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        POOL_REFUSAL,
        POOL_REFUSAL.upper(),  # compared without case
        'Failed creating storage pool "local": Storage pool directory '
        '"/var/lib/lxd/storage-pools/local" already exists',
        CERT_REFUSAL,
    ],
)
def test_refusals_over_a_leftover_are_recognised(refusal: str) -> None:
    assert leftover_refusal(refusal)


@pytest.mark.parametrize(
    "refusal",
    [
        "Failed to initialize member: the disk is full",
        CERT_REFUSAL.replace(FINGERPRINT, FINGERPRINT[:-1]),  # not a fingerprint
        CERT_REFUSAL.replace("already exists", "is invalid"),
    ],
)
def test_other_refusals_are_not(refusal: str) -> None:
    assert not leftover_refusal(refusal)


def test_every_leftover_trust_entry_a_refusal_names_is_found() -> None:
    other = "ab" * 32
    refusal = (
        CERT_REFUSAL
        + "; "
        + CERT_REFUSAL.replace('"node1"', '"node2"').replace(FINGERPRINT, other)
    )
    assert leftover_certificates(refusal) == [("node1", FINGERPRINT), ("node2", other)]
    assert leftover_certificates(POOL_REFUSAL) == []


def test_pools_are_named_by_quotes_or_directory_once_each_sorted() -> None:
    refusal = (
        'Failed to update storage pool "zfs1": busy; storage pool "local" too; '
        'see /var/lib/lxd/storage-pools/default and storage pool "local"'
    )
    assert pools_named(refusal) == ["default", "local", "zfs1"]
    assert pools_named("nothing named") == []


# --- the directory of a daemon that cannot start ------------------------------------------


def lxd_dir_of_a_half_join(tmp_path: Path) -> Path:
    """What a join killed after writing its local database leaves (captured from LXD 5.0)."""
    lxd_dir = tmp_path / "lxd"
    (lxd_dir / "database/global").mkdir(parents=True)
    (lxd_dir / "database/global/db.bin").write_text("half a raft log")
    (lxd_dir / "cluster.crt").write_text("cert")
    (lxd_dir / "cluster.key").write_text("key")
    for part in ("containers", "custom", "images"):
        (lxd_dir / "storage-pools/local" / part).mkdir(parents=True)
    (lxd_dir / "storage-pools/default").mkdir()
    (lxd_dir / "server.crt").write_text("this machine's own certificate stays")
    return lxd_dir


def test_instances_on_disk_are_containers_then_vms_each_sorted(tmp_path: Path) -> None:
    for part in ("containers/web", "containers/db", "virtual-machines/vm2", "virtual-machines/a"):
        (tmp_path / part).mkdir(parents=True)
    assert instances_on_disk(tmp_path) == ["db", "web", "a", "vm2"]


def test_no_instance_directories_or_a_file_in_their_place_is_none(tmp_path: Path) -> None:
    assert instances_on_disk(tmp_path) == []
    (tmp_path / "containers").write_text("not a directory")
    assert instances_on_disk(tmp_path) == []


def test_a_reset_removes_the_membership_and_the_empty_pools_and_says_so(tmp_path: Path) -> None:
    lxd_dir = lxd_dir_of_a_half_join(tmp_path)
    (lxd_dir / "storage-pools/README").write_text("a file among the pools stays")
    assert reset_unregistered_member(lxd_dir) == Reset(
        [
            "database",
            "cluster.crt",
            "cluster.key",
            "storage-pools/default",
            "storage-pools/local",
        ]
    )
    left = sorted(str(p.relative_to(lxd_dir)) for p in lxd_dir.rglob("*"))
    assert left == ["server.crt", "storage-pools", "storage-pools/README"]


def test_a_reset_of_what_is_not_there_removes_nothing_and_says_so(tmp_path: Path) -> None:
    assert reset_unregistered_member(tmp_path) == Reset([])
    (tmp_path / "cluster.key").write_text("key")  # killed between certificate and key
    assert reset_unregistered_member(tmp_path) == Reset(["cluster.key"])


@pytest.mark.parametrize("kind", ["containers", "virtual-machines"])
def test_a_reset_refuses_a_directory_with_an_instance_and_removes_nothing(
    tmp_path: Path, kind: str
) -> None:
    lxd_dir = lxd_dir_of_a_half_join(tmp_path)
    (lxd_dir / kind / "precious").mkdir(parents=True)
    with pytest.raises(ValueError) as info:
        reset_unregistered_member(lxd_dir)
    assert str(info.value) == f"{lxd_dir} holds instances (precious)"
    assert (lxd_dir / "database/global/db.bin").exists()


@pytest.mark.parametrize("part", ["containers", "virtual-machines", "custom", "images", "buckets"])
def test_a_reset_refuses_a_pool_holding_data_and_removes_nothing(
    tmp_path: Path, part: str
) -> None:
    lxd_dir = lxd_dir_of_a_half_join(tmp_path)
    (lxd_dir / "storage-pools/local" / part).mkdir(exist_ok=True)
    (lxd_dir / "storage-pools/local" / part / "volume").write_text("data")
    with pytest.raises(ValueError) as info:
        reset_unregistered_member(lxd_dir)
    pool = lxd_dir / "storage-pools/local"
    assert str(info.value) == f"the storage pool directory {pool} holds data"
    assert sorted(p.name for p in (lxd_dir / "storage-pools").iterdir()) == ["default", "local"]
    assert (lxd_dir / "cluster.crt").exists()


def test_a_pool_with_other_entries_than_content_is_still_empty(tmp_path: Path) -> None:
    lxd_dir = lxd_dir_of_a_half_join(tmp_path)
    (lxd_dir / "storage-pools/local/containers-snapshots").mkdir()
    (lxd_dir / "storage-pools/local/custom/.keep").write_text("")  # custom is not empty now
    with pytest.raises(ValueError) as info:
        reset_unregistered_member(lxd_dir)
    assert (
        str(info.value)
        == f"the storage pool directory {lxd_dir / 'storage-pools/local'} holds data"
    )
    (lxd_dir / "storage-pools/local/custom/.keep").unlink()
    assert "storage-pools/local" in reset_unregistered_member(lxd_dir).removed
