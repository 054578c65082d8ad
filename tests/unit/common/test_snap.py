"""Unit tests for lxd_common.snap, with FakeSnapd in place of snapd."""

from __future__ import annotations

import io
import platform
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from charmlibs import snap as charmlibs_snap

from lxd_common.errors import (
    SideloadError,
    SnapChannelError,
    SnapConfigError,
    SnapDowngradeError,
    SnapdUnavailableError,
    SnapError,
)
from lxd_common.snap import (
    CONFIG_KEYS,
    REBOOT_REQUIRED,
    Channel,
    CharmlibsSnapBackend,
    InstalledSnap,
    LxdSnap,
    machine_arch,
    parse_channel,
    select_resource,
    split_pending,
)
from tests.harness.fake_snapd import FakeSnapd

# --- channels ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("stable", Channel("latest", "stable")),
        ("edge", Channel("latest", "edge")),
        ("latest", Channel("latest", "stable")),
        ("5.21", Channel("5.21", "stable")),
        ("6", Channel("6", "stable")),
        ("4.0/candidate", Channel("4.0", "candidate")),
        ("latest/beta", Channel("latest", "beta")),
        ("5.21/stable/hotfix-1", Channel("5.21", "stable", "hotfix-1")),
    ],
)
def test_parse_channel_accepts(given: str, expected: Channel) -> None:
    assert parse_channel(given) == expected


