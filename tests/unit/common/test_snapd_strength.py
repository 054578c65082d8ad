"""`lxd_common.snap._snapd`, one wrong answer each: the `snap` command, lxd-installer, words.

Written for the mutants test_snap.py and test_snap_cohort.py let through
(docs/mutation.md). Those tests stand a function in for `subprocess.run`, so
what the real call does with its arguments went unseen (`check=`, `text=`,
what a failed command printed where); here the `snap` command and the
lxd-installer wrapper are real executable scripts, found through a search
path of their own, so the pipes, the exit status and the decoding are
real. No snapd is involved: the scripts only print and exit as the `snap`
command does when snapd refuses.
"""

from __future__ import annotations

import inspect
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from charmlibs import snap as charmlibs_snap

from lxd_common.errors import SnapdUnavailableError, SnapError
from lxd_common.snap import CharmlibsSnapBackend, SnapBackend
from lxd_common.snap import _snapd as snapd_module
from tests.harness.fake_snapd import FakeSnapd

UNREACHABLE = (
    'error: cannot communicate with server: Post "http://localhost/v2/snaps/lxd": '
    "dial unix /run/snapd.socket: connect: connection refused"
)


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


def script(path: Path, body: str) -> Path:
    """An executable shell script at `path`."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A search path holding only what a test puts there (a `snap` script, say)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


# --- the snap command (cohorts, --amend) ---------------------------------------------


def test_a_cohort_install_runs_the_snap_command_with_its_arguments(
    bindir: Path, tmp_path: Path
) -> None:
    record = tmp_path / "args"
    script(bindir / "snap", f"printf '%s\\n' \"$@\" > {record}")
    CharmlibsSnapBackend().install("lxd", "5.21/stable", cohort="+")
    assert record.read_text().splitlines() == [
        "install",
        "--channel=5.21/stable",
        "--cohort=+",
        "lxd",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cohort": "+"}, "could not refresh snap 'lxd'"),
        ({"leave_cohort": True}, "could not refresh snap 'lxd'"),
        ({"amend": True}, "could not move snap 'lxd' back to the store"),
    ],
)
def test_a_refused_refresh_says_what_it_could_not_do_with_snapds_words(
    bindir: Path, kwargs: dict[str, Any], message: str
) -> None:
    script(bindir / "snap", "echo 'error: snap \"lxd\" has running apps (lxc)' >&2; exit 1")
    with pytest.raises(
        SnapError, match=exactly(f'{message}: error: snap "lxd" has running apps (lxc)')
    ) as caught:
        CharmlibsSnapBackend().refresh("lxd", "5.21/stable", **kwargs)
    assert not isinstance(caught.value, SnapdUnavailableError)


def test_a_refusal_printed_on_stdout_is_kept(bindir: Path) -> None:
    script(bindir / "snap", "echo 'error: no snap revision on channel'; exit 1")
    with pytest.raises(
        SnapError,
        match=exactly("could not refresh snap 'lxd': error: no snap revision on channel"),
    ):
        CharmlibsSnapBackend().refresh("lxd", "9.9/stable", cohort="+")


def test_a_silent_failure_gives_its_exit_status(bindir: Path) -> None:
    script(bindir / "snap", "exit 3")
    with pytest.raises(
        SnapError, match=exactly("could not install snap 'lxd' in cohort '+': exit 3")
    ):
        CharmlibsSnapBackend().install("lxd", None, cohort="+")


def test_a_snap_command_that_cannot_reach_snapd_is_a_wait(bindir: Path) -> None:
    script(bindir / "snap", f"echo '{UNREACHABLE}' >&2; exit 1")
    with pytest.raises(
        SnapdUnavailableError,
        match=exactly(f"could not refresh snap 'lxd': {UNREACHABLE}; will retry"),
    ):
        CharmlibsSnapBackend().refresh("lxd", None, cohort="+")


def test_no_snap_command_is_a_refusal_not_a_crash(bindir: Path) -> None:
    with pytest.raises(SnapError) as caught:
        CharmlibsSnapBackend().refresh("lxd", None, leave_cohort=True)
    assert str(caught.value) == (
        "could not refresh snap 'lxd': [Errno 2] No such file or directory: 'snap'"
    )
    assert not isinstance(caught.value, SnapdUnavailableError)


# --- snap install --dangerous ----------------------------------------------------------


def test_installing_a_file_runs_snap_install_dangerous(bindir: Path, tmp_path: Path) -> None:
    record = tmp_path / "args"
    script(bindir / "snap", f"printf '%s\\n' \"$@\" > {record}")
    CharmlibsSnapBackend().install_file(tmp_path / "lxd_amd64.snap")
    assert record.read_text().splitlines() == [
        "install",
        "--dangerous",
        str(tmp_path / "lxd_amd64.snap"),
    ]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("echo 'error: cannot read \"x.snap\"' >&2; exit 1", 'error: cannot read "x.snap"'),
        ("echo 'error: cannot read \"x.snap\"'; exit 1", 'error: cannot read "x.snap"'),
        ("exit 4", "exit status 4"),
    ],
    ids=["stderr", "stdout", "silent"],
)
def test_a_refused_file_install_says_snapds_words_whole(
    bindir: Path, tmp_path: Path, body: str, detail: str
) -> None:
    script(bindir / "snap", body)
    snap_file = tmp_path / "x.snap"
    with pytest.raises(
        SnapError, match=exactly(f"snap install --dangerous {snap_file} failed: {detail}")
    ) as caught:
        CharmlibsSnapBackend().install_file(snap_file)
    assert not isinstance(caught.value, SnapdUnavailableError)


# --- lxd-installer -------------------------------------------------------------------


def test_lxd_installer_lives_in_usr_sbin() -> None:
    # Ubuntu's lxd-installer package ships /usr/sbin/lxd (and lxc), a shell script.
    assert Path("/usr/sbin") == snapd_module.INSTALLER_DIR


@pytest.mark.parametrize(
    ("content", "is_installer"),
    [
        (b"#!/bin/sh\nexec snap install lxd\n", True),
        (b"#!", True),
        (b"\x7fELF\x02\x01\x01", False),  # a real LXD binary (a distribution's package)
        (b"#", False),
        (b"", False),
    ],
    ids=["script", "bare-shebang", "binary", "half-shebang", "empty"],
)
def test_the_installer_is_a_script_in_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, is_installer: bool
) -> None:
    monkeypatch.setattr(snapd_module, "INSTALLER_DIR", tmp_path)
    (tmp_path / "lxd").write_bytes(content)
    expected = tmp_path / "lxd" if is_installer else None
    assert CharmlibsSnapBackend().installer("lxd") == expected


def test_no_installer_when_nothing_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapd_module, "INSTALLER_DIR", tmp_path)
    assert CharmlibsSnapBackend().installer("lxd") is None
    (tmp_path / "lxd").mkdir()  # unreadable as a file: no installer either
    assert CharmlibsSnapBackend().installer("lxd") is None


def test_the_installer_is_run_once_with_version(tmp_path: Path) -> None:
    record = tmp_path / "args"
    installer = script(tmp_path / "lxd", f"printf '%s\\n' \"$@\" >> {record}; echo 5.21.3")
    CharmlibsSnapBackend().run_installer(installer)
    assert record.read_text().splitlines() == ["version"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("echo 'error: snap \"lxd\" not found' >&2; exit 1", 'error: snap "lxd" not found'),
        ("echo 'Installing the LXD snap failed'; exit 1", "Installing the LXD snap failed"),
        ("exit 5", "exit status 5"),
    ],
    ids=["stderr", "stdout", "silent"],
)
def test_a_failed_installer_says_its_words_whole(tmp_path: Path, body: str, detail: str) -> None:
    installer = script(tmp_path / "lxd", body)
    with pytest.raises(
        SnapError, match=exactly(f"{installer} (lxd-installer) failed: {detail}")
    ) as caught:
        CharmlibsSnapBackend().run_installer(installer)
    assert not isinstance(caught.value, SnapdUnavailableError)


def test_an_installer_that_cannot_reach_snapd_is_a_wait(tmp_path: Path) -> None:
    installer = script(tmp_path / "lxd", f"echo '{UNREACHABLE}' >&2; exit 1")
    with pytest.raises(
        SnapdUnavailableError,
        match=exactly(f"{installer} (lxd-installer) failed: {UNREACHABLE}; will retry"),
    ):
        CharmlibsSnapBackend().run_installer(installer)


def test_an_installer_that_hangs_is_a_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installer = tmp_path / "lxd"

    def hangs(command: list[str], **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", hangs)
    with pytest.raises(SnapdUnavailableError) as caught:
        CharmlibsSnapBackend().run_installer(installer)
    assert str(caught.value).startswith(f"{installer} (lxd-installer) failed: Command ")
    assert str(caught.value).endswith("; will retry")


def test_an_installer_that_cannot_be_run_is_a_refusal(tmp_path: Path) -> None:
    missing = tmp_path / "lxd"
    with pytest.raises(SnapError) as caught:
        CharmlibsSnapBackend().run_installer(missing)
    assert str(caught.value) == (
        f"{missing} (lxd-installer) failed: [Errno 2] No such file or directory: '{missing}'"
    )
    assert not isinstance(caught.value, SnapdUnavailableError)


# --- what each charmlibs-snap call says it could not do --------------------------------


@pytest.mark.parametrize(
    ("function", "call", "action"),
    [
        ("hold", lambda b: b.hold("lxd"), "hold refreshes of"),
        ("unhold", lambda b: b.unhold("lxd"), "release the refresh hold of"),
        ("get", lambda b: b.get_config("lxd"), "read the configuration of"),
        ("set", lambda b: b.set_config("lxd", {"a.b": "c"}), "configure"),
        ("unset", lambda b: b.unset_config("lxd", ["a.b"]), "unset the configuration of"),
        ("restart", lambda b: b.restart("lxd"), "restart"),
        ("refresh", lambda b: b.refresh("lxd", None), "refresh"),
        ("install", lambda b: b.install("lxd", None), "install"),
    ],
)
def test_each_call_says_what_it_could_not_do(
    monkeypatch: pytest.MonkeyPatch, function: str, call: Any, action: str
) -> None:
    def refuses(*args: Any, **kwargs: Any) -> Any:
        raise charmlibs_snap.APIError("snap has running apps", kind="test", value=None)

    monkeypatch.setattr(charmlibs_snap, function, refuses)
    with pytest.raises(
        SnapError, match=exactly(f"could not {action} snap 'lxd': snap has running apps")
    ):
        call(CharmlibsSnapBackend())


# --- the seam's contract ----------------------------------------------------------------


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    "method", sorted(name for name in vars(SnapBackend) if not name.startswith("_"))
)
def test_every_backend_takes_the_seams_arguments_and_defaults(method: str) -> None:
    # The unit tier runs on FakeSnapd: a default that differed from the real backend's
    # (an `amend` or `cohort` on by default, say) would make those tests lie.
    contract = _shape(getattr(SnapBackend, method))
    assert _shape(getattr(CharmlibsSnapBackend, method)) == contract
    assert _shape(getattr(FakeSnapd, method)) == contract
