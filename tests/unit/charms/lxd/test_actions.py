"""Unit tests of `lxd_charm.actions`: every branch, with fakes instead of I/O.

The trust store is a small in-memory fake that behaves like
`lxd_common.lxd.TrustStore` (find by name, fingerprint or unique prefix;
add updates an existing entry; unknown projects refused); `run` and the
certificate fetch are fakes too, so nothing here touches LXD, a process or
the network. The fetch itself is tested in test_cert_fetch.py.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import logging
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lxd_charm import actions
from lxd_charm.actions import (
    ActionError,
    AddTrustedClientParams,
    GetClientTokenParams,
    RemoveTrustedClientParams,
    add_trusted_client,
    collect_debug_info,
    get_client_token,
    parse_projects,
    remove_trusted_client,
    show_pending_config,
)
from lxd_charm.cert_fetch import CertFetchError, Fetched
from lxd_common.certs import (
    CertificatePair,
    fingerprint,
    generate_client_certificate,
    load_certificate,
)
from lxd_common.errors import (
    LxdApiError,
    LxdCommonError,
    LxdNotFoundError,
    LxdUnreachableError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.lxd import ClientToken, LxdClient, TrustEntry

CHARM_DIR = Path(__file__).resolve().parents[4] / "charms" / "lxd"
TOKEN = "eyJjbGllbnRfbmFtZSI6InNlY3JldC10b2tlbi12YWx1ZSJ9"


# --- fakes ------------------------------------------------------------------------


class FakeTrustStore:
    """Enough of `lxd_common.lxd.TrustStore` for the actions, in memory."""

    def __init__(self, projects: Sequence[str] = ("default",)) -> None:
        self.projects = set(projects)
        self.by_fp: dict[str, TrustEntry] = {}
        self.calls: list[str] = []
        self.error: Exception | None = None
        self.remove_error: Exception | None = None
        self.expires_at: str | None = "2030-01-01T00:00:00Z"
        self.tokens: list[tuple[str, list[str] | None]] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.error is not None:
            raise self.error

    def put(self, entry: TrustEntry) -> TrustEntry:
        self.by_fp[entry.fingerprint] = entry
        return entry

    def entries(self) -> list[TrustEntry]:
        self._call("entries")
        return list(self.by_fp.values())

    def find(self, key: str) -> TrustEntry | None:
        self._call("find")
        for entry in self.by_fp.values():
            if entry.fingerprint == key.lower() or entry.name == key:
                return entry
        matches = [e for e in self.by_fp.values() if e.fingerprint.startswith(key.lower())]
        return matches[0] if len(matches) == 1 else None

    def _check(self, projects: Sequence[str] | None) -> list[str] | None:
        if projects is None:
            return None
        missing = [p for p in projects if p not in self.projects]
        if missing:
            raise ProjectNotFoundError(
                f"project(s) {', '.join(missing)} do not exist "
                f"(existing: {', '.join(sorted(self.projects))})"
            )
        return list(projects)

    def add(self, pem: str, name: str, projects: Sequence[str] | None = None) -> TrustEntry:
        self._call("add")
        checked = self._check(projects)
        fp = fingerprint(pem)
        entry_type = self.by_fp[fp].type if fp in self.by_fp else "client"
        return self.put(
            TrustEntry(
                name=name,
                fingerprint=fp,
                type=entry_type,
                restricted=checked is not None,
                projects=checked or [],
                certificate=pem,
            )
        )

    def remove(self, key: str) -> TrustEntry:
        self._call("remove")
        if self.remove_error is not None:
            raise self.remove_error
        entry = self.find(key)
        if entry is None:
            raise TrustEntryNotFoundError(
                f"no trusted certificate has the name or fingerprint {key!r}"
            )
        del self.by_fp[entry.fingerprint]
        return entry

    def issue_token(self, name: str, projects: Sequence[str] | None = None) -> ClientToken:
        self._call("issue_token")
        checked = self._check(projects)
        self.tokens.append((name, checked))
        return ClientToken(name=name, token=TOKEN, expires_at=self.expires_at)


class FakeLxd:
    def __init__(self, projects: Sequence[str] = ("default",)) -> None:
        self.trust = FakeTrustStore(projects)


def as_client(fake: FakeLxd) -> LxdClient:
    """The fake as the `LxdClient` it stands in for: the actions use only its `trust`."""
    return cast(LxdClient, fake)


def entry(fp: str, name: str = "x", type_: str = "client") -> TrustEntry:
    return TrustEntry(
        name=name, fingerprint=fp, type=type_, restricted=False, projects=[], certificate=""
    )


def never_fetch(url: str) -> Fetched:
    raise AssertionError(f"fetch must not be called for {url!r}")


def completed(
    returncode: int = 0, stdout: str = "", stderr: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["x"], returncode, stdout, stderr)


class FakeRun:
    """`subprocess.run` stand-in: one outcome per command path."""

    def __init__(self, outcomes: dict[str, subprocess.CompletedProcess[str] | Exception]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, kwargs))
        outcome = self.outcomes.get(args[0], FileNotFoundError(2, "No such file", args[0]))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


# --- helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> CertificatePair:
    return generate_client_certificate("alice-laptop")


@pytest.fixture(scope="module")
def other_pair() -> CertificatePair:
    return generate_client_certificate("bob")


def mangled(pem: str) -> str:
    """What `juju run ... cert="$(cat c.crt)"` can deliver: newlines turned into spaces."""
    return pem.replace("\n", " ")


def cert_without_cn() -> str:
    return self_signed(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no common name"))


def self_signed(*subject: x509.NameAttribute[str]) -> str:
    """A self-signed certificate with this subject: what a client may send to be trusted."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(list(subject))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def openssl_style(fp: str) -> str:
    """`openssl x509 -noout -fingerprint -sha256` output for a fingerprint."""
    pairs = [fp[i : i + 2].upper() for i in range(0, len(fp), 2)]
    return "sha256 Fingerprint=" + ":".join(pairs)


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


