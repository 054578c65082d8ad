"""Unit tests of the lxd-integrator skeleton: where credentials come from, and its status."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from lxd_integrator.config import IntegratorConfig
from lxd_integrator.credentials import (
    CredentialSource,
    CredentialsUnavailable,
    TrustedCloud,
    credential_source,
)

CLIENT_CERT = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
CLIENT_KEY = "-----BEGIN EC PRIVATE KEY-----\nkey\n-----END EC PRIVATE KEY-----\n"
SERVER_CERT = "-----BEGIN CERTIFICATE-----\nserver\n-----END CERTIFICATE-----\n"

FALLBACK_CONFIG = {
    "lxd-endpoint": "https://10.0.0.1:8443",
    "lxd-client-cert": CLIENT_CERT,
    "lxd-client-key": CLIENT_KEY,
    "lxd-server-cert": SERVER_CERT,
}
ALL_OPTIONS = "lxd-endpoint, lxd-client-cert, lxd-client-key, lxd-server-cert"


def lxd_cloud_spec(**attributes: str) -> testing.CloudSpec:
    """An LXD cloud spec as `juju trust` hands it over, with a certificate credential."""
    return testing.CloudSpec(
        type="lxd",
        endpoint="https://10.0.0.1:8443",
        credential=testing.CloudCredential(
            auth_type="certificate",
            attributes=attributes
            or {"client-cert": CLIENT_CERT, "client-key": CLIENT_KEY, "server-cert": SERVER_CERT},
        ),
    )


@pytest.fixture
def charm_type(load_charm: Callable[[str], ModuleType]) -> Any:
    return load_charm("lxd-integrator").LxdIntegratorCharm


@pytest.fixture
def ctx(charm_type: Any) -> testing.Context[Any]:
    """An integrator the operator has not granted `juju trust`."""
    return testing.Context(charm_type)


@pytest.fixture
def trusted_ctx(charm_type: Any) -> testing.Context[Any]:
    """An integrator after `juju trust lxd-integrator`."""
    return testing.Context(charm_type, app_trusted=True)


def test_metadata_comes_from_charmcraft_yaml(ctx: testing.Context[Any]) -> None:
    with ctx(ctx.on.update_status(), testing.State()) as mgr:
        assert mgr.charm.meta.name == "lxd-integrator"
        assert mgr.charm.meta.provides["api"].interface_name == "lxd"
        assert mgr.charm.config["lxd-endpoint"] == ""


def test_untrusted_without_fallback_asks_for_trust(ctx: testing.Context[Any]) -> None:
    state = ctx.run(ctx.on.install(), testing.State())
    assert state.unit_status == testing.BlockedStatus(
        "grant access with: juju trust lxd-integrator"
    )


def test_trust_hint_uses_the_application_name(charm_type: Any) -> None:
    ctx = testing.Context(charm_type, app_name="lxd-cloud")
    state = ctx.run(ctx.on.update_status(), testing.State())
    assert state.unit_status == testing.BlockedStatus("grant access with: juju trust lxd-cloud")


def test_trusted_lxd_cloud_has_credentials(trusted_ctx: testing.Context[Any]) -> None:
    state_in = testing.State(model=testing.Model(type="lxd", cloud_spec=lxd_cloud_spec()))
    state = trusted_ctx.run(trusted_ctx.on.config_changed(), state_in)
    assert state.unit_status == testing.ActiveStatus("credentials available")


def test_trusted_lxd_cloud_wins_over_partial_config(trusted_ctx: testing.Context[Any]) -> None:
    state_in = testing.State(
        config={"lxd-endpoint": "https://192.0.2.9:8443"},
        model=testing.Model(type="lxd", cloud_spec=lxd_cloud_spec()),
    )
    state = trusted_ctx.run(trusted_ctx.on.config_changed(), state_in)
    assert state.unit_status == testing.ActiveStatus("credentials available")


def test_untrusted_with_fallback_config_has_credentials(ctx: testing.Context[Any]) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State(config=FALLBACK_CONFIG))
    assert state.unit_status == testing.ActiveStatus("credentials available")


@pytest.mark.parametrize("unset", list(FALLBACK_CONFIG))
def test_partial_fallback_config_names_what_is_missing(
    ctx: testing.Context[Any], unset: str
) -> None:
    config = {**FALLBACK_CONFIG, unset: ""}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == testing.BlockedStatus(f"incomplete fallback config: set {unset}")


def test_whitespace_only_option_counts_as_unset(ctx: testing.Context[Any]) -> None:
    config = {**FALLBACK_CONFIG, "lxd-client-key": "  \n"}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == testing.BlockedStatus(
        "incomplete fallback config: set lxd-client-key"
    )


def test_trusted_non_lxd_cloud_needs_fallback(trusted_ctx: testing.Context[Any]) -> None:
    state_in = testing.State(
        model=testing.Model(
            cloud_spec=testing.CloudSpec(
                type="ec2",
                credential=testing.CloudCredential(auth_type="access-key"),
            )
        )
    )
    state = trusted_ctx.run(trusted_ctx.on.update_status(), state_in)
    assert state.unit_status == testing.BlockedStatus(
        f"model cloud is 'ec2', not lxd: set {ALL_OPTIONS}"
    )


def test_trusted_non_lxd_cloud_with_fallback_config(trusted_ctx: testing.Context[Any]) -> None:
    state_in = testing.State(
        config=FALLBACK_CONFIG,
        model=testing.Model(cloud_spec=testing.CloudSpec(type="ec2")),
    )
    state = trusted_ctx.run(trusted_ctx.on.update_status(), state_in)
    assert state.unit_status == testing.ActiveStatus("credentials available")


def test_trusted_lxd_credential_without_client_key(trusted_ctx: testing.Context[Any]) -> None:
    spec = lxd_cloud_spec(**{"client-cert": CLIENT_CERT})
    state = trusted_ctx.run(
        trusted_ctx.on.update_status(), testing.State(model=testing.Model(cloud_spec=spec))
    )
    assert state.unit_status == testing.BlockedStatus(
        f"trusted lxd credential lacks endpoint or client certificate: set {ALL_OPTIONS}"
    )


@pytest.mark.parametrize("event", ["install", "config_changed", "update_status"])
def test_lifecycle_hooks_run_untrusted_and_trusted(
    ctx: testing.Context[Any], trusted_ctx: testing.Context[Any], event: str
) -> None:
    untrusted = ctx.run(getattr(ctx.on, event)(), testing.State())
    assert isinstance(untrusted.unit_status, testing.BlockedStatus)
    state_in = testing.State(model=testing.Model(cloud_spec=lxd_cloud_spec()))
    trusted = trusted_ctx.run(getattr(trusted_ctx.on, event)(), state_in)
    assert trusted.unit_status == testing.ActiveStatus("credentials available")


def test_credential_source_prefers_trust() -> None:
    cloud = TrustedCloud(
        cloud_type="lxd",
        endpoint="https://10.0.0.1:8443",
        attributes={"client-cert": CLIENT_CERT, "client-key": CLIENT_KEY},
    )
    config = IntegratorConfig(
        lxd_endpoint="https://192.0.2.1:8443",
        lxd_client_cert=CLIENT_CERT,
        lxd_client_key=CLIENT_KEY,
        lxd_server_cert=SERVER_CERT,
    )
    assert credential_source(cloud, config, app_name="x") is CredentialSource.TRUST
    assert credential_source(None, config, app_name="x") is CredentialSource.CONFIG


def test_credential_source_without_anything() -> None:
    with pytest.raises(CredentialsUnavailable, match="juju trust my-app"):
        credential_source(None, IntegratorConfig(), app_name="my-app")
