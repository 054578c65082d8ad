"""The `+` cohort, the refresh hold and refreshes in place, through the snapd seam.

snapd does not run here: `LxdSnap`'s decisions are checked against
`FakeSnapd`, and `CharmlibsSnapBackend` against what it hands charmlibs-snap
and the `snap` command (the flags snapd's CLI takes: `--cohort`,
`--leave-cohort`, `--amend`).
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import pytest
from charmlibs import snap as charmlibs_snap

from lxd_common.errors import SnapDowngradeError, SnapdUnavailableError, SnapError
from lxd_common.snap import COHORT, CharmlibsSnapBackend, InstalledSnap, LxdSnap
from tests.harness.fake_snapd import FakeSnapd

# --- LxdSnap over the fake ----------------------------------------------------------


def test_ensure_installs_in_the_cohort_only_when_asked() -> None:
    snapd = FakeSnapd()
    LxdSnap(snapd).ensure("5.21/stable", cohort=True)
    assert snapd.cohorts == {"lxd": COHORT} and COHORT == "+"
    alone = FakeSnapd()
    LxdSnap(alone).ensure("5.21/stable")
    assert alone.cohorts == {}


def test_ensure_auto_installs_from_the_store_in_the_cohort() -> None:
    snapd = FakeSnapd()
    LxdSnap(snapd).ensure("auto", cohort=True)
    assert snapd.calls == [("install", "lxd", None)] and snapd.cohorts == {"lxd": "+"}


def test_ensure_refreshes_a_channel_change_in_the_cohort() -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    assert LxdSnap(snapd).ensure("5.21/candidate", cohort=True)
    assert snapd.calls == [("refresh", "lxd", "5.21/candidate")]
    assert snapd.cohorts == {"lxd": "+"}


def test_ensure_without_refresh_leaves_an_installed_snap_where_it_is() -> None:
    """A cluster member moves only in a refresh round."""
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    assert LxdSnap(snapd).ensure("6/stable", refresh=False) is False
    assert snapd.calls == []
    assert LxdSnap(snapd).ensure("6/stable", refresh=False, cohort=True) is False
    fresh = FakeSnapd()
    assert LxdSnap(fresh).ensure("6/stable", refresh=False), "a missing snap is installed"


def test_ensure_without_refresh_still_takes_a_file_installed_snap_back_to_the_store(
    tmp_path: Path,
) -> None:
    """The operator detached the lxd-snap resource: that unit goes back to the store's LXD."""
    snapd = FakeSnapd()
    snap_file = tmp_path / "lxd.snap"
    snap_file.write_bytes(b"snap")
    lxd = LxdSnap(snapd)
    lxd.install_snap_file(snap_file)
    assert lxd.ensure("5.21/stable", refresh=False, cohort=True)
    assert snapd.calls[-1] == ("refresh", "lxd", "5.21/stable")
    assert snapd.cohorts == {"lxd": "+"}


def test_refresh_in_place_picks_up_a_newer_revision_only_when_there_is_one() -> None:
    snapd = FakeSnapd(versions={"5.21": "5.21.1"})
    lxd = LxdSnap(snapd)
    lxd.ensure("5.21/stable")
    before = lxd.installed()
    assert lxd.refresh(None, cohort=True) is False, "no newer revision: nothing changes"
    assert lxd.installed() == before
    snapd.publish("5.21", "5.21.3")
    assert lxd.refresh(None, cohort=True) is True
    after = lxd.installed()
    assert after is not None and before is not None
    assert (after.version, after.channel) == ("5.21.3", "5.21/stable")
    assert after.revision != before.revision
    assert snapd.calls[-1] == ("refresh", "lxd", "5.21/stable"), "on the channel it tracks"
    assert snapd.cohorts == {"lxd": "+"}


def test_refresh_to_a_channel_and_out_of_the_cohort() -> None:
    snapd = FakeSnapd()
    lxd = LxdSnap(snapd)
    lxd.ensure("5.21/stable", cohort=True)
    assert lxd.refresh("6", leave_cohort=True)
    assert snapd.calls[-1] == ("refresh", "lxd", "6/stable")
    assert snapd.cohorts == {}


def test_refresh_refuses_an_older_track_before_asking_snapd() -> None:
    snapd = FakeSnapd()
    lxd = LxdSnap(snapd)
    lxd.ensure("6/stable")
    with pytest.raises(SnapDowngradeError, match="set snap-channel back to 6/stable"):
        lxd.refresh("5.21/stable")
    with pytest.raises(SnapDowngradeError):
        lxd.refuse_older("5.21")
    lxd.refuse_older("6/candidate")
    lxd.refuse_older(None)
    assert snapd.calls == [("install", "lxd", "6/stable")]


def test_refresh_of_a_missing_snap_is_refused() -> None:
    with pytest.raises(SnapError, match="not installed"):
        LxdSnap(FakeSnapd()).refresh(None)


def test_refresh_failure_carries_snapds_words() -> None:
    snapd = FakeSnapd()
    lxd = LxdSnap(snapd)
    lxd.ensure("5.21/stable")
    snapd.fail_on("refresh", SnapError('cannot refresh "lxd": download failed'))
    with pytest.raises(SnapError, match="download failed"):
        lxd.refresh(None, cohort=True)


