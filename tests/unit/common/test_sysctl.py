"""Unit tests for lxd_common.sysctl, under tmp_path with a fake `sysctl` command.

Nothing here touches the real /etc, /proc or /sys: every path is resolved under
a temporary root. Most tests run the production backend on the real
charmlibs-sysctl, which the harness points under that root with its `sysctl`
subprocess replaced by a fake that reads and writes `<root>/proc/sys`; the
same scenarios then run on the harness's `FakeSysctlBackend`, so the fake is
held to what the library does.
"""

from __future__ import annotations

import json
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from charmlibs.sysctl import _sysctl as charmlibs_impl

from lxd_common.errors import SysctlError
from lxd_common.sysctl import (
    HARDENED_PATHS,
    PRODUCTION_SYSCTL,
    TMPFILES_CONF,
    CharmlibsSysctl,
    KernelHardening,
    SysctlTuning,
)
from tests.harness.fake_sysctl import (
    DEFAULTS,
    FakeSysctl,
    FakeSysctlBackend,
    charmlibs_under,
    populate,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    populate(root)
    return root


@pytest.fixture
def fake_sysctl(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysctl:
    return charmlibs_under(root, monkeypatch)


@pytest.fixture
def tuning(root: Path, tmp_path: Path, fake_sysctl: FakeSysctl) -> SysctlTuning:
    return SysctlTuning("lxd", tmp_path / "state", root=root)


def live(fake: FakeSysctl) -> dict[str, str]:
    return {key: fake.read(key) for key in DEFAULTS}


def test_production_values() -> None:
    assert set(PRODUCTION_SYSCTL) == set(DEFAULTS)
    assert PRODUCTION_SYSCTL["vm.max_map_count"] == "262144"
    assert PRODUCTION_SYSCTL["kernel.dmesg_restrict"] == "1"


def test_apply_tunes_and_records_originals(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path, tmp_path: Path
) -> None:
    assert tuning.apply(True) is True
    assert live(fake_sysctl) == PRODUCTION_SYSCTL
    charm_file = root / "etc" / "sysctl.d" / "90-juju-lxd"
    assert charm_file.read_text().splitlines()[1:] == [
        f"{k}={v}" for k, v in PRODUCTION_SYSCTL.items()
    ]
    merged = (root / "etc" / "sysctl.d" / "95-juju-sysctl.conf").read_text()
    assert "vm.max_map_count=262144" in merged
    state = json.loads((tmp_path / "state" / "sysctl-tuning.json").read_text())
    assert state == {"originals": DEFAULTS}
    # The library's constants are as the harness set them: production never assigns them.
    assert root / "etc" / "sysctl.d" == charmlibs_impl.SYSCTL_DIRECTORY
    assert root / "etc" / "sysctl.d" / "95-juju-sysctl.conf" == charmlibs_impl.SYSCTL_FILENAME
    assert isinstance(tuning.backend, CharmlibsSysctl)


def test_apply_twice_is_a_noop(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, tmp_path: Path
) -> None:
    tuning.apply(True)
    fake_sysctl.calls.clear()
    assert tuning.apply(True) is False
    assert fake_sysctl.calls == []
    state = json.loads((tmp_path / "state" / "sysctl-tuning.json").read_text())
    assert state["originals"] == DEFAULTS  # not the tuned values


def test_apply_again_after_drift_reapplies_keeping_originals(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, tmp_path: Path
) -> None:
    tuning.apply(True)
    fake_sysctl.path("vm.max_map_count").write_text("65530\n")  # e.g. after a reboot
    assert tuning.apply(True) is True
    assert fake_sysctl.read("vm.max_map_count") == "262144"
    state = json.loads((tmp_path / "state" / "sysctl-tuning.json").read_text())
    assert state["originals"] == DEFAULTS


def test_revert_restores_originals(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path, tmp_path: Path
) -> None:
    tuning.apply(True)
    assert tuning.apply(False) is True
    assert live(fake_sysctl) == DEFAULTS
    assert not (root / "etc" / "sysctl.d" / "90-juju-lxd").exists()
    assert not (tmp_path / "state" / "sysctl-tuning.json").exists()
    assert tuning.apply(False) is False


def test_revert_when_never_applied(tuning: SysctlTuning, fake_sysctl: FakeSysctl) -> None:
    assert tuning.apply(False) is False
    assert live(fake_sysctl) == DEFAULTS
    assert fake_sysctl.calls == []


def test_revert_leaves_values_changed_since(tuning: SysctlTuning, fake_sysctl: FakeSysctl) -> None:
    tuning.apply(True)
    fake_sysctl.path("vm.max_map_count").write_text("99999\n")
    tuning.apply(False)
    assert fake_sysctl.read("vm.max_map_count") == "99999"
    assert fake_sysctl.read("fs.aio-max-nr") == DEFAULTS["fs.aio-max-nr"]


def test_revert_leaves_keys_another_app_still_sets(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path
) -> None:
    sysctl_d = root / "etc" / "sysctl.d"
    sysctl_d.mkdir(parents=True, exist_ok=True)
    (sysctl_d / "90-juju-other").write_text("# other\nvm.max_map_count=262144\n")
    tuning.apply(True)
    tuning.apply(False)
    assert fake_sysctl.read("vm.max_map_count") == "262144"
    assert fake_sysctl.read("fs.aio-max-nr") == DEFAULTS["fs.aio-max-nr"]
    assert "vm.max_map_count=262144" in (sysctl_d / "95-juju-sysctl.conf").read_text()


def test_revert_without_state_removes_file(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path, tmp_path: Path
) -> None:
    tuning.apply(True)
    (tmp_path / "state" / "sysctl-tuning.json").unlink()
    assert tuning.apply(False) is True
    assert not (root / "etc" / "sysctl.d" / "90-juju-lxd").exists()


def test_keys_missing_from_kernel_are_skipped(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path
) -> None:
    fake_sysctl.path("net.ipv6.neigh.default.gc_thresh3").unlink()
    assert tuning.apply(True) is True
    text = (root / "etc" / "sysctl.d" / "90-juju-lxd").read_text()
    assert "net.ipv6" not in text
    assert "net.ipv4.neigh.default.gc_thresh3=8192" in text
    assert tuning.apply(False) is True


def test_permission_denied_is_sysctl_error(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path
) -> None:
    fake_sysctl.denied.add("kernel.dmesg_restrict")
    with pytest.raises(SysctlError, match=r"kernel\.dmesg_restrict") as info:
        tuning.apply(True)
    assert "vm.max_map_count" in str(info.value)
    # charmlibs-sysctl rolled the live values back; nothing was persisted.
    assert fake_sysctl.read("vm.max_map_count") == DEFAULTS["vm.max_map_count"]
    assert not (root / "etc" / "sysctl.d" / "90-juju-lxd").exists()


def test_conflict_with_another_app_is_sysctl_error(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path
) -> None:
    sysctl_d = root / "etc" / "sysctl.d"
    sysctl_d.mkdir(parents=True, exist_ok=True)
    (sysctl_d / "95-juju-sysctl.conf").write_text("vm.max_map_count=1\n")
    with pytest.raises(SysctlError, match=r"Validation error.*vm\.max_map_count"):
        tuning.apply(True)


def test_command_failure_is_sysctl_error(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, root: Path
) -> None:
    fake_sysctl.broken = True
    with pytest.raises(SysctlError, match="fake failure"):
        tuning.apply(True)
    assert root / "etc" / "sysctl.d" == charmlibs_impl.SYSCTL_DIRECTORY


def test_write_failure_on_restore_is_sysctl_error(
    tuning: SysctlTuning, fake_sysctl: FakeSysctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuning.apply(True)
    real_write = Path.write_text

    def write_text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if self.name == "max_map_count":
            raise PermissionError(13, "Permission denied")
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(SysctlError, match=r"could not restore vm\.max_map_count to 65530"):
        tuning.apply(False)


def test_refuses_real_sysctl_under_another_root(root: Path, tmp_path: Path) -> None:
    assert getattr(charmlibs_impl, "check_output") is subprocess.check_output  # noqa: B009
    with pytest.raises(SysctlError, match="real sysctl"):
        SysctlTuning("lxd", tmp_path / "state", root=root).apply(True)
    with pytest.raises(SysctlError, match="real sysctl"):
        SysctlTuning("lxd", tmp_path / "state", root=root).apply(False)
    assert Path("/etc/sysctl.d") == charmlibs_impl.SYSCTL_DIRECTORY
    assert not (root / "etc").exists()
    assert {key: (root / "proc/sys" / Path(*key.split("."))).read_text() for key in DEFAULTS} == {
        key: f"{value}\n" for key, value in DEFAULTS.items()
    }


def test_corrupt_state_file(tuning: SysctlTuning, tmp_path: Path) -> None:
    state = tmp_path / "state" / "sysctl-tuning.json"
    state.parent.mkdir()
    state.write_text("{not json")
    with pytest.raises(SysctlError, match="cannot read state file"):
        tuning.apply(True)
    state.write_text("[]")
    with pytest.raises(SysctlError, match="does not hold a JSON object"):
        tuning.apply(True)


def test_custom_settings(root: Path, tmp_path: Path, fake_sysctl: FakeSysctl) -> None:
    tuning = SysctlTuning("lxd", tmp_path / "state", root=root, settings={"vm.max_map_count": "5"})
    tuning.apply(True)
    assert fake_sysctl.read("vm.max_map_count") == "5"
    assert fake_sysctl.read("fs.aio-max-nr") == DEFAULTS["fs.aio-max-nr"]


# --- both backends: the library and the harness's fake ----------------------------


@dataclass
class Machine:
    """A tuning on one backend, with what the test can see and steer of that backend."""

    tuning: SysctlTuning
    root: Path
    calls: list[Any]
    denied: set[str]

    def read(self, key: str) -> str:
        return (self.root / "proc" / "sys" / Path(*key.split("."))).read_text().strip()

    def live(self) -> dict[str, str]:
        return {key: self.read(key) for key in DEFAULTS}

    def app_file(self, app: str = "lxd") -> Path:
        return self.root / "etc" / "sysctl.d" / f"90-juju-{app}"


@pytest.fixture(params=["charmlibs", "fake"])
def machine(
    request: pytest.FixtureRequest, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Machine:
    if request.param == "charmlibs":
        command = charmlibs_under(root, monkeypatch)
        tuning = SysctlTuning("lxd", tmp_path / "state", root=root)
        return Machine(tuning, root, command.calls, command.denied)
    backend = FakeSysctlBackend(root)
    # `root` is deliberately not given: everything goes through the backend.
    tuning = SysctlTuning("lxd", tmp_path / "state", backend=backend)
    assert tuning.backend is backend
    return Machine(tuning, root, backend.calls, backend.denied)


def test_backends_apply_noop_revert(machine: Machine, tmp_path: Path) -> None:
    assert machine.tuning.apply(True) is True
    assert machine.live() == PRODUCTION_SYSCTL
    assert machine.app_file().read_text().splitlines() == [
        "# lxd",
        *(f"{k}={v}" for k, v in PRODUCTION_SYSCTL.items()),
    ]
    state = tmp_path / "state" / "sysctl-tuning.json"
    assert json.loads(state.read_text()) == {"originals": DEFAULTS}
    machine.calls.clear()
    assert machine.tuning.apply(True) is False
    assert machine.calls == []
    assert machine.tuning.apply(False) is True
    assert machine.live() == DEFAULTS
    assert not machine.app_file().exists()
    assert not state.exists()
    machine.calls.clear()
    assert machine.tuning.apply(False) is False
    assert machine.calls == []
    # The library's constants are as the harness left them (real ones for the fake).
    harnessed = isinstance(machine.tuning.backend, CharmlibsSysctl)
    expected = machine.root / "etc/sysctl.d" if harnessed else Path("/etc/sysctl.d")
    assert expected == charmlibs_impl.SYSCTL_DIRECTORY


def test_backends_reapply_after_drift(machine: Machine, tmp_path: Path) -> None:
    machine.tuning.apply(True)
    (machine.root / "proc/sys/vm/max_map_count").write_text("65530\n")
    assert machine.tuning.apply(True) is True
    assert machine.read("vm.max_map_count") == "262144"
    state = json.loads((tmp_path / "state" / "sysctl-tuning.json").read_text())
    assert state["originals"] == DEFAULTS


def test_backends_revert_leaves_what_others_own(machine: Machine) -> None:
    other = machine.app_file("other")
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("# other\nvm.max_map_count=262144\n")
    machine.tuning.apply(True)
    (machine.root / "proc/sys/fs/aio-max-nr").write_text("99999\n")
    assert machine.tuning.apply(False) is True
    assert machine.read("vm.max_map_count") == "262144"  # the other app still sets it
    assert machine.read("fs.aio-max-nr") == "99999"  # changed since tuning
    assert machine.read("kernel.keys.maxkeys") == DEFAULTS["kernel.keys.maxkeys"]
    assert other.exists()


def test_backends_refusals(machine: Machine) -> None:
    machine.denied.add("kernel.dmesg_restrict")
    with pytest.raises(SysctlError, match=r"kernel\.dmesg_restrict") as info:
        machine.tuning.apply(True)
    assert "vm.max_map_count" in str(info.value)
    assert machine.live() == DEFAULTS
    assert not machine.app_file().exists()
    machine.denied.clear()
    other = machine.app_file("other")
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("# other\nvm.max_map_count=1\n")
    if isinstance(machine.tuning.backend, CharmlibsSysctl):
        # The library validates against its merged file, which only it writes.
        (other.parent / "95-juju-sysctl.conf").write_text("vm.max_map_count=1\n")
    with pytest.raises(SysctlError, match=r"Validation error.*vm\.max_map_count"):
        machine.tuning.apply(True)
    assert machine.live() == DEFAULTS


def test_backends_skip_missing_keys(machine: Machine) -> None:
    (machine.root / "proc/sys/net/ipv6/neigh/default/gc_thresh3").unlink()
    assert machine.tuning.apply(True) is True
    text = machine.app_file().read_text()
    assert "net.ipv6" not in text
    assert "net.ipv4.neigh.default.gc_thresh3=8192" in text
    assert machine.tuning.apply(False) is True
    assert machine.read("vm.max_map_count") == DEFAULTS["vm.max_map_count"]


# --- kernel hardening -----------------------------------------------------------


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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_hardened_paths() -> None:
    assert {Path("/proc/sched_debug"): 0o400, Path("/sys/kernel/slab"): 0o700} == HARDENED_PATHS
    assert Path("/etc/tmpfiles.d/lxd-charm-hardening.conf") == TMPFILES_CONF


def test_hardening_apply_and_revert(hardening_root: Path, tmp_path: Path) -> None:
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    sched = hardening_root / "proc" / "sched_debug"
    slab = hardening_root / "sys" / "kernel" / "slab"
    conf = hardening_root / "etc" / "tmpfiles.d" / "lxd-charm-hardening.conf"

    assert hardening.apply(True) is True
    assert mode(sched) == 0o400
    assert mode(slab) == 0o700
    assert hardening.tmpfiles_conf == conf
    lines = [line for line in conf.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["z /proc/sched_debug 0400 - - -", "z /sys/kernel/slab 0700 - - -"]
    state = json.loads((tmp_path / "state" / "kernel-hardening.json").read_text())
    assert state == {"modes": {"/proc/sched_debug": 0o444, "/sys/kernel/slab": 0o755}}

    assert hardening.apply(True) is False  # idempotent
    state = json.loads((tmp_path / "state" / "kernel-hardening.json").read_text())
    assert state["modes"]["/proc/sched_debug"] == 0o444  # originals kept, not re-recorded

    assert hardening.apply(False) is True
    assert mode(sched) == 0o444
    assert mode(slab) == 0o755
    assert not conf.exists()
    assert not (tmp_path / "state" / "kernel-hardening.json").exists()
    assert hardening.apply(False) is False


def test_hardening_reapplies_after_reboot(hardening_root: Path, tmp_path: Path) -> None:
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    hardening.apply(True)
    sched = hardening_root / "proc" / "sched_debug"
    sched.chmod(0o444)  # a fresh /proc
    assert hardening.apply(True) is True
    assert mode(sched) == 0o400
    hardening.apply(False)
    assert mode(sched) == 0o444


def test_hardening_skips_missing_paths(hardening_root: Path, tmp_path: Path) -> None:
    (hardening_root / "proc" / "sched_debug").unlink()
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    assert hardening.apply(True) is True
    assert not (hardening_root / "proc" / "sched_debug").exists()
    assert mode(hardening_root / "sys" / "kernel" / "slab") == 0o700
    state = json.loads((tmp_path / "state" / "kernel-hardening.json").read_text())
    assert state == {"modes": {"/sys/kernel/slab": 0o755}}
    assert hardening.apply(False) is True
    assert mode(hardening_root / "sys" / "kernel" / "slab") == 0o755


def test_hardening_nothing_present(tmp_path: Path) -> None:
    hardening = KernelHardening(tmp_path / "state", root=tmp_path / "empty")
    assert hardening.apply(True) is True  # only the tmpfiles entry
    assert hardening.tmpfiles_conf.exists()
    assert hardening.apply(True) is False
    assert hardening.apply(False) is True


def test_hardening_chmod_failure(
    hardening_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def chmod(self: Path, mode: int, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", chmod)
    with pytest.raises(SysctlError, match=r"could not set /proc/sched_debug to mode 0400"):
        KernelHardening(tmp_path / "state", root=hardening_root).apply(True)


def test_hardening_tmpfiles_failure(hardening_root: Path, tmp_path: Path) -> None:
    (hardening_root / "etc").mkdir()
    (hardening_root / "etc" / "tmpfiles.d").write_text("not a directory")
    hardening = KernelHardening(tmp_path / "state", root=hardening_root)
    with pytest.raises(SysctlError, match="could not write"):
        hardening.apply(True)


def test_hardening_state_write_failure(
    hardening_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replace(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", replace)
    with pytest.raises(SysctlError, match=r"cannot write state file.*No space left"):
        KernelHardening(tmp_path / "state", root=hardening_root).apply(True)
    # Nothing was hardened without the originals safely recorded.
    assert mode(hardening_root / "proc" / "sched_debug") == 0o444
