"""`lxd_common.sysctl`, one wrong answer each: refusals, the file it reads back, the logs.

Written for the mutants test_sysctl.py let through (docs/mutation.md): the
refusals of each backend call that fails with an OSError, comment and blank
lines in the sysctl file read back, a key the kernel already holds at the
production value, a sysctl file lost while the live values stay, the state
directory and /etc/tmpfiles.d already there, and the log lines that say
what changed (and are silent when nothing did). Every path is under tmp_path.
"""

from __future__ import annotations

import errno
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from lxd_common.errors import SysctlError
from lxd_common.sysctl import PRODUCTION_SYSCTL, CharmlibsSysctl, KernelHardening, SysctlTuning
from tests.harness.fake_sysctl import (
    DEFAULTS,
    FakeSysctl,
    FakeSysctlBackend,
    charmlibs_under,
    populate,
    proc_sys,
)

SYSCTL_LOGGER = "lxd_common.sysctl"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    populate(root)
    return root


@pytest.fixture
def fake_sysctl(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysctl:
    return charmlibs_under(root, monkeypatch)


def app_file(root: Path, app: str = "lxd") -> Path:
    return root / "etc" / "sysctl.d" / f"90-juju-{app}"


def denied_reading(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """`target` is there but cannot be read (EACCES), as for an unprivileged reader."""
    real = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)


def test_every_production_value_is_a_number_the_kernel_takes() -> None:
    """These keys take integers only; the kernel refuses anything else (the fakes do not)."""
    assert sorted(PRODUCTION_SYSCTL) == sorted(DEFAULTS)
    assert {key: value for key, value in PRODUCTION_SYSCTL.items() if not value.isdigit()} == {}


# --- CharmlibsSysctl's refusals ----------------------------------------------------------


def test_an_unreadable_kernel_key_is_refused_by_name(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = proc_sys(root, "vm.max_map_count")
    denied_reading(monkeypatch, path)
    with pytest.raises(SysctlError) as raised:
        CharmlibsSysctl(root).read("vm.max_map_count")
    assert str(raised.value) == (
        f"could not read the kernel's vm.max_map_count: [Errno 13] Permission denied: '{path}'"
    )


def test_an_unreadable_sysctl_file_is_refused_by_path(
    root: Path, fake_sysctl: FakeSysctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = app_file(root)
    path.write_text("# lxd\nvm.max_map_count=262144\n")
    denied_reading(monkeypatch, path)
    with pytest.raises(SysctlError) as raised:
        CharmlibsSysctl(root).persisted("lxd")
    assert str(raised.value) == (f"could not read {path}: [Errno 13] Permission denied: '{path}'")


def test_the_sysctl_file_read_back_skips_comments_and_blank_lines(
    root: Path, fake_sysctl: FakeSysctl
) -> None:
    app_file(root).write_text(
        "# lxd\n"
        "# vm.swappiness=10\n"
        "; kernel.pid_max=99\n"
        "\n"
        "no value here\n"
        " vm.max_map_count = 262144 \n"
        "fs.aio-max-nr=524288\n"
    )
    assert CharmlibsSysctl(root).persisted("lxd") == {
        "vm.max_map_count": "262144",
        "fs.aio-max-nr": "524288",
    }


def test_a_sysctl_file_that_cannot_be_written_is_refused_by_path(
    root: Path, fake_sysctl: FakeSysctl
) -> None:
    path = app_file(root)
    path.mkdir()  # something else holds the name: open(path, "w") fails with EISDIR
    with pytest.raises(SysctlError) as raised:
        CharmlibsSysctl(root).persist("lxd", {"vm.max_map_count": "262144"})
    assert str(raised.value) == f"could not write {path}: [Errno 21] Is a directory: '{path}'"


def test_a_sysctl_file_that_cannot_be_removed_is_refused_by_path(
    root: Path, fake_sysctl: FakeSysctl
) -> None:
    path = app_file(root)
    path.mkdir()
    with pytest.raises(SysctlError) as raised:
        CharmlibsSysctl(root).remove("lxd")
    assert str(raised.value) == f"could not remove {path}: [Errno 21] Is a directory: '{path}'"


# --- SysctlTuning's decisions --------------------------------------------------------


def test_the_state_directory_may_be_missing_or_already_there(root: Path, tmp_path: Path) -> None:
    deep = tmp_path / "agent" / "charm" / "state"  # two parents missing
    assert SysctlTuning("lxd", deep, backend=FakeSysctlBackend(root)).apply(True) is True
    assert json.loads((deep / "sysctl-tuning.json").read_text()) == {"originals": DEFAULTS}
    there = tmp_path / "there"
    there.mkdir()
    other = tmp_path / "other-root"
    populate(other)
    assert SysctlTuning("lxd", there, backend=FakeSysctlBackend(other)).apply(True) is True
    assert json.loads((there / "sysctl-tuning.json").read_text()) == {"originals": DEFAULTS}


def test_a_lost_sysctl_file_is_written_again_though_the_kernel_holds_the_values(
    root: Path, tmp_path: Path
) -> None:
    backend = FakeSysctlBackend(root)
    tuning = SysctlTuning("lxd", tmp_path / "state", backend=backend)
    assert tuning.apply(True) is True
    app_file(root).unlink()  # the live values stay, but would be lost at the next boot
    backend.calls.clear()
    assert tuning.apply(True) is True
    assert backend.calls == [("persist", "lxd", PRODUCTION_SYSCTL)]
    assert backend.persisted("lxd") == PRODUCTION_SYSCTL


def test_revert_writes_nothing_for_a_key_the_kernel_had_at_our_value(
    tmp_path: Path,
) -> None:
    """Original and tuned value are one: there is nothing to put back."""
    root = tmp_path / "root"
    populate(root, dict(DEFAULTS, **{"vm.max_map_count": PRODUCTION_SYSCTL["vm.max_map_count"]}))
    backend = FakeSysctlBackend(root)
    tuning = SysctlTuning("lxd", tmp_path / "state", backend=backend)
    tuning.apply(True)
    backend.calls.clear()
    assert tuning.apply(False) is True
    writes = [call for call in backend.calls if call[0] == "write"]
    assert [key for _, key, _ in writes] == sorted(k for k in DEFAULTS if k != "vm.max_map_count")
    assert all(value == DEFAULTS[key] for _, key, value in writes)


def test_revert_writes_nothing_for_a_key_the_kernel_lost(root: Path, tmp_path: Path) -> None:
    backend = FakeSysctlBackend(root)
    tuning = SysctlTuning("lxd", tmp_path / "state", backend=backend)
    tuning.apply(True)
    proc_sys(root, "vm.max_map_count").unlink()
    backend.calls.clear()
    assert tuning.apply(False) is True
    assert ("write", "vm.max_map_count", DEFAULTS["vm.max_map_count"]) not in backend.calls
    assert not proc_sys(root, "vm.max_map_count").exists()


class VanishingKey(FakeSysctlBackend):
    """A kernel whose `key` goes away after its first read (a module unloaded mid-hook)."""

    def __init__(self, root: Path, key: str) -> None:
        super().__init__(root)
        self.key = key
        self.reads = 0

    def read(self, key: str) -> str | None:
        if key == self.key:
            self.reads += 1
            if self.reads > 1:
                return None
        return super().read(key)


def test_a_key_that_vanishes_before_its_original_is_recorded_is_refused(
    root: Path, tmp_path: Path
) -> None:
    backend = VanishingKey(root, "vm.max_map_count")
    tuning = SysctlTuning("lxd", tmp_path / "state", backend=backend)
    with pytest.raises(SysctlError) as raised:
        tuning.apply(True)
    assert str(raised.value) == (
        "could not read the kernel's vm.max_map_count: it has no such key"
    )
    assert not (tmp_path / "state" / "sysctl-tuning.json").exists()
    assert backend.calls == []


def test_keys_this_kernel_lacks_are_logged_once_and_only_then(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc_sys(root, "net.ipv6.neigh.default.gc_thresh3").unlink()
    proc_sys(root, "fs.aio-max-nr").unlink()
    tuning = SysctlTuning("lxd", tmp_path / "state", backend=FakeSysctlBackend(root))
    with caplog.at_level(logging.INFO, logger=SYSCTL_LOGGER):
        tuning.apply(True)
    assert caplog.messages[0] == (
        "this kernel has no fs.aio-max-nr, net.ipv6.neigh.default.gc_thresh3; not tuning them"
    )
    complete = tmp_path / "complete"
    populate(complete)
    caplog.clear()
    tuning = SysctlTuning("lxd", tmp_path / "state2", backend=FakeSysctlBackend(complete))
    with caplog.at_level(logging.INFO, logger=SYSCTL_LOGGER):
        tuning.apply(True)
    assert [m for m in caplog.messages if m.startswith("this kernel has no")] == []


# --- KernelHardening --------------------------------------------------------------------


@pytest.fixture
def hardening_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    sched = root / "proc" / "sched_debug"
    sched.parent.mkdir(parents=True)
    sched.write_text("task names\n")
    sched.chmod(0o444)
    slab = root / "sys" / "kernel" / "slab"
    slab.mkdir(parents=True)
    slab.chmod(0o755)
    return root


def test_hardening_writes_its_entry_into_an_existing_tmpfiles_directory(
    hardening_root: Path, tmp_path: Path
) -> None:
    """Every systemd machine has /etc/tmpfiles.d already."""
    (hardening_root / "etc" / "tmpfiles.d").mkdir(parents=True)
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    assert hardening.apply(True) is True
    assert "z /proc/sched_debug 0400 - - -" in hardening.tmpfiles_conf.read_text().splitlines()


def test_hardening_logs_what_it_changed_and_nothing_when_nothing_did(
    hardening_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    with caplog.at_level(logging.INFO, logger=SYSCTL_LOGGER):
        hardening.apply(True)
        assert caplog.messages == ["hardened /proc/sched_debug, /sys/kernel/slab"]
        caplog.clear()
        hardening.apply(True)
        assert caplog.messages == []
        hardening.apply(False)
        assert caplog.messages == ["reverted kernel hardening"]
        caplog.clear()
        hardening.apply(False)
        assert caplog.messages == []


def test_a_tmpfiles_entry_that_cannot_be_removed_is_refused_by_path(
    hardening_root: Path, tmp_path: Path
) -> None:
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    conf = hardening.tmpfiles_conf
    conf.mkdir(parents=True)  # something else holds the name: unlink fails with EISDIR
    with pytest.raises(SysctlError) as raised:
        hardening.apply(False)
    assert str(raised.value) == f"could not remove {conf}: [Errno 21] Is a directory: '{conf}'"


def test_a_path_whose_mode_cannot_be_read_is_refused_by_name(
    hardening_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is there (listed in the directory), but stat says EACCES."""
    sched = hardening_root / "proc" / "sched_debug"
    real_stat = Path.stat
    real_exists = Path.exists

    def exists(self: Path, *args: Any, **kwargs: Any) -> bool:
        return True if self == sched else real_exists(self, *args, **kwargs)

    def path_stat(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == sched:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    monkeypatch.setattr(Path, "stat", path_stat)
    with pytest.raises(SysctlError) as raised:
        KernelHardening(tmp_path / "state", root=hardening_root).apply(True)
    assert str(raised.value) == (
        f"could not read the mode of /proc/sched_debug: [Errno 13] Permission denied: '{sched}'"
    )
    monkeypatch.undo()
    assert stat.S_IMODE(sched.stat().st_mode) == 0o444