# --- the module's shape ---------------------------------------------------------------------


def test_module_does_not_import_ops() -> None:
    tree = ast.parse(Path(actions.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "ops" not in imported


def test_action_error_is_its_own_exception() -> None:
    assert issubclass(ActionError, Exception)
    assert not issubclass(ActionError, LxdCommonError)


@pytest.mark.parametrize(
    ("action", "cls"),
    [
        ("add-trusted-client", AddTrustedClientParams),
        ("remove-trusted-client", RemoveTrustedClientParams),
        ("get-client-token", GetClientTokenParams),
    ],
)
def test_params_classes_match_charmcraft_yaml(action: str, cls: type) -> None:
    """`load_params` maps `cert-url` to `cert_url`: every declared param needs a field."""
    meta = yaml.safe_load((CHARM_DIR / "charmcraft.yaml").read_text())
    declared = meta["actions"][action].get("params", {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert {p.replace("-", "_") for p in declared} == set(fields)
    for required in meta["actions"][action].get("required", []):
        field = fields[required.replace("-", "_")]
        assert field.default is dataclasses.MISSING, f"{required} is required: no default"


def test_params_defaults() -> None:
    assert AddTrustedClientParams() == AddTrustedClientParams(
        name="", cert="", cert_url="", projects=None
    )
    assert GetClientTokenParams(name="n").projects is None


@pytest.mark.parametrize(
    ("cls", "kwargs", "param"),
    [
        (AddTrustedClientParams, {"cert": 5}, "cert"),
        (AddTrustedClientParams, {"cert_url": b"x"}, "cert-url"),
        (AddTrustedClientParams, {"projects": ["a"]}, "projects"),
        (RemoveTrustedClientParams, {"fingerprint": 123}, "fingerprint"),
        (GetClientTokenParams, {"name": None}, "name"),
    ],
)
def test_params_with_wrong_types_raise_value_error(
    cls: type, kwargs: dict[str, Any], param: str
) -> None:
    # load_params(errors="fail") turns a ValueError into a clean action failure.
    with pytest.raises(ValueError, match=f"^{param} must be a string"):
        cls(**kwargs)


# --- parse_projects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", []),
        ("   ", []),
        (" , ,", []),
        ("a", ["a"]),
        ("a, b,,c ", ["a", "b", "c"]),
        ("b,a,b", ["b", "a"]),
        ("dev-1,A1,a.b,é", ["dev-1", "A1", "a.b", "é"]),
    ],
)
def test_parse_projects(text: str | None, expected: list[str] | None) -> None:
    assert parse_projects(text) == expected


@pytest.mark.parametrize(
    "bad", ["a/b", "my project", "a_b", "a'b", '"a"', "*", ".", "..", "a\tb", "x\x00y"]
)
def test_parse_projects_refuses_names_lxd_refuses(bad: str) -> None:
    with pytest.raises(ActionError, match="invalid project name") as info:
        parse_projects(f"ok,{bad}")
    assert repr(bad) in str(info.value)
    assert "slashes, spaces, underscores or quotes" in str(info.value)


URL = "https://certs.example.com/client.crt"


# --- add_trusted_client ------------------------------------------------------------------------


def test_add_inline_certificate(pair: CertificatePair) -> None:
    lxd = FakeLxd()
    results = add_trusted_client(
        as_client(lxd), AddTrustedClientParams(cert=pair.certificate), never_fetch
    )
    fp = fingerprint(pair.certificate)
    assert results == {
        "fingerprint": fp,
        "name": "alice-laptop",
        "projects": "(unrestricted)",
        "message": f"trusted client 'alice-laptop' ({fp[:12]}) with access to every project",
    }
    stored = lxd.trust.by_fp[fp]
    assert (stored.name, stored.restricted, stored.type) == ("alice-laptop", False, "client")


@pytest.mark.parametrize(
    "damage",
    [
        mangled,
        lambda pem: pem.replace("\n", "\\n"),
        lambda pem: pem.replace("\n", "\r\n"),
        lambda pem: f"'{pem}'",
        lambda pem: pem.replace("\n", ""),
    ],
)
def test_add_repairs_a_mangled_pem(pair: CertificatePair, damage: Callable[[str], str]) -> None:
    lxd = FakeLxd(["web", "db"])
    params = AddTrustedClientParams(cert=damage(pair.certificate), projects="web, db")
    results = add_trusted_client(as_client(lxd), params)
    assert results["fingerprint"] == fingerprint(pair.certificate)
    assert results["projects"] == "web,db"
    stored = lxd.trust.by_fp[results["fingerprint"]]
    assert load_certificate(stored.certificate) == load_certificate(pair.certificate)
    assert (stored.restricted, stored.projects) == (True, ["web", "db"])


def test_add_with_a_given_name(pair: CertificatePair) -> None:
    results = add_trusted_client(
        as_client(FakeLxd()), AddTrustedClientParams(name="  ci-runner ", cert=pair.certificate)
    )
    assert results["name"] == "ci-runner"


def test_add_names_a_certificate_without_cn_after_its_fingerprint() -> None:
    pem = cert_without_cn()
    results = add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert=pem))
    assert results["name"] == f"juju-action-{fingerprint(pem)[:12]}"


