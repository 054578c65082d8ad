"""The integrator's ops-free modules on their own: naming, planning, connection messages."""

from __future__ import annotations

import pytest

from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.errors import LxdApiError, LxdUnreachableError, TrustEntryNotFoundError
from lxd_common.interfaces.lxd import RequirerData
from lxd_common.lxd import TrustEntry
from lxd_integrator.config import IntegratorConfig
from lxd_integrator.connection import explain_unreachable
from lxd_integrator.credentials import (
    Credentials,
    CredentialSource,
    CredentialsUnavailable,
    TrustedCloud,
    credential_source,
    load_credentials,
)
from lxd_integrator.registration import (
    Addition,
    ApplyResult,
    EntryNames,
    Removal,
    Rename,
    Requester,
    TrustPlan,
    apply_plan,
    plan_trust,
    trusted_by_relation,
)

NAMES = EntryNames(app="lxd-integrator", model_uuid="5a1f03c2-8d3e-4b7a-9c1d-2e3f4a5b6c7d")


def entry(pem: str, name: str, type_: str = "client") -> TrustEntry:
    return TrustEntry(name, fingerprint(pem), type_, False, [], pem)


# --- naming ----------------------------------------------------------------------------


def test_entry_names_round_trip() -> None:
    requester = Requester(7, "my-app/12")
    assert NAMES.name(requester) == "lxd-integrator:5a1f03c2:7:my-app/12"
    assert NAMES.requester(NAMES.name(requester)) == requester


@pytest.mark.parametrize(
    "name",
    [
        "operator-added",
        "lxd-integrator",
        "lxd-integrator:0badf00d:7:my-app/0",  # another model
        "lxd-integrator-2:5a1f03c2:7:my-app/0",  # another application
        "lxd-integrator:5a1f03c2:x:my-app/0",
        "lxd-integrator:5a1f03c2:7:",
        "lxd-integrator:5a1f03c2:7:a:b",
    ],
)
def test_names_not_ours_are_not_claimed(name: str) -> None:
    assert NAMES.requester(name) is None


# --- planning ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pems() -> list[str]:
    return [generate_client_certificate(f"p{i}").certificate for i in range(4)]


def test_plan_adds_renames_removes_and_keeps(pems: list[str]) -> None:
    a, b = Requester(1, "app/0"), Requester(1, "app/1")
    wanted = {
        a: RequirerData.from_pems([pems[0], pems[1]]),
        b: RequirerData.from_pems([pems[1]]),
    }
    entries = [
        entry(pems[1], "lxd-integrator:5a1f03c2:1:app/9"),  # ours, owner gone: rename to app/0
        entry(pems[2], "lxd-integrator:5a1f03c2:1:app/0"),  # ours, unwanted: remove
        entry(pems[3], "someone-else"),  # not ours, unwanted: keep
    ]
    plan = plan_trust(wanted, entries, NAMES)
    assert [(x.name, x.certificate.fingerprint, x.requesters) for x in plan.additions] == [
        ("lxd-integrator:5a1f03c2:1:app/0", fingerprint(pems[0]), (a,))
    ]
    assert [(r.fingerprint, r.new_name) for r in plan.renames] == [
        (fingerprint(pems[1]), "lxd-integrator:5a1f03c2:1:app/0")
    ]
    assert [r.fingerprint for r in plan.removals] == [fingerprint(pems[2])]
    assert plan.present == {fingerprint(pems[1])}
    assert plan.changes
    assert trusted_by_relation(wanted, plan.present | {fingerprint(pems[0])}) == {
        1: tuple(sorted([fingerprint(pems[0]), fingerprint(pems[1])]))
    }


def test_plan_of_a_matching_store_is_empty(pems: list[str]) -> None:
    a = Requester(1, "app/0")
    wanted = {a: RequirerData.from_pems([pems[0]])}
    plan = plan_trust(wanted, [entry(pems[0], NAMES.name(a))], NAMES)
    assert not plan.changes
    assert plan.present == {fingerprint(pems[0])}


