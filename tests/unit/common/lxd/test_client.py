"""Unit tests for lxd_common.lxd._client, with a fake pylxd client and no I/O."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from lxd_common.errors import (
    LxdApiError,
    LxdError,
    LxdNotTrustedError,
    LxdUnreachableError,
    PreseedError,
)
from lxd_common.lxd import Cluster, LxdClient, TrustStore
from lxd_common.lxd import _client as client_module
from lxd_common.lxd._client import _retrying

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import Call, FakeLxd, Replies

SOCKET = Path("/tmp/n1/unix.socket")


def server_info(config: dict[str, Any] | None = None, auth: str = "trusted") -> dict[str, Any]:
    """The part of ``GET /1.0`` the client reads."""
    return {
        "api_version": "1.0",
        "auth": auth,
        "auth_methods": ["tls"],
        "config": config or {},
        "environment": {"server_name": "n1", "server_version": "5.0.2"},
    }


@pytest.fixture
def client(lxd: FakeLxd) -> LxdClient:
    return LxdClient(lxd, socket=SOCKET)


def test_client_shares_its_connection(lxd: FakeLxd, client: LxdClient) -> None:
    assert client.pylxd is lxd
    assert isinstance(client.trust, TrustStore)
    assert isinstance(client.cluster, Cluster)
    assert (client.socket, client.endpoint) == (SOCKET, None)


# --- server information and trust --------------------------------------------


def test_server_info_and_trusted(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info(auth="trusted")))
    assert client.server_info()["environment"]["server_version"] == "5.0.2"
    assert client.trusted is True


def test_untrusted_client(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info(auth="untrusted")))
    assert client.trusted is False


def test_require_trusted_passes_when_trusted(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info(auth="trusted")))
    client.require_trusted()
    assert len(lxd.requests("GET", "/1.0")) == 1


def test_require_trusted_names_the_remote_endpoint(lxd: FakeLxd, reply: Replies) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info(auth="untrusted")))
    remote = LxdClient(lxd, endpoint="https://127.0.0.2:8443")
    with pytest.raises(LxdNotTrustedError) as caught:
        remote.require_trusted()
    assert str(caught.value) == (
        "LXD at https://127.0.0.2:8443 does not trust this client (auth: untrusted); "
        "add the client certificate to its trust store"
    )


def test_require_trusted_names_the_socket(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on("GET", "/1.0", reply.sync({"config": {}}))
    with pytest.raises(LxdNotTrustedError, match=f"LXD at {SOCKET} .*auth: None"):
        client.require_trusted()


def test_server_info_refused(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on("GET", "/1.0", reply.error(500, "database unavailable"))
    with pytest.raises(LxdApiError, match="reading server information: database unavailable"):
        client.server_info()


# --- server config -----------------------------------------------------------


def test_server_config_is_strings(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info({"core.https_address": "[::]:8443"})))
    assert client.server_config() == {"core.https_address": "[::]:8443"}


def test_server_config_when_lxd_sends_null(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0", reply.sync({"auth": "trusted", "config": None}))
    assert client.server_config() == {}


def test_set_server_config_sends_only_what_differs(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on(
        "GET",
        "/1.0",
        reply.sync(
            server_info(
                {
                    "core.https_address": "127.0.0.2:8443",
                    "images.auto_update_interval": "6",
                    "core.trust_password": "true",
                }
            )
        ),
    )
    lxd.on("PATCH", "/1.0", reply.sync(None))

    changed = client.set_server_config(
        {
            "core.https_address": "127.0.0.2:8443",  # unchanged
            "images.auto_update_interval": "0",  # changed
            "cluster.https_address": "127.0.0.2:8443",  # new
            "core.trust_password": None,  # unset, present
            "images.remote_cache_expiry": None,  # unset, absent
            "core.proxy_http": "",  # "" unsets too, absent
        }
    )

    assert changed == [
        "cluster.https_address",
        "core.trust_password",
        "images.auto_update_interval",
    ]
    [patch] = lxd.requests("PATCH", "/1.0")
    assert patch.json == {
        "config": {
            "images.auto_update_interval": "0",
            "cluster.https_address": "127.0.0.2:8443",
            "core.trust_password": "",
        }
    }


def test_set_server_config_unsets_with_an_empty_string(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info({"core.proxy_http": "http://proxy:3128"})))
    lxd.on("PATCH", "/1.0", reply.sync(None))
    assert client.set_server_config({"core.proxy_http": ""}) == ["core.proxy_http"]
    assert lxd.requests("PATCH")[0].json == {"config": {"core.proxy_http": ""}}


def test_set_server_config_with_nothing_to_change_sends_nothing(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info({"core.https_address": "127.0.0.2:8443"})))
    changed = client.set_server_config(
        {"core.https_address": "127.0.0.2:8443", "core.proxy_http": None}
    )
    assert changed == []
    assert lxd.requests("PATCH") == []


def test_set_server_config_refused(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on("GET", "/1.0", reply.sync(server_info()))
    lxd.on("PATCH", "/1.0", reply.error(400, 'Invalid value for "core.https_address"'))
    with pytest.raises(LxdApiError) as caught:
        client.set_server_config({"core.https_address": "nonsense", "a.b": "c"})
    assert str(caught.value) == (
        "LXD refused setting server config a.b, core.https_address: "
        'Invalid value for "core.https_address"'
    )
    assert caught.value.status == 400


# --- preseeds ----------------------------------------------------------------


def test_apply_preseed_needs_a_local_daemon(lxd: FakeLxd, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = LxdClient(lxd, endpoint="https://127.0.0.2:8443")
    ran: list[Any] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(LxdError, match="only be applied to a local LXD daemon") as caught:
        remote.apply_preseed("config: {}\n")
    assert not isinstance(caught.value, PreseedError)
    assert ran == []


def test_apply_preseed_checks_the_preseed_first(lxd: FakeLxd) -> None:
    remote = LxdClient(lxd, endpoint="https://127.0.0.2:8443")
    with pytest.raises(PreseedError, match="unknown preseed key"):
        remote.apply_preseed("confg: {}\n")


def test_apply_preseed_without_the_lxd_command(
    client: LxdClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(LxdError, match="lxd command is not installed"):
        client.apply_preseed("config: {}\n")


class FakeRun:
    """Stands in for subprocess.run: records the call, then fails or succeeds."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def lxd_binary(monkeypatch: pytest.MonkeyPatch) -> str:
    path = "/snap/bin/lxd"
    monkeypatch.setattr(shutil, "which", lambda *a, **k: path)
    return path