def test_set_hold_changes_only_what_differs() -> None:
    snapd = FakeSnapd()
    lxd = LxdSnap(snapd)
    assert lxd.set_hold(True) is False, "nothing installed: nothing to hold"
    lxd.ensure("5.21/stable")
    assert lxd.set_hold(True) is True
    assert lxd.set_hold(True) is False
    installed = lxd.installed()
    assert installed is not None and installed.held
    snapd.publish("5.21", "5.21.9")
    lxd.refresh(None)
    refreshed = lxd.installed()
    assert refreshed is not None and refreshed.held, "a refresh keeps the hold"
    assert lxd.set_hold(False) is True
    assert snapd.calls.count(("hold", "lxd")) == 1 and snapd.calls[-1] == ("unhold", "lxd")


# --- CharmlibsSnapBackend: what reaches charmlibs-snap and the snap command ----------


def _recording(seen: list[list[str]], returncode: int = 0, stderr: str = "") -> Any:
    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        assert kwargs["capture_output"] is True and kwargs["text"] is True
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    return run


def test_backend_installs_in_a_cohort_through_the_snap_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _recording(seen))
    monkeypatch.setattr(charmlibs_snap, "install", _fails("charmlibs-snap has no cohorts"))
    CharmlibsSnapBackend().install("lxd", "5.21/stable", cohort="+")
    assert seen == [["snap", "install", "--channel=5.21/stable", "--cohort=+", "lxd"]]


def test_backend_installs_without_a_cohort_through_charmlibs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, str | None]] = []
    monkeypatch.setattr(subprocess, "run", _fails("no command without a cohort"))
    monkeypatch.setattr(
        charmlibs_snap, "install", lambda name, channel: asked.append((name, channel))
    )
    CharmlibsSnapBackend().install("lxd", "5.21/stable")
    assert asked == [("lxd", "5.21/stable")]


@pytest.mark.parametrize(
    ("kwargs", "command"),
    [
        ({"cohort": "+"}, ["snap", "refresh", "--cohort=+", "--channel=5.21/stable", "lxd"]),
        (
            {"leave_cohort": True},
            ["snap", "refresh", "--leave-cohort", "--channel=5.21/stable", "lxd"],
        ),
        (
            {"amend": True, "cohort": "+"},
            ["snap", "refresh", "--amend", "--cohort=+", "--channel=5.21/stable", "lxd"],
        ),
        (
            {"cohort": "+", "leave_cohort": True},
            ["snap", "refresh", "--cohort=+", "--channel=5.21/stable", "lxd"],
        ),
    ],
)
def test_backend_refreshes_in_or_out_of_a_cohort_through_the_snap_command(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], command: list[str]
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _recording(seen))
    CharmlibsSnapBackend().refresh("lxd", "5.21/stable", **kwargs)
    assert seen == [command]


def test_backend_refresh_on_the_tracked_channel_names_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _recording(seen))
    CharmlibsSnapBackend().refresh("lxd", None, cohort="+")
    assert seen == [["snap", "refresh", "--cohort=+", "lxd"]]


@pytest.mark.parametrize(
    ("stderr", "unavailable"),
    [
        ('error: cannot refresh "lxd": snap "lxd" has running apps (lxc)\n', False),
        (
            'error: cannot communicate with server: Post "http://localhost/v2/snaps/lxd": '
            "dial unix /run/snapd.socket: connect: connection refused\n",
            True,
        ),
    ],
)
def test_backend_cohort_refresh_failure_keeps_snapds_words(
    monkeypatch: pytest.MonkeyPatch, stderr: str, unavailable: bool
) -> None:
    monkeypatch.setattr(subprocess, "run", _recording([], returncode=1, stderr=stderr))
    with pytest.raises(SnapError) as info:
        CharmlibsSnapBackend().refresh("lxd", "5.21/stable", cohort="+")
    assert stderr.strip() in str(info.value)
    assert isinstance(info.value, SnapdUnavailableError) is unavailable


def test_backend_cohort_command_timing_out_is_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(cmd: list[str], **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(SnapdUnavailableError):
        CharmlibsSnapBackend().install("lxd", None, cohort="+")


def test_backend_hold_and_unhold_go_through_charmlibs(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, ...]] = []
    monkeypatch.setattr(charmlibs_snap, "hold", lambda name: asked.append(("hold", name)))
    monkeypatch.setattr(charmlibs_snap, "unhold", lambda name: asked.append(("unhold", name)))
    CharmlibsSnapBackend().hold("lxd")
    CharmlibsSnapBackend().unhold("lxd")
    assert asked == [("hold", "lxd"), ("unhold", "lxd")]


def test_backend_hold_timing_out_is_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    def hold(name: str) -> None:
        raise charmlibs_snap.TimeoutError("timed out")

    monkeypatch.setattr(charmlibs_snap, "hold", hold)
    with pytest.raises(SnapdUnavailableError):
        CharmlibsSnapBackend().hold("lxd")


def test_backend_reports_a_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    forever = datetime.datetime(2318, 1, 1, tzinfo=datetime.timezone.utc)
    info = charmlibs_snap.InstalledInfo("lxd", False, "5.21/stable", "33110", "5.21.3", forever)
    monkeypatch.setattr(charmlibs_snap, "list_one", lambda name: info)
    assert CharmlibsSnapBackend().installed("lxd") == InstalledSnap(
        "lxd", "5.21/stable", "33110", "5.21.3", held=True
    )


def _fails(why: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(why)

    return fail
