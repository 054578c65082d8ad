"""A tiny stand-in for an LXD daemon, for unit tests of `lxd_common.lxd`.

`FakeLxd` plays the part of a `pylxd.Client`. Its `api` attribute is pylxd's
own `_APINode`, so attribute and item access build the same URLs and
`_assert_response` raises the same `NotFound` / `Conflict` /
`LXDAPIException` it raises against a real daemon; only the HTTP session
under it is replaced, by one that answers from canned replies and records
every request. No socket is ever opened.

Replies are real `requests.Response` objects carrying the bodies LXD sends
(shapes captured from LXD 5.0.2): `reply.sync(...)`, `reply.async_op(...)`,
`reply.error(...)`.
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pylxd.client import _APINode
from pylxd.managers import OperationManager

from lxd_common.certs import CertificatePair, generate_client_certificate

#: What pylxd makes of a socket path; any string works, nothing connects to it.
BASE_URL = "http+unix://%2Fvar%2Flib%2Flxd%2Funix.socket"


# --- replies -----------------------------------------------------------------


def raw_response(
    status: int, content: bytes, content_type: str = "application/json"
) -> requests.Response:
    """A real `requests.Response`, as requests would build it from the wire."""
    response = requests.Response()
    response.status_code = status
    response.reason = http.HTTPStatus(status).phrase
    response._content = content
    response.encoding = "utf-8"
    response.headers["Content-Type"] = content_type
    return response


def sync(metadata: Any = None) -> requests.Response:
    """LXD's answer to a request that succeeded at once."""
    body = {
        "type": "sync",
        "status": "Success",
        "status_code": 200,
        "operation": "",
        "error_code": 0,
        "error": "",
        "metadata": metadata,
    }
    return raw_response(200, json.dumps(body).encode())


def async_op(operation: dict[str, Any]) -> requests.Response:
    """LXD's answer (HTTP 202) to a request that started a background operation."""
    body = {
        "type": "async",
        "status": "Operation created",
        "status_code": 100,
        "operation": f"/1.0/operations/{operation['id']}",
        "error_code": 0,
        "error": "",
        "metadata": operation,
    }
    return raw_response(202, json.dumps(body).encode())


def error(code: int, message: str) -> requests.Response:
    """LXD's answer to a refused request: the HTTP status is the error code."""
    body = {
        "type": "error",
        "status": "",
        "status_code": 0,
        "operation": "",
        "error_code": code,
        "error": message,
        "metadata": None,
    }
    return raw_response(code, json.dumps(body).encode())


def operation(
    op_id: str, cls: str, metadata: dict[str, Any], status: str = "Running"
) -> dict[str, Any]:
    """One operation as ``GET /1.0/operations?recursion=1`` lists it."""
    return {
        "id": op_id,
        "class": cls,
        "description": "Executing operation",
        "created_at": "2026-11-23T12:13:40.68955822Z",
        "updated_at": "2026-11-23T12:13:40.68955822Z",
        "status": status,
        "status_code": 103 if status == "Running" else 200,
        "resources": {},
        "metadata": metadata,
        "may_cancel": True,
        "err": "",
        "location": "none",
    }


class Replies:
    """The reply builders, as the `reply` fixture hands them to tests."""

    raw = staticmethod(raw_response)
    sync = staticmethod(sync)
    async_op = staticmethod(async_op)
    error = staticmethod(error)
    operation = staticmethod(operation)


@pytest.fixture
def reply() -> Replies:
    """The reply builders, for tests (which cannot import this conftest at run time)."""
    return Replies()


# --- the fake daemon ---------------------------------------------------------

Reply = requests.Response | Callable[["Call"], requests.Response]


@dataclass(frozen=True)
class Call:
    """One request the code under test made."""

    method: str
    path: str
    params: dict[str, Any] | None
    json: Any


class _Session:
    """The HTTP session under pylxd's `_APINode`: answers from `FakeLxd.routes`."""

    def __init__(self, lxd: FakeLxd) -> None:
        self._lxd = lxd
        self.closed = False

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        assert url.startswith(BASE_URL), url
        call = Call(method, url[len(BASE_URL) :], kwargs.get("params"), kwargs.get("json"))
        self._lxd.calls.append(call)
        replies = self._lxd.routes.get((method, call.path))
        if not replies:
            raise AssertionError(f"unexpected request {method} {call.path}")
        answer = replies.pop(0) if len(replies) > 1 else replies[0]
        return answer(call) if callable(answer) else answer

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self._request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> requests.Response:
        return self._request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self._request("DELETE", url, **kwargs)

    def close(self) -> None:
        self.closed = True


class FakeLxd:
    """Stands in for `pylxd.Client`: `api` is pylxd's real node over a fake session."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.calls: list[Call] = []
        self.session = _Session(self)
        self.api = _APINode(f"{BASE_URL}/1.0", self.session, timeout=5)
        self.operations = OperationManager(self)
        self.host_info: dict[str, Any] = {}
        """What `pylxd.Client` keeps of the ``GET /1.0`` it read to connect; tests set it."""

    def on(self, method: str, path: str, *replies: Reply) -> None:
        """Answer ``method path`` with ``replies`` in turn; the last one repeats."""
        self.routes[(method, path)] = list(replies)

    def requests(self, method: str | None = None, path: str | None = None) -> list[Call]:
        """The calls made, optionally only those with this method and/or path."""
        return [
            c
            for c in self.calls
            if (method is None or c.method == method) and (path is None or c.path == path)
        ]


@pytest.fixture
def lxd() -> FakeLxd:
    return FakeLxd()


@pytest.fixture(scope="session")
def certs() -> list[CertificatePair]:
    """Three real client certificates (P-384, as the charms generate them)."""
    return [generate_client_certificate(f"unit-{i}") for i in range(3)]