def test_add_restricted_to_no_project(pair: CertificatePair) -> None:
    lxd = FakeLxd()
    results = add_trusted_client(
        as_client(lxd), AddTrustedClientParams(cert=pair.certificate, projects="")
    )
    assert results["projects"] == "(none)"
    assert "restricted to no project" in results["message"]
    stored = lxd.trust.by_fp[results["fingerprint"]]
    assert (stored.restricted, stored.projects) == (True, [])


def served(text: str, final_url: str = URL) -> Callable[[str], Fetched]:
    """A fetch that returns ``text``, as if it came from ``final_url``."""

    def fetch(url: str) -> Fetched:
        return Fetched(text=text, requested=url, final_url=final_url)

    return fetch


def test_add_from_url(pair: CertificatePair) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> Fetched:
        fetched.append(url)
        return Fetched(text=pair.certificate, requested=url, final_url=url)

    lxd = FakeLxd(["web"])
    params = AddTrustedClientParams(cert_url=f" {URL} ", projects="web")
    results = add_trusted_client(as_client(lxd), params, fetch)
    assert fetched == [URL]
    assert results["name"] == "alice-laptop"
    assert results["projects"] == "web"
    assert "fetched-from" not in results  # same server: nothing to point out
    assert "redirected" not in results["message"]


