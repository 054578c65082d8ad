"""`LxdSnap`'s decisions, one wrong answer each: cohorts, file installs, `auto`, config logs.

Each test is a pure check against `FakeSnapd`, written for a mutant that the
other snap tests let through (see docs/mutation.md): a refresh that joins a
cohort nobody asked for or leaves the one it is in, a file-installed snap
refreshed without `--amend`, `auto` on a snap that is already there, and the
config change that is logged only when something changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lxd_common.errors import SnapError
from lxd_common.snap import COHORT, LxdSnap
from tests.harness.fake_snapd import FakeSnapd

SNAP_LOGGER = "lxd_common.snap._lxd_snap"


def file_installed(tmp_path: Path, snapd: FakeSnapd) -> LxdSnap:
    """LXD installed from a local `.snap` (revision `x1`, tracking no channel)."""
    snap_file = tmp_path / "lxd.snap"
    snap_file.write_bytes(b"snap")
    lxd = LxdSnap(snapd)
    lxd.install_snap_file(snap_file)
    installed = lxd.installed()
    assert installed is not None and installed.revision.startswith("x")
    assert installed.channel == ""
    return lxd


# --- cohorts ------------------------------------------------------------------------


def test_ensure_refreshing_outside_a_cohort_joins_none() -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    assert LxdSnap(snapd).ensure("5.21/candidate") is True
    assert snapd.calls == [("refresh", "lxd", "5.21/candidate")]
    assert snapd.cohorts == {}


def test_refresh_without_leave_cohort_keeps_the_cohort() -> None:
    """A member refreshed without the cohort flag stays where it is, in `+`."""
    snapd = FakeSnapd()
    lxd = LxdSnap(snapd)
    lxd.ensure("5.21/stable", cohort=True)
    assert lxd.refresh("6") is True
    assert snapd.calls[-1] == ("refresh", "lxd", "6/stable")
    assert snapd.cohorts == {"lxd": COHORT}
    assert lxd.refresh("6/candidate", leave_cohort=False) is True
    assert snapd.cohorts == {"lxd": COHORT}


def test_refresh_in_the_cohort_never_leaves_it_even_when_asked() -> None:
    snapd = FakeSnapd()
    lxd = LxdSnap(snapd)
    lxd.ensure("5.21/stable", cohort=True)
    assert lxd.refresh("6", cohort=True, leave_cohort=True) is True
    assert snapd.cohorts == {"lxd": COHORT}


# --- a snap installed from a file ---------------------------------------------------


def test_refresh_of_a_file_installed_snap_amends_it(tmp_path: Path) -> None:
    """snapd refuses to refresh a local snap without `--amend` ("unknown to the store")."""
    snapd = FakeSnapd()
    lxd = file_installed(tmp_path, snapd)
    assert lxd.refresh("5.21/stable") is True
    assert snapd.calls[-1] == ("refresh", "lxd", "5.21/stable")
    after = lxd.installed()
    assert after is not None and after.channel == "5.21/stable"


# --- snap-channel=auto --------------------------------------------------------------


def test_auto_takes_a_file_installed_snap_back_to_the_default_channel(tmp_path: Path) -> None:
    snapd = FakeSnapd(default_channel="6/stable", lxd_installer="5.21/stable")
    lxd = file_installed(tmp_path, snapd)
    assert lxd.ensure("auto") is True
    assert snapd.calls[-1] == ("refresh", "lxd", None)
    after = lxd.installed()
    assert after is not None and after.channel == "6/stable"
    assert lxd.ensure("auto") is False, "back in the store: auto moves nothing"
    assert snapd.calls[-1] == ("refresh", "lxd", None)
    assert len(snapd.calls) == 2


def test_auto_leaves_a_store_snap_alone_without_lxd_installer() -> None:
    snapd = FakeSnapd(default_channel="6/stable")
    snapd.seed("lxd", "5.0/stable")
    assert LxdSnap(snapd).ensure("auto") is False
    assert snapd.calls == []


def test_auto_runs_lxd_installer_and_says_it_installed() -> None:
    snapd = FakeSnapd(lxd_installer="5.21/stable")
    assert LxdSnap(snapd).ensure("auto") is True
    assert snapd.calls == [("run_installer", "lxd")]
    installed = snapd.snaps["lxd"]
    assert installed.channel == "5.21/stable"


def test_auto_from_the_store_says_it_installed_and_joins_no_cohort() -> None:
    snapd = FakeSnapd(default_channel="6/stable")
    assert LxdSnap(snapd).ensure("auto") is True
    assert snapd.calls == [("install", "lxd", None)]
    assert snapd.cohorts == {}


# --- config and restarts ------------------------------------------------------------


def test_set_config_logs_what_it_changed_and_nothing_when_nothing_did(
    caplog: pytest.LogCaptureFixture,
) -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    lxd = LxdSnap(snapd)
    with caplog.at_level(logging.INFO, logger=SNAP_LOGGER):
        assert lxd.set_config({"daemon-debug": True, "lxcfs-cfs": False}) == [
            "daemon.debug",
            "lxcfs.cfs",
        ]
    assert [r.getMessage() for r in caplog.records] == [
        "changed snap lxd config: daemon.debug, lxcfs.cfs"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=SNAP_LOGGER):
        assert lxd.set_config({"daemon-debug": True, "lxcfs-cfs": False}) == []
    assert caplog.records == []


def test_restart_restarts_lxd_through_snapd() -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    LxdSnap(snapd).restart()
    assert snapd.calls == [("restart", "lxd")]
    assert snapd.restarts == ["lxd"]


def test_restart_failure_is_snapds() -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    snapd.fail_on("restart", SnapError('error: cannot restart "lxd": daemon not found'))
    with pytest.raises(SnapError) as raised:
        LxdSnap(snapd).restart()
    assert str(raised.value) == 'error: cannot restart "lxd": daemon not found'
