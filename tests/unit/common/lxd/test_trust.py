"""Unit tests for lxd_common.lxd._trust against a fake LXD (shapes from LXD 5.0.2)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest
import requests

from lxd_common.certs import CertificatePair, fingerprint
from lxd_common.errors import (
    CertificateError,
    LxdApiError,
    LxdUnreachableError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.lxd import ClientToken, TrustEntry, TrustStore

if TYPE_CHECKING:
    import requests

    from tests.unit.common.lxd.conftest import FakeLxd, Replies

CERTS = "/1.0/certificates"
PROJECTS = "/1.0/projects"


def item(
    pair: CertificatePair | None,
    name: str,
    *,
    fp: str | None = None,
    restricted: bool = False,
    projects: list[str] | None = None,
    type_: str = "client",
) -> dict[str, Any]:
    """One trust store entry as ``GET /1.0/certificates?recursion=1`` lists it."""
    if pair is not None:
        fp = fingerprint(pair.certificate)
    assert fp is not None
    return {
        "name": name,
        "type": type_,
        "restricted": restricted,
        "projects": projects or [],
        "certificate": pair.certificate if pair else "",
        "fingerprint": fp,
    }


@pytest.fixture
def store(lxd: FakeLxd) -> TrustStore:
    return TrustStore(lxd)


@pytest.fixture
def projects(lxd: FakeLxd, reply: Replies) -> None:
    """The daemon has the projects `default` and `ci`."""
    lxd.on("GET", PROJECTS, reply.sync(["/1.0/projects/default", "/1.0/projects/ci"]))


# --- listing and finding -----------------------------------------------------


def test_entries_reads_the_store_with_recursion(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    lxd.on(
        "GET",
        CERTS,
        reply.sync([item(certs[0], "t1", restricted=True, projects=["default"])]),
    )
    [entry] = store.entries()
    assert entry == TrustEntry(
        name="t1",
        fingerprint=fingerprint(certs[0].certificate),
        type="client",
        restricted=True,
        projects=["default"],
        certificate=certs[0].certificate,
    )
    assert lxd.requests("GET", CERTS)[0].params == {"recursion": "1"}


def test_an_empty_or_null_store_has_no_entries(
    lxd: FakeLxd, reply: Replies, store: TrustStore
) -> None:
    lxd.on("GET", CERTS, reply.sync([]), reply.sync(None))
    assert store.entries() == []
    assert store.entries() == []


def test_entry_defaults_for_missing_fields() -> None:
    entry = TrustEntry.from_api({"fingerprint": "ab" * 32, "projects": None})
    assert (entry.name, entry.type, entry.restricted, entry.projects, entry.certificate) == (
        "",
        "client",
        False,
        [],
        "",
    )


def test_entry_repr_leaves_out_the_certificate(certs: list[CertificatePair]) -> None:
    entry = TrustEntry.from_api(item(certs[0], "t1"))
    assert "BEGIN CERTIFICATE" not in repr(entry)
    assert "t1" in repr(entry)


@pytest.fixture
def three(lxd: FakeLxd, reply: Replies) -> None:
    """Three entries; two fingerprints share the prefix `abc1`."""
    lxd.on(
        "GET",
        CERTS,
        reply.sync(
            [
                item(None, "alpha", fp="abc1" + "0" * 60),
                item(None, "beta", fp="abc1" + "f" * 60),
                item(None, "gamma", fp="d00d" + "1" * 60),
            ]
        ),
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("beta", "beta"),
        ("abc1" + "0" * 60, "alpha"),
        ("ABC1" + "F" * 60, "beta"),
        ("  gamma\n", "gamma"),
        ("d00d", "gamma"),
        ("D0", "gamma"),
        ("abc10", "alpha"),
        ("abc1", None),
        ("a", None),
        ("zeta", None),
        ("Alpha", None),
    ],
)
def test_find(three: None, store: TrustStore, key: str, expected: str | None) -> None:
    found = store.find(key)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize("key", ["", "   ", "\n"])
def test_find_with_an_empty_key_asks_nothing(lxd: FakeLxd, store: TrustStore, key: str) -> None:
    assert store.find(key) is None
    assert lxd.calls == []


def test_a_name_match_beats_a_fingerprint_prefix(
    lxd: FakeLxd, reply: Replies, store: TrustStore
) -> None:
    lxd.on(
        "GET",
        CERTS,
        reply.sync([item(None, "x", fp="beef" + "0" * 60), item(None, "beef", fp="1" * 64)]),
    )
    found = store.find("beef")
    assert found is not None
    assert found.fingerprint == "1" * 64


def test_find_all_returns_every_entry_with_the_name(
    lxd: FakeLxd, reply: Replies, store: TrustStore
) -> None:
    lxd.on(
        "GET",
        CERTS,
        reply.sync(
            [
                item(None, "dup", fp="1" * 64),
                item(None, "other", fp="2" * 64),
                item(None, "dup", fp="3" * 64),
            ]
        ),
    )
    assert [e.fingerprint for e in store.find_all("dup")] == ["1" * 64, "3" * 64]
    assert store.find_all("nobody") == []


# --- adding ------------------------------------------------------------------


def _trust_answers(
    lxd: FakeLxd, reply: Replies, pair: CertificatePair, entry: dict[str, Any]
) -> str:
    fp = fingerprint(pair.certificate)
    lxd.on("POST", CERTS, reply.sync(None))
    lxd.on("GET", f"{CERTS}/{fp}", reply.sync(entry))
    return fp


@pytest.mark.parametrize(
    ("given", "restricted", "sent_projects", "asks_projects"),
    [
        (None, False, [], False),
        ([], True, [], False),
        (["  ", ""], True, [], False),
        (["ci"], True, ["ci"], True),
        ([" ci ", "default\t"], True, ["ci", "default"], True),
    ],
)
def test_add_sends_the_restriction(
    lxd: FakeLxd,
    reply: Replies,
    store: TrustStore,
    certs: list[CertificatePair],
    projects: None,
    given: list[str] | None,
    restricted: bool,
    sent_projects: list[str],
    asks_projects: bool,
) -> None:
    stored = item(certs[0], "ci", restricted=restricted, projects=sent_projects)
    fp = _trust_answers(lxd, reply, certs[0], stored)
    entry = store.add(certs[0].certificate, "ci", projects=given)

    [post] = lxd.requests("POST", CERTS)
    assert post.json["type"] == "client"
    assert post.json["name"] == "ci"
    assert post.json["restricted"] is restricted
    assert post.json["projects"] == sent_projects
    assert bool(lxd.requests("GET", PROJECTS)) is asks_projects
    assert entry.fingerprint == fp
    assert entry.projects == sent_projects


def test_add_sends_the_certificate_without_pem_markers(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    _trust_answers(lxd, reply, certs[0], item(certs[0], "ci"))
    store.add(certs[0].certificate, "ci")
    body = lxd.requests("POST", CERTS)[0].json["certificate"]
    assert "-----" not in body
    assert "\n" not in body
    der = base64.b64decode(body, validate=True)
    assert hashlib.sha256(der).hexdigest() == fingerprint(certs[0].certificate)


def test_add_reads_the_entry_back_by_fingerprint(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    fp = _trust_answers(lxd, reply, certs[1], item(certs[1], "from-lxd"))
    entry = store.add(certs[1].certificate, "asked-for")
    assert entry.name == "from-lxd"
    assert [c.path for c in lxd.calls] == [CERTS, f"{CERTS}/{fp}"]


def test_adding_a_trusted_certificate_updates_it(
    lxd: FakeLxd,
    reply: Replies,
    store: TrustStore,
    certs: list[CertificatePair],
    projects: None,
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on("POST", CERTS, reply.error(409, "Certificate already in trust store"))
    lxd.on(
        "GET",
        f"{CERTS}/{fp}",
        reply.sync(item(certs[0], "old-name")),
        reply.sync(item(certs[0], "new-name", restricted=True, projects=["ci"])),
    )
    lxd.on("PATCH", f"{CERTS}/{fp}", reply.sync(None))

    entry = store.add(certs[0].certificate, "new-name", projects=["ci"])

    [patch] = lxd.requests("PATCH", f"{CERTS}/{fp}")
    assert patch.json == {
        "name": "new-name",
        "type": "client",
        "restricted": True,
        "projects": ["ci"],
    }
    assert (entry.name, entry.restricted, entry.projects) == ("new-name", True, ["ci"])


def test_add_names_the_missing_project_and_adds_nothing(
    lxd: FakeLxd, store: TrustStore, certs: list[CertificatePair], projects: None
) -> None:
    with pytest.raises(ProjectNotFoundError) as caught:
        store.add(certs[0].certificate, "ci", projects=["ci", "nope", "gone"])
    assert str(caught.value) == "project(s) nope, gone do not exist (existing: ci, default)"
    assert isinstance(caught.value, ValueError)
    assert lxd.requests("POST") == []


def test_lxd_refusing_a_project_is_an_api_error_not_an_update(
    lxd: FakeLxd,
    reply: Replies,
    store: TrustStore,
    certs: list[CertificatePair],
    projects: None,
) -> None:
    # The project vanished between our check and the POST.
    lxd.on("POST", CERTS, reply.error(404, "Project not found"))
    with pytest.raises(LxdApiError) as caught:
        store.add(certs[0].certificate, "ci", projects=["ci"])
    assert caught.value.status == 404
    assert "Project not found" in str(caught.value)
    assert "'ci'" in str(caught.value)
    assert lxd.requests("PATCH") == []


def test_other_refusals_are_raised(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    lxd.on("POST", CERTS, reply.error(400, "Certificate name is too long"))
    with pytest.raises(LxdApiError) as caught:
        store.add(certs[0].certificate, "x" * 300)
    assert caught.value.status == 400
    assert [c.method for c in lxd.calls] == ["POST"]


def test_add_refuses_a_non_certificate_before_asking_lxd(lxd: FakeLxd, store: TrustStore) -> None:
    with pytest.raises(CertificateError):
        store.add("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", "x")
    assert lxd.calls == []


def test_add_a_metrics_certificate(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    stored = item(certs[0], "prom", type_="metrics")
    _trust_answers(lxd, reply, certs[0], stored)
    entry = store.add(certs[0].certificate, "prom", kind="metrics")
    [post] = lxd.requests("POST", CERTS)
    assert post.json["type"] == "metrics"
    assert post.json["restricted"] is False
    assert entry.type == "metrics"


def test_re_adding_a_metrics_certificate_keeps_its_type(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on("POST", CERTS, reply.error(409, "Certificate already in trust store"))
    lxd.on(
        "GET",
        f"{CERTS}/{fp}",
        reply.sync(item(certs[0], "old", type_="metrics")),
        reply.sync(item(certs[0], "old", type_="metrics")),
        reply.sync(item(certs[0], "new", type_="metrics")),
    )
    lxd.on("PATCH", f"{CERTS}/{fp}", reply.sync(None))
    entry = store.add(certs[0].certificate, "new", kind="metrics")
    [patch] = lxd.requests("PATCH", f"{CERTS}/{fp}")
    assert patch.json["type"] == "metrics"
    assert entry.name == "new"


@pytest.mark.parametrize(("trusted", "asked"), [("client", "metrics"), ("metrics", "client")])
def test_a_certificate_trusted_with_another_type_is_not_changed(
    lxd: FakeLxd,
    reply: Replies,
    store: TrustStore,
    certs: list[CertificatePair],
    trusted: str,
    asked: Any,
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on("POST", CERTS, reply.error(409, "Certificate already in trust store"))
    lxd.on("GET", f"{CERTS}/{fp}", reply.sync(item(certs[0], "x", type_=trusted)))
    with pytest.raises(LxdApiError, match=f"already trusted as {trusted} certificate"):
        store.add(certs[0].certificate, "x", kind=asked)
    assert lxd.requests("PATCH") == []


def test_an_unknown_certificate_type_asks_nothing(
    lxd: FakeLxd, store: TrustStore, certs: list[CertificatePair]
) -> None:
    with pytest.raises(ValueError, match="unknown certificate type 'server'"):
        store.add(certs[0].certificate, "x", kind="server")  # type: ignore[arg-type]
    assert lxd.calls == []


# --- updating ----------------------------------------------------------------


def test_update_keeps_the_name_and_unrestricts_by_default(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on(
        "GET",
        f"{CERTS}/{fp}",
        reply.sync(item(certs[0], "keep", restricted=True, projects=["ci"])),
        reply.sync(item(certs[0], "keep")),
    )
    lxd.on("PATCH", f"{CERTS}/{fp}", reply.sync(None))
    entry = store.update(fp)
    assert lxd.requests("PATCH")[0].json == {
        "name": "keep",
        "type": "client",
        "restricted": False,
        "projects": [],
    }
    assert entry.restricted is False


def test_update_of_an_unknown_fingerprint(lxd: FakeLxd, reply: Replies, store: TrustStore) -> None:
    fp = "9" * 64
    lxd.on("GET", f"{CERTS}/{fp}", reply.error(404, "Certificate not found"))
    with pytest.raises(TrustEntryNotFoundError, match=f"fingerprint {fp}"):
        store.update(fp, name="x")
    assert lxd.requests("PATCH") == []


def test_reading_an_entry_fails_for_other_reasons(
    lxd: FakeLxd, reply: Replies, store: TrustStore
) -> None:
    fp = "9" * 64
    lxd.on("GET", f"{CERTS}/{fp}", reply.error(500, "database is locked"))
    with pytest.raises(LxdApiError) as caught:
        store.update(fp)
    assert not isinstance(caught.value, TrustEntryNotFoundError)
    assert caught.value.status == 500


# --- removing ----------------------------------------------------------------


def test_remove_by_name_deletes_by_fingerprint(
    lxd: FakeLxd, reply: Replies, store: TrustStore, three: None
) -> None:
    fp = "d00d" + "1" * 60
    lxd.on("DELETE", f"{CERTS}/{fp}", reply.sync(None))
    removed = store.remove("gamma")
    assert removed.fingerprint == fp
    assert len(lxd.requests("DELETE", f"{CERTS}/{fp}")) == 1


@pytest.mark.parametrize("key", ["nobody", "abc1", ""])
def test_remove_unknown_or_ambiguous(
    lxd: FakeLxd, store: TrustStore, three: None, key: str
) -> None:
    with pytest.raises(TrustEntryNotFoundError) as caught:
        store.remove(key)
    assert repr(key) in str(caught.value)
    assert lxd.requests("DELETE") == []


# --- client tokens -----------------------------------------------------------

TRUST_TOKEN_META = {
    "addresses": ["127.0.0.3:8443"],
    "fingerprint": "07e5" + "a" * 60,
    "request": {
        "name": "laptop",
        "type": "client",
        "restricted": False,
        "projects": None,
        "certificate": "",
        "password": "",
        "token": True,
    },
    "secret": "1839" + "b" * 60,
}


def _token_op(reply: Replies, meta: dict[str, Any]) -> requests.Response:
    return reply.async_op(reply.operation("f1f1c4a4-8a1d-4d57-a2e6-1f9d1c3fbc21", "token", meta))


def test_issue_token_encodes_what_lxc_expects(
    lxd: FakeLxd, reply: Replies, store: TrustStore
) -> None:
    lxd.on("POST", CERTS, _token_op(reply, TRUST_TOKEN_META))
    token = store.issue_token("laptop")

    assert lxd.requests("POST", CERTS)[0].json == {
        "type": "client",
        "token": True,
        "name": "laptop",
        "restricted": False,
        "projects": [],
    }
    assert token.name == "laptop"
    assert token.expires_at is None
    assert json.loads(base64.b64decode(token.token, validate=True)) == {
        "client_name": "laptop",
        "fingerprint": TRUST_TOKEN_META["fingerprint"],
        "addresses": ["127.0.0.3:8443"],
        "secret": TRUST_TOKEN_META["secret"],
    }


def test_issue_token_carries_the_expiry_when_lxd_sends_one(
    lxd: FakeLxd, reply: Replies, store: TrustStore
) -> None:
    meta = dict(TRUST_TOKEN_META, expiresAt="2026-11-23T15:13:40.68955822Z")
    lxd.on("POST", CERTS, _token_op(reply, meta))
    token = store.issue_token("laptop")
    assert token.expires_at == "2026-11-23T15:13:40.68955822Z"
    payload = json.loads(base64.b64decode(token.token))
    assert payload["expires_at"] == "2026-11-23T15:13:40.68955822Z"


def test_issue_token_restricted_to_checked_projects(
    lxd: FakeLxd, reply: Replies, store: TrustStore, projects: None
) -> None:
    lxd.on("POST", CERTS, _token_op(reply, TRUST_TOKEN_META))
    store.issue_token("laptop", projects=[" ci "])
    sent = lxd.requests("POST", CERTS)[0].json
    assert (sent["restricted"], sent["projects"]) == (True, ["ci"])


def test_issue_token_for_a_missing_project_issues_nothing(
    lxd: FakeLxd, store: TrustStore, projects: None
) -> None:
    with pytest.raises(ProjectNotFoundError, match="project\\(s\\) nope do not exist"):
        store.issue_token("laptop", projects=["nope"])
    assert lxd.requests("POST") == []


def test_issue_token_refused(lxd: FakeLxd, reply: Replies, store: TrustStore) -> None:
    lxd.on("POST", CERTS, reply.error(403, "not authorized"))
    with pytest.raises(LxdApiError, match="issuing a client token for 'laptop'"):
        store.issue_token("laptop")


def test_client_token_repr_hides_the_token() -> None:
    token = ClientToken(name="laptop", token="c2VjcmV0LXRva2Vu", expires_at=None)
    assert "c2VjcmV0LXRva2Vu" not in repr(token)
    assert "laptop" in repr(token)


# --- each refusal and each failure by its whole message ------------------------------


def _unreachable(call: Any) -> Any:
    raise requests.ConnectionError("connection refused")


def test_an_entry_of_another_type_keeps_its_type() -> None:
    assert TrustEntry.from_api({"fingerprint": "ab" * 32, "type": "metrics"}).type == "metrics"


def test_listing_says_what_failed(lxd: FakeLxd, reply: Replies, store: TrustStore) -> None:
    lxd.on("GET", CERTS, reply.error(500, "database is locked"))
    with pytest.raises(LxdApiError) as caught:
        store.entries()
    assert str(caught.value) == "LXD refused listing trusted certificates: database is locked"
    lxd.on("GET", CERTS, _unreachable)
    with pytest.raises(LxdUnreachableError) as unreachable:
        store.entries()
    assert str(unreachable.value) == (
        "cannot reach LXD while listing trusted certificates: connection refused"
    )


def test_checking_projects_says_what_failed(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    lxd.on("GET", PROJECTS, reply.error(500, "database is locked"))
    with pytest.raises(LxdApiError) as caught:
        store.add(certs[0].certificate, "n", projects=["ci"])
    assert str(caught.value) == "LXD refused listing projects: database is locked"
    lxd.on("GET", PROJECTS, _unreachable)
    with pytest.raises(LxdUnreachableError) as unreachable:
        store.add(certs[0].certificate, "n", projects=["ci"])
    assert str(unreachable.value) == "cannot reach LXD while listing projects: connection refused"
    assert lxd.requests("POST") == []


def test_project_names_are_the_last_part_of_their_urls(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    lxd.on("GET", PROJECTS, reply.sync(["/1.0/projects/LINUX/", "/1.0/projects/default"]))
    fp = _trust_answers(lxd, reply, certs[0], item(certs[0], "n", restricted=True))
    store.add(certs[0].certificate, "n", projects=["LINUX"])
    [post] = lxd.requests("POST", CERTS)
    assert post.json["projects"] == ["LINUX"]
    assert fp


def test_a_certificate_trusted_as_a_server_is_not_changed(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on("POST", CERTS, reply.error(409, "Certificate already in trust store"))
    server = {**item(certs[0], "m1"), "type": "server"}
    lxd.on("GET", f"{CERTS}/{fp}", reply.sync(server))
    with pytest.raises(LxdApiError) as caught:
        store.add(certs[0].certificate, "juju-relation-x/0")
    assert str(caught.value) == (
        "this certificate is already trusted as server certificate 'm1'; it is not changed"
    )
    assert caught.value.status == 409
    assert lxd.requests("PATCH") == []


def test_an_update_lxd_refuses_is_raised(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on("GET", f"{CERTS}/{fp}", reply.sync(item(certs[0], "keep")))
    lxd.on("PATCH", f"{CERTS}/{fp}", reply.error(400, "Invalid certificate name"))
    with pytest.raises(LxdApiError) as caught:
        store.update(fp, name="x" * 300)
    assert str(caught.value) == (
        "LXD refused updating trusted certificate 'keep': Invalid certificate name"
    )


def test_a_removal_lxd_refuses_is_raised(
    lxd: FakeLxd, reply: Replies, store: TrustStore, three: None
) -> None:
    fp = "d00d" + "1" * 60
    lxd.on("DELETE", f"{CERTS}/{fp}", reply.error(500, "database is locked"))
    with pytest.raises(LxdApiError) as caught:
        store.remove("gamma")
    assert str(caught.value) == (
        "LXD refused removing trusted certificate 'gamma': database is locked"
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("abc1", "'abc1' matches 2 certificates (alpha, beta); give more of the fingerprint"),
        ("nobody", "no trusted certificate has the name or fingerprint 'nobody'"),
        ("", "no trusted certificate has the name or fingerprint ''"),
        ("  ", "no trusted certificate has the name or fingerprint '  '"),
    ],
)
def test_remove_says_whether_nothing_or_several_match(
    lxd: FakeLxd, store: TrustStore, three: None, key: str, message: str
) -> None:
    with pytest.raises(TrustEntryNotFoundError) as caught:
        store.remove(key)
    assert str(caught.value) == message
    assert lxd.requests("DELETE") == []


def _not_json() -> requests.Response:
    """A 200 answer that is not LXD's JSON (a proxy's page): pylxd lets it through."""
    response = requests.Response()
    response.status_code = 200
    response._content = b"<html>portal</html>"
    return response


def test_an_answer_that_is_not_json_says_what_was_being_done(
    lxd: FakeLxd, reply: Replies, store: TrustStore, certs: list[CertificatePair]
) -> None:
    lxd.on("GET", CERTS, _not_json())
    with pytest.raises(LxdApiError) as caught:
        store.entries()
    assert str(caught.value) == "LXD sent a non-JSON answer while listing trusted certificates"
    lxd.on("GET", PROJECTS, _not_json())
    with pytest.raises(LxdApiError) as caught:
        store.add(certs[0].certificate, "n", projects=["ci"])
    assert str(caught.value) == "LXD sent a non-JSON answer while listing projects"


def test_an_update_or_removal_answered_with_no_json_is_an_error(
    lxd: FakeLxd, reply: Replies, store: TrustStore, three: None, certs: list[CertificatePair]
) -> None:
    fp = fingerprint(certs[0].certificate)
    lxd.on("GET", f"{CERTS}/{fp}", reply.sync(item(certs[0], "keep")))
    lxd.on("PATCH", f"{CERTS}/{fp}", _not_json())
    with pytest.raises(LxdApiError) as caught:
        store.update(fp, name="renamed")
    assert str(caught.value) == (
        "LXD sent a non-JSON answer while updating trusted certificate 'keep'"
    )
    gamma = "d00d" + "1" * 60
    lxd.on("DELETE", f"{CERTS}/{gamma}", _not_json())
    with pytest.raises(LxdApiError) as caught:
        store.remove("gamma")
    assert str(caught.value) == (
        "LXD sent a non-JSON answer while removing trusted certificate 'gamma'"
    )