def test_channel_str_is_complete() -> None:
    assert str(parse_channel("5.21")) == "5.21/stable"
    assert str(parse_channel("6/edge/fix")) == "6/edge/fix"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        "5.21 ",
        " stable",
        "latest/ stable",
        "latest/bogus",
        "a/b/c/d",
        "5.21/stable/x/y",
        "foo",
        "foo/stable",
        "5.21.1/stable",
        "/stable",
        "5.21/",
        "stable/hotfix",
        "latest/stable/bad branch",
        "latest/stable/-x",
        "LATEST/stable",
    ],
)
def test_parse_channel_rejects(bad: str) -> None:
    with pytest.raises(SnapChannelError, match="TRACK/RISK/BRANCH") as info:
        parse_channel(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


# --- ensure --------------------------------------------------------------------


def test_ensure_installs_when_missing() -> None:
    snapd = FakeSnapd()
    assert LxdSnap(snapd).ensure("5.21") is True
    assert snapd.calls == [("install", "lxd", "5.21/stable")]
    assert snapd.snaps["lxd"].channel == "5.21/stable"


def test_ensure_noop_when_on_channel() -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    assert LxdSnap(snapd).ensure("5.21") is False
    assert snapd.calls == []


@pytest.mark.parametrize(
    ("installed", "version", "wanted"),
    [
        ("5.0/stable", None, "5.21/stable"),  # newer track
        ("5.21/stable", None, "6/stable"),
        ("5.21/stable", None, "5.21/edge"),  # same-track risk change
        ("5.21/edge", None, "5.21/stable"),
        ("5.21/stable", None, "latest/stable"),  # latest is never older
        ("latest/stable", "6.1.2", "6/stable"),  # track 6 covers 6.1
        ("latest/stable", "5.21.3", "6/stable"),
        ("latest/stable", "git-1234", "5.0/stable"),  # unknown age: allowed
        ("6/stable", None, "6/stable/hotfix"),
    ],
)
def test_ensure_refreshes(installed: str, version: str | None, wanted: str) -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", installed, version)
    assert LxdSnap(snapd).ensure(wanted) is True
    assert snapd.calls == [("refresh", "lxd", wanted)]
    assert snapd.snaps["lxd"].channel == wanted


@pytest.mark.parametrize(
    ("installed", "version", "wanted"),
    [
        ("6/stable", None, "5.21/stable"),
        ("5.21/edge", None, "5.0/stable"),
        ("5.0/stable", None, "4.0/stable"),
        ("latest/stable", "6.1", "5.21/stable"),
        ("latest/edge", "5.21.0", "5.0/stable"),
    ],
)
def test_ensure_refuses_downgrade(installed: str, version: str | None, wanted: str) -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", installed, version)
    with pytest.raises(SnapDowngradeError) as info:
        LxdSnap(snapd).ensure(wanted)
    message = str(info.value)
    assert installed in message
    assert wanted in message
    assert "cannot be downgraded" in message
    assert f"set snap-channel back to {installed}" in message
    assert snapd.calls == []


def test_ensure_from_local_install_uses_version() -> None:
    snapd = FakeSnapd()
    snapd.snaps["lxd"] = InstalledSnap("lxd", "", "x1", "5.21.0")
    with pytest.raises(SnapDowngradeError, match=r"local install of 5\.21\.0"):
        LxdSnap(snapd).ensure("5.0/stable")
    assert LxdSnap(snapd).ensure("5.21/stable") is True
    assert snapd.calls == [("refresh", "lxd", "5.21/stable")]


def test_ensure_bad_channel_touches_nothing() -> None:
    snapd = FakeSnapd()
    with pytest.raises(SnapChannelError):
        LxdSnap(snapd).ensure("latest/bogus")
    assert snapd.calls == []


def test_ensure_channel_not_in_store() -> None:
    snapd = FakeSnapd(channels=["latest/stable"])
    with pytest.raises(SnapChannelError, match=r"5\.21/stable"):
        LxdSnap(snapd).ensure("5.21")


def test_ensure_backend_failure_propagates() -> None:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.0/stable")
    snapd.fail_on("refresh")
    with pytest.raises(SnapError, match="refresh failed"):
        LxdSnap(snapd).ensure("5.21")
    snapd.clear_failures()
    assert LxdSnap(snapd).ensure("5.21") is True


def test_default_backend_is_charmlibs() -> None:
    lxd = LxdSnap()
    assert isinstance(lxd.backend, CharmlibsSnapBackend)
    assert lxd.name == "lxd"


# --- snap config -------------------------------------------------------------


def test_config_keys_table() -> None:
    assert CONFIG_KEYS == {
        "ceph-builtin": "ceph.builtin",
        "ceph-external": "ceph.external",
        "criu-enable": "criu.enable",
        "daemon-debug": "daemon.debug",
        "daemon-group": "daemon.group",
        "daemon-syslog": "daemon.syslog",
        "lvm-external": "lvm.external",
        "lxcfs-cfs": "lxcfs.cfs",
        "lxcfs-debug": "lxcfs.debug",
        "lxcfs-loadavg": "lxcfs.loadavg",
        "lxcfs-pidfd": "lxcfs.pidfd",
        "openvswitch-builtin": "openvswitch.builtin",
        "openvswitch-external": "openvswitch.external",
        "ovn-builtin": "ovn.builtin",
        "shiftfs-enable": "shiftfs.enable",
        "ui-enable": "ui.enable",
    }
    assert (
        frozenset({"lxcfs.cfs", "lxcfs.debug", "lxcfs.loadavg", "lxcfs.pidfd"}) == REBOOT_REQUIRED
    )
    assert LxdSnap.CONFIG_KEYS is CONFIG_KEYS


@pytest.fixture
def installed() -> FakeSnapd:
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    return snapd


def test_set_config_sets_and_reports(installed: FakeSnapd) -> None:
    lxd = LxdSnap(installed)
    changed = lxd.set_config(
        {"daemon-debug": True, "ceph-builtin": False, "daemon-group": "adm", "lxcfs-cfs": None}
    )
    assert changed == ["ceph.builtin", "daemon.debug", "daemon.group"]
    assert installed.config["lxd"] == {
        "daemon.debug": "true",
        "ceph.builtin": "false",
        "daemon.group": "adm",
    }
    assert installed.calls == [
        (
            "set_config",
            "lxd",
            {"daemon.debug": "true", "ceph.builtin": "false", "daemon.group": "adm"},
        )
    ]
    assert lxd.get_config() == {
        "daemon.debug": "true",
        "ceph.builtin": "false",
        "daemon.group": "adm",
    }


def test_set_config_is_idempotent(installed: FakeSnapd) -> None:
    lxd = LxdSnap(installed)
    values: dict[str, bool | str | None] = {
        "daemon-debug": True,
        "lxcfs-loadavg": "TRUE",
        "shiftfs-enable": "auto",
    }
    assert lxd.set_config(values) == ["daemon.debug", "lxcfs.loadavg", "shiftfs.enable"]
    installed.calls.clear()
    assert lxd.set_config(values) == []
    assert installed.calls == []


def test_set_config_unsets(installed: FakeSnapd) -> None:
    installed.config["lxd"] = {"daemon.debug": "true", "daemon.group": "adm", "other.key": "x"}
    lxd = LxdSnap(installed)
    assert lxd.set_config({"daemon.debug": None, "snap-config-daemon-group": ""}) == [
        "daemon.debug",
        "daemon.group",
    ]
    assert installed.calls == [("unset_config", "lxd", ["daemon.debug", "daemon.group"])]
    assert installed.config["lxd"] == {"other.key": "x"}


def test_set_config_accepts_every_key_spelling(installed: FakeSnapd) -> None:
    lxd = LxdSnap(installed)
    changed = lxd.set_config(
        {"criu.enable": True, "snap-config-lvm-external": True, "openvswitch-builtin": True}
    )
    assert changed == ["criu.enable", "lvm.external", "openvswitch.builtin"]


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"no-such-key": True}, "unknown snap config key 'no-such-key'"),
        ({"snap-config-bogus": True}, "unknown snap config key"),
        ({"daemon-debug": "maybe"}, "takes true or false"),
        ({"daemon-debug": 1}, "takes a boolean or a string"),
    ],
)
def test_set_config_rejects(installed: FakeSnapd, values: dict[str, Any], match: str) -> None:
    with pytest.raises(SnapConfigError, match=match):
        LxdSnap(installed).set_config(values)
    assert installed.calls == []


