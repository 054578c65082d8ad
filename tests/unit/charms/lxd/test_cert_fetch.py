"""Unit tests of `lxd_charm.cert_fetch`: every branch, with fakes instead of the network.

The opener is a fake (`FakeOpener`) serving `FakeBody` responses, so nothing
here opens a socket; the redirect decisions are tested on urllib's handler
directly. The functional tier (tests/functional/test_lxd_charm_cert_url.py)
runs the same fences against real local servers.
"""

from __future__ import annotations

import ast
import email.message
import http.client
import io
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lxd_charm import cert_fetch
from lxd_charm.cert_fetch import (
    CertFetchError,
    Fetched,
    UrllibOpener,
    check_redirect,
    fetch_certificate,
    public_url,
    redact,
    same_server,
)
from lxd_common.certs import CertificatePair, generate_client_certificate

URL = "https://certs.example.com/client.crt"


# --- fakes ------------------------------------------------------------------------


class FakeBody:
    """A response body: serves ``data`` (or endless bytes), records what was asked."""

    def __init__(
        self,
        data: bytes = b"",
        *,
        endless: bool = False,
        headers: dict[str, str] | None = None,
        read_error: Exception | None = None,
        url: str = URL,
        block: threading.Event | None = None,
    ) -> None:
        self._stream = io.BytesIO(data)
        self.endless = endless
        self.headers = email.message.Message()
        for key, value in (headers or {}).items():
            self.headers[key] = value
        self.read_error = read_error
        self.url = url
        self.block = block
        self.served = 0
        self.closed = False

    def read(self, size: int = -1, /) -> bytes:
        if self.block is not None:
            self.block.wait(30)  # a read blocked until the opener is aborted
            raise ConnectionResetError(104, "Connection reset by peer")
        if self.read_error is not None:
            raise self.read_error
        chunk = b"A" * size if self.endless else self._stream.read(size)
        self.served += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


class FakeOpener:
    def __init__(self, result: FakeBody | BaseException) -> None:
        self.result = result
        self.calls: list[tuple[str, float]] = []
        self.aborted = threading.Event()

    def open(self, url: str, timeout: float) -> FakeBody:
        self.calls.append((url, timeout))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result

    def abort(self) -> None:
        self.aborted.set()


class NeverOpen:
    def open(self, url: str, timeout: float) -> FakeBody:
        raise AssertionError(f"the opener must not be called for {url!r}")

    def abort(self) -> None:
        raise AssertionError("nothing to abort")


def frozen_clock() -> float:
    """A clock that stands still: the socket timeout handed on is the whole deadline."""
    return 100.0


@pytest.fixture(scope="module")
def pair() -> CertificatePair:
    return generate_client_certificate("alice-laptop")


# --- the module's shape ------------------------------------------------------------


