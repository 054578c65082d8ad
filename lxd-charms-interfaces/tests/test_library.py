"""The published package on its own: what a charm author outside this repository gets.

These tests use only the package, ``ops[testing]``, ``pytest`` and
``jsonschema``: no ``lxd_common``. The certificate in ``data/client.pem`` is
a throwaway self-signed one whose fingerprint was captured with
``openssl x509 -noout -fingerprint -sha256`` (LXD's fingerprint is the same
digest, lowercase, without colons).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import jsonschema
import ops
import pytest
from ops import testing

import lxd_charms_interfaces
from lxd_charms_interfaces import lxd, lxd_https
from lxd_charms_interfaces._endpoint import read_endpoint
from lxd_charms_interfaces._pem import certificate_fingerprint

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "src" / "lxd_charms_interfaces"
CERT = (HERE / "data" / "client.pem").read_text()
CERT_FP = "e3a9561200b6341fc1b19bb33c34e19f483db5f84a3f389ba63784a19879d7f0"  # openssl, captured


def test_the_package_imports_only_the_standard_library_and_ops() -> None:
    imported: set[str] = set()
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"ops"}
    assert (PACKAGE / "py.typed").is_file()


def test_the_version_is_the_one_pyproject_builds() -> None:
    pyproject = (HERE.parent / "pyproject.toml").read_text()
    assert f'\nversion = "{lxd_charms_interfaces.__version__}"\n' in pyproject


def test_one_error_class_a_value_error() -> None:
    assert lxd.InterfaceError is lxd_https.InterfaceError is lxd_charms_interfaces.InterfaceError
    assert issubclass(lxd_charms_interfaces.InterfaceError, ValueError)
    with pytest.raises(lxd_charms_interfaces.InterfaceError, match="unsupported lxd-https"):
        lxd_https.ClientRequest.from_databag({"version": "2.0", "certificate": "x"})


# --- the standard-library certificate check ----------------------------------------


def test_fingerprint_is_what_openssl_says() -> None:
    assert certificate_fingerprint(CERT) == CERT_FP
    assert certificate_fingerprint("\r\n" + CERT.replace("\n", "\r\n") + "  ") == CERT_FP


KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)
BODY = CERT.split("-----")[2]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("garbage", "no PEM markers found"),
        ("-----BEGIN CERTIFICATE-----\nMIIB", "no matching END marker"),
        (KEY, "this is a private key, not a certificate"),
        (CERT + KEY, "holds a private key as well as a certificate"),
        (CERT + CERT, "expected exactly one certificate, found 2 PEM blocks"),
        ("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", "found PUBLIC KEY"),
        (CERT.replace(BODY, BODY[:-10] + "*" + BODY[-9:]), "not valid base64"),
        (CERT.replace(BODY, "\nAAAA\n"), "not a DER certificate"),
        (CERT.replace(BODY, BODY[: len(BODY) // 2] + "====\n"), "not"),
    ],
)
def test_what_is_not_one_certificate_is_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as raised:
        certificate_fingerprint(text)
    assert "MII" not in str(raised.value) and "KEY-----" not in str(raised.value)


# --- reading endpoints ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("https://10.0.0.1:8443", "https://10.0.0.1:8443"),
        ("10.0.0.1", "https://10.0.0.1:8443"),
        ("http://LXD.Example:9443/", "https://lxd.example:9443"),
        ("2001:DB8::2", "https://[2001:db8::2]:8443"),
        ("[2001:db8::2]:1", "https://[2001:db8::2]:1"),
        ("a", "https://a:8443"),
    ],
)
def test_endpoints_are_read_in_one_form(written: str, read: str) -> None:
    assert read_endpoint(written) == read


@pytest.mark.parametrize(
    ("written", "error"),
    [
        ("unix:///x", "unsupported scheme 'unix'"),
        ("", "empty"),
        ("https://a:8443/1.0", "only https://host:port"),
        ("https://u@a:8443", "only https://host:port"),
        ("a:99999", "must be between 1 and 65535"),
        ("a:0", "must be between 1 and 65535"),
        ("bad_host", "not an IP address or DNS name"),
        ("10.0.0.300", "not an IP address or DNS name"),
        ("[a]:8443", "not an IP address or DNS name"),
    ],
)
def test_what_is_not_an_endpoint_is_refused(written: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        read_endpoint(written)


# --- lxd-https requirer --------------------------------------------------------------

HTTPS_META = {"name": "library-requirer", "requires": {"lxd": {"interface": "lxd-https"}}}


class HttpsRequirerCharm(ops.CharmBase):
    """A charm author's requirer, wired with the package alone."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = lxd_https.LxdHttpsRequirer(self, "lxd", certificate=CERT, projects=["ci"])