def test_apply_preseed_runs_lxd_init_against_this_daemon(
    client: LxdClient, monkeypatch: pytest.MonkeyPatch, lxd_binary: str
) -> None:
    run = FakeRun()
    monkeypatch.setattr(subprocess, "run", run)
    client.apply_preseed({"config": {"core.https_address": "127.0.0.2:8443"}})
    [(args, kwargs)] = run.calls
    assert args == [lxd_binary, "init", "--preseed"]
    assert kwargs["input"] == "config:\n  core.https_address: 127.0.0.2:8443\n"
    assert kwargs["env"]["LXD_DIR"] == str(SOCKET.parent)
    assert kwargs["check"] is True
    assert kwargs["timeout"] == client_module.PRESEED_TIMEOUT


def test_join_cluster_applies_a_join_preseed(
    client: LxdClient, monkeypatch: pytest.MonkeyPatch, lxd_binary: str
) -> None:
    run = FakeRun()
    monkeypatch.setattr(subprocess, "run", run)
    client.join_cluster(
        "m3", "127.0.0.4:8443", "c2VjcmV0", [{"entity": "e", "name": "n", "key": "k"}]
    )
    preseed = run.calls[0][1]["input"]
    assert "cluster_token: c2VjcmV0" in preseed
    assert "server_name: m3" in preseed
    assert "value: ''" in preseed


@pytest.mark.parametrize(
    ("stderr", "stdout", "expected"),
    [
        (
            "Error: Failed to join\nError: Storage pool source missing\n",
            "",
            "Error: Storage pool source missing",
        ),
        ("", "only on stdout\n", "only on stdout"),
        ("", "", "exit code 1"),
        (None, None, "exit code 1"),
    ],
)
def test_apply_preseed_reports_lxds_last_words(
    client: LxdClient,
    monkeypatch: pytest.MonkeyPatch,
    lxd_binary: str,
    stderr: str | None,
    stdout: str | None,
    expected: str,
) -> None:
    failure = subprocess.CalledProcessError(1, [lxd_binary], output=stdout, stderr=stderr)
    monkeypatch.setattr(subprocess, "run", FakeRun(failure))
    with pytest.raises(LxdApiError) as caught:
        client.apply_preseed("config: {}\n")
    assert str(caught.value) == f"LXD refused the preseed: {expected}"
    assert caught.value.__cause__ is None