def test_module_does_not_import_ops() -> None:
    tree = ast.parse(Path(cert_fetch.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "ops" not in imported
    assert "lxd_charm" not in imported  # one job, nothing of the actions


# --- fetch_certificate ---------------------------------------------------------------


def test_fetch_returns_the_body_as_text(pair: CertificatePair) -> None:
    opener = FakeOpener(FakeBody(pair.certificate.encode()))
    fetched = fetch_certificate(f"  {URL} ", opener=opener, clock=frozen_clock)
    assert fetched == Fetched(text=pair.certificate, requested=URL, final_url=URL)
    assert not fetched.moved
    assert opener.calls == [(URL, 10.0)]
    assert isinstance(opener.result, FakeBody)
    assert opener.result.closed


def test_fetch_passes_its_timeout_and_strips_a_bom(pair: CertificatePair) -> None:
    opener = FakeOpener(FakeBody(b"\xef\xbb\xbf" + pair.certificate.encode()))
    fetched = fetch_certificate(URL, timeout=3, opener=opener, clock=frozen_clock)
    assert fetched.text == pair.certificate
    assert opener.calls == [(URL, 3)]


def test_fetch_hands_the_opener_only_the_time_left(pair: CertificatePair) -> None:
    ticks = iter([50.0, 52.5])  # the deadline is set at 50, the opener is called at 52.5
    opener = FakeOpener(FakeBody(b"x"))
    fetch_certificate(URL, timeout=10, opener=opener, clock=lambda: next(ticks, 53.0))
    assert opener.calls == [(URL, 7.5)]


def test_fetch_reports_where_a_redirect_took_it(pair: CertificatePair) -> None:
    elsewhere = "https://mirror.example.net/c.crt?sig=secret"
    fetched = fetch_certificate(URL, opener=FakeOpener(FakeBody(b"x", url=elsewhere)))
    assert (fetched.requested, fetched.final_url, fetched.moved) == (URL, elsewhere, True)


def test_fetch_accepts_exactly_max_bytes() -> None:
    body = FakeBody(b"A" * 100)
    assert fetch_certificate(URL, max_bytes=100, opener=FakeOpener(body)).text == "A" * 100


def test_fetch_refuses_a_body_larger_than_the_cap_reading_at_most_one_byte_more() -> None:
    body = FakeBody(endless=True)
    with pytest.raises(CertFetchError, match=r"serves more than 1000 bytes") as info:
        fetch_certificate(URL, max_bytes=1000, opener=FakeOpener(body))
    assert URL in str(info.value)
    assert body.served == 1001
    assert body.closed


def test_fetch_refuses_a_declared_length_over_the_cap_without_reading() -> None:
    body = FakeBody(b"A" * 10, headers={"Content-Length": "999999"})
    with pytest.raises(CertFetchError, match="serves 999999 bytes, more than the 1000"):
        fetch_certificate(URL, max_bytes=1000, opener=FakeOpener(body))
    assert body.served == 0
    assert body.closed


@pytest.mark.parametrize("declared", ["10", "not a number"])
def test_fetch_does_not_trust_a_small_or_bogus_content_length(declared: str) -> None:
    body = FakeBody(b"A" * 5000, headers={"Content-Length": declared})
    with pytest.raises(CertFetchError, match="more than 1000 bytes"):
        fetch_certificate(URL, max_bytes=1000, opener=FakeOpener(body))
    assert body.served == 1001


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("timed out"),
        urllib.error.URLError(TimeoutError("timed out")),
    ],
)
def test_fetch_timeout_when_connecting(error: Exception) -> None:
    with pytest.raises(
        CertFetchError, match=r"cannot fetch the certificate from .*timed out after 4s"
    ):
        fetch_certificate(URL, timeout=4, opener=FakeOpener(error))


def test_fetch_timeout_while_reading() -> None:
    body = FakeBody(read_error=TimeoutError("The read operation timed out"))
    with pytest.raises(CertFetchError, match="timed out after 10s"):
        fetch_certificate(URL, opener=FakeOpener(body))
    assert body.closed


def test_fetch_gives_up_when_the_whole_download_is_too_slow() -> None:
    """Each read may be quick while the server drips bytes forever: a deadline stops it."""
    clock = iter(range(0, 1000, 3))
    body = FakeBody(endless=True)
    with pytest.raises(CertFetchError, match=r"took longer than 10s \(the deadline"):
        fetch_certificate(
            URL,
            timeout=10,
            max_bytes=10**9,
            opener=FakeOpener(body),
            clock=lambda: float(next(clock)),
        )
    assert body.closed


def test_fetch_gives_up_on_a_blocked_read_at_the_deadline_and_aborts_it() -> None:
    """A read that never returns (a byte just before each socket timeout) cannot hold it."""
    aborted = threading.Event()
    opener = FakeOpener(FakeBody(block=aborted))
    opener.aborted = aborted  # abort() releases the blocked read, as shutting a socket does
    started = time.monotonic()
    with pytest.raises(CertFetchError, match=r"took longer than 0\.3s \(the deadline") as info:
        fetch_certificate(URL, timeout=0.3, opener=opener)
    assert time.monotonic() - started < 5
    assert aborted.is_set()
    assert URL in str(info.value)


def test_fetch_gives_up_on_a_blocked_open_at_the_deadline() -> None:
    released = threading.Event()

    class Stalled(FakeOpener):
        def open(self, url: str, timeout: float) -> FakeBody:
            released.wait(30)
            raise ConnectionResetError(104, "Connection reset by peer")

        def abort(self) -> None:
            released.set()

    started = time.monotonic()
    with pytest.raises(CertFetchError, match=r"took longer than 0\.2s"):
        fetch_certificate(URL, timeout=0.2, opener=Stalled(FakeBody()))
    assert time.monotonic() - started < 5
    assert released.is_set()


