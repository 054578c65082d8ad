"""The benchmark's request counter: every request on a kept-alive connection is counted.

`bench.lxd_requests.RequestLines` reads a client's byte stream as HTTP
frames it. The first version split the stream at line breaks and matched
request lines, which missed a request that followed a body on the same
connection (a JSON body ends without a line break, so the next request line
was glued to it): a leader issuing six join tokens showed one POST.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from bench.lxd_requests import CountingProxy, RequestLines


def post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: lxd\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: lxd\r\n\r\n".encode()


def chunked_put(path: str, chunks: list[bytes]) -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: lxd\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks)
    return head + body + b"0\r\n\r\n"


STREAM = (
    get("/1.0")
    + post("/1.0/cluster/members", b'{"server_name": "node1"}')
    + post("/1.0/cluster/members", b'{"server_name": "node2"}')
    + chunked_put("/1.0", [b'{"config":', b" {}}"])
    + get("/1.0/cluster/members?recursion=1")
)
EXPECTED = [
    ("GET", "/1.0"),
    ("POST", "/1.0/cluster/members"),
    ("POST", "/1.0/cluster/members"),
    ("PUT", "/1.0"),
    ("GET", "/1.0/cluster/members?recursion=1"),
]


def test_requests_after_a_body_on_one_connection_are_each_counted() -> None:
    assert RequestLines().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_however_the_stream_is_cut_into_reads(size: int) -> None:
    lines = RequestLines()
    found = []
    for start in range(0, len(STREAM), size):
        found.extend(lines.feed(STREAM[start : start + size]))
    assert found == EXPECTED


def test_a_body_that_looks_like_a_request_is_not_one() -> None:
    body = b"GET /1.0/instances HTTP/1.1\r\n\r\n"
    assert RequestLines().feed(post("/1.0/images", body) + get("/1.0")) == [
        ("POST", "/1.0/images"),
        ("GET", "/1.0"),
    ]


def test_the_proxy_counts_what_it_forwards(tmp_path: Path) -> None:
    """Through real sockets: a daemon that reads everything, a proxy in front, one client."""
    daemon_dir, proxy_dir = tmp_path / "lxd", tmp_path / "proxy"
    daemon_dir.mkdir()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(daemon_dir / "unix.socket"))
    server.listen(1)
    received = bytearray()

    def daemon() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(65536):
                received.extend(data)

    thread = threading.Thread(target=daemon, daemon=True)
    thread.start()
    proxy = CountingProxy(daemon_dir, proxy_dir)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(proxy_dir / "unix.socket"))
            client.sendall(STREAM)
            client.shutdown(socket.SHUT_WR)
            thread.join(timeout=10)
        assert bytes(received) == STREAM
        assert proxy.since(0) == EXPECTED
    finally:
        proxy.close()
        server.close()