def test_https_requirer_sends_its_certificate() -> None:
    ctx = testing.Context(HttpsRequirerCharm, meta=HTTPS_META)
    relation = testing.Relation("lxd", remote_app_name="lxd")
    out = ctx.run(ctx.on.relation_joined(relation), testing.State(relations={relation}))
    sent: dict[str, str] = dict(out.get_relation(relation.id).local_unit_data)
    bag = {k: v for k, v in sent.items() if k in lxd_https.REQUEST_KEYS}
    jsonschema.validate(bag, lxd_https.REQUIRER_SCHEMA)
    assert bag["certificate"] == CERT
    assert (bag["version"], bag["projects"], bag["autoremove"]) == ("1.0", "ci", "true")


def test_https_requirer_reads_server_info_from_provider_data() -> None:
    # What the LXD charm answers from a cluster: once, in its application databag.
    answer = {
        "version": "1.0",
        "certificate": CERT,
        "certificate_fingerprint": "c" * 64,
        "addresses": "10.0.0.9:8443,[2001:db8::9]:8443",
    }
    relation = testing.Relation("lxd", remote_app_name="lxd", remote_app_data=answer)
    ctx = testing.Context(HttpsRequirerCharm, meta=HTTPS_META)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as manager:
        (server,) = manager.charm.lxd.servers()
    assert isinstance(server, lxd_https.ServerInfo)
    assert server.addresses == ("10.0.0.9:8443", "[2001:db8::9]:8443")
    assert (server.certificate, server.certificate_fingerprint) == (CERT, "c" * 64)


# --- lxd requirer --------------------------------------------------------------------

LXD_META = {"name": "consumer", "requires": {"lxd": {"interface": "lxd"}}}


class LxdRequirerCharm(ops.CharmBase):
    """A charm author's requirer of the integrator's `lxd` interface."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = lxd.LxdRequirer(self, "lxd", certificates=[CERT])


def test_lxd_requirer_sends_its_certificates_and_sees_them_trusted() -> None:
    ctx = testing.Context(LxdRequirerCharm, meta=LXD_META)
    relation = testing.Relation("lxd")
    out = ctx.run(ctx.on.relation_joined(relation), testing.State(relations={relation}))
    sent: dict[str, str] = dict(out.get_relation(relation.id).local_unit_data)
    bag = {k: v for k, v in sent.items() if k == "client_certificates"}
    jsonschema.validate(bag, lxd.REQUIRER_SCHEMA)
    assert json.loads(bag["client_certificates"]) == [CERT.strip() + "\n"]
    nodes = [{"name": "m1", "endpoint": "10.0.0.1", "trusted_certs_fp": [CERT_FP]}]
    answer = {"version": "1.0", "nodes": json.dumps(nodes)}
    relation = testing.Relation("lxd", remote_app_data=answer)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as manager:
        assert manager.charm.lxd.is_trusted()
        assert [n.endpoint for n in manager.charm.lxd.nodes()] == ["https://10.0.0.1:8443"]


def test_lxd_requirer_refuses_its_own_private_key() -> None:
    with pytest.raises(lxd_charms_interfaces.InterfaceError, match="certificate 1 of 1: this"):
        lxd.RequirerData.from_pems([KEY])


def test_the_readme_example_uses_what_the_package_has() -> None:
    readme = (HERE.parent / "README.md").read_text()
    (example,) = readme.split("```python\n")[1:]
    tree = ast.parse(example.split("```")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = {
                "lxd_charms_interfaces.lxd_https": lxd_https,
                "lxd_charms_interfaces.lxd": lxd,
            }[node.module]
            assert all(hasattr(module, alias.name) for alias in node.names)