@pytest.mark.parametrize(("code", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
def test_fetch_http_errors_name_the_url_and_status(code: int, reason: str) -> None:
    error = urllib.error.HTTPError(URL, code, reason, email.message.Message(), None)
    with pytest.raises(CertFetchError) as info:
        fetch_certificate(URL, opener=FakeOpener(error))
    assert str(info.value) == (
        f"cannot fetch the certificate from {URL}: the server answered HTTP {code} {reason}; "
        "check the URL"
    )


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "refused"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (
            urllib.error.URLError(socket.gaierror(-2, "Name or service not known")),
            "host name not resolved (Name or service not known)",
        ),
        (urllib.error.URLError(ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED")), "TLS failed"),
        (urllib.error.URLError(OSError(113, "No route to host")), "No route to host"),
        (urllib.error.URLError("unknown url type"), "unknown url type"),
        (http.client.RemoteDisconnected("Remote end closed connection"), "Remote end closed"),
        (ValueError("bad header"), "bad header"),
    ],
)
def test_fetch_connection_errors_name_the_url_and_reason(error: Exception, words: str) -> None:
    with pytest.raises(CertFetchError, match="cannot fetch the certificate from") as info:
        fetch_certificate(URL, opener=FakeOpener(error))
    assert URL in str(info.value)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "Connection reset by peer"), http.client.IncompleteRead(b"ab", 10)],
)
def test_fetch_errors_while_reading(error: Exception) -> None:
    body = FakeBody(read_error=error)
    with pytest.raises(CertFetchError, match="cannot fetch the certificate from"):
        fetch_certificate(URL, opener=FakeOpener(body))
    assert body.closed


@pytest.mark.parametrize("where", ["open", "read"])
def test_fetch_lets_a_bug_propagate(where: str) -> None:
    """A bug is not a download failure: it raises as itself, with its traceback."""
    bug = RuntimeError("boom")
    body = FakeBody(read_error=bug)
    with pytest.raises(RuntimeError, match="boom") as info:
        fetch_certificate(URL, opener=FakeOpener(bug if where == "open" else body))
    assert info.value is bug
    assert info.value.__traceback__ is not None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/shadow", "uses file://, but only http:// and https://"),
        ("ftp://example.com/c.crt", "uses ftp://"),
        ("gopher://example.com/c.crt", "uses gopher://"),
        ("javascript:alert(1)", "uses javascript://"),
        ("example.com/client.crt", "has no scheme"),
        ("", "has no scheme"),
        ("http://", "has no host"),
        ("http:///client.crt", "has no host"),
        ("https://:8443/client.crt", "has no host"),
        ("http://user:hunter2@example.com/c.crt", "carries credentials"),
        ("http://user@example.com/c.crt", "carries credentials"),
        ("https://user:hunter2@example.com:8443/c.crt", "user:***@example.com:8443"),
        ("http://example.com:99999/c.crt", "is not a valid URL"),
        ("http://[::1/c.crt", "is not a valid URL"),
        ("http://exa mple.com/c.crt", "spaces or control characters"),
        ("http://example.com/c.crt\r\nX-Injected: 1", "spaces or control characters"),
    ],
)
def test_fetch_refuses_urls_it_must_not_open(url: str, words: str) -> None:
    with pytest.raises(CertFetchError, match="cert-url") as info:
        fetch_certificate(url, opener=NeverOpen())
    assert words in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", ["HTTP://example.com/c.crt", "https://[::1]:8443/c.crt"])
def test_fetch_accepts_any_http_url_form(url: str) -> None:
    assert fetch_certificate(url, opener=FakeOpener(FakeBody(b"x", url=url))).text == "x"


def test_fetch_passes_a_refused_redirect_on() -> None:
    refused = CertFetchError(f"{URL} redirected (HTTP 302) to a URL that is not fetched: ...")
    with pytest.raises(CertFetchError) as info:
        fetch_certificate(URL, opener=FakeOpener(refused))
    assert info.value is refused