def test_get_config_flattens_and_filters(installed: FakeSnapd) -> None:
    class NestedBackend(FakeSnapd):
        def get_config(self, name: str) -> dict[str, Any]:
            return {"ceph": {"builtin": True}, "lxcfs": {"pidfd": False}, "unrelated": {"a": 1}}

    assert LxdSnap(NestedBackend()).get_config() == {
        "ceph.builtin": "true",
        "lxcfs.pidfd": "false",
    }


def test_config_changes_is_a_dry_run(installed: FakeSnapd) -> None:
    installed.config["lxd"] = {"daemon.debug": "true"}
    lxd = LxdSnap(installed)
    changes = lxd.config_changes({"daemon-debug": None, "lxcfs-cfs": True, "ceph-builtin": None})
    assert changes == {"daemon.debug": None, "lxcfs.cfs": "true"}
    assert installed.calls == []


def test_split_pending() -> None:
    live, needs_reboot = split_pending(
        ["daemon.debug", "lxcfs.cfs", "lxcfs-pidfd", "ceph.builtin"]
    )
    assert live == ["daemon.debug", "ceph.builtin"]
    assert needs_reboot == ["lxcfs.cfs", "lxcfs-pidfd"]
    assert split_pending([]) == ([], [])
    assert LxdSnap.split_pending(["lxcfs.loadavg"]) == ([], ["lxcfs.loadavg"])
    with pytest.raises(SnapConfigError):
        split_pending(["bogus"])


def test_set_config_then_split_for_reboot(installed: FakeSnapd) -> None:
    lxd = LxdSnap(installed)
    changed = lxd.set_config({"lxcfs-loadavg": True, "daemon-syslog": True})
    assert split_pending(changed) == (["daemon.syslog"], ["lxcfs.loadavg"])


# --- sideloading -------------------------------------------------------------


def _tarball(path: Path, members: dict[str, bytes], mode: Any = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_select_resource_none_missing_empty(tmp_path: Path) -> None:
    assert select_resource(None, "binary") is None
    assert select_resource(tmp_path / "missing", "binary") is None
    empty = tmp_path / "empty"
    empty.touch()
    assert select_resource(empty, "snap") is None


def test_select_resource_plain_file(tmp_path: Path) -> None:
    binary = tmp_path / "lxd"
    binary.write_bytes(b"\x7fELF not a tarball")
    assert select_resource(binary, "binary") == binary


@pytest.mark.parametrize("arch", ["amd64", "arm64", "ppc64el", "s390x", "riscv64", "armhf"])
@pytest.mark.parametrize(("kind", "suffix"), [("binary", ""), ("snap", ".snap")])
@pytest.mark.parametrize("compression", ["w", "w:gz", "w:xz"])
def test_select_resource_tarball_picks_arch(
    tmp_path: Path, arch: str, kind: Any, suffix: str, compression: str
) -> None:
    members = {f"lxd_{a}{suffix}": a.encode() for a in ("amd64", "arm64", arch)}
    tarball = _tarball(tmp_path / "res.tar", members, compression)
    found = select_resource(tarball, kind, arch, workdir=tmp_path / "out")
    assert found == tmp_path / "out" / f"lxd_{arch}{suffix}"
    assert found.read_bytes() == arch.encode()
    assert found.stat().st_mode & 0o777 == (0o755 if kind == "binary" else 0o644)


def test_select_resource_tarball_with_dot_prefix_and_default_arch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    tarball = tmp_path / "res.tar"
    with tarfile.open(tarball, "w") as tar:
        directory = tarfile.TarInfo("./")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        info = tarfile.TarInfo("./lxd_arm64")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"arm"))
    found = select_resource(tarball, "binary")
    assert found is not None
    try:
        assert found.name == "lxd_arm64"
        assert found.read_bytes() == b"arm"
    finally:
        found.unlink()
        found.parent.rmdir()


