"""Connecting to real daemons: socket discovery, HTTPS with certificates, readiness, config."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lxd_common.certs import generate_client_certificate
from lxd_common.errors import (
    LxdNotTrustedError,
    LxdServerCertificateError,
    LxdUnreachableError,
)
from lxd_common.lxd import LxdClient, find_socket
from tests.harness.lxd_daemons import LxdDaemon


def test_find_socket_prefers_lxd_dir(daemon: LxdDaemon) -> None:
    assert find_socket({"LXD_DIR": str(daemon.directory)}) == daemon.socket


def test_local_client_reads_server_info(daemon: LxdDaemon) -> None:
    with LxdClient.local(daemon.socket) as lxd:
        info = lxd.server_info()
        assert info["auth"] == "trusted"
        assert info["environment"]["server_clustered"] is False
        assert lxd.trusted
        # What the connection read to connect: the same server, and no membership in it.
        assert lxd.info_at_connect["environment"] == info["environment"]
        assert lxd.server_config(lxd.info_at_connect) == lxd.server_config()
        assert lxd.existing_setup(lxd.info_at_connect) == lxd.existing_setup()


def test_unreachable_socket_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "unix.socket"
    with pytest.raises(LxdUnreachableError, match="does not exist"):
        LxdClient.local(missing)


def test_wait_gives_up_with_unreachable_error(tmp_path: Path) -> None:
    with pytest.raises(LxdUnreachableError):
        LxdClient.local(tmp_path / "unix.socket", wait=0.5)


def test_wait_ready_survives_a_daemon_that_is_still_starting(daemon: LxdDaemon) -> None:
    # Restart the daemon and connect while it comes back up.
    subprocess.run(["lxd", "shutdown"], env=daemon.env, check=True, timeout=60)
    daemon.process.wait(timeout=30)
    restarted = subprocess.Popen(
        ["lxd", "--group", "root", "--logfile", str(daemon.directory / "lxd.log")],
        env=daemon.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    daemon.process = restarted
    with LxdClient.local(daemon.socket, wait=60) as lxd:
        assert lxd.wait_ready(30)["auth"] == "trusted"


def test_server_config_set_and_unset_is_idempotent(daemon: LxdDaemon) -> None:
    lxd = daemon.client()
    assert lxd.set_server_config({"core.https_address": daemon.address}) == ["core.https_address"]
    assert lxd.set_server_config({"core.https_address": daemon.address}) == []
    assert lxd.server_config()["core.https_address"] == daemon.address
    assert lxd.set_server_config({"core.https_address": None}) == ["core.https_address"]
    assert "core.https_address" not in lxd.server_config()
    assert lxd.set_server_config({"core.https_address": None}) == []


def test_https_client_with_trusted_certificate(daemon: LxdDaemon) -> None:
    lxd = daemon.client()
    lxd.set_server_config({"core.https_address": daemon.address})
    pair = generate_client_certificate("functional")
    with LxdClient.remote(daemon.address, pair, daemon.server_cert, wait=10) as remote:
        assert not remote.trusted
        with pytest.raises(LxdNotTrustedError, match="does not trust"):
            remote.require_trusted()
        lxd.trust.add(pair.certificate, name="functional")
        remote.require_trusted()
        assert remote.endpoint == f"https://{daemon.address}"
        private = Path(remote.pylxd.api.session.cert[1])
        assert private.stat().st_mode & 0o777 == 0o600
    assert not private.exists(), "close() must delete the key file it wrote"


def test_https_client_refuses_a_server_certificate_that_does_not_match(
    start_daemons: Callable[[int], list[LxdDaemon]],
) -> None:
    one, other = start_daemons(2)
    one.client().set_server_config({"core.https_address": one.address})
    pair = generate_client_certificate("pinned")
    with pytest.raises(LxdServerCertificateError, match="not the expected one"):
        LxdClient.remote(one.address, pair, other.server_cert, wait=30)  # not retried


def test_https_client_to_a_closed_port_is_unreachable(daemon: LxdDaemon) -> None:
    pair = generate_client_certificate("nobody-home")
    with pytest.raises(LxdUnreachableError, match="cannot reach LXD"):
        LxdClient.remote(daemon.address, pair, daemon.server_cert, timeout=5)
