"""A connection that drops under a request, through a real Unix socket and pylxd.

A small HTTP server on a Unix socket answers as LXD does (`GET /1.0`, a
storage-pool listing) and, when told, drops the keep-alive connection a
request arrived on without answering it (an abortive close: the client reads
"Connection reset by peer"). `LxdClient` asks a read again on a fresh
connection (`READ_RETRIES`); a write it does not ask again: LXD may have
carried it out before the connection went.
"""

from __future__ import annotations

import json
import socket
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


def lxd_reply(metadata: object) -> bytes:
    body = json.dumps(
        {"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}
    ).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class DroppingLxd:
    """Answers `GET /1.0` and listings; drops the connection of the requests named in ``drop``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.drop: list[str] = []
        """Request lines ("GET /1.0/storage-pools?recursion=1") to drop, once each, in order."""
        self.seen: list[str] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next(
                    (
                        int(v)
                        for k, _, v in (h.partition(": ") for h in lines[1:])
                        if k.lower() == "content-length"
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                line = lines[0].rsplit(" ", 1)[0]
                self.seen.append(line)
                if self.drop and self.drop[0] == line:
                    self.drop.pop(0)
                    # An abortive close: the client reads ECONNRESET, as from a dropped connection.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if line == "GET /1.0":
                    conn.sendall(lxd_reply(SERVER_INFO))
                elif line.startswith("GET /1.0/"):
                    conn.sendall(lxd_reply([]))
                else:
                    conn.sendall(lxd_reply({}))


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