def test_add_from_url_redirected_on_the_same_server_says_nothing_more(
    pair: CertificatePair,
) -> None:
    fetch = served(pair.certificate, "https://certs.example.com:443/new/client.crt")
    results = add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert_url=URL), fetch)
    assert "fetched-from" not in results


def test_add_from_url_redirected_elsewhere_says_where_it_came_from(
    pair: CertificatePair,
) -> None:
    fetch = served(pair.certificate, "https://u:pw@mirror.example.net:8443/c.crt?sig=secret")
    results = add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert_url=URL), fetch)
    fp = fingerprint(pair.certificate)
    assert results == {
        "fingerprint": fp,
        "name": "alice-laptop",
        "projects": "(unrestricted)",
        "fetched-from": "https://mirror.example.net:8443/c.crt",
        "message": (
            f"trusted client 'alice-laptop' ({fp[:12]}) with access to every project; "
            "cert-url redirected to another server, the certificate came from "
            "https://mirror.example.net:8443/c.crt"
        ),
    }


def test_add_from_url_passes_fetch_failures_on() -> None:
    def fetch(url: str) -> Fetched:
        raise CertFetchError(f"cannot fetch the certificate from {url}: connection refused")

    lxd = FakeLxd()
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(lxd), AddTrustedClientParams(cert_url=URL), fetch)
    assert str(info.value) == f"cannot fetch the certificate from {URL}: connection refused"
    assert lxd.trust.calls == []


def test_add_from_url_lets_a_bug_in_the_fetch_propagate() -> None:
    def fetch(url: str) -> Fetched:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert_url=URL), fetch)


def test_add_from_url_that_serves_no_certificate() -> None:
    with pytest.raises(ActionError) as info:
        add_trusted_client(
            as_client(FakeLxd()),
            AddTrustedClientParams(cert_url=URL),
            served("<html>login page</html>"),
        )
    assert str(info.value).startswith(f"the certificate fetched from {URL} is not usable: ")
    assert "no PEM markers" in str(info.value)


def test_add_from_a_url_redirected_elsewhere_that_serves_no_certificate_says_where() -> None:
    fetch = served("<html>login page</html>", "https://login.example.net/sso?next=x")
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert_url=URL), fetch)
    assert str(info.value).startswith(
        f"the certificate fetched from {URL} (redirected to https://login.example.net/sso) "
        "is not usable: "
    )


def test_the_fetch_module_is_imported_only_for_cert_url() -> None:
    """Hooks that do not fetch do not pay for urllib (see docs/benchmarks.md)."""
    tree = ast.parse(Path(actions.__file__).read_text())
    top_level = {
        f"{node.module}.{alias.name}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names
    }
    assert not any(m.startswith(("lxd_charm.cert_fetch", "urllib")) for m in top_level)
    assert not any(".cert_fetch" in m for m in top_level), top_level
    imported = {
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any(name.startswith(("urllib", "http", "ssl", "socket")) for name in imported)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (AddTrustedClientParams(cert="x", cert_url=URL), "either cert or cert-url, not both"),
        (AddTrustedClientParams(), 'cert="$(cat client.crt)"'),
        (AddTrustedClientParams(cert="  ", cert_url="\n"), "give the client certificate"),
    ],
)
def test_add_needs_exactly_one_source(params: AddTrustedClientParams, words: str) -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(lxd), params, never_fetch)
    assert words in str(info.value)
    assert lxd.trust.calls == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (lambda p, o: p.private_key, "this is a private key, not a certificate"),
        (lambda p, o: p.certificate + p.private_key, "holds a private key as well"),
        (lambda p, o: p.certificate + o.certificate, "expected exactly one certificate"),
        (lambda p, o: "hello", "no PEM markers found"),
        (lambda p, o: "-----BEGIN CERTIFICATE----- abc", "no matching END marker"),
        (
            lambda p, o: "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----",
            "not base64",
        ),
    ],
)
def test_add_refuses_what_is_not_one_certificate(
    pair: CertificatePair,
    other_pair: CertificatePair,
    text: Callable[[CertificatePair, CertificatePair], str],
    words: str,
) -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(lxd), AddTrustedClientParams(cert=text(pair, other_pair)))
    assert str(info.value).startswith("the certificate is not usable: ")
    assert words in str(info.value)
    assert lxd.trust.by_fp == {}
    assert "add" not in lxd.trust.calls


