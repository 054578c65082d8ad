"""`lxd_common.lxd._client`, one wrong answer each: connecting, what a daemon holds, preseeds.

Written for the mutants test_client.py let through (docs/mutation.md). The
unit tier had no test of `remote` or of `local` on a socket that exists (the
functional tier connects to real daemons), of what `existing_setup` and the
listings make of LXD's answers, or of `lxd init` run as a real process.

Connecting: `pylxd.Client` is replaced by a stand-in that records what it is
given and reads the certificate files while they exist (a real one would ask
the daemon for `GET /1.0` there). `lxd init`: a real executable script named
`lxd`, found through the search path, so the pipes and text mode are real.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pylxd
import pytest
import requests
from pylxd import exceptions as pylxd_exceptions

from lxd_common.certs import CertificatePair
from lxd_common.errors import LxdApiError, LxdError, LxdUnreachableError
from lxd_common.lxd import ExistingSetup, LxdClient
from lxd_common.lxd import _client as client_module
from lxd_common.lxd._client import READ_RETRIES, _retrying
from lxd_common.lxd._storage import StoragePools

if TYPE_CHECKING:
    from tests.unit.common.lxd.conftest import FakeLxd, Replies

SOCKET = Path("/var/snap/lxd/common/lxd/unix.socket")  # never opened: FakeLxd answers


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- ExistingSetup -------------------------------------------------------------------


def test_an_empty_setup_is_uninitialised_and_says_nothing() -> None:
    empty = ExistingSetup()
    assert empty == ExistingSetup((), (), (), "")
    assert empty.initialised is False
    assert empty.describe() == "nothing"


@pytest.mark.parametrize(
    "setup",
    [
        ExistingSetup(storage_pools=("default",)),
        ExistingSetup(networks=("lxdbr0",)),
        ExistingSetup(profiles=("default",)),
        ExistingSetup(cluster_member="m1"),
    ],
)
def test_any_one_thing_makes_a_setup_initialised(setup: ExistingSetup) -> None:
    assert setup.initialised is True


def test_describe_names_each_kind_that_is_there_in_order() -> None:
    full = ExistingSetup(("default", "tank"), ("lxdbr0",), ("gpu",), "m1")
    assert full.describe() == (
        "storage pools default, tank; networks lxdbr0; profiles with devices gpu; "
        "cluster member m1"
    )
    assert ExistingSetup(networks=("lxdbr0",)).describe() == "networks lxdbr0"
    assert ExistingSetup(cluster_member="m1").describe() == "cluster member m1"


# --- the client's parts ----------------------------------------------------------------


@pytest.fixture
def client(lxd: FakeLxd) -> LxdClient:
    return LxdClient(lxd, socket=SOCKET)


def test_the_client_has_storage_pools_and_is_its_own_context(
    lxd: FakeLxd, client: LxdClient
) -> None:
    assert isinstance(client.storage, StoragePools)
    with client as entered:
        assert entered is client
    assert lxd.session.closed is True


def test_server_info_that_is_not_json_is_named(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0", reply.raw(200, b"<html>bad gateway</html>", "text/html"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD sent a non-JSON answer while reading server information")
    ):
        client.server_info()


# --- what the daemon holds (answers shaped like LXD 5.0.2's) ----------------------------


def test_instance_names_across_projects(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    lxd.on(
        "GET",
        "/1.0/instances",
        reply.sync(
            [
                "/1.0/instances/web",
                "/1.0/instances/ci-X?project=ci",
                "/1.0/instances/db/",
                "/1.0/instances/build-X",  # only slashes are stripped from the end
            ]
        ),
    )
    assert client.instance_names() == ["build-X", "ci-X", "db", "web"]
    [call] = lxd.requests("GET", "/1.0/instances")
    assert call.params == {"all-projects": "true"}


def test_instance_names_of_an_empty_daemon(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0/instances", reply.sync(None))
    assert client.instance_names() == []


def test_instance_listing_refused_is_named(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0/instances", reply.error(403, "not authorized"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused listing instances: not authorized")
    ):
        client.instance_names()


def test_storage_pool_volumes_as_type_and_name(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    path = "/1.0/storage-pools/default/volumes"
    lxd.on(
        "GET",
        path,
        reply.sync(
            [
                "/1.0/storage-pools/default/volumes/container/web",
                "/1.0/storage-pools/default/volumes/custom/data-X?project=ci",
                "/1.0/storage-pools/default/volumes/virtual-machine/vm1/",
            ]
        ),
    )
    assert client.storage_pool_volumes("default") == [
        "container/web",
        "custom/data-X",
        "virtual-machine/vm1",
    ]
    lxd.on("GET", path, reply.sync(None))
    assert client.storage_pool_volumes("default") == []
    lxd.on("GET", path, reply.error(404, "Storage pool not found"))
    with pytest.raises(
        LxdApiError,
        match=exactly(
            "LXD refused listing the volumes of storage pool 'default': Storage pool not found"
        ),
    ):
        client.storage_pool_volumes("default")


def test_delete_storage_pool(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    path = "/1.0/storage-pools/tank"
    lxd.on("DELETE", path, reply.sync(None))
    client.delete_storage_pool("tank")
    assert [(c.method, c.path) for c in lxd.calls] == [("DELETE", path)]
    lxd.on("DELETE", path, reply.error(400, "The storage pool is currently in use"))
    with pytest.raises(LxdApiError) as raised:
        client.delete_storage_pool("tank")
    assert str(raised.value) == (
        "LXD refused deleting storage pool 'tank': The storage pool is currently in use"
    )
    assert raised.value.status == 400


NETWORKS = [
    {"name": "lxdbr0", "managed": True, "type": "bridge", "config": {"ipv4.nat": True}},
    {"name": "ovn0", "managed": True, "type": "ovn", "config": None},
    {"name": "eth0", "managed": False, "type": "physical", "config": {}},
]


def test_managed_networks_with_their_config_as_strings(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0/networks", reply.sync(NETWORKS))
    assert client.managed_networks() == {"lxdbr0": {"ipv4.nat": "True"}, "ovn0": {}}
    assert lxd.requests("GET", "/1.0/networks")[0].params == {"recursion": "1"}
    lxd.on("GET", "/1.0/networks", reply.sync(None))
    assert client.managed_networks() == {}
    lxd.on("GET", "/1.0/networks", reply.error(500, "database unavailable"))
    with pytest.raises(
        LxdApiError, match=exactly("LXD refused listing networks: database unavailable")
    ):
        client.managed_networks()


def test_existing_setup_reads_pools_managed_networks_profiles_with_devices_and_member(
    lxd: FakeLxd, reply: Replies, client: LxdClient
) -> None:
    lxd.on("GET", "/1.0/storage-pools", reply.sync([{"name": "tank"}, {"name": "default"}]))
    lxd.on("GET", "/1.0/networks", reply.sync(NETWORKS))
    lxd.on(
        "GET",
        "/1.0/profiles",
        reply.sync(
            [
                {"name": "default", "devices": {}},
                {"name": "gpu", "devices": {"gpu0": {"type": "gpu"}}},
            ]
        ),
    )
    lxd.on("GET", "/1.0/cluster", reply.sync({"server_name": "m1", "enabled": True}))
    assert client.existing_setup() == ExistingSetup(
        storage_pools=("default", "tank"),
        networks=("lxdbr0", "ovn0"),
        profiles=("gpu",),
        cluster_member="m1",
    )
    listed = [c for c in lxd.calls if c.path != "/1.0/cluster"]
    assert [(c.path, c.params) for c in listed] == [
        ("/1.0/storage-pools", {"recursion": "1"}),
        ("/1.0/networks", {"recursion": "1"}),
        ("/1.0/profiles", {"recursion": "1"}),
    ]


def test_existing_setup_of_a_fresh_daemon(lxd: FakeLxd, reply: Replies, client: LxdClient) -> None:
    for collection in ("storage-pools", "networks"):
        lxd.on("GET", f"/1.0/{collection}", reply.sync(None))
    lxd.on("GET", "/1.0/profiles", reply.sync([{"name": "default", "devices": {}}]))
    lxd.on("GET", "/1.0/cluster", reply.sync({"server_name": "", "enabled": False}))
    assert client.existing_setup() == ExistingSetup()


@pytest.mark.parametrize(
    ("collection", "words"),
    [("storage-pools", "storage pools"), ("networks", "networks"), ("profiles", "profiles")],
)
def test_existing_setup_names_the_listing_lxd_refused(
    lxd: FakeLxd, reply: Replies, client: LxdClient, collection: str, words: str
) -> None:
    for each in ("storage-pools", "networks", "profiles"):
        lxd.on("GET", f"/1.0/{each}", reply.sync([]))
    lxd.on("GET", f"/1.0/{collection}", reply.error(403, "not authorized"))
    with pytest.raises(LxdApiError, match=exactly(f"LXD refused listing {words}: not authorized")):
        client.existing_setup()


# --- connecting: pylxd.Client stood in for ---------------------------------------------


class ClientStandIn:
    """Records each `pylxd.Client(...)` and what the certificate files held at that moment."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.made: list[dict[str, Any]] = []
        self.files: dict[str, str] = {}
        self.modes: dict[str, int] = {}
        self.clients: list[Any] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.made.append(kwargs)
        session = kwargs.get("session")
        paths = list(kwargs.get("cert") or ())
        if session is not None and isinstance(session.verify, str):
            paths.append(session.verify)
        for name in paths:
            self.files[name] = Path(name).read_text()
            self.modes[name] = mode(Path(name))
        if len(self.made) <= self.fail:
            raise pylxd_exceptions.ClientConnectionFailed("[Errno 111] Connection refused")
        # What `LxdClient` touches of a pylxd client: its API node's session.
        made = SimpleNamespace(api=SimpleNamespace(session=session or requests.Session()))
        self.clients.append(made)
        return made


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> ClientStandIn:
    made = ClientStandIn()
    monkeypatch.setattr(pylxd, "Client", made)
    return made


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> ClientStandIn:
    made = ClientStandIn(fail=1000)
    monkeypatch.setattr(pylxd, "Client", made)
    return made


