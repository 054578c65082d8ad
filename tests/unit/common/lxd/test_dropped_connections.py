"""A connection that drops under a request, through a real Unix socket and pylxd.

A small HTTP server on a Unix socket answers as LXD does (`GET /1.0`, a
storage-pool listing) and, when told, drops the keep-alive connection a
request arrived on without answering it (an abortive close: the client reads
"Connection reset by peer"). `LxdClient` asks a read again on a fresh
connection (`READ_RETRIES`); a write it does not ask again: LXD may have
carried it out before the connection went.
"""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxd_common.errors import LxdUnreachableError
from lxd_common.lxd import LxdClient
from lxd_common.lxd._client import READ_RETRIES

SERVER_INFO = {
    "api_extensions": [],
    "api_status": "stable",
    "api_version": "1.0",
    "auth": "trusted",
    "config": {},
    "environment": {"server_clustered": False, "server_name": "node0", "server_version": "5.0.2"},
}


class LxdHandler(http.server.BaseHTTPRequestHandler):
    """Answers as LXD does, or drops the connection of a request the server's ``drop`` names."""

    server: DroppingLxd
    protocol_version = "HTTP/1.1"  # keep-alive, as LXD

    def do_GET(self) -> None:
        self._answer(SERVER_INFO if self.path == "/1.0" else [])

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer({})

    def _answer(self, metadata: object) -> None:
        line = f"{self.command} {self.path}"
        self.server.seen.append(line)
        if self.server.drop and self.server.drop[0] == line:
            self.server.drop.pop(0)
            # An abortive close: the client reads ECONNRESET, as from a dropped connection.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.close_connection = True
            return
        body = json.dumps(
            {"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"  # a Unix socket's peer has no address to log

    def log_message(self, format: str, *args: object) -> None:
        pass


class DroppingLxd(socketserver.ThreadingUnixStreamServer):
    """LXD's API on a Unix socket (`LxdHandler`), serving in a thread."""

    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), LxdHandler)
        self.path = path
        self.drop: list[str] = []
        """Requests ("GET /1.0/storage-pools?recursion=1") to drop, once each, in order."""
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def lxd(tmp_path: Path) -> Iterator[DroppingLxd]:
    server = DroppingLxd(tmp_path / "unix.socket")
    yield server
    server.close()


LISTING = "GET /1.0/storage-pools?recursion=1"


def test_a_read_whose_connection_drops_is_asked_again_on_a_new_one(lxd: DroppingLxd) -> None:
    with LxdClient.local(lxd.path) as client:
        lxd.drop.append(LISTING)
        setup = client.existing_setup(client.info_at_connect)
    assert setup.storage_pools == ()
    assert lxd.seen.count(LISTING) == 2


def test_a_read_dropped_three_times_is_unreachable(lxd: DroppingLxd) -> None:
    """Two retries, no more: the hook then waits, as for any LXD that stopped answering."""
    with LxdClient.local(lxd.path) as client:
        lxd.drop.extend([LISTING] * 3)
        with pytest.raises(LxdUnreachableError, match="while listing storage pools"):
            client.existing_setup(client.info_at_connect)
    assert lxd.seen.count(LISTING) == 3


def test_a_write_whose_connection_drops_is_not_sent_again(lxd: DroppingLxd) -> None:
    """LXD may have carried it out before the connection went: asking again could do it twice."""
    with LxdClient.local(lxd.path) as client:
        lxd.drop.append("PATCH /1.0")
        with pytest.raises(LxdUnreachableError):
            client.set_server_config({"core.https_address": "127.0.0.1:8443"})
    assert lxd.seen.count("PATCH /1.0") == 1


def test_the_retries_are_two_quick_ones_for_reads() -> None:
    """Two retries within half a second (0.1 s, then 0.2 s); reads only once a request went out.

    requests asks urllib3 not to follow redirects, and LXD's error answers
    are JSON to read, not statuses to retry: only dropped connections are.
    """
    assert (READ_RETRIES.total, READ_RETRIES.connect, READ_RETRIES.read) == (2, 2, 2)
    assert READ_RETRIES.allowed_methods == frozenset({"GET", "HEAD"})
    assert READ_RETRIES.backoff_factor == 0.1
    assert not READ_RETRIES.status_forcelist
