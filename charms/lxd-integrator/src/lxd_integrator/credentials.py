"""The integrator's LXD credentials: from `juju trust`, else from config, checked before use.

`juju trust` is the intended way: Juju then hands the charm the model's cloud
spec, which for an LXD cloud holds the API endpoint and a `certificate`
credential (`client-cert`, `client-key`, `server-cert`). The `lxd-*` options
are the fallback for when trust cannot be granted. This module picks the
source (`credential_source`), then loads and checks what it holds
(`load_credentials`): the endpoint normalised the way Juju does it
(`EnsureHTTPS`, `EnsureHostPort`), the certificates parsed, the key matched
to the client certificate. Nothing here connects to LXD.

Usage:
    cloud = TrustedCloud(cloud_type=spec.type, endpoint=spec.endpoint,
                         attributes=spec.credential.attributes)  # or None if untrusted
    try:
        credentials = load_credentials(cloud, config, app_name="lxd-integrator")
    except CredentialsProblem as e:
        ...  # BlockedStatus(str(e))

Errors (both `CredentialsProblem`, each message fit for a status line and
never holding key or certificate text):
    CredentialsUnavailable: neither source is usable; says what to grant or set.
    CredentialsInvalid: the chosen source holds something unusable; names the field.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections.abc import Callable, Mapping, Sequence

from lxd_common.certs import (
    CertificatePair,
    check_key_matches,
    load_certificate,
    load_private_key,
    reshape_pem,
)
from lxd_common.endpoints import normalise_endpoint
from lxd_common.errors import CertificateError, EndpointError
from lxd_integrator.config import FALLBACK_OPTIONS, IntegratorConfig

TRUSTED_CLOUD_TYPE = "lxd"
"""Cloud type whose `juju trust` credentials are for an LXD API."""

TRUSTED_REQUIRED_ATTRIBUTES: tuple[str, ...] = ("client-cert", "client-key")
"""Attributes of an LXD cloud credential (auth-type `certificate`) the charm needs."""

# One block of the canonical PEM that `reshape_pem` returns.
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----\n.*?-----END [A-Z0-9 ]+-----\n", re.DOTALL)


class CredentialSource(enum.Enum):
    """Where the LXD endpoint and client certificate come from."""

    TRUST = "juju trust"
    CONFIG = "charm config"


class CredentialsProblem(Exception):  # noqa: N818 - reads as a state
    """The integrator has no usable LXD credentials; the message says what to do."""


class CredentialsUnavailable(CredentialsProblem):
    """Neither `juju trust` nor the fallback config provides credentials."""


class CredentialsInvalid(CredentialsProblem):
    """The chosen source provides credentials, but one of them is unusable."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrustedCloud:
    """What `juju trust` handed the charm, reduced to the plain data used here.

    Attributes:
        cloud_type: Juju cloud type of the model, e.g. `lxd` or `ec2`.
        auth_type: the credential's auth type (`certificate`, `interactive`...).
        endpoint: the cloud's API endpoint, if it has one.
        attributes: the cloud credential's attributes (empty if no credential).
        ca_certificates: CA certificates of the cloud, if Juju knows any.
    """

    cloud_type: str
    endpoint: str | None
    attributes: Mapping[str, str] = dataclasses.field(repr=False)
    ca_certificates: Sequence[str] = dataclasses.field(default=(), repr=False)
    auth_type: str = "certificate"

    def is_usable_lxd(self) -> bool:
        """Whether these are credentials for an LXD API, complete enough to connect."""
        return (
            self.cloud_type == TRUSTED_CLOUD_TYPE
            and bool(self.endpoint)
            and all(self.attributes.get(name) for name in TRUSTED_REQUIRED_ATTRIBUTES)
        )


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Checked credentials for one LXD endpoint.

    Attributes:
        endpoint: `https://host:port`.
        client: the client certificate and its key (the key is kept out of the repr).
        server_cert: PEM certificate(s) to verify the server with, or None to
            use the system's CAs.
        source: where they came from, for messages.
    """

    endpoint: str
    client: CertificatePair
    server_cert: str | None = dataclasses.field(repr=False)
    source: CredentialSource

    def field_name(self, attribute: str) -> str:
        """How the operator knows the credential field `attribute` (e.g. `client-cert`)."""
        return _field_name(self.source, attribute)


def _field_name(source: CredentialSource, attribute: str) -> str:
    if source is CredentialSource.CONFIG:
        # The key's option is the user secret; the plain `lxd-client-key` is
        # deprecated, so a problem with the key points at the secret.
        return "lxd-client-key-secret" if attribute == "client-key" else f"lxd-{attribute}"
    if attribute == "endpoint":
        return "endpoint of the trusted cloud"
    return f"{attribute} of the trusted credential"


def credential_source(
    cloud: TrustedCloud | None, config: IntegratorConfig, *, app_name: str
) -> CredentialSource:
    """Pick the source of LXD credentials: trusted cloud credentials first, then config.

    Args:
        cloud: the cloud spec from `juju trust`, or None if the charm is not trusted.
        config: the charm's fallback options.
        app_name: the application's name, for the `juju trust` hint.

    Returns:
        The source to take the LXD endpoint and certificates from.

    Raises:
        CredentialsUnavailable: neither source is usable; the message says why
            and what to set or run.
    """
    if cloud is not None and cloud.is_usable_lxd():
        return CredentialSource.TRUST
    missing = config.missing_fallback_options()
    if not missing:
        return CredentialSource.CONFIG
    if len(missing) < len(FALLBACK_OPTIONS):
        # The operator started on the fallback: finishing it is the fix.
        raise CredentialsUnavailable(f"incomplete fallback config: set {', '.join(missing)}")
    if cloud is None:
        raise CredentialsUnavailable(f"grant access with: juju trust {app_name}")
    if cloud.cloud_type != TRUSTED_CLOUD_TYPE:
        raise CredentialsUnavailable(
            f"model cloud is {cloud.cloud_type!r}, not lxd: set {', '.join(FALLBACK_OPTIONS)}"
        )
    if cloud.auth_type != "certificate" and not cloud.attributes.get("client-cert"):
        # An `interactive` credential carries a trust password, which only buys a
        # certificate when the credential is added: the charm has nothing to connect with.
        raise CredentialsUnavailable(
            f"the trusted lxd credential is a trust-password ({cloud.auth_type}) credential, "
            "which the charm cannot use: give the model a certificate credential "
            "(juju add-credential with auth-type certificate, then juju set-credential), "
            f"or set {', '.join(FALLBACK_OPTIONS)}"
        )
    raise CredentialsUnavailable(
        f"trusted lxd credential lacks endpoint or client certificate: "
        f"set {', '.join(FALLBACK_OPTIONS)}"
    )


def load_credentials(
    cloud: TrustedCloud | None, config: IntegratorConfig, *, app_name: str
) -> Credentials:
    """Pick the source (see `credential_source`) and check everything it holds.

    PEM text is reshaped first (config values pasted through a shell lose
    their newlines), then each part must load: exactly one client
    certificate, an unencrypted key that belongs to it, and a server
    certificate (from `server-cert`, else the cloud's CA certificates; with
    neither, the system's CAs verify the server).

    Raises:
        CredentialsUnavailable: neither source is usable.
        CredentialsInvalid: a field of the chosen source is unusable; the
            message names it and says what is wrong with it.
    """
    source = credential_source(cloud, config, app_name=app_name)
    if source is CredentialSource.TRUST and cloud is not None:
        endpoint = cloud.endpoint or ""
        cert = cloud.attributes.get("client-cert", "")
        key = cloud.attributes.get("client-key", "")
        server = cloud.attributes.get("server-cert", "") or "".join(
            _reshaped(source, "server-cert", ca) for ca in cloud.ca_certificates if ca.strip()
        )
    else:
        endpoint = config.lxd_endpoint
        cert, key, server = config.lxd_client_cert, config.lxd_client_key, config.lxd_server_cert

    try:
        url = normalise_endpoint(endpoint.strip())
    except EndpointError as e:
        raise CredentialsInvalid(f"invalid {_field_name(source, 'endpoint')}: {e}") from None
    cert = _reshaped(source, "client-cert", cert)
    key = _reshaped(source, "client-key", key)
    _check(source, "client-cert", lambda: load_certificate(cert))
    _check(source, "client-key", lambda: load_private_key(key))
    try:
        check_key_matches(cert, key)
    except CertificateError:
        raise CredentialsInvalid(
            f"{_field_name(source, 'client-key')} does not match "
            f"{_field_name(source, 'client-cert')}"
        ) from None
    server_cert: str | None = None
    if server.strip():
        server_cert = _reshaped(source, "server-cert", server)
        for block in _PEM_BLOCK.findall(server_cert):  # a CA bundle is several
            _check(source, "server-cert", functools.partial(load_certificate, block))
    return Credentials(url, CertificatePair(cert, key), server_cert, source)


def _reshaped(source: CredentialSource, attribute: str, pem: str) -> str:
    try:
        return reshape_pem(pem)
    except CertificateError as e:
        raise CredentialsInvalid(f"invalid {_field_name(source, attribute)}: {e}") from None


def _check(source: CredentialSource, attribute: str, load: Callable[[], object]) -> None:
    try:
        load()
    except CertificateError as e:
        raise CredentialsInvalid(f"invalid {_field_name(source, attribute)}: {e}") from None