def test_local_connects_to_the_socket_it_was_given(
    stand_in: ClientStandIn, tmp_path: Path
) -> None:
    socket = tmp_path / "unix.socket"
    socket.touch()
    client = LxdClient.local(socket, timeout=7.0)
    assert client.pylxd is stand_in.clients[-1]
    [made] = stand_in.made
    assert (made["endpoint"], made["timeout"]) == (str(socket), 7.0)
    url = "http+unix://" + str(socket).replace("/", "%2F")
    assert made["session"].get_adapter(url).max_retries is READ_RETRIES
    assert (client.socket, client.endpoint) == (socket, None)


def test_local_that_cannot_connect_is_unreachable_after_one_try(
    failing: ClientStandIn, tmp_path: Path
) -> None:
    socket = tmp_path / "unix.socket"
    socket.touch()
    with pytest.raises(LxdUnreachableError) as raised:
        LxdClient.local(socket)
    assert str(raised.value) == (
        f"cannot reach LXD while connecting to {socket}: [Errno 111] Connection refused"
    )
    assert len(failing.made) == 1, "no wait given: no retry"


def test_remote_pins_the_server_certificate_in_a_private_directory(
    stand_in: ClientStandIn, certs: list[CertificatePair]
) -> None:
    ours, server = certs[0], certs[1]
    client = LxdClient.remote("10.0.0.1", ours, server.certificate, timeout=9.0)
    assert client.pylxd is stand_in.clients[-1]
    assert client.endpoint == "https://10.0.0.1:8443"
    [made] = stand_in.made
    cert_path, key_path = (Path(p) for p in made["cert"])
    directory = cert_path.parent
    assert directory.name.startswith("lxd-client-")
    assert (cert_path.name, key_path.name, key_path.parent) == (
        "client.crt",
        "client.key",
        directory,
    )
    assert mode(directory) == 0o700
    session = made["session"]
    assert session.verify == str(directory / "server.crt")
    assert session.cert == (str(cert_path), str(key_path))
    assert session.trust_env is False, "REQUESTS_CA_BUNDLE must not replace the pinned cert"
    assert session.get_adapter("https://10.0.0.1:8443").max_retries is READ_RETRIES
    assert stand_in.files == {
        str(cert_path): ours.certificate,
        str(key_path): ours.private_key,
        str(directory / "server.crt"): server.certificate,
    }
    assert stand_in.modes[str(key_path)] == 0o600
    assert (made["endpoint"], made["timeout"]) == ("https://10.0.0.1:8443", 9.0)
    client.close()
    assert not directory.exists()


