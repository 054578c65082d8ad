"""Each decision of `lxd_integrator.credentials`, one wrong answer each (pure, no Juju, no LXD).

Messages are compared whole: they are the unit's status line, and a word
shared by two messages would not say which one the charm chose.
"""

from __future__ import annotations

import pytest

from lxd_common.certs import CertificatePair, generate_client_certificate
from lxd_integrator.config import IntegratorConfig
from lxd_integrator.credentials import (
    CredentialsInvalid,
    CredentialSource,
    CredentialsUnavailable,
    TrustedCloud,
    credential_source,
    load_credentials,
)

FALLBACK = "lxd-endpoint, lxd-client-cert, lxd-client-key-secret, lxd-server-cert"
# A block reshape_pem accepts (markers and base64) that is no certificate or key.
NOT_A_CERT = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
NOT_A_KEY = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
NO_MARKERS = "no PEM markers found; expected a PEM block starting with '-----BEGIN <TYPE>-----'"


@pytest.fixture(scope="module")
def client() -> CertificatePair:
    return generate_client_certificate("client")


@pytest.fixture(scope="module")
def server() -> CertificatePair:
    return generate_client_certificate("server")


@pytest.fixture(scope="module")
def other() -> CertificatePair:
    return generate_client_certificate("other")


def fallback(client: CertificatePair, server: CertificatePair, **changes: str) -> IntegratorConfig:
    options = {
        "lxd_endpoint": "10.0.0.1",
        "lxd_client_cert": client.certificate,
        "lxd_client_key": client.private_key,
        "lxd_server_cert": server.certificate,
    }
    return IntegratorConfig(**{**options, **changes})  # type: ignore[arg-type]


def trusted(client: CertificatePair, **changes: object) -> TrustedCloud:
    fields: dict[str, object] = {
        "cloud_type": "lxd",
        "endpoint": "10.0.0.1",
        "attributes": {"client-cert": client.certificate, "client-key": client.private_key},
    }
    return TrustedCloud(**{**fields, **changes})  # type: ignore[arg-type]


# --- which source, and why neither ------------------------------------------------------


def test_a_certificate_credential_without_a_client_certificate_lacks_it() -> None:
    """The default auth type is `certificate`: such a credential is not a trust-password one."""
    cloud = TrustedCloud(cloud_type="lxd", endpoint="10.0.0.1", attributes={"client-key": "k"})
    with pytest.raises(CredentialsUnavailable) as caught:
        credential_source(cloud, IntegratorConfig(), app_name="x")
    assert str(caught.value) == (
        f"trusted lxd credential lacks endpoint or client certificate: set {FALLBACK}"
    )


def test_an_interactive_credential_holding_a_certificate_but_no_endpoint_lacks_the_endpoint(
    client: CertificatePair,
) -> None:
    """Only a credential with no client certificate at all is explained as a trust password."""
    cloud = trusted(client, endpoint=None, auth_type="interactive")
    with pytest.raises(CredentialsUnavailable) as caught:
        credential_source(cloud, IntegratorConfig(), app_name="x")
    assert str(caught.value) == (
        f"trusted lxd credential lacks endpoint or client certificate: set {FALLBACK}"
    )


def test_a_trust_password_credential_is_explained() -> None:
    cloud = TrustedCloud(
        cloud_type="lxd",
        endpoint="10.0.0.1",
        attributes={"trust-password": "pw"},
        auth_type="interactive",
    )
    with pytest.raises(CredentialsUnavailable) as caught:
        credential_source(cloud, IntegratorConfig(), app_name="x")
    assert str(caught.value) == (
        "the trusted lxd credential is a trust-password (interactive) credential, which the "
        "charm cannot use: give the model a certificate credential (juju add-credential with "
        f"auth-type certificate, then juju set-credential), or set {FALLBACK}"
    )


def test_the_cloud_is_constructed_by_keyword_only(client: CertificatePair) -> None:
    """Positional fields would let an endpoint and the attributes swap places unnoticed."""
    with pytest.raises(TypeError):
        TrustedCloud("lxd", "10.0.0.1", {})  # type: ignore[call-arg]


def test_no_certificate_text_shows_in_a_repr(
    client: CertificatePair, server: CertificatePair
) -> None:
    """Reprs end up in logs and tracebacks: the CA bundle and server certificate stay out."""
    cloud = trusted(client, ca_certificates=(server.certificate,))
    credentials = load_credentials(cloud, IntegratorConfig(), app_name="x")
    assert credentials.server_cert == server.certificate
    assert "BEGIN" not in repr(cloud)
    assert server.certificate.splitlines()[1] not in repr(credentials)


# --- what each source holds, checked --------------------------------------------------------


def test_pem_pasted_with_escaped_newlines_is_reshaped(
    client: CertificatePair, server: CertificatePair
) -> None:
    config = fallback(
        client,
        server,
        lxd_client_cert=client.certificate.replace("\n", "\\n"),
        lxd_client_key=client.private_key.replace("\n", "\\n"),
    )
    credentials = load_credentials(None, config, app_name="x")
    assert credentials.client == client
    assert credentials.source is CredentialSource.CONFIG


def test_a_key_without_markers_is_named_as_the_secret(
    client: CertificatePair, server: CertificatePair
) -> None:
    with pytest.raises(CredentialsInvalid) as caught:
        load_credentials(None, fallback(client, server, lxd_client_key="junk"), app_name="x")
    assert str(caught.value) == f"invalid lxd-client-key-secret: {NO_MARKERS}"


def test_a_key_block_that_is_no_key_is_refused_as_such(
    client: CertificatePair, server: CertificatePair
) -> None:
    """Not as a key that does not match: the operator has to fix the key itself."""
    with pytest.raises(CredentialsInvalid) as caught:
        load_credentials(None, fallback(client, server, lxd_client_key=NOT_A_KEY), app_name="x")
    assert str(caught.value) == (
        "invalid lxd-client-key-secret: the PRIVATE KEY block decodes but is not a valid "
        "private key (malformed DER)"
    )


def test_every_certificate_of_a_server_bundle_is_checked(
    client: CertificatePair, server: CertificatePair
) -> None:
    config = fallback(client, server, lxd_server_cert=server.certificate + NOT_A_CERT)
    with pytest.raises(CredentialsInvalid) as caught:
        load_credentials(None, config, app_name="x")
    assert str(caught.value) == (
        "invalid lxd-server-cert: the CERTIFICATE block decodes but is not a valid X.509 "
        "certificate (malformed DER)"
    )


def test_the_clouds_ca_certificates_are_joined_and_blank_ones_skipped(
    client: CertificatePair, server: CertificatePair, other: CertificatePair
) -> None:
    cloud = trusted(client, ca_certificates=(server.certificate, " \n", other.certificate))
    credentials = load_credentials(cloud, IntegratorConfig(), app_name="x")
    assert credentials.server_cert == server.certificate + other.certificate
    assert credentials.source is CredentialSource.TRUST


def test_an_unreadable_ca_certificate_of_the_cloud_is_named(client: CertificatePair) -> None:
    cloud = trusted(client, ca_certificates=("junk",))
    with pytest.raises(CredentialsInvalid) as caught:
        load_credentials(cloud, IntegratorConfig(), app_name="x")
    assert str(caught.value) == f"invalid server-cert of the trusted credential: {NO_MARKERS}"
