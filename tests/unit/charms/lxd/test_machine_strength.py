"""`lxd_charm.machine.Machine`'s steps, each decision pinned on its own.

test_charm.py and test_charm_state.py drive these steps through whole hooks;
here each step runs alone against the `FakeHost` (its `FakeLxd`, a real
`LxdSnap` over `FakeSnapd`) or a stand-in that records what was asked, so a
wrong answer in one branch is named by the test that sees it, in
milliseconds. Messages are compared whole: the operator reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from lxd_charm.config import LxdConfig
from lxd_charm.listeners import ListenerPlan
from lxd_charm.machine import (
    CLUSTER_ADDRESS_KEY,
    Machine,
    Resources,
    _sha256,
    active_message,
    require_listener_addresses,
)
from lxd_charm.memory import Memory
from lxd_charm.outcomes import BlockedError, WaitingError
from lxd_charm.pending import PendingConfig
from lxd_common.certs import generate_client_certificate
from lxd_common.errors import (
    LxdApiError,
    LxdUnreachableError,
    PreseedError,
    SnapError,
    SysctlError,
)
from lxd_common.snap import LxdSnap
from tests.harness.fake_host import FakeHost, set_boot
from tests.harness.fake_lxd import FakeLxd
from tests.harness.fake_snapd import FakeSnapd

UNREGISTERED = (
    "Failed to initialize global database: No node registered with address 10.0.0.2:8443"
)
POOL_REFUSAL = (
    'Failed to initialize member: Failed to update storage pool "local": Pool source '
    "cannot be changed when not in pending state"
)
FAN_REFUSAL = (
    'Failed to create local member network "lxdfan0" in project "default": Failed to run: '
    'ip link set dev lxdfan0-mtu mtu 1350: (Cannot find device "lxdfan0-mtu")'
)


def machine_for(
    host: FakeHost,
    memory: Memory | None = None,
    *,
    joining: bool = False,
    environ: Mapping[str, str] | None = None,
    block_device: str | None = None,
    fan_address: str | None = None,
    **options: Any,
) -> Machine:
    return Machine(
        host,
        memory if memory is not None else Memory(),
        LxdConfig(**options),
        environ=environ or {},
        block_device=block_device,
        joining=joining,
        fan_address=fan_address,
    )


# --- a snap stand-in that records -------------------------------------------------


class RecordingSnap:
    """`LxdSnap`'s surface the machine steps use, recording each call."""

    def __init__(self, changes: Mapping[str, str | None] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.changes = dict(changes or {})
        self.failures: dict[str, Exception] = {}
        self.ensure_answer = False

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        failure = self.failures.get(call[0])
        if failure is not None:
            raise failure

    def ensure(self, channel: str, *, cohort: bool = False, refresh: bool = True) -> bool:
        self._record("ensure", channel, cohort, refresh)
        return self.ensure_answer

    def set_hold(self, held: bool) -> bool:
        self._record("set_hold", held)
        return True

    def config_changes(self, values: Mapping[str, Any]) -> dict[str, str | None]:
        self._record("config_changes")
        return dict(self.changes)

    def set_config(self, values: Mapping[str, Any]) -> list[str]:
        self._record("set_config", dict(values))
        return sorted(values)

    def install_snap_file(self, path: Path) -> None:
        self._record("install_snap_file", path)

    def install_debug_binary(self, path: Path, target: Path) -> bool:
        self._record("install_debug_binary", path, target)
        return True

    def remove_debug_binary(self, target: Path) -> bool:
        self._record("remove_debug_binary", target)
        return True


@pytest.fixture
def recorder() -> RecordingSnap:
    return RecordingSnap()


@pytest.fixture
def rhost(tmp_path: Path, recorder: RecordingSnap) -> FakeHost:
    set_boot(tmp_path, "boot-1")
    return FakeHost(
        snap=cast(LxdSnap, recorder),
        root=tmp_path,
        state_dir=tmp_path / "state",
        daemon_dir=tmp_path / "lxd",
    )


# --- the LXD connection --------------------------------------------------------------


def test_an_inner_block_reuses_the_outer_connection_and_a_later_one_connects_again(
    host: FakeHost,
) -> None:
    machine = machine_for(host)
    with machine.lxd() as outer:
        with machine.lxd() as inner:
            assert inner is outer
        with machine.lxd() as again:
            assert again is outer
        assert host.fake_lxd.connections == 1
    with machine.lxd():
        assert host.fake_lxd.connections == 2


def test_lxd_stopping_inside_a_block_is_a_wait_and_the_connection_is_closed(
    host: FakeHost,
) -> None:
    machine = machine_for(host)
    with pytest.raises(WaitingError) as caught, machine.lxd():
        raise LxdUnreachableError("connection reset by peer")
    assert str(caught.value) == "LXD stopped answering: connection reset by peer"
    with machine.lxd():
        assert host.fake_lxd.connections == 2


def test_lxd_stopping_inside_an_inner_block_is_that_steps_wait(host: FakeHost) -> None:
    """A step on the shared connection says its wait itself, as on a connection of its own:
    the step around it (OVN's, which reports and goes on) can catch it."""
    machine = machine_for(host)
    with machine.lxd() as outer:
        with pytest.raises(WaitingError) as caught, machine.lxd():
            raise LxdUnreachableError("connection reset by peer")
        assert str(caught.value) == "LXD stopped answering: connection reset by peer"
        with machine.lxd() as again:
            assert again is outer
    assert host.fake_lxd.connections == 1


def test_other_errors_inside_a_block_pass_through_and_the_connection_is_closed(
    host: FakeHost,
) -> None:
    machine = machine_for(host)
    with pytest.raises(LxdApiError, match=r"^refused$"), machine.lxd():
        raise LxdApiError("refused")
    with machine.lxd():
        assert host.fake_lxd.connections == 2


def test_an_installed_lxd_without_a_socket_is_not_answering(
    host: FakeHost, snapd: FakeSnapd
) -> None:
    snapd.seed("lxd", "latest/stable")
    host.lxd_missing = True
    host.fake_lxd.unreachable = True
    with pytest.raises(WaitingError) as caught, machine_for(host).lxd():
        pass
    assert str(caught.value) == "LXD is not answering: no socket"


def test_snapd_refusing_to_say_whether_lxd_is_installed_blocks(
    host: FakeHost, snapd: FakeSnapd
) -> None:
    host.lxd_not_found = True
    snapd.fail_on("installed", SnapError("snapd said no"))
    with pytest.raises(BlockedError) as caught, machine_for(host).lxd():
        pass
    assert str(caught.value) == "cannot ask snapd about LXD: snapd said no"


def failed_start_log(host: FakeHost, reason: str) -> None:
    """LXD 5.0's log line when its daemon fails to start (captured)."""
    host.lxd_log.parent.mkdir(parents=True, exist_ok=True)
    host.lxd_log.write_text(
        'time="2026-12-01T09:12:57Z" level=error msg="Failed to start the daemon" '
        f'err="{reason}"\n'
    )


def half_joined(host: FakeHost, *instances: str) -> None:
    """What a join killed after writing its local database leaves (captured from LXD 5.0)."""
    lxd_dir = host.lxd_dir
    (lxd_dir / "database/global").mkdir(parents=True, exist_ok=True)
    (lxd_dir / "database/global/db.bin").write_text("half a raft log")
    (lxd_dir / "cluster.crt").write_text("cert")
    (lxd_dir / "storage-pools/local/containers").mkdir(parents=True, exist_ok=True)
    for name in instances:
        (lxd_dir / "containers" / name).mkdir(parents=True)
    failed_start_log(host, UNREGISTERED)


@pytest.fixture
def stopped(host: FakeHost, snapd: FakeSnapd) -> FakeHost:
    snapd.seed("lxd", "latest/stable")
    host.lxd_not_found = True
    return host


def test_a_member_that_cannot_start_after_a_half_join_is_only_explained(
    stopped: FakeHost,
) -> None:
    half_joined(stopped)
    machine = machine_for(stopped, Memory(initialised=True), joining=True, mode="cluster")
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == f"LXD cannot start: {UNREGISTERED} (see {stopped.lxd_log})"
    assert stopped.lxd_restarts == 0


def not_reset(host: FakeHost, reason: str, held: str) -> str:
    return (
        f"LXD cannot start: {reason}. Its local database describes a cluster membership "
        f"the cluster does not have, and {held}, so the charm does not reset it: move any "
        f"instances away, remove {host.lxd_dir / 'database'}, then restart LXD"
    )


def test_a_half_join_holding_instances_is_not_reset_and_names_them(stopped: FakeHost) -> None:
    half_joined(stopped, "web", "db")
    machine = machine_for(stopped, joining=True, mode="cluster")
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == not_reset(stopped, UNREGISTERED, "it holds instances (db, web)")
    assert (stopped.lxd_dir / "database/global/db.bin").exists()


def test_a_half_join_of_a_unit_that_was_not_joining_is_not_reset(stopped: FakeHost) -> None:
    half_joined(stopped)
    machine = machine_for(stopped, joining=False, mode="cluster")
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == not_reset(
        stopped, UNREGISTERED, "this unit was not joining a cluster"
    )


def test_a_machine_is_not_joining_unless_told(stopped: FakeHost) -> None:
    half_joined(stopped)
    machine = Machine(stopped, Memory(), LxdConfig(mode="cluster"), environ={})
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == not_reset(
        stopped, UNREGISTERED, "this unit was not joining a cluster"
    )


def test_a_reset_that_fails_blocks_saying_why(stopped: FakeHost) -> None:
    half_joined(stopped)
    pool = stopped.lxd_dir / "storage-pools/local"
    (pool / "containers/volume").write_text("data")
    machine = machine_for(stopped, joining=True, mode="cluster")
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == (
        f"LXD cannot start: {UNREGISTERED}; resetting it failed: "
        f"the storage pool directory {pool} holds data"
    )
    assert stopped.lxd_restarts == 0


def test_a_reset_whose_restart_fails_blocks(
    stopped: FakeHost, snapd: FakeSnapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    half_joined(stopped)

    def refuse() -> None:
        raise SnapError("cannot restart: snapd said no")

    monkeypatch.setattr(stopped, "restart_lxd", refuse)
    machine = machine_for(stopped, joining=True, mode="cluster")
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == "cannot restart LXD: cannot restart: snapd said no"
    assert not (stopped.lxd_dir / "database").exists()


def test_an_lxd_still_down_after_the_reset_is_a_wait(
    stopped: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    half_joined(stopped)
    restarts: list[bool] = []
    monkeypatch.setattr(stopped, "restart_lxd", lambda: restarts.append(True))
    machine = machine_for(stopped, joining=True, mode="cluster")
    with pytest.raises(WaitingError) as caught, machine.lxd():
        pass
    assert str(caught.value) == (
        "LXD is restarting after a reset: no LXD socket found "
        "(tried /var/snap/lxd/common/lxd/unix.socket)"
    )
    assert restarts == [True]


# --- clearing what a dead join left in a running LXD -----------------------------------


def leftover_cert(fingerprint: str, name: str = "node1") -> str:
    return (
        f'Failed to initialize member: Failed adding local trusted certificate "{name}" '
        f'({fingerprint}): This "certificates" entry already exists'
    )


def test_pools_then_trust_entries_are_cleared_and_named(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.pool_volumes = {"local": [], "other": ["kept"]}
    entry = lxd.trust.add(generate_client_certificate("node1").certificate, name="node1")
    refusal = f"{POOL_REFUSAL}; {leftover_cert(entry.fingerprint)}; " + leftover_cert(
        "ab" * 32, "node2"
    )
    cleared = machine_for(host).clear_half_join(lxd, refusal)  # type: ignore[arg-type]
    assert cleared == ["storage pool local", "trust entry node1", "trust entry node2"]
    assert lxd.pool_volumes == {"other": ["kept"]}
    assert lxd.trust.entries() == []


def test_a_member_is_never_cleared(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.cluster.enable("lxd-0", "10.0.0.1:8443")
    lxd.pool_volumes = {"local": []}
    with pytest.raises(BlockedError) as caught:
        machine_for(host).clear_half_join(lxd, POOL_REFUSAL)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"LXD refused the join ({POOL_REFUSAL}): an earlier join left this machine "
        "half-done, and it holds instances or volumes (), so the charm does not clear it: "
        "move them away, then lxc storage delete local"
    )
    assert lxd.pool_volumes == {"local": []}


def test_instances_and_volumes_block_naming_each_and_the_commands(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.local_instances = ["web", "db"]
    lxd.pool_volumes = {"local": ["v2", "v1"]}
    fp = "cd" * 32
    refusal = f"{POOL_REFUSAL}; {leftover_cert(fp)}"
    with pytest.raises(BlockedError) as caught:
        machine_for(host).clear_half_join(lxd, refusal)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"LXD refused the join ({refusal}): an earlier join left this machine half-done, "
        "and it holds instances or volumes (db, web; local: v1, v2), so the charm does not "
        f"clear it: move them away, then lxc storage delete local and lxc config trust "
        f"remove {fp}"
    )


def test_volumes_alone_block(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.pool_volumes = {"local": ["v1"]}
    with pytest.raises(BlockedError) as caught:
        machine_for(host).clear_half_join(lxd, POOL_REFUSAL)  # type: ignore[arg-type]
    assert "holds instances or volumes (; local: v1)" in str(caught.value)
    assert lxd.pool_volumes == {"local": ["v1"]}


def test_volumes_in_two_pools_are_named_pool_by_pool(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.pool_volumes = {"local": ["v1"], "other": ["v2", "v3"]}
    refusal = f'{POOL_REFUSAL}; Failed to update storage pool "other"'
    with pytest.raises(BlockedError) as caught:
        machine_for(host).clear_half_join(lxd, refusal)  # type: ignore[arg-type]
    assert "holds instances or volumes (; local: v1, other: v2, v3), so" in str(caught.value)
    assert str(caught.value).endswith("then lxc storage delete local other")


def test_a_trust_leftover_alone_with_an_instance_names_only_the_trust_command(
    host: FakeHost,
) -> None:
    lxd = host.fake_lxd
    lxd.local_instances = ["web"]
    fp = "ef" * 32
    with pytest.raises(BlockedError) as caught:
        machine_for(host).clear_half_join(lxd, leftover_cert(fp))  # type: ignore[arg-type]
    assert str(caught.value).endswith(
        "holds instances or volumes (web), so the charm does not clear it: move them away, "
        f"then lxc config trust remove {fp}"
    )


def test_a_refusal_naming_no_leftover_blocks_with_the_generic_command(host: FakeHost) -> None:
    refusal = "Failed to initialize member: something else"
    with pytest.raises(BlockedError) as caught:
        machine_for(host).clear_half_join(host.fake_lxd, refusal)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"LXD refused the join ({refusal}): an earlier join left this machine half-done, "
        "and it holds instances or volumes (), so the charm does not clear it: move them "
        "away, then lxc storage delete <pool>"
    )


def test_a_pool_leftover_alone_is_cleared(host: FakeHost) -> None:
    lxd = host.fake_lxd
    lxd.pool_volumes = {"local": []}
    cleared = machine_for(host).clear_half_join(lxd, POOL_REFUSAL)  # type: ignore[arg-type]
    assert cleared == ["storage pool local"]
    assert lxd.pool_volumes == {}


# --- options fixed at initialisation ----------------------------------------------------


def test_changed_immutable_options_block_only_once_initialised(host: FakeHost) -> None:
    options = {"mode": "standalone", "lxd-preseed": ""}
    machine_for(host, Memory(init_options=options), mode="cluster").refuse_immutable_changes()
    memory = Memory(initialised=True, init_options=options)
    machine_for(host, memory, mode="standalone").refuse_immutable_changes()
    with pytest.raises(BlockedError) as caught:
        machine_for(host, memory, mode="cluster").refuse_immutable_changes()
    assert str(caught.value) == (
        "mode cannot change once LXD is initialised: set it back to 'standalone' "
        "(juju config <app> mode=...)"
    )
    with pytest.raises(BlockedError, match=r"^lxd-preseed cannot change"):
        machine_for(host, memory, lxd_preseed="config: {}").refuse_immutable_changes()


# --- resources ------------------------------------------------------------------------


def sideload(machine: Machine, resources: Resources) -> None:
    """Both halves, as a reconcile runs them (with `ensure_snap` between)."""
    machine.sideload_snap(resources)
    machine.sideload_binary(resources)


def test_a_snap_resource_is_installed_once_per_content(
    rhost: FakeHost, recorder: RecordingSnap, tmp_path: Path
) -> None:
    snap = tmp_path / "lxd.snap"
    snap.write_bytes(b"a snap")
    memory = Memory()
    machine = machine_for(rhost, memory)
    sideload(machine, Resources(lxd_snap=snap))
    digest = hashlib.sha256(b"a snap").hexdigest()
    assert memory.sideloaded_snap == digest
    assert recorder.calls == [
        ("install_snap_file", snap),
        ("remove_debug_binary", rhost.debug_binary),
    ]
    assert (rhost.sideload_dir / "snap").is_dir()
    recorder.calls.clear()
    sideload(machine, Resources(lxd_snap=snap))
    assert recorder.calls == [("remove_debug_binary", rhost.debug_binary)]
    snap.write_bytes(b"another snap")
    sideload(machine, Resources(lxd_snap=snap))
    assert ("install_snap_file", snap) in recorder.calls
    assert memory.sideloaded_snap == hashlib.sha256(b"another snap").hexdigest()


def test_a_refused_snap_resource_blocks_and_is_not_remembered(
    rhost: FakeHost, recorder: RecordingSnap, tmp_path: Path
) -> None:
    snap = tmp_path / "lxd.snap"
    snap.write_bytes(b"a snap")
    recorder.failures["install_snap_file"] = SnapError("not a snap")
    memory = Memory()
    with pytest.raises(BlockedError) as caught:
        sideload(machine_for(rhost, memory), Resources(lxd_snap=snap))
    assert str(caught.value) == "cannot install the lxd-snap resource: not a snap"
    assert memory.sideloaded_snap == ""


def test_a_detached_or_empty_snap_resource_goes_back_to_the_store(
    rhost: FakeHost, recorder: RecordingSnap, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for resources in (Resources(), Resources(lxd_snap=empty)):
        memory = Memory(sideloaded_snap="ab" * 32)
        sideload(machine_for(rhost, memory), resources)
        assert memory.sideloaded_snap == ""
    assert not any(call[0] == "install_snap_file" for call in recorder.calls)


def test_a_binary_resource_is_installed_from_its_workdir(
    rhost: FakeHost, recorder: RecordingSnap, tmp_path: Path
) -> None:
    binary = tmp_path / "lxd"
    binary.write_bytes(b"\x7fELF")
    sideload(machine_for(rhost), Resources(lxd_binary=binary))
    assert recorder.calls == [("install_debug_binary", binary, rhost.debug_binary)]
    assert (rhost.sideload_dir / "binary").is_dir()
    assert not (rhost.sideload_dir / "snap").exists()


def test_a_binary_snapd_refuses_blocks(
    rhost: FakeHost, recorder: RecordingSnap, tmp_path: Path
) -> None:
    recorder.failures["remove_debug_binary"] = SnapError("restart failed")
    with pytest.raises(BlockedError) as caught:
        sideload(machine_for(rhost), Resources())
    assert str(caught.value) == "cannot use the lxd-binary resource: restart failed"


def test_a_tarball_without_this_machines_build_blocks(rhost: FakeHost, tmp_path: Path) -> None:
    import tarfile

    from lxd_common.snap import machine_arch

    arch = machine_arch()

    tarball = tmp_path / "lxd-snap.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("other")
        tar.addfile(info)
    with pytest.raises(BlockedError) as caught:
        sideload(machine_for(rhost), Resources(lxd_snap=tarball))
    assert str(caught.value) == (
        f"cannot use the lxd-snap resource: resource tarball {tarball} has no "
        f"lxd_{arch}.snap for this machine's architecture {arch!r}; it has: other"
    )


def test_a_binary_tarball_gives_this_machines_executable_build(
    rhost: FakeHost, recorder: RecordingSnap, tmp_path: Path
) -> None:
    import io
    import tarfile

    from lxd_common.snap import machine_arch

    tarball = tmp_path / "lxd-binary.tar"
    with tarfile.open(tarball, "w") as tar:
        for name in (f"lxd_{machine_arch()}", f"lxd_{machine_arch()}.snap"):
            info = tarfile.TarInfo(name)
            info.size = len(name)
            tar.addfile(info, io.BytesIO(name.encode()))
    sideload(machine_for(rhost), Resources(lxd_binary=tarball))
    extracted = rhost.sideload_dir / "binary" / f"lxd_{machine_arch()}"
    assert recorder.calls == [("install_debug_binary", extracted, rhost.debug_binary)]
    assert extracted.read_text() == f"lxd_{machine_arch()}"
    assert extracted.stat().st_mode & 0o777 == 0o755


def test_a_binary_tarball_without_this_machines_build_blocks_naming_the_resource(
    rhost: FakeHost, tmp_path: Path
) -> None:
    import tarfile

    tarball = tmp_path / "lxd-binary.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.addfile(tarfile.TarInfo("other"))
    with pytest.raises(BlockedError) as caught:
        sideload(machine_for(rhost), Resources(lxd_binary=tarball))
    assert str(caught.value).startswith(
        f"cannot use the lxd-binary resource: resource tarball {tarball} has no lxd_"
    )


def test_sha256_reads_the_whole_file_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = bytes(range(256)) * (5 * 4096 + 3)  # more than one 1 MiB chunk
    path.write_bytes(data)
    assert _sha256(path) == hashlib.sha256(data).hexdigest()


# --- the snap ---------------------------------------------------------------------------


def test_a_sideloaded_snap_is_left_alone(rhost: FakeHost, recorder: RecordingSnap) -> None:
    machine_for(rhost, Memory(sideloaded_snap="ab" * 32)).ensure_snap()
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("mode", "initialised", "cohort", "refresh", "held"),
    [
        ("standalone", False, False, True, False),
        ("standalone", True, False, True, False),
        ("cluster", False, True, True, True),
        ("cluster", True, True, False, True),  # a member refreshes only in a round
    ],
)
def test_the_snap_on_its_channel_cohort_and_hold(
    rhost: FakeHost,
    recorder: RecordingSnap,
    mode: str,
    initialised: bool,
    cohort: bool,
    refresh: bool,
    held: bool,
) -> None:
    recorder.ensure_answer = True
    machine = machine_for(
        rhost, Memory(initialised=initialised), mode=mode, snap_channel="5.0/stable"
    )
    machine.ensure_snap()
    assert recorder.calls == [("ensure", "5.0/stable", cohort, refresh), ("set_hold", held)]


def test_snapd_refusing_the_snap_or_the_hold_blocks(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    recorder.failures["ensure"] = SnapError("no such channel")
    with pytest.raises(BlockedError) as caught:
        machine_for(rhost).ensure_snap()
    assert str(caught.value) == "cannot install LXD: no such channel"
    del recorder.failures["ensure"]
    recorder.failures["set_hold"] = SnapError("hold refused")
    with pytest.raises(BlockedError) as caught:
        machine_for(rhost).ensure_snap()
    assert str(caught.value) == "cannot hold snapd's automatic refreshes of LXD: hold refused"


# --- snap config and the reboot ---------------------------------------------------------


def test_before_initialisation_every_change_is_set_at_once(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    recorder.changes = {"lxcfs.loadavg": "true", "daemon.debug": "true"}
    memory = Memory()
    machine_for(rhost, memory).apply_snap_config()
    assert recorder.calls == [
        ("config_changes",),
        ("set_config", {"lxcfs.loadavg": "true", "daemon.debug": "true"}),
    ]
    assert memory.pending == PendingConfig()


def test_a_reboot_key_is_set_and_pending_and_live_keys_queue_behind_it(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    recorder.changes = {"lxcfs.loadavg": "true", "daemon.debug": "true"}
    memory = Memory(initialised=True)
    machine_for(rhost, memory).apply_snap_config()
    assert recorder.calls == [("config_changes",), ("set_config", {"lxcfs.loadavg": "true"})]
    assert memory.pending == PendingConfig(
        {"lxcfs.loadavg": "true"}, {"daemon.debug": "true"}, "boot-1"
    )


def test_live_keys_alone_are_set_at_once(rhost: FakeHost, recorder: RecordingSnap) -> None:
    recorder.changes = {"daemon.debug": "true"}
    memory = Memory(initialised=True)
    machine_for(rhost, memory).apply_snap_config()
    assert recorder.calls == [("config_changes",), ("set_config", {"daemon.debug": "true"})]
    assert memory.pending == PendingConfig()


def test_while_a_reboot_is_pending_the_first_boot_is_kept_and_live_keys_queue(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    recorder.changes = {"lxcfs.cfs": "true", "daemon.debug": "true"}
    memory = Memory(
        initialised=True, pending=PendingConfig({"lxcfs.loadavg": "true"}, {}, "boot-1")
    )
    set_boot(rhost.root, "boot-1")
    machine_for(rhost, memory).apply_snap_config()
    assert recorder.calls == [("config_changes",), ("set_config", {"lxcfs.cfs": "true"})]
    assert memory.pending == PendingConfig(
        {"lxcfs.loadavg": "true", "lxcfs.cfs": "true"}, {"daemon.debug": "true"}, "boot-1"
    )


def test_after_the_reboot_the_queue_is_applied_and_the_record_cleared(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    memory = Memory(
        initialised=True,
        pending=PendingConfig({"lxcfs.loadavg": "true"}, {"daemon.debug": "true"}, "boot-1"),
    )
    set_boot(rhost.root, "boot-2")
    assert machine_for(rhost, memory).reboot_happened() is True
    machine_for(rhost, memory).apply_snap_config()
    assert recorder.calls == [
        ("set_config", {"daemon.debug": "true"}),
        ("config_changes",),
        ("set_config", {}),
    ]
    assert memory.pending == PendingConfig()
    assert machine_for(rhost, memory).reboot_happened() is False


def test_no_reboot_without_a_new_boot_or_anything_pending(rhost: FakeHost) -> None:
    pending = PendingConfig({"lxcfs.loadavg": "true"}, {}, "boot-1")
    assert machine_for(rhost, Memory(pending=pending)).reboot_happened() is False
    set_boot(rhost.root, "boot-2")
    assert machine_for(rhost, Memory(pending=PendingConfig(boot="boot-1"))).reboot_happened() is (
        False
    )


def test_a_reboot_key_pending_from_an_earlier_boot_keeps_that_boot(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    """The reboot came: the queue goes out, then the new reboot key is pending from this boot."""
    recorder.changes = {"lxcfs.cfs": "true"}
    memory = Memory(
        initialised=True, pending=PendingConfig({}, {"daemon.debug": "true"}, "boot-0")
    )
    machine_for(rhost, memory).apply_snap_config()
    assert memory.pending == PendingConfig({"lxcfs.cfs": "true"}, {}, "boot-1")


def test_a_refused_snap_config_blocks_and_keeps_the_record(
    rhost: FakeHost, recorder: RecordingSnap
) -> None:
    before = PendingConfig({"lxcfs.loadavg": "true"}, {}, "boot-1")
    memory = Memory(initialised=True, pending=PendingConfig.from_dict(before.to_dict()))
    recorder.changes = {"lxcfs.cfs": "true", "daemon.debug": "true"}
    recorder.failures["set_config"] = SnapError("refused")
    with pytest.raises(BlockedError) as caught:
        machine_for(rhost, memory).apply_snap_config()
    assert str(caught.value) == "cannot apply snap config: refused"
    assert memory.pending == before


# --- initialisation ---------------------------------------------------------------------


class PreseedLxd:
    """Records preseeds and server config; refuses the first preseeds with the words given."""

    def __init__(self, *refusals: str, config: Mapping[str, str] | None = None) -> None:
        self.refusals = list(refusals)
        self.preseeds: list[dict[str, Any]] = []
        self.config = dict(config or {})
        self.set_calls: list[dict[str, str | None]] = []

    def apply_preseed(self, preseed: Mapping[str, Any]) -> None:
        self.preseeds.append(dict(preseed))
        if self.refusals:
            raise LxdApiError(self.refusals.pop(0))

    def server_config(self) -> dict[str, str]:
        return dict(self.config)

    def set_server_config(
        self, values: Mapping[str, str | None], *, current: Mapping[str, str] | None = None
    ) -> list[str]:
        self.set_calls.append(dict(values))
        return sorted(values)


BOOTSTRAP = {
    "config": {CLUSTER_ADDRESS_KEY: "10.1.2.3:8443"},
    "cluster": {"server_name": "lxd-0", "enabled": True},
}


def networks(preseed: Mapping[str, Any]) -> list[str]:
    return [network["name"] for network in preseed.get("networks") or []]


def test_the_first_preseed_with_proxy_and_bootstrap_settings_is_applied_once(
    host: FakeHost,
) -> None:
    environ = {"JUJU_CHARM_HTTP_PROXY": "http://proxy:3128"}
    memory = Memory()
    machine = machine_for(host, memory, environ=environ, fan_address="10.1.2.3", mode="cluster")
    lxd = PreseedLxd()
    machine.initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert len(lxd.preseeds) == 1
    preseed = lxd.preseeds[0]
    assert preseed["config"] == {
        "core.proxy_http": "http://proxy:3128",
        CLUSTER_ADDRESS_KEY: "10.1.2.3:8443",
    }
    assert preseed["cluster"] == BOOTSTRAP["cluster"]
    assert networks(preseed) == ["lxdfan0"]
    assert memory.initialised is True
    assert memory.init_options == {"mode": "cluster", "lxd-preseed": ""}
    assert memory.proxy == {"core.proxy_http": "http://proxy:3128"}
    assert memory.fan_fallback == ""
    machine.initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert len(lxd.preseeds) == 1


def test_without_a_cluster_section_there_is_no_fan(host: FakeHost) -> None:
    lxd = PreseedLxd()
    machine_for(host, fan_address="10.1.2.3").initialise(lxd)  # type: ignore[arg-type]
    machine_for(host, fan_address="10.1.2.3").initialise(
        lxd,  # type: ignore[arg-type]
        {"config": {"core.https_address": "x"}},
    )
    assert [networks(p) for p in lxd.preseeds] == [["lxdbr0"], ["lxdbr0"]]


def test_a_refused_fan_falls_back_to_a_plain_bridge_and_remembers_why(host: FakeHost) -> None:
    memory = Memory()
    lxd = PreseedLxd(FAN_REFUSAL)
    machine = machine_for(host, memory, fan_address="10.1.2.3", mode="cluster")
    machine.initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert [networks(p) for p in lxd.preseeds] == [["lxdfan0"], ["lxdbr0"]]
    assert lxd.preseeds[1]["cluster"] == BOOTSTRAP["cluster"]
    assert memory.fan_fallback == FAN_REFUSAL
    assert memory.initialised is True


def test_a_refusal_that_is_not_the_fans_blocks_naming_the_options(host: FakeHost) -> None:
    memory = Memory()
    lxd = PreseedLxd("Failed to create storage pool: no space")
    machine = machine_for(host, memory, fan_address="10.1.2.3", mode="cluster")
    with pytest.raises(BlockedError) as caught:
        machine.initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert str(caught.value) == "Failed to create storage pool: no space: fix lxd-init-*"
    assert len(lxd.preseeds) == 1
    assert memory.initialised is False
    assert memory.fan_fallback == ""


def test_a_fan_refusal_without_a_fan_is_not_retried(host: FakeHost) -> None:
    lxd = PreseedLxd(FAN_REFUSAL)
    with pytest.raises(BlockedError) as caught:
        machine_for(host, mode="cluster").initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert str(caught.value) == f"{FAN_REFUSAL}: fix lxd-init-*"
    assert len(lxd.preseeds) == 1


def test_an_operator_preseed_refused_over_the_fan_blocks_naming_it(host: FakeHost) -> None:
    lxd = PreseedLxd(FAN_REFUSAL)
    machine = machine_for(host, fan_address="10.1.2.3", mode="cluster", lxd_preseed="config: {}\n")
    with pytest.raises(BlockedError) as caught:
        machine.initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert str(caught.value) == f"{FAN_REFUSAL}: fix lxd-preseed"
    assert len(lxd.preseeds) == 1


def test_a_second_refusal_after_the_fallback_blocks(host: FakeHost) -> None:
    memory = Memory()
    lxd = PreseedLxd(FAN_REFUSAL, "no space")
    machine = machine_for(host, memory, fan_address="10.1.2.3", mode="cluster")
    with pytest.raises(BlockedError) as caught:
        machine.initialise(lxd, BOOTSTRAP)  # type: ignore[arg-type]
    assert str(caught.value) == "no space: fix lxd-init-*"
    assert memory.initialised is False
    assert memory.fan_fallback == ""


def test_options_that_cannot_make_a_preseed_block_with_their_words(host: FakeHost) -> None:
    machine = machine_for(host, block_device="/dev/sdb", lxd_init_storage_driver="dir")
    with pytest.raises(BlockedError) as caught:
        machine.initialise(PreseedLxd())  # type: ignore[arg-type]
    assert str(caught.value).startswith(
        "lxd-init-storage-driver=dir cannot use the attached block device /dev/sdb"
    )


def test_a_preseed_error_blocks_with_its_words(host: FakeHost) -> None:
    class Refusing(PreseedLxd):
        def apply_preseed(self, preseed: Mapping[str, Any]) -> None:
            raise PreseedError("the preseed is not a mapping")

    with pytest.raises(BlockedError) as caught:
        machine_for(host).initialise(Refusing())  # type: ignore[arg-type]
    assert str(caught.value) == "the preseed is not a mapping"


def test_extra_sections_other_than_config_replace_the_defaults(host: FakeHost) -> None:
    lxd = PreseedLxd()
    extra = {"config": {"core.https_address": ":8443"}, "networks": [{"name": "mine"}]}
    environ = {"JUJU_CHARM_NO_PROXY": "localhost"}
    machine_for(host, environ=environ).initialise(lxd, extra)  # type: ignore[arg-type]
    assert lxd.preseeds[0]["networks"] == [{"name": "mine"}]
    assert lxd.preseeds[0]["config"] == {
        "core.proxy_ignore_hosts": "localhost",
        "core.https_address": ":8443",
    }


def test_record_initialised_keeps_the_options(host: FakeHost) -> None:
    memory = Memory()
    machine_for(host, memory, mode="cluster", lxd_preseed="config: {}\n").record_initialised()
    assert memory.initialised is True
    assert memory.init_options == {"mode": "cluster", "lxd-preseed": "config: {}\n"}


# --- adoption -------------------------------------------------------------------------


def test_an_lxd_set_up_by_hand_is_adopted_and_said_so(host: FakeHost) -> None:
    from lxd_common.lxd import ExistingSetup

    host.fake_lxd.set_up_by_hand = ExistingSetup(storage_pools=("default",))
    memory = Memory()
    said = machine_for(host, memory).adopt_existing({})
    assert said == "storage pools default"
    assert memory.adopted == said
    assert memory.initialised is True
    assert memory.init_options == {"mode": "standalone", "lxd-preseed": ""}


def test_nothing_is_asked_once_initialised_and_nothing_adopted_from_a_fresh_lxd(
    host: FakeHost,
) -> None:
    assert machine_for(host, Memory(initialised=True)).adopt_existing({}) == ""
    assert host.fake_lxd.calls == 0
    memory = Memory()
    assert machine_for(host, memory).adopt_existing({}) == ""
    assert memory == Memory()
    assert host.fake_lxd.calls > 0


# --- the proxy, listeners, the kernel ----------------------------------------------------


def test_a_cleared_proxy_unsets_only_the_keys_still_as_we_set_them(host: FakeHost) -> None:
    memory = Memory(proxy={"core.proxy_http": "http://a", "core.proxy_https": "http://b"})
    lxd = PreseedLxd(config={"core.proxy_http": "http://a", "core.proxy_https": "changed"})
    machine_for(host, memory).undo_cleared_proxy(lxd)  # type: ignore[arg-type]
    assert lxd.set_calls == [{"core.proxy_http": None}]
    assert memory.proxy == {}


def test_a_proxy_still_set_or_never_set_is_left_alone(host: FakeHost) -> None:
    memory = Memory(proxy={"core.proxy_http": "http://a"})
    lxd = PreseedLxd(config={"core.proxy_http": "http://a"})
    environ = {"JUJU_CHARM_HTTP_PROXY": "http://a"}
    machine_for(host, memory, environ=environ).undo_cleared_proxy(lxd)  # type: ignore[arg-type]
    machine_for(host, Memory()).undo_cleared_proxy(lxd)  # type: ignore[arg-type]
    assert lxd.set_calls == []
    assert memory.proxy == {"core.proxy_http": "http://a"}


def plan(server_config: dict[str, str | None], missing: list[str] | None = None) -> ListenerPlan:
    return ListenerPlan(server_config, [], {}, missing or [])


def test_a_member_keeps_serving_the_api_on_its_cluster_address(host: FakeHost) -> None:
    lxd = PreseedLxd()
    machine = machine_for(host)
    machine.apply_listeners(lxd, plan({"core.https_address": None}), "10.0.0.1:8443")  # type: ignore[arg-type]
    machine.apply_listeners(lxd, plan({"core.https_address": "10.0.0.9:8443"}), "10.0.0.1:8443")  # type: ignore[arg-type]
    machine.apply_listeners(lxd, plan({"core.https_address": None}), "")  # type: ignore[arg-type]
    assert lxd.set_calls == [
        {"core.https_address": "10.0.0.1:8443"},
        {"core.https_address": "10.0.0.9:8443"},
        {"core.https_address": None},
    ]


def test_kernel_settings_follow_the_options_and_a_refusal_blocks(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = machine_for(host, sysctl_tuning=True, kernel_hardening=False)
    machine.apply_kernel_settings("lxd")
    assert (host.tuning.applied, host.hardened.applied) == ([True], [False])

    def refuse(enabled: bool) -> bool:
        raise SysctlError("read-only /proc/sys")

    monkeypatch.setattr(host.tuning, "apply", refuse)
    with pytest.raises(BlockedError) as caught:
        machine.apply_kernel_settings("lxd")
    assert str(caught.value) == "cannot apply kernel settings: read-only /proc/sys"


def test_a_listener_without_an_address_blocks_naming_the_first_option() -> None:
    require_listener_addresses(plan({}))
    with pytest.raises(BlockedError) as caught:
        require_listener_addresses(plan({}, ["https", "metrics"]))
    assert str(caught.value) == (
        "no address for the https, metrics endpoint: bind it to a space with a subnet on "
        "this machine, or turn lxd-listen-https off"
    )


@pytest.mark.parametrize(
    ("mode", "summary", "listeners", "message"),
    [
        ("standalone", "", {}, "standalone; no network listener"),
        ("standalone", "ignored", {}, "standalone; no network listener"),
        ("cluster", "", {}, "cluster; no network listener"),
        ("cluster", "3/3 members", {}, "cluster: 3/3 members; no network listener"),
        (
            "cluster",
            "3/3 members",
            {"metrics": "10.0.0.1:9100", "https": "10.0.0.1:8443"},
            "cluster: 3/3 members; https on 10.0.0.1:8443, metrics on 10.0.0.1:9100",
        ),
    ],
)
def test_the_active_message(
    mode: str, summary: str, listeners: dict[str, str], message: str
) -> None:
    assert active_message(mode, summary, listeners) == message


def test_the_block_device_is_the_one_given(host: FakeHost) -> None:
    assert machine_for(host, block_device="/dev/sdb").block_device == "/dev/sdb"
    assert machine_for(host).block_device is None
    assert isinstance(host.fake_lxd, FakeLxd)