def test_remote_without_a_server_certificate_verifies_with_system_cas(
    stand_in: ClientStandIn, certs: list[CertificatePair]
) -> None:
    client = LxdClient.remote("https://lxd.example.com:8443", certs[0])
    [made] = stand_in.made
    assert made["session"].verify is True
    assert made["session"].get_adapter("https://lxd.example.com:8443").max_retries is READ_RETRIES
    directory = Path(made["cert"][0]).parent
    assert sorted(p.name for p in directory.iterdir()) == ["client.crt", "client.key"]
    client.close()


def test_remote_that_cannot_connect_leaves_no_files_and_tries_once(
    failing: ClientStandIn, certs: list[CertificatePair]
) -> None:
    with pytest.raises(LxdUnreachableError) as raised:
        LxdClient.remote("10.0.0.1", certs[0], certs[1].certificate)
    assert str(raised.value) == (
        "cannot reach LXD while connecting to https://10.0.0.1:8443: "
        "[Errno 111] Connection refused"
    )
    assert len(failing.made) == 1, "no wait given: no retry"
    directory = Path(failing.made[0]["cert"][0]).parent
    assert not directory.exists()


# --- _retrying ---------------------------------------------------------------------------


def test_retrying_with_under_a_second_still_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", slept.append)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise LxdUnreachableError("not yet")
        return "ok"

    assert _retrying(flaky, 0.5) == "ok"
    assert len(calls) == 2
    assert slept == [pytest.approx(0.1)]