def test_fetch_uses_urllib_with_checked_redirects_by_default(
    pair: CertificatePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[UrllibOpener, str, float]] = []

    def fake_open(self: UrllibOpener, url: str, timeout: float) -> FakeBody:
        opened.append((self, url, timeout))
        return FakeBody(pair.certificate.encode())

    monkeypatch.setattr(UrllibOpener, "open", fake_open)
    assert fetch_certificate(URL, timeout=2, clock=frozen_clock).text == pair.certificate
    ((opener, url, timeout),) = opened
    assert (url, timeout) == (URL, 2)
    assert any(isinstance(h, cert_fetch._GuardedRedirects) for h in opener.handlers)


def test_fetch_refuses_non_utf8() -> None:
    body = FakeBody(b"\x30\x82\x01\xff\xfe binary DER")
    with pytest.raises(CertFetchError, match="not UTF-8") as info:
        fetch_certificate(URL, opener=FakeOpener(body))
    assert "openssl x509 -inform der" in str(info.value)


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://certs.example.com/c.crt", "https://certs.example.com/c.crt"),
        ("https://u:pw@h.example/c.crt?sig=abc#frag", "https://h.example/c.crt"),
        ("http://[::1]:8080/c.crt?x=1", "http://[::1]:8080/c.crt"),
    ],
)
def test_public_url_drops_credentials_query_and_fragment(url: str, shown: str) -> None:
    assert public_url(url) == shown


def test_redact_hides_only_the_password() -> None:
    assert redact("https://u:pw@h.example:8443/c?q=1") == "https://u:***@h.example:8443/c?q=1"
    assert redact(URL) == URL


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://a.example/x", "https://A.example/y?z", True),
        ("https://a.example/x", "https://a.example:443/x", True),
        ("http://a.example/x", "http://a.example:80/x", True),
        ("https://a.example/x", "https://b.example/x", False),
        ("https://a.example/x", "https://a.example:8443/x", False),
        ("http://a.example/x", "https://a.example/x", False),  # port 80 vs 443
        ("http://127.0.0.1:8000/x", "http://127.0.0.2:8000/x", False),
        ("http://a.example:99999/x", "http://a.example/x", False),
    ],
)
def test_same_server(first: str, second: str, same: bool) -> None:
    assert same_server(first, second) is same


# --- redirect decisions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("http://a.example/c", "http://b.example/c"),
        ("http://a.example/c", "https://b.example/c"),
        ("https://a.example/c", "https://b.example:8443/c"),
        ("HTTPS://a.example/c", "https://a.example/d"),
    ],
)
def test_check_redirect_allows_what_keeps_the_guarantees(current: str, target: str) -> None:
    check_redirect(current, target, 302)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("https://a.example/c", "http://a.example/c"),
        ("https://a.example/c", "HTTP://b.example/c"),
        ("HTTPS://a.example/c", "http://b.example/c"),
    ],
)
def test_check_redirect_refuses_a_downgrade_to_http(current: str, target: str) -> None:
    with pytest.raises(CertFetchError) as info:
        check_redirect(current, target, 301)
    message = str(info.value)
    assert message.startswith(f"{current} redirected (HTTP 301) from https to http ({target})")
    assert "refused" in message


def test_check_redirect_refuses_credentials_in_the_target() -> None:
    with pytest.raises(CertFetchError, match=r"not fetched: .*carries credentials") as info:
        check_redirect("https://a.example/c", "https://u:hunter2@b.example/c", 302)
    assert "hunter2" not in str(info.value)


class FakeParent:
    def __init__(self) -> None:
        self.opened: list[urllib.request.Request] = []

    def open(self, req: urllib.request.Request, timeout: float | None = None) -> str:
        self.opened.append(req)
        return "followed"


def redirect(
    location: str, code: int = 302, current: str = "https://certs.example.com/old.crt"
) -> tuple[Any, FakeParent, io.BytesIO]:
    handler = cert_fetch._GuardedRedirects()
    parent = FakeParent()
    handler.parent = parent  # type: ignore[assignment]
    request = urllib.request.Request(current)  # noqa: S310 - never opened, only handled
    request.timeout = 5
    headers = email.message.Message()
    headers["Location"] = location
    fp = io.BytesIO(b"")
    handle: Callable[..., Any] = getattr(handler, f"http_error_{code}")
    return handle(request, fp, code, "Moved", headers), parent, fp


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("location", ["file:///etc/shadow", "ftp://example.com/c.crt"])
def test_redirects_to_other_schemes_are_refused(code: int, location: str) -> None:
    with pytest.raises(CertFetchError, match=f"redirected \\(HTTP {code}\\) to a URL that is not"):
        redirect(location, code)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_from_https_to_http_are_refused_and_closed(code: int) -> None:
    with pytest.raises(CertFetchError, match=f"\\(HTTP {code}\\) from https to http"):
        redirect("http://mirror.example.com/c.crt", code)


