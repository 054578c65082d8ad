"""`lxd_common.snap._sideload`, one wrong answer each: which file of a resource is installed.

Written for the mutants test_snap.py let through (docs/mutation.md): the
architectures some kernels already name the snap's way, directories in a
tarball (skipped, never listed), the refusal for a snap resource, the default
and a nested work directory, a binary that differs from the installed one only
in its bytes (same size and time), a failed install that leaves nothing
behind and says so whole, and a directory where the copy is written (refused
with what to do and left alone, where it used to escape as a raw OSError).
"""

from __future__ import annotations

import errno
import io
import os
import platform
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from lxd_common.errors import SideloadError
from lxd_common.snap._sideload import (
    DEBUG_BINARY,
    drop_binary,
    machine_arch,
    place_binary,
    select_resource,
)


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


def _tarball(path: Path, files: dict[str, bytes], directories: tuple[str, ...] = ()) -> Path:
    with tarfile.open(path, "w") as tar:
        for name in directories:
            directory = tarfile.TarInfo(name)
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- where and for which machine -----------------------------------------------------


def test_the_debug_binary_is_where_the_snaps_daemon_wrapper_looks() -> None:
    # The LXD snap's daemon start-up runs $SNAP_COMMON/lxd.debug when it exists;
    # $SNAP_COMMON of the `lxd` snap is /var/snap/lxd/common.
    assert Path("/var/snap/lxd/common") / "lxd.debug" == DEBUG_BINARY


@pytest.mark.parametrize("machine", ["amd64", "arm64"])
def test_a_machine_already_named_the_snap_way_keeps_its_name(
    monkeypatch: pytest.MonkeyPatch, machine: str
) -> None:
    # Some kernels and platforms report these (FreeBSD's uname, arm64 macOS hosts).
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert machine_arch() == machine


def test_an_unsupported_machine_is_refused_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "mips")
    with pytest.raises(
        SideloadError,
        match=exactly(
            "unsupported machine architecture 'mips'; "
            "LXD snaps exist for amd64, arm64, armhf, ppc64el, riscv64, s390x"
        ),
    ):
        machine_arch()


# --- which member of a tarball -------------------------------------------------------


def test_directories_are_skipped_and_not_listed(tmp_path: Path) -> None:
    tarball = _tarball(
        tmp_path / "res.tar", {"./bin/lxd_amd64": b"nested"}, directories=("./", "./bin")
    )
    with pytest.raises(
        SideloadError,
        match=exactly(
            f"resource tarball {tarball} has no lxd_amd64 for this machine's architecture "
            "'amd64'; it has: bin/lxd_amd64"
        ),
    ):
        select_resource(tarball, "binary", "amd64", workdir=tmp_path / "out")


def test_a_directory_named_like_the_member_is_no_member(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "res.tar", {}, directories=("lxd_amd64",))
    with pytest.raises(
        SideloadError,
        match=exactly(
            f"resource tarball {tarball} has no lxd_amd64 for this machine's architecture "
            "'amd64'; it has: nothing"
        ),
    ):
        select_resource(tarball, "binary", "amd64", workdir=tmp_path / "out")


def test_a_snap_resource_without_this_machines_snap_names_the_architecture(
    tmp_path: Path,
) -> None:
    tarball = _tarball(tmp_path / "res.tar", {"lxd_amd64.snap": b"a", "lxd_arm64.snap": b"b"})
    with pytest.raises(
        SideloadError,
        match=exactly(
            f"resource tarball {tarball} has no lxd_s390x.snap for this machine's architecture "
            "'s390x'; it has: lxd_amd64.snap, lxd_arm64.snap"
        ),
    ):
        select_resource(tarball, "snap", "s390x", workdir=tmp_path / "out")


def test_the_default_work_directory_is_a_new_one_named_for_sideloading(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "res.tar", {"lxd_amd64": b"bin"})
    found = select_resource(tarball, "binary", "amd64")
    assert found is not None
    try:
        assert found.name == "lxd_amd64"
        assert found.parent.parent == Path(tempfile.gettempdir())
        assert found.parent.name.startswith("lxd-sideload-")
    finally:
        shutil.rmtree(found.parent)


def test_a_work_directory_with_missing_parents_is_made(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "res.tar", {"lxd_amd64": b"bin"})
    workdir = tmp_path / "a" / "b" / "out"
    assert select_resource(tarball, "binary", "amd64", workdir=workdir) == workdir / "lxd_amd64"
    assert (workdir / "lxd_amd64").read_bytes() == b"bin"