def test_select_resource_tarball_without_arch(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "res.tar.gz", {"lxd_amd64": b"x", "lxd_arm64.snap": b"y"})
    with pytest.raises(SideloadError) as info:
        select_resource(tarball, "binary", "s390x")
    message = str(info.value)
    assert "'s390x'" in message
    assert "lxd_amd64" in message
    assert "lxd_arm64.snap" in message


@pytest.mark.parametrize("evil", ["../evil", "/etc/evil", "sub/../../evil"])
def test_select_resource_refuses_unsafe_paths(tmp_path: Path, evil: str) -> None:
    tarball = _tarball(tmp_path / "res.tar", {"lxd_amd64": b"ok", evil: b"evil"})
    with pytest.raises(SideloadError, match="unsafe path"):
        select_resource(tarball, "binary", "amd64", workdir=tmp_path / "out")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("link_type", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_select_resource_refuses_links(tmp_path: Path, link_type: bytes) -> None:
    tarball = tmp_path / "res.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("lxd_amd64")
        info.type = link_type
        info.linkname = "/usr/bin/lxd"
        tar.addfile(info)
    with pytest.raises(SideloadError, match="link"):
        select_resource(tarball, "binary", "amd64")


def test_select_resource_refuses_non_regular_member(tmp_path: Path) -> None:
    tarball = tmp_path / "res.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("lxd_amd64")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    with pytest.raises(SideloadError, match="not a file"):
        select_resource(tarball, "binary", "amd64")


def test_select_resource_truncated_tarball(tmp_path: Path) -> None:
    whole = _tarball(tmp_path / "whole.tar", {"lxd_amd64": b"x" * 4096}, "w")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[:1024])
    with pytest.raises(SideloadError, match="cannot read"):
        select_resource(cut, "binary", "amd64", workdir=tmp_path / "out")


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("ppc64le", "ppc64el"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
        ("armv7l", "armhf"),
    ],
)
def test_machine_arch(monkeypatch: pytest.MonkeyPatch, machine: str, arch: str) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert machine_arch() == arch


def test_machine_arch_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "mips")
    with pytest.raises(SideloadError, match="'mips'"):
        machine_arch()


def test_select_resource_uses_this_machines_member(tmp_path: Path) -> None:
    arch = machine_arch()
    tarball = _tarball(tmp_path / "res.tar", {f"lxd_{arch}.snap": b"snap"})
    found = select_resource(tarball, "snap", workdir=tmp_path / "out")
    assert found == tmp_path / "out" / f"lxd_{arch}.snap"


def test_install_snap_file(installed: FakeSnapd, tmp_path: Path) -> None:
    snap_file = tmp_path / "lxd_amd64.snap"
    snap_file.write_bytes(b"squashfs")
    LxdSnap(installed).install_snap_file(snap_file)
    assert installed.installed_files == [snap_file]
    assert installed.snaps["lxd"].channel == ""
    assert installed.snaps["lxd"].revision.startswith("x")
    with pytest.raises(SideloadError, match="does not exist"):
        LxdSnap(installed).install_snap_file(tmp_path / "missing.snap")


def test_install_debug_binary(installed: FakeSnapd, tmp_path: Path) -> None:
    target = tmp_path / "common" / "lxd.debug"
    target.parent.mkdir()
    binary = tmp_path / "lxd"
    binary.write_bytes(b"v1")
    lxd = LxdSnap(installed)
    assert lxd.install_debug_binary(binary, target) is True
    assert target.read_bytes() == b"v1"
    assert target.stat().st_mode & 0o777 == 0o755
    assert installed.restarts == ["lxd"]
    assert lxd.install_debug_binary(binary, target) is False  # identical: no restart
    assert installed.restarts == ["lxd"]
    binary.write_bytes(b"v2")
    assert lxd.install_debug_binary(binary, target) is True
    assert target.read_bytes() == b"v2"
    assert installed.restarts == ["lxd", "lxd"]
    assert list(target.parent.iterdir()) == [target]