@pytest.mark.parametrize(
    ("current", "location", "followed"),
    [
        (
            "https://certs.example.com/old.crt",
            "/new.crt",
            "https://certs.example.com/new.crt",
        ),
        (
            "https://certs.example.com/old.crt",
            "https://mirror.example.com/c.crt",
            "https://mirror.example.com/c.crt",
        ),
        (
            "http://certs.example.com/old.crt",
            "http://mirror.example.com/c.crt",
            "http://mirror.example.com/c.crt",
        ),
    ],
)
def test_redirects_that_keep_the_guarantees_are_followed(
    current: str, location: str, followed: str
) -> None:
    result, parent, _ = redirect(location, current=current)
    assert result == "followed"
    assert [r.full_url for r in parent.opened] == [followed]


def test_the_default_opener_checks_redirects_and_limits_them() -> None:
    handlers = UrllibOpener().handlers
    assert any(isinstance(h, cert_fetch._GuardedRedirects) for h in handlers)
    assert any(isinstance(h, cert_fetch._HttpHandler) for h in handlers)
    assert any(isinstance(h, cert_fetch._HttpsHandler) for h in handlers)
    assert cert_fetch._GuardedRedirects.max_redirections <= 10


def test_abort_shuts_down_sockets_opened_before_and_after() -> None:
    sockets = cert_fetch._Sockets()
    first_ours, first_theirs = socket.socketpair()
    second_ours, second_theirs = socket.socketpair()
    with first_ours, first_theirs, second_ours, second_theirs:
        sockets.add(first_ours)
        sockets.abort()
        assert first_ours.recv(1) == b""  # shut down: a blocked read would return
        sockets.add(second_ours)
        assert second_ours.recv(1) == b""


# --- each decision, one wrong answer each -------------------------------------------------


class ShortReads(FakeBody):
    """A body whose every read returns at most ``most`` bytes, as a socket may."""

    def __init__(self, data: bytes, most: int) -> None:
        super().__init__(data)
        self.most = most

    def read(self, size: int = -1, /) -> bytes:
        return super().read(min(size, self.most))


def test_short_reads_up_to_the_cap_still_detect_a_larger_body() -> None:
    body = ShortReads(b"A" * 150, most=50)
    with pytest.raises(CertFetchError, match="more than 100 bytes"):
        fetch_certificate(URL, max_bytes=100, opener=FakeOpener(body))
    assert fetch_certificate(
        URL, max_bytes=100, opener=FakeOpener(ShortReads(b"B" * 100, 30))
    ).text == ("B" * 100)


def test_a_cap_larger_than_one_read_still_reads_only_one_byte_more() -> None:
    body = FakeBody(endless=True)
    with pytest.raises(CertFetchError, match="more than 10000 bytes"):
        fetch_certificate(URL, max_bytes=10000, opener=FakeOpener(body))
    assert body.served == 10001


def test_a_declared_length_of_exactly_the_cap_is_read() -> None:
    body = FakeBody(b"A" * 100, headers={"Content-Length": "100"})
    assert fetch_certificate(URL, max_bytes=100, opener=FakeOpener(body)).text == "A" * 100


def test_an_opener_called_at_the_deadline_gets_a_token_timeout_never_zero() -> None:
    ticks = iter([50.0])  # the deadline is 60; the opener is called half a millisecond before
    opener = FakeOpener(FakeBody(b"x"))
    fetch_certificate(URL, timeout=10, opener=opener, clock=lambda: next(ticks, 59.9995))
    assert opener.calls == [(URL, 0.001)]


def test_an_http_error_body_is_closed() -> None:
    fp = io.BytesIO(b"<html>not found</html>")
    error = urllib.error.HTTPError(URL, 404, "Not Found", email.message.Message(), fp)
    with pytest.raises(CertFetchError):
        fetch_certificate(URL, opener=FakeOpener(error))
    assert fp.closed


