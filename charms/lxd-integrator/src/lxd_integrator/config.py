"""The lxd-integrator charm's configuration as a typed object.

The charm loads it with `self.load_config(IntegratorConfig)`, which passes each
Juju option as a keyword argument (dashes turned into underscores).

All options are a fallback for `juju trust`, so an empty or half-filled
configuration is not an error by itself: whether it matters depends on
whether trusted credentials exist, which `lxd_integrator.credentials` decides.

The client key is a private key, so it comes from a Juju user secret
(`lxd-client-key-secret`, a `type: secret` option; ops hands the charm the
secret object, whose content the charm reads into `lxd_client_key` with
`with_client_key`). The plain `lxd-client-key` option is kept for
deployments that set it before the secret option existed; it is deprecated
and used only while `lxd-client-key-secret` is unset.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from lxd_common import projects

logger = logging.getLogger(__name__)

UNDERSCORED_OPTIONS: dict[str, str] = {
    "lxd_endpoint": "lxd-endpoint",
    "lxd_client_cert": "lxd-client-cert",
    "lxd_client_key": "lxd-client-key",
    "lxd_server_cert": "lxd-server-cert",
}
"""The other integrator's option names (deprecated here) -> ours.

Both spellings map to the same dataclass field in `load_config` (dashes
become underscores), so whichever Juju lists last would win; `resolve_spellings`
decides instead, from the raw options.
"""

#: The field of the user secret that holds the PEM key.
CLIENT_KEY_FIELD = "client-key"
KEY_SECRET_OPTION = "lxd-client-key-secret"  # noqa: S105 - an option name, not a secret
DEPRECATED_KEY_OPTION = "lxd-client-key"

FALLBACK_OPTIONS: tuple[str, ...] = (
    "lxd-endpoint",
    "lxd-client-cert",
    KEY_SECRET_OPTION,
    "lxd-server-cert",
)
"""Juju option names that together make a usable fallback, in the order shown to operators."""


class SecretLike(Protocol):
    """What the charm needs of the `ops.Secret` a `type: secret` option names."""

    @property
    def id(self) -> str | None:
        """The secret's ID (`secret:...`)."""
        ...

    def get_content(self, *, refresh: bool = False) -> dict[str, str]:
        """The secret's fields; `refresh` asks for the latest revision."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class IntegratorConfig:
    """The fallback LXD connection details an operator can set.

    Attributes:
        lxd_endpoint: HTTPS address of the LXD API, with scheme and port.
        lxd_client_cert: PEM client certificate trusted by that LXD.
        lxd_client_key: PEM private key of `lxd_client_cert`: from the
            secret once `with_client_key` read it, else the deprecated
            plain option.
        lxd_client_key_secret: the user secret holding the key, if set.
        lxd_server_cert: PEM certificate of the LXD server, to verify it.
        allowed_projects: the projects registered certificates are
            restricted to (the operator's ceiling; empty: unrestricted).
    """

    lxd_endpoint: str = ""
    lxd_client_cert: str = ""
    lxd_client_key: str = ""
    lxd_client_key_secret: SecretLike | None = None
    lxd_server_cert: str = ""
    allowed_projects: str = ""

    def __post_init__(self) -> None:
        """Refuse a project ceiling LXD could not take, saying what to fix.

        Raises:
            ValueError: ``allowed-projects`` names something that is not a project name.
        """
        _, bad = projects.split(self.allowed_projects)
        if bad:
            raise ValueError(
                f"invalid allowed-projects: {bad[0]!r} is not a project name "
                f"({projects.RULES}); give comma-separated names, e.g. ci,staging"
            )

    def project_ceiling(self) -> tuple[str, ...] | None:
        """The projects registered certificates are restricted to; None: unrestricted."""
        names, _ = projects.split(self.allowed_projects)
        return tuple(sorted(names)) if names else None

    def with_client_key(self, key: str) -> IntegratorConfig:
        """This configuration with the key read from `lxd_client_key_secret`."""
        return dataclasses.replace(self, lxd_client_key=key)

    def uses_deprecated_key(self) -> bool:
        """True when the key comes from the plain `lxd-client-key` option."""
        return self.lxd_client_key_secret is None and bool(self.lxd_client_key.strip())

    def missing_fallback_options(self) -> list[str]:
        """Names of the fallback options still empty, as the operator sets them.

        Whitespace-only values count as empty: a pasted blank line is not a
        certificate.
        """
        values = (
            self.lxd_endpoint,
            self.lxd_client_cert,
            self.lxd_client_key,
            self.lxd_server_cert,
        )
        return [
            name for name, value in zip(FALLBACK_OPTIONS, values, strict=True) if not value.strip()
        ]


def resolve_spellings(config: IntegratorConfig, options: Mapping[str, Any]) -> IntegratorConfig:
    """`config` with each fallback field from our spelling, else the deprecated one.

    Args:
        config: what `load_config` built (a field may hold either spelling's value).
        options: the charm's raw options (`self.config`).

    Returns:
        The configuration with a set dashed option winning over its underscored
        twin; an underscored option used instead is logged as deprecated.
    """
    changes: dict[str, str] = {}
    for old, new in UNDERSCORED_OPTIONS.items():
        ours = str(options.get(new) or "")
        theirs = str(options.get(old) or "")
        if ours.strip() or not theirs.strip():
            changes[old] = ours
            if ours.strip() and theirs.strip() and ours != theirs:
                logger.warning("%s and deprecated %s both set: using %s", new, old, new)
            continue
        logger.warning("option %s is deprecated: set %s instead", old, new)
        changes[old] = theirs
    return dataclasses.replace(
        config,
        lxd_endpoint=changes["lxd_endpoint"],
        lxd_client_cert=changes["lxd_client_cert"],
        lxd_client_key=changes["lxd_client_key"],
        lxd_server_cert=changes["lxd_server_cert"],
    )
