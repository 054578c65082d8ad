"""The lxd-integrator charm's configuration as a typed object.

The charm loads it with `self.load_config(IntegratorConfig)`, which passes each
Juju option as a keyword argument (dashes turned into underscores).

All options are a fallback for `juju trust`, so an empty or half-filled
configuration is not an error by itself: whether it matters depends on
whether trusted credentials exist, which `lxd_integrator.credentials` decides.
"""

from __future__ import annotations

import dataclasses

FALLBACK_OPTIONS: tuple[str, ...] = (
    "lxd-endpoint",
    "lxd-client-cert",
    "lxd-client-key",
    "lxd-server-cert",
)
"""Juju option names that together make a usable fallback, in the order shown to operators."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class IntegratorConfig:
    """The fallback LXD connection details an operator can set.

    Attributes:
        lxd_endpoint: HTTPS address of the LXD API, with scheme and port.
        lxd_client_cert: PEM client certificate trusted by that LXD.
        lxd_client_key: PEM private key of `lxd_client_cert`.
        lxd_server_cert: PEM certificate of the LXD server, to verify it.
    """

    lxd_endpoint: str = ""
    lxd_client_cert: str = ""
    lxd_client_key: str = ""
    lxd_server_cert: str = ""

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