# --- placing and dropping the binary -------------------------------------------------


def test_a_binary_that_differs_only_in_its_bytes_replaces_the_installed_one(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v2")
    target = tmp_path / "common" / "lxd.debug"
    target.parent.mkdir()
    target.write_bytes(b"v1")
    # Same size and same times: only the content tells them apart.
    stat = binary.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert place_binary(binary, target, "lxd") is True
    assert target.read_bytes() == b"v2"


def test_an_identical_binary_is_not_placed_again(tmp_path: Path) -> None:
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v1")
    target = tmp_path / "lxd.debug"
    target.write_bytes(b"v1")
    assert place_binary(binary, target, "lxd") is False


def test_a_failed_rename_leaves_no_partial_copy(tmp_path: Path) -> None:
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v1")
    common = tmp_path / "common"
    target = common / "lxd.debug"
    target.mkdir(parents=True)
    (target / "x").touch()  # a non-empty directory cannot be renamed over
    with pytest.raises(SideloadError) as caught:
        place_binary(binary, target, "lxd")
    assert str(caught.value).startswith(f"cannot install LXD binary to {target}: ")
    assert sorted(common.iterdir()) == [target]


def test_a_copy_that_fails_before_writing_anything_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk refuses the copy before a partial file exists.
    def full(source: Path, destination: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v1")
    target = tmp_path / "lxd.debug"
    with pytest.raises(
        SideloadError,
        match=exactly(
            f"cannot install LXD binary to {target}: [Errno 28] No space left on device"
        ),
    ):
        place_binary(binary, target, "lxd")
    assert sorted(tmp_path.iterdir()) == [binary]


def test_a_directory_where_the_copy_goes_is_refused_and_left_alone(tmp_path: Path) -> None:
    # Before, the copy failed with IsADirectoryError and so did the clean-up's
    # unlink, which escaped as a raw OSError (a traceback in the hook). The
    # directory is not the charm's: it stays, with what it holds.
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v2")
    common = tmp_path / "common"
    target = common / "lxd.debug"
    partial = common / ".lxd.debug.partial"
    (partial / "notes").mkdir(parents=True)
    target.write_bytes(b"v1")
    with pytest.raises(
        SideloadError,
        match=exactly(
            f"cannot install LXD binary to {target}: {partial} is a directory, where the "
            "binary is copied first; remove it and the next hook installs the binary"
        ),
    ):
        place_binary(binary, target, "lxd")
    assert sorted(common.iterdir()) == [partial, target]
    assert sorted(partial.iterdir()) == [partial / "notes"]
    assert target.read_bytes() == b"v1"
    partial.joinpath("notes").rmdir()
    partial.rmdir()
    assert place_binary(binary, target, "lxd") is True
    assert target.read_bytes() == b"v2"


def test_a_file_left_where_the_copy_goes_is_overwritten(tmp_path: Path) -> None:
    # What a hook killed mid-copy leaves: the charm's own partial copy.
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v2")
    target = tmp_path / "lxd.debug"
    (tmp_path / ".lxd.debug.partial").write_bytes(b"half of v")
    assert place_binary(binary, target, "lxd") is True
    assert target.read_bytes() == b"v2"
    assert sorted(tmp_path.iterdir()) == [binary, target]


def test_dropping_a_binary_that_is_not_there_says_false(tmp_path: Path) -> None:
    assert drop_binary(tmp_path / "lxd.debug") is False


def test_dropping_a_binary_says_true(tmp_path: Path) -> None:
    target = tmp_path / "lxd.debug"
    target.write_bytes(b"v1")
    assert drop_binary(target) is True
    assert not target.exists()


def test_a_link_where_the_copy_goes_is_replaced_not_written_through(tmp_path: Path) -> None:
    # Copying onto a symbolic link would write the binary into whatever it
    # points at, and the rename would then put the link, not a file, at the
    # target. The link is dropped (its target untouched) and a file written.
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v2")
    elsewhere = tmp_path / "someone-elses"
    elsewhere.write_bytes(b"theirs")
    target = tmp_path / "lxd.debug"
    (tmp_path / ".lxd.debug.partial").symlink_to(elsewhere)
    assert place_binary(binary, target, "lxd") is True
    assert elsewhere.read_bytes() == b"theirs"
    assert not target.is_symlink()
    assert target.read_bytes() == b"v2"
    assert not (tmp_path / ".lxd.debug.partial").exists()