def test_add_never_echoes_a_private_key(pair: CertificatePair) -> None:
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert=pair.private_key))
    body = pair.private_key.splitlines()[1]
    assert body not in str(info.value)


def test_add_with_an_unknown_project_adds_nothing(pair: CertificatePair) -> None:
    lxd = FakeLxd(["default", "web"])
    with pytest.raises(ActionError) as info:
        add_trusted_client(
            as_client(lxd), AddTrustedClientParams(cert=pair.certificate, projects="web,nosuch")
        )
    message = str(info.value)
    assert "nosuch" in message
    assert "do not exist" in message
    assert "lxc project create" in message
    assert lxd.trust.by_fp == {}


def test_add_with_an_invalid_project_name_asks_lxd_nothing(pair: CertificatePair) -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError, match="invalid project name 'a/b'"):
        add_trusted_client(
            as_client(lxd), AddTrustedClientParams(cert=pair.certificate, projects="a/b")
        )
    assert lxd.trust.calls == []


def test_add_again_updates_the_entry(pair: CertificatePair) -> None:
    lxd = FakeLxd(["web"])
    add_trusted_client(as_client(lxd), AddTrustedClientParams(cert=pair.certificate))
    results = add_trusted_client(
        as_client(lxd),
        AddTrustedClientParams(name="renamed", cert=mangled(pair.certificate), projects="web"),
    )
    assert results["message"].startswith("updated client 'renamed'")
    assert results["projects"] == "web"
    assert [(e.name, e.projects) for e in lxd.trust.by_fp.values()] == [("renamed", ["web"])]


def test_add_leaves_a_server_certificate_alone(pair: CertificatePair) -> None:
    lxd = FakeLxd(["web"])
    fp = fingerprint(pair.certificate)
    member = lxd.trust.put(entry(fp, name="member-2", type_="server"))
    with pytest.raises(ActionError) as info:
        add_trusted_client(
            as_client(lxd), AddTrustedClientParams(cert=pair.certificate, projects="web")
        )
    assert "already trusted as a server certificate" in str(info.value)
    assert "'member-2'" in str(info.value)
    assert "left unchanged" in str(info.value)
    assert lxd.trust.by_fp[fp] == member
    assert "add" not in lxd.trust.calls


def test_add_turns_a_missing_trust_entry_into_an_action_error_with_a_next_step(
    pair: CertificatePair,
) -> None:
    lxd = FakeLxd()
    lxd.trust.error = TrustEntryNotFoundError("no trusted certificate has fingerprint ab")
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(lxd), AddTrustedClientParams(cert=pair.certificate))
    assert str(info.value) == (
        "no trusted certificate has fingerprint ab; "
        "list the trusted clients with `lxc config trust list`"
    )


@pytest.mark.parametrize(
    "error",
    [
        LxdUnreachableError("cannot reach LXD while listing trusted certificates: refused"),
        LxdNotFoundError("no LXD socket found (tried /x); is LXD installed and started?"),
        LxdApiError("LXD refused trusting certificate 'x': forbidden", 403),
    ],
)
def test_add_passes_other_lxd_failures_on_to_the_action_boundary(
    pair: CertificatePair, error: LxdCommonError
) -> None:
    """The charm's boundary fails the action with "LXD: <message>"; nothing is mapped twice."""
    lxd = FakeLxd()
    lxd.trust.error = error
    with pytest.raises(LxdCommonError) as info:
        add_trusted_client(as_client(lxd), AddTrustedClientParams(cert=pair.certificate))
    assert info.value is error


def test_add_lets_a_bug_propagate(pair: CertificatePair) -> None:
    """A bug is not an action failure: the hook fails with its traceback."""
    lxd = FakeLxd()
    lxd.trust.error = KeyError("metadata")
    with pytest.raises(KeyError, match="metadata"):
        add_trusted_client(as_client(lxd), AddTrustedClientParams(cert=pair.certificate))


