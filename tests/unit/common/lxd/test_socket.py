"""Unit tests for lxd_common.lxd._socket: where the local daemon listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxd_common.errors import LxdError, LxdNotFoundError
from lxd_common.lxd import DEBIAN_SOCKET, SNAP_SOCKET, find_socket, socket_candidates
from lxd_common.lxd._socket import _is_socket

CUSTOM = Path("/tmp/n1/unix.socket")


class Sockets:
    """An injected `is_socket`: says yes for the given paths, records every probe."""

    def __init__(self, *present: Path) -> None:
        self.present = set(present)
        self.probed: list[Path] = []

    def __call__(self, path: Path) -> bool:
        self.probed.append(path)
        return path in self.present


def test_socket_paths_are_the_snap_and_debian_ones() -> None:
    assert Path("/var/snap/lxd/common/lxd/unix.socket") == SNAP_SOCKET
    assert Path("/var/lib/lxd/unix.socket") == DEBIAN_SOCKET


def test_candidates_put_lxd_dir_first_then_snap_then_debian() -> None:
    assert socket_candidates({"LXD_DIR": "/tmp/n1"}) == [CUSTOM, SNAP_SOCKET, DEBIAN_SOCKET]


@pytest.mark.parametrize("env", [{}, {"LXD_DIR": ""}, {"OTHER": "/tmp/n1"}])
def test_candidates_without_a_usable_lxd_dir(env: dict[str, str]) -> None:
    assert socket_candidates(env) == [SNAP_SOCKET, DEBIAN_SOCKET]


def test_candidates_default_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXD_DIR", "/tmp/from-env")
    assert socket_candidates()[0] == Path("/tmp/from-env/unix.socket")
    monkeypatch.delenv("LXD_DIR")
    assert socket_candidates() == [SNAP_SOCKET, DEBIAN_SOCKET]


def test_lxd_dir_wins_over_snap_and_debian() -> None:
    probe = Sockets(CUSTOM, SNAP_SOCKET, DEBIAN_SOCKET)
    assert find_socket({"LXD_DIR": "/tmp/n1"}, is_socket=probe) == CUSTOM
    assert probe.probed == [CUSTOM]


def test_snap_wins_over_debian_when_lxd_dir_has_no_socket() -> None:
    probe = Sockets(SNAP_SOCKET, DEBIAN_SOCKET)
    assert find_socket({"LXD_DIR": "/tmp/n1"}, is_socket=probe) == SNAP_SOCKET
    assert probe.probed == [CUSTOM, SNAP_SOCKET]


def test_debian_is_the_last_resort() -> None:
    probe = Sockets(DEBIAN_SOCKET)
    assert find_socket({"LXD_DIR": "/tmp/n1"}, is_socket=probe) == DEBIAN_SOCKET
    assert probe.probed == [CUSTOM, SNAP_SOCKET, DEBIAN_SOCKET]


@pytest.mark.parametrize("env", [{}, {"LXD_DIR": ""}])
def test_unset_or_empty_lxd_dir_is_not_probed(env: dict[str, str]) -> None:
    probe = Sockets(DEBIAN_SOCKET)
    assert find_socket(env, is_socket=probe) == DEBIAN_SOCKET
    assert probe.probed == [SNAP_SOCKET, DEBIAN_SOCKET]


def test_no_socket_names_every_path_tried() -> None:
    probe = Sockets()
    with pytest.raises(LxdNotFoundError) as caught:
        find_socket({"LXD_DIR": "/tmp/n1"}, is_socket=probe)
    message = str(caught.value)
    for path in (CUSTOM, SNAP_SOCKET, DEBIAN_SOCKET):
        assert str(path) in message
    assert message.index(str(CUSTOM)) < message.index(str(SNAP_SOCKET))
    assert message.index(str(SNAP_SOCKET)) < message.index(str(DEBIAN_SOCKET))
    assert "installed" in message
    assert isinstance(caught.value, LxdError)


def test_no_socket_without_lxd_dir_lists_only_the_standard_paths() -> None:
    with pytest.raises(LxdNotFoundError) as caught:
        find_socket({}, is_socket=Sockets())
    assert f"tried {SNAP_SOCKET}, {DEBIAN_SOCKET})" in str(caught.value)


def test_default_probe_rejects_a_regular_file_a_directory_and_a_missing_path(
    tmp_path: Path,
) -> None:
    regular = tmp_path / "unix.socket"
    regular.write_text("not a socket")
    assert _is_socket(regular) is False
    assert _is_socket(tmp_path) is False
    assert _is_socket(tmp_path / "missing" / "unix.socket") is False