def test_install_debug_binary_errors(installed: FakeSnapd, tmp_path: Path) -> None:
    lxd = LxdSnap(installed)
    binary = tmp_path / "lxd"
    with pytest.raises(SideloadError, match="does not exist"):
        lxd.install_debug_binary(binary, tmp_path / "lxd.debug")
    binary.write_bytes(b"v1")
    with pytest.raises(SideloadError, match="install the lxd snap first"):
        lxd.install_debug_binary(binary, tmp_path / "nowhere" / "lxd.debug")
    target_is_dir = tmp_path / "lxd.debug"
    target_is_dir.mkdir()
    (target_is_dir / "x").touch()
    with pytest.raises(SideloadError, match="cannot install"):
        lxd.install_debug_binary(binary, target_is_dir)
    assert installed.restarts == []


def test_remove_debug_binary(installed: FakeSnapd, tmp_path: Path) -> None:
    target = tmp_path / "lxd.debug"
    target.write_bytes(b"v1")
    lxd = LxdSnap(installed)
    assert lxd.remove_debug_binary(target) is True
    assert not target.exists()
    assert installed.restarts == ["lxd"]
    assert lxd.remove_debug_binary(target) is False
    assert installed.restarts == ["lxd"]


def test_remove_debug_binary_error(installed: FakeSnapd, tmp_path: Path) -> None:
    target = tmp_path / "lxd.debug"
    target.mkdir()
    with pytest.raises(SideloadError, match="cannot remove"):
        LxdSnap(installed).remove_debug_binary(target)


# --- CharmlibsSnapBackend: error translation -----------------------------------


def _api_error(cls: type[charmlibs_snap.APIError], message: str) -> charmlibs_snap.APIError:
    return cls(message, kind="test", value=None)


def _raiser(error: Exception) -> Any:
    def raise_(*args: Any, **kwargs: Any) -> Any:
        raise error

    return raise_


def test_backend_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    info = charmlibs_snap.InstalledInfo("lxd", False, "5.21/stable", "33110", "5.21.3", None)
    monkeypatch.setattr(charmlibs_snap, "list_one", lambda name: info)
    assert CharmlibsSnapBackend().installed("lxd") == InstalledSnap(
        "lxd", "5.21/stable", "33110", "5.21.3"
    )
    missing = _api_error(charmlibs_snap.NotInstalledError, "snap not installed")
    monkeypatch.setattr(charmlibs_snap, "list_one", _raiser(missing))
    assert CharmlibsSnapBackend().installed("lxd") is None
    down = charmlibs_snap.SocketNotFoundError("no /run/snapd.socket")
    monkeypatch.setattr(charmlibs_snap, "list_one", _raiser(down))
    with pytest.raises(SnapError, match=r"could not query snap 'lxd'.*snapd\.socket") as raised:
        CharmlibsSnapBackend().installed("lxd")
    # No socket means no snapd on this machine: waiting will not bring it.
    assert not isinstance(raised.value, SnapdUnavailableError)


# What charmlibs-snap raises when snapd does not answer: its own TimeoutError after its
# request timeout, and ConnectionError when the socket refuses or drops the connection,
# which is what a restarting snapd does (urllib's URLError reason, as charmlibs-snap
# passes it on).
SNAPD_TIMEOUT = charmlibs_snap.TimeoutError(
    "Request to snapd timed out after 120s: POST /v2/snaps/lxd"
)
SNAPD_RESTARTING = charmlibs_snap.ConnectionError("[Errno 111] Connection refused")
SNAPD_DROPPED = charmlibs_snap.ConnectionError(
    "Connection to snapd lost: POST /v2/snaps/lxd: Remote end closed connection without response"
)


