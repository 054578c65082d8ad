"""The trust store of a real daemon, and real clients using what it grants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pylxd
import pytest
import requests
from pylxd.client import get_session_for_url

from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.errors import (
    CertificateError,
    LxdApiError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import LxdDaemon


@pytest.fixture
def listening(daemon: LxdDaemon) -> LxdDaemon:
    daemon.client().set_server_config({"core.https_address": daemon.address})
    return daemon


def test_add_find_remove(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("alice")
    entry = lxd.trust.add(pair.certificate, name="alice")
    assert entry.fingerprint == fingerprint(pair.certificate)
    assert entry.restricted is False
    assert lxd.trust.find("alice") == entry
    assert lxd.trust.find(entry.fingerprint) == entry
    assert lxd.trust.find(entry.fingerprint[:16]) == entry
    assert lxd.trust.find_all("alice") == [entry]
    assert lxd.trust.remove("alice") == entry
    assert lxd.trust.find("alice") is None
    assert [e.name for e in lxd.trust.entries() if e.type == "client"] == []


def test_adding_twice_updates_instead_of_failing(listening: LxdDaemon) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("p1")
    pair = generate_client_certificate("bob")
    lxd.trust.add(pair.certificate, name="bob")
    entry = lxd.trust.add(pair.certificate, name="bob-renamed", projects=["p1"])
    assert (entry.name, entry.restricted, entry.projects) == ("bob-renamed", True, ["p1"])
    assert len([e for e in lxd.trust.entries() if e.type == "client"]) == 1


def test_restricted_client_sees_only_its_project(listening: LxdDaemon) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("allowed")
    lxd.pylxd.projects.create("other")
    pair = generate_client_certificate("carol")
    lxd.trust.add(pair.certificate, name="carol", projects=["allowed"])
    with LxdClient.remote(listening.address, pair, listening.server_cert) as remote:
        assert remote.trusted
        visible = {p.name for p in remote.pylxd.projects.all()}
        assert visible == {"allowed"}


def test_empty_project_list_means_no_access(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("dave")
    entry = lxd.trust.add(pair.certificate, name="dave", projects=[])
    assert (entry.restricted, entry.projects) == (True, [])


def test_unknown_project_is_refused(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("erin")
    with pytest.raises(ProjectNotFoundError, match="nosuch"):
        lxd.trust.add(pair.certificate, name="erin", projects=["nosuch"])
    with pytest.raises(ProjectNotFoundError):
        lxd.trust.issue_token("erin", projects=["nosuch"])
    assert lxd.trust.find("erin") is None


def test_garbage_and_private_key_are_not_certificates(listening: LxdDaemon) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("frank")
    with pytest.raises(CertificateError):
        lxd.trust.add("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----", "x")
    with pytest.raises(CertificateError, match="private key"):
        lxd.trust.add(pair.private_key, "x")


def test_removing_an_unknown_entry(listening: LxdDaemon) -> None:
    with pytest.raises(TrustEntryNotFoundError):
        listening.client().trust.remove("0" * 64)


def test_client_token_gets_a_real_pylxd_client_trusted(
    listening: LxdDaemon, tmp_path: Path
) -> None:
    lxd = listening.client()
    lxd.pylxd.projects.create("tokens")
    token = lxd.trust.issue_token("grace", projects=["tokens"])
    assert "grace" not in repr(token.token)  # the dataclass hides the secret
    pair = generate_client_certificate("grace")
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.write_text(pair.certificate)
    key.write_text(pair.private_key)
    server = tmp_path / "server.crt"
    server.write_text(listening.server_cert)
    url = f"https://{listening.address}"
    session = get_session_for_url(url, verify=str(server), cert=(str(cert), str(key)))
    session.trust_env = False  # or REQUESTS_CA_BUNDLE would override the pinned certificate
    client = pylxd.Client(endpoint=url, cert=(str(cert), str(key)), session=session)
    assert not client.trusted
    client.authenticate(token.token)
    assert client.trusted
    entry = lxd.trust.find("grace")
    assert entry is not None
    assert entry.fingerprint == fingerprint(pair.certificate)
    assert (entry.restricted, entry.projects) == (True, ["tokens"])


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_metrics_certificate_reads_metrics_and_nothing_else(
    listening: LxdDaemon, tmp_path: Path
) -> None:
    lxd = listening.client()
    pair = generate_client_certificate("scraper")
    entry = lxd.trust.add(pair.certificate, name="scraper", kind="metrics")
    assert (entry.type, entry.restricted) == ("metrics", False)
    again = lxd.trust.add(pair.certificate, name="scraper-renamed", kind="metrics")
    assert (again.type, again.name) == ("metrics", "scraper-renamed")
    with pytest.raises(LxdApiError, match="already trusted as metrics certificate"):
        lxd.trust.add(pair.certificate, name="scraper", kind="client")

    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.write_text(pair.certificate)
    key.write_text(pair.private_key)
    session = requests.Session()
    session.trust_env = False
    base = f"https://{listening.address}/1.0"
    kwargs: dict[str, Any] = {"cert": (str(cert), str(key)), "verify": False, "timeout": 10}
    metrics = session.get(f"{base}/metrics", **kwargs)
    assert metrics.status_code == 200
    assert metrics.text.rstrip().endswith("# EOF")  # OpenMetrics, empty without instances
    assert session.get(base, **kwargs).json()["metadata"]["auth"] == "untrusted"
    assert session.get(f"{base}/instances", **kwargs).status_code == 403

    lxd.trust.remove(again.fingerprint)
    assert session.get(f"{base}/metrics", **kwargs).status_code == 403