def test_apply_preseed_that_hangs_is_unreachable(
    client: LxdClient, monkeypatch: pytest.MonkeyPatch, lxd_binary: str
) -> None:
    monkeypatch.setattr(subprocess, "run", FakeRun(subprocess.TimeoutExpired([lxd_binary], 300)))
    with pytest.raises(LxdUnreachableError, match="did not finish within 300 seconds"):
        client.apply_preseed("config: {}\n")


def test_apply_preseed_never_logs_the_preseed(
    client: LxdClient,
    monkeypatch: pytest.MonkeyPatch,
    lxd_binary: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(subprocess, "run", FakeRun())
    with caplog.at_level("DEBUG"):
        client.join_cluster("m3", "127.0.0.4:8443", "VERY-SECRET-TOKEN")
    assert "VERY-SECRET-TOKEN" not in caplog.text
    assert "cluster" in caplog.text


# --- connecting and closing --------------------------------------------------


def test_local_with_a_missing_socket_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "unix.socket"
    with pytest.raises(LxdUnreachableError, match=f"the LXD socket {missing} does not exist"):
        LxdClient.local(missing)


def test_close_closes_the_session_and_removes_the_private_dir(
    lxd: FakeLxd, tmp_path: Path
) -> None:
    private = tempfile.TemporaryDirectory(dir=tmp_path)
    directory = Path(private.name)
    remote = LxdClient(lxd, endpoint="https://127.0.0.2:8443", private_dir=private)
    with remote:
        assert directory.exists()
    assert lxd.session.closed is True
    assert not directory.exists()
    remote.close()  # closing twice is harmless
    assert not directory.exists()


# --- _retrying ----------------------------------------------------------------


class Flaky:
    """Fails with `error` for the first `failures` calls, then returns "ok"."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or LxdUnreachableError("not yet")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make tenacity's waits instant, recording them."""
    slept: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", slept.append)
    return slept


@pytest.mark.parametrize("seconds", [0, 0.0, -1])
def test_retrying_without_time_calls_once(seconds: float) -> None:
    flaky = Flaky(1)
    with pytest.raises(LxdUnreachableError, match="not yet"):
        _retrying(flaky, seconds)
    assert flaky.calls == 1
    assert _retrying(Flaky(0), seconds) == "ok"


def test_retrying_until_success(no_sleep: list[float]) -> None:
    flaky = Flaky(3)
    assert _retrying(flaky, 30) == "ok"
    assert flaky.calls == 4
    assert no_sleep == pytest.approx([0.1, 0.2, 0.4])


def test_retrying_gives_up_with_the_last_unreachable_error() -> None:
    errors = [LxdUnreachableError(f"attempt {i}") for i in range(1000)]
    calls = iter(errors)

    def never() -> str:
        raise next(calls)

    with pytest.raises(LxdUnreachableError) as caught:
        _retrying(never, 0.05)
    tried = errors.index(caught.value) + 1
    assert tried >= 1
    assert str(caught.value) == f"attempt {tried - 1}"
    assert next(calls) is errors[tried]  # it stopped right after the error it raised


def test_retrying_does_not_retry_other_errors(no_sleep: list[float]) -> None:
    flaky = Flaky(1, LxdApiError("refused", 403))
    with pytest.raises(LxdApiError, match="refused"):
        _retrying(flaky, 30)
    assert flaky.calls == 1
    assert no_sleep == []


def test_wait_ready_retries_server_info(
    lxd: FakeLxd, reply: Replies, client: LxdClient, no_sleep: list[float]
) -> None:
    # The socket refuses the first connection (daemon still starting), then answers.
    attempts = iter([requests.ConnectionError("[Errno 111] Connection refused"), None])

    def answer(call: Call) -> requests.Response:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return reply.sync(server_info())

    lxd.on("GET", "/1.0", answer)
    assert client.wait_ready(timeout=10)["auth"] == "trusted"
    assert len(lxd.requests("GET", "/1.0")) == 2