def test_add_logs_no_certificate_text(
    pair: CertificatePair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_trusted_client(as_client(FakeLxd()), AddTrustedClientParams(cert=pair.certificate))
    logged = all_log_text(caplog)
    assert "alice-laptop" in logged  # it does log what it did...
    for line in pair.certificate.splitlines()[1:-1]:
        assert line not in logged  # ...but not the certificate


# --- remove_trusted_client ---------------------------------------------------------------------


@pytest.fixture
def trusted(pair: CertificatePair) -> tuple[FakeLxd, str]:
    lxd = FakeLxd()
    add_trusted_client(as_client(lxd), AddTrustedClientParams(cert=pair.certificate))
    return lxd, fingerprint(pair.certificate)


@pytest.mark.parametrize(
    "given",
    [
        lambda fp: openssl_style(fp),
        lambda fp: fp,
        lambda fp: fp.upper(),
        lambda fp: fp[:12],
        lambda fp: " ".join(fp[i : i + 2] for i in range(0, 64, 2)),
        lambda fp: f"SHA256:{fp}",
    ],
)
def test_remove_by_fingerprint_in_any_form(
    trusted: tuple[FakeLxd, str], given: Callable[[str], str]
) -> None:
    lxd, fp = trusted
    results = remove_trusted_client(
        as_client(lxd), RemoveTrustedClientParams(fingerprint=given(fp))
    )
    assert results == {
        "fingerprint": fp,
        "name": "alice-laptop",
        "type": "client",
        "message": f"removed trusted client 'alice-laptop' ({fp[:12]})",
    }
    assert lxd.trust.by_fp == {}


def test_remove_unknown_fingerprint(trusted: tuple[FakeLxd, str]) -> None:
    lxd, _ = trusted
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint="0" * 64))
    message = str(info.value)
    assert "no trusted client has the fingerprint" in message
    assert "nothing was removed" in message
    assert "lxc config trust list" in message
    assert len(lxd.trust.by_fp) == 1


def test_remove_does_not_match_by_name(trusted: tuple[FakeLxd, str]) -> None:
    lxd, _ = trusted
    with pytest.raises(ActionError, match="invalid fingerprint"):
        remove_trusted_client(
            as_client(lxd), RemoveTrustedClientParams(fingerprint="alice-laptop")
        )
    assert len(lxd.trust.by_fp) == 1


def test_remove_ambiguous_prefix_removes_nothing() -> None:
    lxd = FakeLxd()
    lxd.trust.put(entry("abcdef012345" + "1" * 52, name="one"))
    lxd.trust.put(entry("abcdef012345" + "2" * 52, name="two"))
    with pytest.raises(ActionError) as info:
        remove_trusted_client(
            as_client(lxd), RemoveTrustedClientParams(fingerprint="abcdef012345")
        )
    message = str(info.value)
    assert "matches 2 entries" in message
    assert "'one'" in message and "'two'" in message
    assert "nothing was removed" in message
    assert len(lxd.trust.by_fp) == 2


def test_remove_full_fingerprint_wins_over_prefix_matches() -> None:
    lxd = FakeLxd()
    full = "abcdef012345" + "1" * 52
    lxd.trust.put(entry(full, name="one"))
    results = remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint=full))
    assert results["name"] == "one"


def test_remove_refuses_a_server_certificate() -> None:
    lxd = FakeLxd()
    fp = "f" * 64
    lxd.trust.put(entry(fp, name="member-2", type_="server"))
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint=fp))
    message = str(info.value)
    assert "is a server certificate" in message
    assert "was not removed" in message
    assert "'member-2'" in message
    assert fp in lxd.trust.by_fp
    assert "remove" not in lxd.trust.calls