@pytest.mark.parametrize("error", [SNAPD_TIMEOUT, SNAPD_RESTARTING, SNAPD_DROPPED])
@pytest.mark.parametrize(
    ("function", "call"),
    [
        ("list_one", lambda b: b.installed("lxd")),
        ("install", lambda b: b.install("lxd", "5.21/stable")),
        ("refresh", lambda b: b.refresh("lxd", "5.21/stable")),
        ("get", lambda b: b.get_config("lxd")),
        ("set", lambda b: b.set_config("lxd", {"daemon.debug": "true"})),
        ("unset", lambda b: b.unset_config("lxd", ["daemon.debug"])),
        ("restart", lambda b: b.restart("lxd")),
    ],
)
def test_backend_snapd_not_answering_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, function: str, call: Any, error: Exception
) -> None:
    monkeypatch.setattr(charmlibs_snap, function, _raiser(error))
    with pytest.raises(SnapdUnavailableError, match=r"snap 'lxd': snapd is not answering") as info:
        call(CharmlibsSnapBackend())
    assert info.value.__cause__ is error
    assert str(error) in str(info.value)


@pytest.mark.parametrize(
    "error",
    [
        _api_error(charmlibs_snap.ChannelNotAvailableError, "no snap revision on channel"),
        _api_error(charmlibs_snap.ChangeError, "hook failed"),
        _api_error(charmlibs_snap.NotInStoreError, "snap not found"),
        _api_error(charmlibs_snap.APIError, "cannot refresh: snap has running apps"),
        charmlibs_snap.BadResponseError("Invalid JSON in response for path '/v2/snaps'"),
    ],
)
def test_backend_refusals_are_not_unavailable(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    monkeypatch.setattr(charmlibs_snap, "refresh", _raiser(error))
    with pytest.raises(SnapError) as info:
        CharmlibsSnapBackend().refresh("lxd", "9.9/stable")
    assert not isinstance(info.value, SnapdUnavailableError)
    assert info.value.__cause__ is error


@pytest.mark.parametrize("operation", ["install", "refresh"])
def test_backend_channel_not_available(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    error = _api_error(charmlibs_snap.ChannelNotAvailableError, "no snap revision on channel")
    monkeypatch.setattr(charmlibs_snap, operation, _raiser(error))
    with pytest.raises(SnapChannelError, match=r"'9\.9/stable'") as info:
        getattr(CharmlibsSnapBackend(), operation)("lxd", "9.9/stable")
    assert info.value.__cause__ is error


@pytest.mark.parametrize("operation", ["install", "refresh"])
def test_backend_install_refresh(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    seen: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        charmlibs_snap, operation, lambda name, channel=None: seen.append((name, channel))
    )
    getattr(CharmlibsSnapBackend(), operation)("lxd", "5.21/stable")
    assert seen == [("lxd", "5.21/stable")]
    change = _api_error(charmlibs_snap.ChangeError, "hook failed")
    monkeypatch.setattr(charmlibs_snap, operation, _raiser(change))
    with pytest.raises(SnapError, match=f"could not {operation} snap 'lxd': hook failed") as info:
        getattr(CharmlibsSnapBackend(), operation)("lxd", "5.21/stable")
    assert not isinstance(info.value, SnapChannelError)


def test_backend_config_and_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(charmlibs_snap, "get", lambda name: {"ceph": {"builtin": True}})
    monkeypatch.setattr(charmlibs_snap, "set", lambda name, cfg: seen.append(("set", name, cfg)))
    monkeypatch.setattr(
        charmlibs_snap, "unset", lambda name, keys: seen.append(("unset", name, keys))
    )
    monkeypatch.setattr(charmlibs_snap, "restart", lambda name: seen.append(("restart", name)))
    backend = CharmlibsSnapBackend()
    assert backend.get_config("lxd") == {"ceph": {"builtin": True}}
    backend.set_config("lxd", {"daemon.debug": "true"})
    backend.unset_config("lxd", ["daemon.debug"])
    backend.restart("lxd")
    assert seen == [
        ("set", "lxd", {"daemon.debug": "true"}),
        ("unset", "lxd", ["daemon.debug"]),
        ("restart", "lxd"),
    ]
    assert LxdSnap(backend).get_config() == {"ceph.builtin": "true"}


@pytest.mark.parametrize(
    ("function", "call"),
    [
        ("get", lambda b: b.get_config("lxd")),
        ("set", lambda b: b.set_config("lxd", {"a.b": "c"})),
        ("unset", lambda b: b.unset_config("lxd", ["a.b"])),
        ("restart", lambda b: b.restart("lxd")),
    ],
)
def test_backend_config_errors(monkeypatch: pytest.MonkeyPatch, function: str, call: Any) -> None:
    error = _api_error(charmlibs_snap.NotInstalledError, "snap not installed")
    monkeypatch.setattr(charmlibs_snap, function, _raiser(error))
    with pytest.raises(SnapError, match="snap 'lxd': snap not installed"):
        call(CharmlibsSnapBackend())


def test_backend_value_error_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charmlibs_snap, "set", _raiser(ValueError("config key is blank")))
    with pytest.raises(SnapError, match="config key is blank"):
        CharmlibsSnapBackend().set_config("lxd", {" ": "x"})


def test_backend_install_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        assert kwargs["check"] is True
        assert kwargs["capture_output"] is True
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", run)
    CharmlibsSnapBackend().install_file(tmp_path / "lxd.snap")
    assert seen == [["snap", "install", "--dangerous", str(tmp_path / "lxd.snap")]]


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (subprocess.TimeoutExpired(["snap"], 600), True),
        (
            subprocess.CalledProcessError(
                1,
                ["snap"],
                "",
                'error: cannot communicate with server: Post "http://localhost/v2/snaps": '
                "dial unix /run/snapd.socket: connect: connection refused\n",
            ),
            True,
        ),
        (subprocess.CalledProcessError(1, ["snap"], "", 'error: cannot read "lxd.snap"\n'), False),
    ],
)
def test_backend_install_file_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception, unavailable: bool
) -> None:
    monkeypatch.setattr(subprocess, "run", _raiser(error))
    with pytest.raises(SnapError) as info:
        CharmlibsSnapBackend().install_file(tmp_path / "lxd.snap")
    assert isinstance(info.value, SnapdUnavailableError) is unavailable