# --- preseeds through a real process -----------------------------------------------------


@pytest.fixture
def lxd_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable `lxd` on a search path of its own: it records its input and refuses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "lxd"
    script.write_text(
        "#!/bin/sh\n"
        'cat > "$(dirname "$0")/input"\n'
        'echo "LXD_DIR=$LXD_DIR args=$*" > "$(dirname "$0")/env"\n'
        "echo 'Error: Failed to join cluster' >&2\n"
        "echo 'Error: Storage pool source missing' >&2\n"
        "exit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setattr(client_module, "LXD_BINARY_PATH", str(bin_dir))
    return script


def test_lxd_init_runs_as_a_process_and_its_last_error_line_is_reported(
    client: LxdClient, lxd_command: Path
) -> None:
    with pytest.raises(LxdApiError) as raised:
        client.apply_preseed({"config": {"core.https_address": "127.0.0.2:8443"}})
    assert str(raised.value) == "LXD refused the preseed: Error: Storage pool source missing"
    assert (lxd_command.parent / "input").read_text() == (
        "config:\n  core.https_address: 127.0.0.2:8443\n"
    )
    assert (lxd_command.parent / "env").read_text() == (
        f"LXD_DIR={SOCKET.parent} args=init --preseed\n"
    )


def test_the_snaps_lxd_is_looked_for_before_debians() -> None:
    assert client_module.LXD_BINARY_PATH.split(os.pathsep)[:2] == ["/snap/bin", "/usr/sbin"]


def test_preseed_refusals_are_the_whole_message(
    lxd: FakeLxd, client: LxdClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = LxdClient(lxd, endpoint="https://127.0.0.2:8443")
    with pytest.raises(
        LxdError, match=exactly("a preseed can only be applied to a local LXD daemon")
    ):
        remote.apply_preseed("config: {}\n")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(client_module, "LXD_BINARY_PATH", str(tmp_path / "empty"))
    with pytest.raises(
        LxdError, match=exactly("the lxd command is not installed; cannot apply a preseed")
    ):
        client.apply_preseed("config: {}\n")