def test_remove_a_metrics_certificate() -> None:
    lxd = FakeLxd()
    lxd.trust.put(entry("e" * 64, name="prometheus", type_="metrics"))
    results = remove_trusted_client(
        as_client(lxd), RemoveTrustedClientParams(fingerprint="e" * 64)
    )
    assert (results["name"], results["type"]) == ("prometheus", "metrics")


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("xyz", "non-hex"),
        ("abc", "only 3 hex characters"),
        ("abcdef", "only 6 hex characters"),
        ("sha1 Fingerprint=AA:BB:CC:DD:EE:FF:00:11:22:33:44:55", "sha1 fingerprint"),
        ("a" * 65, "more than SHA-256's 64"),
        ("", "empty fingerprint"),
    ],
)
def test_remove_invalid_fingerprint(trusted: tuple[FakeLxd, str], given: str, words: str) -> None:
    lxd, _ = trusted
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint=given))
    message = str(info.value)
    assert message.startswith("invalid fingerprint: ")
    assert "nothing was removed" in message
    assert words in message
    assert len(lxd.trust.by_fp) == 1
    assert lxd.trust.calls == ["find", "add"]  # only the fixture's calls


def test_remove_entry_that_disappears_meanwhile(trusted: tuple[FakeLxd, str]) -> None:
    lxd, fp = trusted
    lxd.trust.remove_error = TrustEntryNotFoundError("gone")
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint=fp))
    assert "disappeared before it could be removed" in str(info.value)
    assert "nothing was removed" in str(info.value)


@pytest.mark.parametrize(
    "error",
    [
        LxdUnreachableError("cannot reach LXD"),
        LxdApiError("LXD refused removing trusted certificate 'x': boom", 500),
    ],
)
def test_remove_passes_lxd_failures_on_to_the_action_boundary(
    trusted: tuple[FakeLxd, str], error: LxdCommonError
) -> None:
    lxd, fp = trusted
    lxd.trust.error = error
    with pytest.raises(LxdCommonError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint=fp))
    assert info.value is error
    assert len(lxd.trust.by_fp) == 1


def test_remove_lets_a_bug_propagate(trusted: tuple[FakeLxd, str]) -> None:
    lxd, fp = trusted
    lxd.trust.error = AttributeError("no such field")
    with pytest.raises(AttributeError):
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(fingerprint=fp))


# --- get_client_token ----------------------------------------------------------------------------


def test_token_unrestricted_with_expiry() -> None:
    lxd = FakeLxd()
    results = get_client_token(as_client(lxd), GetClientTokenParams(name=" laptop "))
    assert results["token"] == TOKEN
    assert results["name"] == "laptop"
    assert results["projects"] == "(unrestricted)"
    assert results["expires-at"] == "2030-01-01T00:00:00Z"
    assert "lxc remote add" in results["message"]
    assert TOKEN not in results["message"]
    assert lxd.trust.tokens == [("laptop", None)]


def test_token_restricted_without_expiry() -> None:
    lxd = FakeLxd(["web", "db"])
    lxd.trust.expires_at = None
    results = get_client_token(as_client(lxd), GetClientTokenParams(name="ci", projects="web,db"))
    assert results["projects"] == "web,db"
    assert "expires-at" not in results
    assert lxd.trust.tokens == [("ci", ["web", "db"])]


def test_token_for_no_project() -> None:
    lxd = FakeLxd()
    results = get_client_token(as_client(lxd), GetClientTokenParams(name="ci", projects=""))
    assert results["projects"] == "(none)"
    assert lxd.trust.tokens == [("ci", [])]


@pytest.mark.parametrize("name", ["", "   "])
def test_token_needs_a_name(name: str) -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError, match="name=NAME"):
        get_client_token(as_client(lxd), GetClientTokenParams(name=name))
    assert lxd.trust.calls == []


def test_token_with_unknown_project() -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError) as info:
        get_client_token(as_client(lxd), GetClientTokenParams(name="ci", projects="nosuch"))
    assert "nosuch" in str(info.value)
    assert "lxc project create" in str(info.value)
    assert lxd.trust.tokens == []


def test_token_with_invalid_project_name() -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError, match="invalid project name"):
        get_client_token(as_client(lxd), GetClientTokenParams(name="ci", projects="my project"))
    assert lxd.trust.calls == []


def test_token_lxd_failure_goes_on_to_the_action_boundary() -> None:
    lxd = FakeLxd()
    error = LxdApiError("LXD refused issuing a client token for 'ci': nope", 400)
    lxd.trust.error = error
    with pytest.raises(LxdApiError) as info:
        get_client_token(as_client(lxd), GetClientTokenParams(name="ci"))
    assert info.value is error