def test_plan_refuses_a_server_certificate(pems: list[str]) -> None:
    a = Requester(1, "app/0")
    plan = plan_trust(
        {a: RequirerData.from_pems([pems[0]])}, [entry(pems[0], "m1", "server")], NAMES
    )
    assert not plan.changes
    assert plan.present == frozenset()
    assert "server certificate" in plan.refusals[a]


# --- credentials ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> CertificatePair:
    return generate_client_certificate("cred")


def test_credential_source_prefers_trust(pair: CertificatePair) -> None:
    cloud = TrustedCloud(
        cloud_type="lxd",
        endpoint="https://10.0.0.1:8443",
        attributes={"client-cert": pair.certificate, "client-key": pair.private_key},
    )
    config = IntegratorConfig(
        lxd_endpoint="https://192.0.2.1:8443",
        lxd_client_cert=pair.certificate,
        lxd_client_key=pair.private_key,
        lxd_server_cert=pair.certificate,
    )
    assert credential_source(cloud, config, app_name="x") is CredentialSource.TRUST
    assert credential_source(None, config, app_name="x") is CredentialSource.CONFIG


def test_credential_source_without_anything() -> None:
    with pytest.raises(CredentialsUnavailable, match="juju trust my-app"):
        credential_source(None, IntegratorConfig(), app_name="my-app")


def test_loaded_credentials_keep_the_key_out_of_their_repr(pair: CertificatePair) -> None:
    cloud = TrustedCloud(
        cloud_type="lxd",
        endpoint="10.0.0.1",
        attributes={"client-cert": pair.certificate, "client-key": pair.private_key},
    )
    credentials = load_credentials(cloud, IntegratorConfig(), app_name="x")
    assert credentials.endpoint == "https://10.0.0.1:8443"
    assert credentials.server_cert is None
    assert "PRIVATE" not in repr(credentials) and "PRIVATE" not in repr(cloud)


# --- connection messages ---------------------------------------------------------------


@pytest.fixture
def credentials(pair: CertificatePair) -> Credentials:
    return Credentials("https://10.0.0.1:8443", pair, pair.certificate, CredentialSource.CONFIG)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            "cannot reach LXD while connecting to https://x: HTTPSConnectionPool(...): Max "
            'retries exceeded (Caused by NameResolutionError("<urllib3.connection.HTTPSConnection'
            " object>: Failed to resolve 'nowhere' ([Errno -2] Name or service not known)\"))",
            "cannot reach LXD at https://10.0.0.1:8443: name or service not known",
        ),
        (
            "cannot reach LXD while connecting to https://x: HTTPSConnectionPool(host='x', "
            "port=8443): Max retries exceeded with url: /1.0 (Caused by ConnectTimeoutError("
            "<urllib3.connection.HTTPSConnection object>, 'Connection to x timed out. "
            "(connect timeout=10.0)'))",
            "cannot reach LXD at https://10.0.0.1:8443: timed out",
        ),
        (
            "cannot reach LXD while connecting to https://x: (Caused by SSLError("
            "SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
            "failed: self-signed certificate (_ssl.c:1006)')))",
            "LXD at https://10.0.0.1:8443 presented a certificate that does not match "
            "lxd-server-cert",
        ),
    ],
)
def test_unreachable_messages_are_short(
    credentials: Credentials, error: str, message: str
) -> None:
    assert explain_unreachable(credentials, LxdUnreachableError(error)) == message


def test_unverifiable_without_a_server_cert_says_to_set_one(credentials: Credentials) -> None:
    creds = Credentials(credentials.endpoint, credentials.client, None, CredentialSource.TRUST)
    error = LxdUnreachableError("... CERTIFICATE_VERIFY_FAILED ...")
    assert explain_unreachable(creds, error) == (
        "cannot verify LXD at https://10.0.0.1:8443 with the system CAs: "
        "set server-cert of the trusted credential"
    )


# --- each decision of planning and applying, one wrong answer each --------------------


def test_a_requester_shows_as_its_unit() -> None:
    assert str(Requester(7, "my-app/12")) == "my-app/12"
    assert f"{Requester(7, 'my-app/12')}: refused" == "my-app/12: refused"