@pytest.mark.parametrize(
    ("stderr", "unavailable"),
    [
        ("error: cannot communicate with server: connection refused", True),
        ('error: cannot refresh "lxd": no snap revision on channel "9.9/stable"', False),
    ],
)
def test_backend_amend_errors(
    monkeypatch: pytest.MonkeyPatch, stderr: str, unavailable: bool
) -> None:
    monkeypatch.setattr(
        subprocess, "run", lambda cmd, **kwargs: subprocess.CompletedProcess(cmd, 1, "", stderr)
    )
    with pytest.raises(SnapError, match="could not move snap 'lxd' back to the store") as info:
        CharmlibsSnapBackend().refresh("lxd", "9.9/stable", amend=True)
    assert stderr in str(info.value)
    assert isinstance(info.value, SnapdUnavailableError) is unavailable


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (
            subprocess.CalledProcessError(1, ["snap"], "", 'error: cannot read "lxd.snap"\n'),
            'failed: error: cannot read "lxd.snap"$',
        ),
        (subprocess.CalledProcessError(2, ["snap"], "", ""), "failed: exit status 2"),
        (FileNotFoundError(2, "No such file or directory: 'snap'"), "No such file"),
        (subprocess.TimeoutExpired(["snap"], 600), "timed out"),
    ],
)
def test_backend_install_file_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception, match: str
) -> None:
    monkeypatch.setattr(subprocess, "run", _raiser(error))
    with pytest.raises(SnapError, match=match) as info:
        CharmlibsSnapBackend().install_file(tmp_path / "lxd.snap")
    assert "snap install --dangerous" in str(info.value)


# --- FakeSnapd itself ----------------------------------------------------------


def test_fake_snapd_contract(tmp_path: Path) -> None:
    snapd = FakeSnapd(channels=["5.21", "latest/stable"], versions={"5.21": "5.21.3"})
    with pytest.raises(SnapError, match="not installed"):
        snapd.restart("lxd")
    with pytest.raises(SnapError, match="not installed"):
        snapd.refresh("lxd", "5.21/stable")
    snapd.install("lxd", "5.21/stable")
    assert snapd.snaps["lxd"].version == "5.21.3"
    with pytest.raises(SnapError, match="already installed"):
        snapd.install("lxd", "5.21/stable")
    snapd.refresh("lxd", "latest/stable")
    assert snapd.snaps["lxd"].version == "6.1"
    snapd.set_config("lxd", {"a.b.c": "1", "a.d": "2"})
    assert snapd.get_config("lxd") == {"a": {"b": {"c": "1"}, "d": "2"}}
    with pytest.raises(SnapError, match="no such file"):
        snapd.install_file(tmp_path / "missing.snap")
    with pytest.raises(ValueError, match="unknown operation"):
        snapd.fail_on("explode")
    snapd.fail_on("installed", SnapChannelError("boom"))
    with pytest.raises(SnapChannelError, match="boom"):
        snapd.installed("lxd")