def test_token_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    results = get_client_token(as_client(FakeLxd()), GetClientTokenParams(name="laptop"))
    assert results["token"] == TOKEN
    logged = all_log_text(caplog)
    assert "laptop" in logged  # the issuing is logged...
    assert TOKEN not in logged  # ...the token is not


# --- collect_debug_info ------------------------------------------------------------------------


def test_debug_runs_the_snap_command() -> None:
    run = FakeRun({"/snap/bin/lxd.buginfo": completed(stdout="# Base information\n...")})
    assert collect_debug_info(run) == {"buginfo": "# Base information\n..."}
    args, kwargs = run.calls[0]
    assert args == ["/snap/bin/lxd.buginfo"]
    assert kwargs["timeout"] == 300
    assert kwargs["capture_output"] is True
    assert kwargs["text"] is True
    assert kwargs["check"] is False


def test_debug_falls_back_to_path() -> None:
    run = FakeRun({"lxd.buginfo": completed(stdout="report")})
    assert collect_debug_info(run, timeout=5) == {"buginfo": "report"}
    assert [args[0] for args, _ in run.calls] == ["/snap/bin/lxd.buginfo", "lxd.buginfo"]
    assert run.calls[1][1]["timeout"] == 5


def test_debug_without_the_command() -> None:
    with pytest.raises(ActionError, match=r"lxd\.buginfo is not installed") as info:
        collect_debug_info(FakeRun({}))
    assert "LXD snap installed" in str(info.value)


def test_debug_failure_shows_the_last_lines_of_stderr() -> None:
    stderr = "\n".join(f"line {i}" for i in range(1, 11)) + "\n\n"
    run = FakeRun({"/snap/bin/lxd.buginfo": completed(3, stdout="partial", stderr=stderr)})
    with pytest.raises(ActionError) as info:
        collect_debug_info(run)
    message = str(info.value)
    assert message.startswith("/snap/bin/lxd.buginfo failed with exit code 3:\n")
    assert message.endswith("line 6\nline 7\nline 8\nline 9\nline 10")
    assert "line 5" not in message


def test_debug_failure_without_stderr_shows_stdout() -> None:
    run = FakeRun({"/snap/bin/lxd.buginfo": completed(1, stdout="only stdout")})
    with pytest.raises(ActionError, match="exit code 1:\nonly stdout"):
        collect_debug_info(run)


def test_debug_failure_that_printed_nothing() -> None:
    run = FakeRun({"/snap/bin/lxd.buginfo": completed(1)})
    with pytest.raises(ActionError, match="exit code 1 and printed nothing"):
        collect_debug_info(run)


@pytest.mark.parametrize("partial", [b"collecting\nstuck here\n", "collecting\nstuck here", None])
def test_debug_timeout(partial: bytes | str | None) -> None:
    expired = subprocess.TimeoutExpired(["lxd.buginfo"], 300, stderr=partial)
    run = FakeRun({"/snap/bin/lxd.buginfo": expired})
    with pytest.raises(ActionError, match="did not finish within 300s") as info:
        collect_debug_info(run)
    if partial:
        assert str(info.value).endswith("its last output:\ncollecting\nstuck here")


def test_debug_command_that_cannot_run() -> None:
    run = FakeRun({"/snap/bin/lxd.buginfo": PermissionError(13, "Permission denied")})
    with pytest.raises(ActionError, match=r"cannot run /snap/bin/lxd\.buginfo: Permission denied"):
        collect_debug_info(run)


# --- show_pending_config ----------------------------------------------------------------------


def test_nothing_pending() -> None:
    assert show_pending_config({}) == {"pending": "nothing pending"}


def test_pending_in_the_order_queued() -> None:
    pending = {"lxcfs.loadavg": "true", "lxcfs.cfs": None, "lxcfs.pidfd": ""}
    assert show_pending_config(pending) == {
        "pending": 'lxcfs.loadavg=true\nlxcfs.cfs=(unset)\nlxcfs.pidfd=""'
    }
