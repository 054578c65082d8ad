"""`lxd_charm.host.Host`, the production machine behind the seam the unit tests replace.

Every other unit test runs on `FakeHost`, which overrides what talks to the
machine (LXD, the snap's restart, the kernel), so the real `Host` is checked
here on its own: which daemon directory and log it reads, where the snap
looks for a sideloaded binary, where the charm's state lives (it must
survive hooks and upgrades), and that each seam reaches the real library
with this host's settings.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from lxd_charm.host import STATE_DIR, Host, make_host
from lxd_common.lxd import SNAP_SOCKET, LxdClient
from lxd_common.snap import DEBUG_BINARY, CharmlibsSnapBackend, LxdSnap
from lxd_common.sysctl import KernelHardening, SysctlTuning
from tests.harness.fake_snapd import FakeSnapd
from tests.harness.fake_sysctl import fake_kernel


def _host(**kwargs: Any) -> Host:
    """A real `Host` on a stand-in snapd (`Host()` alone would reach the real one)."""
    snapd = FakeSnapd()
    snapd.seed("lxd", "latest/stable")
    return Host(snap=LxdSnap(snapd), **kwargs)


# --- production defaults ------------------------------------------------------------


def test_the_real_host_acts_on_this_machine_with_the_real_snapd() -> None:
    host = make_host()
    assert isinstance(host, Host)
    assert host.root == Path("/")
    assert host.state_dir == STATE_DIR
    assert host.hostname == socket.gethostname()
    assert isinstance(host.snap, LxdSnap)
    assert isinstance(host.snap.backend, CharmlibsSnapBackend)
    assert host.snap.name == "lxd"


def test_the_state_directory_is_where_earlier_revisions_kept_it() -> None:
    # The kernel's original sysctl values and file modes are kept there, to be put
    # back when the option is turned off, possibly by a later revision: it must be
    # absolute (a hook's working directory is the charm's, which a refresh
    # replaces) and must not move between revisions.
    assert STATE_DIR.is_absolute()
    assert Path("/var/lib/lxd-charm") == STATE_DIR


def test_the_debug_binary_is_where_the_snap_looks_for_it() -> None:
    assert _host().debug_binary == DEBUG_BINARY


def test_the_debug_binary_is_under_the_root(tmp_path: Path) -> None:
    assert _host(root=tmp_path).debug_binary == tmp_path / "var/snap/lxd/common/lxd.debug"


def test_unpacked_resources_are_kept_in_the_state_directory(tmp_path: Path) -> None:
    sideload = _host(state_dir=tmp_path).sideload_dir
    assert sideload.parent == tmp_path
    # Beside, not over, the state files the kernel settings keep there.
    assert sideload.name not in {SysctlTuning.STATE_FILE, KernelHardening.STATE_FILE}


# --- which daemon ---------------------------------------------------------------------


def test_without_lxd_dir_the_daemon_is_the_snaps(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same daemon the client finds first after LXD_DIR: the snap's socket.
    monkeypatch.delenv("LXD_DIR", raising=False)
    assert _host().lxd_dir == SNAP_SOCKET.parent


def test_an_empty_lxd_dir_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXD_DIR", "")
    assert _host().lxd_dir == SNAP_SOCKET.parent


def test_lxd_dir_names_the_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXD_DIR", str(tmp_path / "n1"))
    assert _host().lxd_dir == tmp_path / "n1"


def test_a_given_daemon_directory_wins_over_lxd_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LXD_DIR", str(tmp_path / "n1"))
    assert _host(daemon_dir=tmp_path / "n2").lxd_dir == tmp_path / "n2"


def test_the_log_is_where_the_snaps_daemon_writes_it(tmp_path: Path) -> None:
    # The snap's daemon runs with `--logfile $SNAP_COMMON/lxd/logs/lxd.log`, that is
    # logs/lxd.log in its directory (tests/harness/lxd_daemons.py logs the same way).
    assert _host(daemon_dir=tmp_path).lxd_log == tmp_path / "logs" / "lxd.log"


# --- the seams --------------------------------------------------------------------------


def test_connecting_waits_as_long_as_the_host_says(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []
    client = object()

    def local(wait: float) -> object:
        asked.append(wait)
        return client

    monkeypatch.setattr(LxdClient, "local", local)
    assert _host(lxd_wait=7.5).lxd() is client
    assert asked == [7.5]


def test_restarting_lxd_restarts_the_snap() -> None:
    host = _host()
    host.restart_lxd()
    assert isinstance(host.snap.backend, FakeSnapd)
    assert host.snap.backend.restarts == ["lxd"]


def test_tuning_is_for_this_application_under_this_root_and_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, state = tmp_path / "root", tmp_path / "state"
    fake_kernel(root, monkeypatch)
    tuning = _host(root=root, state_dir=state).sysctl("lxd-a")
    assert isinstance(tuning, SysctlTuning)
    assert tuning.app_name == "lxd-a"
    assert tuning.apply(True) is True
    assert (root / "etc/sysctl.d/90-juju-lxd-a").is_file()
    assert (state / SysctlTuning.STATE_FILE).is_file()


def test_hardening_is_under_this_root_and_state_directory(tmp_path: Path) -> None:
    root, state = tmp_path / "root", tmp_path / "state"
    sched_debug = root / "proc" / "sched_debug"
    sched_debug.parent.mkdir(parents=True)
    sched_debug.write_text("")
    sched_debug.chmod(0o444)
    hardening = _host(root=root, state_dir=state).hardening()
    assert isinstance(hardening, KernelHardening)
    assert hardening.apply(True) is True
    assert stat.S_IMODE(sched_debug.stat().st_mode) == 0o400
    assert (state / KernelHardening.STATE_FILE).is_file()
    assert hardening.tmpfiles_conf.is_relative_to(root)
