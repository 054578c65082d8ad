"""Decide where the integrator's LXD credentials come from: `juju trust` or config.

`juju trust` is the intended way: Juju then hands the charm the model's cloud
spec, which for an LXD cloud holds the API endpoint and a client certificate
and key. The `lxd-*` options are the fallback for when trust cannot be
granted. This module only decides which source is usable (it does not load
or check the certificates, nor connect); when neither is, it says what the
operator should do, because that message becomes the charm's blocked status.

Usage:
    cloud = TrustedCloud(cloud_type=spec.type, endpoint=spec.endpoint,
                         attributes=spec.credential.attributes)  # or None if untrusted
    try:
        source = credential_source(cloud, config, app_name="lxd-integrator")
    except CredentialsUnavailable as e:
        ...  # BlockedStatus(str(e))
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from lxd_integrator.config import FALLBACK_OPTIONS, IntegratorConfig

TRUSTED_CLOUD_TYPE = "lxd"
"""Cloud type whose `juju trust` credentials are for an LXD API."""

TRUSTED_REQUIRED_ATTRIBUTES: tuple[str, ...] = ("client-cert", "client-key")
"""Attributes of an LXD cloud credential (auth-type `certificate`) the charm needs."""


class CredentialSource(enum.Enum):
    """Where the LXD endpoint and client certificate come from."""

    TRUST = "juju trust"
    CONFIG = "charm config"


class CredentialsUnavailable(Exception):  # noqa: N818 - reads as a state, like ModelError
    """Neither `juju trust` nor the fallback config provides usable credentials.

    The message tells the operator what to do, in status-line length.
    """


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrustedCloud:
    """What `juju trust` handed the charm, reduced to the plain data used here.

    Attributes:
        cloud_type: Juju cloud type of the model, e.g. `lxd` or `ec2`.
        endpoint: the cloud's API endpoint, if it has one.
        attributes: the cloud credential's attributes (empty if no credential).
    """

    cloud_type: str
    endpoint: str | None
    attributes: Mapping[str, str]

    def is_usable_lxd(self) -> bool:
        """Whether these are credentials for an LXD API, complete enough to connect."""
        return (
            self.cloud_type == TRUSTED_CLOUD_TYPE
            and bool(self.endpoint)
            and all(self.attributes.get(name) for name in TRUSTED_REQUIRED_ATTRIBUTES)
        )


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
    raise CredentialsUnavailable(
        f"trusted lxd credential lacks endpoint or client certificate: "
        f"set {', '.join(FALLBACK_OPTIONS)}"
    )