def _tls_error(kind: type[ssl.SSLError], **attributes: str) -> ssl.SSLError:
    error = kind(1, "handshake failed")
    for name, value in attributes.items():
        setattr(error, name, value)
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (
            urllib.error.URLError(
                _tls_error(
                    ssl.SSLCertVerificationError,
                    verify_message="certificate has expired",
                    reason="CERTIFICATE_VERIFY_FAILED",
                )
            ),
            "TLS failed (certificate has expired)",
        ),
        (
            urllib.error.URLError(_tls_error(ssl.SSLError, reason="WRONG_VERSION_NUMBER")),
            "TLS failed (WRONG_VERSION_NUMBER)",
        ),
        (urllib.error.URLError(OSError(113, "No route to host")), "No route to host"),
        (OSError("no errno"), "no errno"),
        (OSError(), "OSError"),
    ],
    ids=["refused", "verify-message", "tls-reason", "strerror", "no-strerror", "nothing"],
)
def test_each_network_failure_gives_its_own_reason(error: Exception, reason: str) -> None:
    with pytest.raises(CertFetchError) as info:
        fetch_certificate(URL, opener=FakeOpener(error))
    assert str(info.value) == f"cannot fetch the certificate from {URL}: {reason}"


def test_the_download_runs_in_a_daemon_thread_named_for_it(pair: CertificatePair) -> None:
    seen: list[tuple[str, bool]] = []

    class Recording(FakeOpener):
        def open(self, url: str, timeout: float) -> FakeBody:
            thread = threading.current_thread()
            seen.append((thread.name, thread.daemon))
            return super().open(url, timeout)

    fetch_certificate(URL, opener=Recording(FakeBody(pair.certificate.encode())))
    assert seen == [("cert-fetch", True)]


def test_an_aborted_download_has_ended_when_the_fetch_gives_up() -> None:
    aborted = threading.Event()
    opener = FakeOpener(FakeBody(block=aborted))
    opener.aborted = aborted
    with pytest.raises(CertFetchError, match=r"took longer than 0\.2s"):
        fetch_certificate(URL, timeout=0.2, opener=opener)
    assert not [t for t in threading.enumerate() if t.name == "cert-fetch" and t.is_alive()]


def test_a_socket_added_before_any_abort_stays_open() -> None:
    sockets = cert_fetch._Sockets()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sockets.add(ours)
        theirs.sendall(b"x")
        assert ours.recv(1) == b"x"


def test_a_redirect_named_by_a_uri_header_is_checked_and_followed() -> None:
    handler = cert_fetch._GuardedRedirects()
    parent = FakeParent()
    handler.parent = parent  # type: ignore[assignment]
    request = urllib.request.Request("https://certs.example.com/old.crt")
    request.timeout = 5
    headers = email.message.Message()
    headers["URI"] = "http://mirror.example.com/c.crt"
    with pytest.raises(CertFetchError, match=r"\(HTTP 302\) from https to http"):
        handler.http_error_302(request, io.BytesIO(b""), 302, "Moved", headers)


@pytest.mark.parametrize("code", [301, 302, 307])
def test_a_refused_redirect_closes_its_body(code: int) -> None:
    handler = cert_fetch._GuardedRedirects()
    handler.parent = FakeParent()  # type: ignore[assignment]
    request = urllib.request.Request("https://certs.example.com/old.crt")
    headers = email.message.Message()
    headers["Location"] = "http://mirror.example.com/c.crt"
    fp = io.BytesIO(b"moved")
    with pytest.raises(CertFetchError):
        getattr(handler, f"http_error_{code}")(request, fp, code, "Moved", headers)
    assert fp.closed


def test_urls_that_do_not_parse_are_shown_as_given() -> None:
    broken = "https://u:pw@[::1/c.crt"
    assert redact(broken) == broken
    assert public_url(broken) == broken
    assert public_url("https:///c.crt") == "https:///c.crt"


def test_a_read_exactly_at_the_deadline_is_still_in_time() -> None:
    ticks = iter([50.0, 55.0])  # deadline 60; opened at 55; every read starts at 60 exactly
    fetched = fetch_certificate(
        URL, timeout=10, opener=FakeOpener(FakeBody(b"x")), clock=lambda: next(ticks, 60.0)
    )
    assert fetched.text == "x"
