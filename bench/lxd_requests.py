"""Counting the LXD API requests a hook makes, from outside the charm.

`CountingProxy` listens on a `unix.socket` of its own, in a directory that
mirrors the daemon's (every other entry is a symlink to the real one), and
forwards each connection to the daemon's real socket, byte for byte. It
counts the HTTP request lines that go through (method and path), so a
unit's hooks, given `LXD_DIR` = the proxy's directory, are counted without
touching the charm; that includes the `lxd init` the charm runs, which talks
to the same socket. The mirror is made when the proxy starts: entries the
daemon creates later (a cluster certificate after a join) are not in it, which
only matters to the charm's half-join clean-up paths, not to a formation.

`CountingRunner` is the unit-agent stand-in with a proxy per unit: it reads a
unit's count before and after each hook, and keeps (hook kind, leader?,
requests, paths) per hook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops import testing

from tests.harness.unit_agent import AgentModel, AgentUnit, UnitAgentRunner

_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) HTTP/1\.[01]$")


class CountingProxy:
    """A Unix-socket proxy in front of one LXD daemon that counts the requests it forwards."""

    def __init__(self, lxd_dir: Path, directory: Path) -> None:
        self.target = lxd_dir / "unix.socket"
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for entry in lxd_dir.iterdir():
            if entry.name != "unix.socket" and not (directory / entry.name).exists():
                (directory / entry.name).symlink_to(entry)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(directory / "unix.socket"))
        self._server.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def count(self) -> int:
        """Requests forwarded so far."""
        with self._lock:
            return len(self.requests)

    def since(self, start: int) -> list[tuple[str, str]]:
        """The requests forwarded after the first ``start``."""
        with self._lock:
            return list(self.requests[start:])

    def close(self) -> None:
        """Stop accepting connections (open ones end with their peers)."""
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(str(self.target))
            except OSError:
                client.close()
                continue
            ends = [client, upstream]
            for source, sink, count in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, count, ends), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, count: bool, ends: list[socket.socket]
    ) -> None:
        """Forward one direction; at its end, half-close the other side; the last one closes."""
        requests = RequestLines()
        try:
            while data := source.recv(65536):
                if count:
                    found = requests.feed(data)
                    with self._lock:
                        self.requests.extend(found)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with self._lock:
                ends.append(source)  # a marker: this direction is done
                last = len(ends) == 4
            if last:
                for end in ends[:2]:
                    end.close()


class RequestLines:
    """The HTTP requests in a client's byte stream, read as HTTP frames them.

    A request's head ends at a blank line, and its body (``Content-Length``
    bytes, or chunks up to the last, empty one) is skipped, so the next
    request on a kept-alive connection is found even when the body before it
    ends without a line break (a JSON body never has one).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._body = 0
        """Bytes of the current request's body still to skip."""
        self._chunked = False

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """The (method, path) of each request whose head ``data`` completes."""
        self._buffer += data
        found: list[tuple[str, str]] = []
        while True:
            if self._body:
                skipped = min(self._body, len(self._buffer))
                self._buffer, self._body = self._buffer[skipped:], self._body - skipped
                if self._body:
                    return found
            if self._chunked:
                end = self._buffer.find(b"\r\n0\r\n\r\n")
                start_end = self._buffer.startswith(b"0\r\n\r\n")
                if start_end:
                    self._buffer, self._chunked = self._buffer[5:], False
                elif end < 0:
                    self._buffer = self._buffer[-8:]  # the terminator may straddle reads
                    return found
                else:
                    self._buffer, self._chunked = self._buffer[end + 7 :], False
            head, blank, rest = self._buffer.partition(b"\r\n\r\n")
            if not blank:
                return found
            self._buffer = rest
            lines = head.split(b"\r\n")
            matched = _REQUEST_LINE.match(lines[0])
            if matched:
                found.append((matched.group(1).decode(), matched.group(2).decode()))
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self._body = int(value.strip() or b"0")
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    self._chunked = True


@dataclasses.dataclass(frozen=True)
class HookRequests:
    """The LXD requests of one hook."""

    unit: str
    kind: str
    leader: bool
    requests: tuple[tuple[str, str], ...]
    seconds: float
    """From `dispatch` started to it exited (and the runner took its output)."""


def hook_kind(dispatch_path: str) -> str:
    """`hooks/cluster-relation-changed` -> `cluster-relation-changed`; actions: `action x`."""
    folder, _, name = dispatch_path.partition("/")
    return name if folder == "hooks" else f"action {name}"


class Proxies:
    """One `CountingProxy` per daemon, made on first use (a unit's first hook)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_dir: dict[Path, CountingProxy] = {}
        self._lock = threading.Lock()

    def proxy(self, lxd_dir: Path) -> CountingProxy:
        """The proxy in front of the daemon in ``lxd_dir``."""
        with self._lock:
            found = self._by_dir.get(lxd_dir)
            if found is None:
                found = CountingProxy(lxd_dir, self.root / str(len(self._by_dir)))
                self._by_dir[lxd_dir] = found
            return found

    def close(self) -> None:
        """Close every proxy."""
        with self._lock:
            for proxy in self._by_dir.values():
                proxy.close()


class CountingRunner(UnitAgentRunner):
    """The unit-agent stand-in, recording each hook's LXD requests through the unit's proxy.

    Set `proxies` to the `Proxies` whose directories the units' `LXD_DIR` name;
    a unit's daemon is its `SimUnit.machine`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proxies: Proxies | None = None
        self.per_hook: list[HookRequests] = []
        self._records = threading.Lock()

    def run(
        self,
        sim: AgentModel,
        unit: AgentUnit,
        event: Any,
        state: testing.State,
        env: Mapping[str, str],
    ) -> testing.State:
        proxy = self.proxies.proxy(unit.machine.directory) if self.proxies else None
        start = proxy.count if proxy else 0
        path = self.hook_env(sim, unit, event, env)["JUJU_DISPATCH_PATH"]
        started = time.monotonic()
        try:
            return super().run(sim, unit, event, state, env)
        finally:
            seen = tuple(proxy.since(start)) if proxy else ()
            record = HookRequests(
                unit.name, hook_kind(path), bool(state.leader), seen, time.monotonic() - started
            )
            with self._records:
                self.per_hook.append(record)