@pytest.mark.parametrize(
    ("plan", "changes"),
    [
        (TrustPlan(), False),
        (TrustPlan(present=frozenset({"ab"})), False),
        (TrustPlan(renames=(Rename("ab", "old", "new"),)), True),
        (TrustPlan(removals=(Removal("ab", "old"),)), True),
    ],
    ids=["nothing", "only-present", "only-a-rename", "only-a-removal"],
)
def test_any_one_kind_of_change_is_a_change(plan: TrustPlan, changes: bool) -> None:
    assert plan.changes is changes


def test_every_refusal_of_one_unit_is_listed(pems: list[str]) -> None:
    a = Requester(1, "app/0")
    entries = [entry(pems[0], "m1", "server"), entry(pems[1], "m2", "metrics")]
    plan = plan_trust({a: RequirerData.from_pems([pems[0], pems[1]])}, entries, NAMES)
    first, second = fingerprint(pems[0])[:12], fingerprint(pems[1])[:12]
    # in the order the unit asked for them
    assert plan.refusals == {
        a: f"certificate {first} is LXD's own server certificate, not a client "
        f"certificate; certificate {second} is LXD's own metrics certificate, "
        "not a client certificate"
    }


class ScriptedTrust:
    """A trust store whose calls succeed or raise as a test scripts them, and are recorded."""

    def __init__(self, refuse_add: dict[str, str], gone: set[str]) -> None:
        self.refuse_add, self.gone = refuse_add, gone
        self.calls: list[tuple[str, str]] = []

    def add(self, pem: str, name: str, projects: object = None) -> None:
        self.calls.append(("add", name))
        if fingerprint(pem) in self.refuse_add:
            raise LxdApiError(self.refuse_add[fingerprint(pem)], 400)

    def update(self, fp: str, name: str, projects: object = None) -> None:
        self.calls.append(("update", name))
        if fp in self.gone:
            raise TrustEntryNotFoundError(fp)

    def remove(self, fp: str) -> None:
        self.calls.append(("remove", fp))
        if fp in self.gone:
            raise TrustEntryNotFoundError(fp)


def test_a_rename_of_an_entry_gone_meanwhile_is_not_counted_as_trusted(pems: list[str]) -> None:
    fp0, fp1 = fingerprint(pems[0]), fingerprint(pems[1])
    plan = TrustPlan(
        renames=(Rename(fp0, "old-0", "new-0"), Rename(fp1, "old-1", "new-1")),
        present=frozenset({fp0, fp1}),
    )
    trust = ScriptedTrust(refuse_add={}, gone={fp0})
    result = apply_plan(trust, plan)  # type: ignore[arg-type]
    assert result == ApplyResult(trusted=frozenset({fp1}), refusals={})
    assert trust.calls == [("update", "new-0"), ("update", "new-1")]


def test_every_addition_lxd_refuses_is_reported_for_each_of_its_units(pems: list[str]) -> None:
    a, b = Requester(1, "app/0"), Requester(1, "app/1")
    certs = RequirerData.from_pems([pems[0], pems[1]]).client_certificates
    plan = TrustPlan(
        additions=tuple(
            Addition(f"n{i}", cert, (a, b) if i == 0 else (a,)) for i, cert in enumerate(certs)
        ),
        removals=(Removal(fingerprint(pems[2]), "gone-already"),),
    )
    trust = ScriptedTrust(
        refuse_add={c.fingerprint: f"refused {i}" for i, c in enumerate(certs)},
        gone={fingerprint(pems[2])},
    )
    result = apply_plan(trust, plan)  # type: ignore[arg-type]
    fp0, fp1 = (c.fingerprint[:12] for c in certs)
    assert result == ApplyResult(
        trusted=frozenset(),
        refusals={
            a: f"certificate {fp0}: refused 0; certificate {fp1}: refused 1",
            b: f"certificate {fp0}: refused 0",
        },
    )
    assert trust.calls[0] == ("remove", fingerprint(pems[2])), "removals come first"
