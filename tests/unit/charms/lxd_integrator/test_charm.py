"""Unit tests of the lxd-integrator's credentials and status, with ops.testing and a fake LXD."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ops import testing

from lxd_common.certs import CertificatePair, generate_client_certificate

ALL_OPTIONS = "lxd-endpoint, lxd-client-cert, lxd-client-key-secret, lxd-server-cert"
#: The application's name in the bundles (the charm is lxd-cloud-integrator).
APP = "lxd-integrator"
ACTIVE = testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")


@pytest.fixture
def ctx(charm_type: Any) -> testing.Context[Any]:
    """An integrator the operator has not granted `juju trust`."""
    return testing.Context(charm_type, app_name=APP)


@pytest.fixture
def trusted_ctx(charm_type: Any) -> testing.Context[Any]:
    """An integrator after `juju trust lxd-integrator`."""
    return testing.Context(charm_type, app_name=APP, app_trusted=True)


@pytest.fixture
def fallback_config(credential: CertificatePair, server_cert: str) -> dict[str, str]:
    return {
        "lxd-endpoint": "https://10.0.0.1:8443",
        "lxd-client-cert": credential.certificate,
        "lxd-client-key": credential.private_key,
        "lxd-server-cert": server_cert,
    }


def trusted_state(spec: testing.CloudSpec, **kwargs: Any) -> testing.State:
    return testing.State(model=testing.Model(type="lxd", cloud_spec=spec), **kwargs)


def test_metadata_comes_from_charmcraft_yaml(ctx: testing.Context[Any]) -> None:
    with ctx(ctx.on.update_status(), testing.State()) as mgr:
        assert mgr.charm.meta.name == "lxd-cloud-integrator"
        assert mgr.charm.meta.provides["api"].interface_name == "lxd"
        assert mgr.charm.config["lxd-endpoint"] == ""


# --- where the credentials come from ---------------------------------------------


def test_untrusted_without_fallback_asks_for_trust(ctx: testing.Context[Any], lxd: Any) -> None:
    state = ctx.run(ctx.on.install(), testing.State())
    assert state.unit_status == testing.BlockedStatus(
        "grant access with: juju trust lxd-integrator"
    )
    assert lxd.connections == []


def test_trust_hint_uses_the_application_name(charm_type: Any) -> None:
    ctx = testing.Context(charm_type, app_name="lxd-cloud")
    state = ctx.run(ctx.on.update_status(), testing.State())
    assert state.unit_status == testing.BlockedStatus("grant access with: juju trust lxd-cloud")


def test_trusted_lxd_cloud_connects_with_the_credential(
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    credential: CertificatePair,
    server_cert: str,
) -> None:
    state = trusted_ctx.run(trusted_ctx.on.config_changed(), trusted_state(cloud_spec()))
    assert state.unit_status == ACTIVE
    (connection,) = lxd.connections
    assert connection["endpoint"] == "https://10.0.0.1:8443"
    assert connection["client"] == credential
    assert connection["server_cert"] == server_cert
    assert all(client.closed for client in lxd.clients), "the key's temp dir is removed"


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("10.0.0.1", "https://10.0.0.1:8443"),
        ("http://10.0.0.1", "https://10.0.0.1:8443"),
        ("10.0.0.1:9443", "https://10.0.0.1:9443"),
        ("https://LXD.example.com/", "https://lxd.example.com:8443"),
        ("[2001:db8::1]", "https://[2001:db8::1]:8443"),
    ],
)
def test_endpoint_is_normalised_like_juju(
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    given: str,
    normalised: str,
) -> None:
    state = trusted_ctx.run(trusted_ctx.on.config_changed(), trusted_state(cloud_spec(given)))
    assert lxd.connections[0]["endpoint"] == normalised
    assert state.unit_status == testing.ActiveStatus(f"LXD lxd0 at {normalised}")


def test_trusted_lxd_cloud_wins_over_partial_config(
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
) -> None:
    state_in = trusted_state(cloud_spec(), config={"lxd-endpoint": "https://192.0.2.9:8443"})
    state = trusted_ctx.run(trusted_ctx.on.config_changed(), state_in)
    assert state.unit_status == ACTIVE
    assert lxd.connections[0]["endpoint"] == "https://10.0.0.1:8443"


def test_untrusted_with_fallback_config_connects(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State(config=fallback_config))
    assert state.unit_status == ACTIVE
    assert lxd.connections[0]["server_cert"] == fallback_config["lxd-server-cert"]


def test_fallback_pem_mangled_by_a_shell_is_repaired(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    config = {
        **fallback_config,
        "lxd-client-cert": fallback_config["lxd-client-cert"].replace("\n", " "),
    }
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == ACTIVE


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("lxd-endpoint", "lxd-endpoint"),
        ("lxd-client-cert", "lxd-client-cert"),
        # without the deprecated plain key, the secret option is what to set
        ("lxd-client-key", "lxd-client-key-secret"),
        ("lxd-server-cert", "lxd-server-cert"),
    ],
)
def test_partial_fallback_config_names_what_is_missing(
    ctx: testing.Context[Any], fallback_config: dict[str, str], unset: str, named: str
) -> None:
    config = {**fallback_config, unset: ""}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == testing.BlockedStatus(f"incomplete fallback config: set {named}")


# --- the client key from a Juju user secret ----------------------------------------


def _key_secret(pem: str) -> testing.Secret:
    """A user secret (owned by the model) granted to the application."""
    return testing.Secret(tracked_content={"client-key": pem})


def _secret_config(fallback_config: dict[str, str], secret: testing.Secret) -> dict[str, str]:
    config = {k: v for k, v in fallback_config.items() if k != "lxd-client-key"}
    return {**config, "lxd-client-key-secret": secret.id}


def test_client_key_from_a_granted_user_secret(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    secret = _key_secret(fallback_config["lxd-client-key"])
    state_in = testing.State(config=_secret_config(fallback_config, secret), secrets={secret})
    state = ctx.run(ctx.on.config_changed(), state_in)
    assert state.unit_status == ACTIVE
    assert not [log for log in ctx.juju_log if "deprecated" in log.message]


def test_the_secret_wins_over_the_deprecated_plain_key(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    secret = _key_secret(fallback_config["lxd-client-key"])
    config = {
        **_secret_config(fallback_config, secret),
        "lxd-client-key": generate_client_certificate("stale").private_key,
    }
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config, secrets={secret}))
    assert state.unit_status == ACTIVE


def test_a_secret_not_granted_says_how_to_grant_it(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    secret = _key_secret(fallback_config["lxd-client-key"])
    # the secret exists in the model but was never granted: not in the charm's view
    state = ctx.run(
        ctx.on.config_changed(), testing.State(config=_secret_config(fallback_config, secret))
    )
    assert state.unit_status == testing.BlockedStatus(
        f"cannot read lxd-client-key-secret {secret.id}: juju grant-secret <secret> {APP}"
    )
    assert lxd.connections == []


def test_a_secret_without_the_client_key_field_is_refused(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    secret = testing.Secret(tracked_content={"key": fallback_config["lxd-client-key"]})
    state_in = testing.State(config=_secret_config(fallback_config, secret), secrets={secret})
    state = ctx.run(ctx.on.config_changed(), state_in)
    assert state.unit_status == testing.BlockedStatus(
        f"lxd-client-key-secret {secret.id} has no client-key field: "
        "juju update-secret <secret> client-key#file=key.pem"
    )


def test_a_new_secret_revision_is_read_on_secret_changed(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    wrong = generate_client_certificate("other").private_key
    secret = testing.Secret(
        tracked_content={"client-key": wrong},
        latest_content={"client-key": fallback_config["lxd-client-key"]},
    )
    state_in = testing.State(config=_secret_config(fallback_config, secret), secrets={secret})
    state = ctx.run(ctx.on.secret_changed(secret), state_in)
    assert state.unit_status == ACTIVE, "the latest revision holds the matching key"


def test_the_deprecated_plain_key_still_works_and_warns(
    ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    state = ctx.run(ctx.on.config_changed(), testing.State(config=fallback_config))
    assert state.unit_status == ACTIVE
    warnings = [log for log in ctx.juju_log if "lxd-client-key is deprecated" in log.message]
    assert len(warnings) == 1 and warnings[0].level == "WARNING"
    assert "lxd-client-key-secret" in warnings[0].message


def test_whitespace_only_option_counts_as_unset(
    ctx: testing.Context[Any], fallback_config: dict[str, str]
) -> None:
    config = {**fallback_config, "lxd-client-key": "  \n"}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == testing.BlockedStatus(
        "incomplete fallback config: set lxd-client-key-secret"
    )


def test_trusted_non_lxd_cloud_needs_fallback(trusted_ctx: testing.Context[Any]) -> None:
    state_in = testing.State(
        model=testing.Model(
            cloud_spec=testing.CloudSpec(
                type="ec2", credential=testing.CloudCredential(auth_type="access-key")
            )
        )
    )
    state = trusted_ctx.run(trusted_ctx.on.update_status(), state_in)
    assert state.unit_status == testing.BlockedStatus(
        f"model cloud is 'ec2', not lxd: set {ALL_OPTIONS}"
    )


def test_trusted_non_lxd_cloud_with_fallback_config(
    trusted_ctx: testing.Context[Any], lxd: Any, fallback_config: dict[str, str]
) -> None:
    state_in = testing.State(
        config=fallback_config, model=testing.Model(cloud_spec=testing.CloudSpec(type="ec2"))
    )
    state = trusted_ctx.run(trusted_ctx.on.update_status(), state_in)
    assert state.unit_status == ACTIVE


def test_trusted_lxd_credential_without_client_key(
    trusted_ctx: testing.Context[Any], cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    spec = cloud_spec(client_key="")
    state = trusted_ctx.run(trusted_ctx.on.update_status(), trusted_state(spec))
    assert state.unit_status == testing.BlockedStatus(
        f"trusted lxd credential lacks endpoint or client certificate: set {ALL_OPTIONS}"
    )


def test_trusted_lxd_trust_password_credential_says_what_to_do(
    trusted_ctx: testing.Context[Any],
) -> None:
    """Juju's `interactive` LXD credential holds only a trust password (no certificate)."""
    spec = testing.CloudSpec(
        type="lxd",
        endpoint="https://10.0.0.1:8443",
        credential=testing.CloudCredential(
            auth_type="interactive", attributes={"trust-password": "s3cret"}
        ),
    )
    state = trusted_ctx.run(trusted_ctx.on.update_status(), trusted_state(spec))
    assert state.unit_status == testing.BlockedStatus(
        "the trusted lxd credential is a trust-password (interactive) credential, which the "
        "charm cannot use: give the model a certificate credential (juju add-credential with "
        f"auth-type certificate, then juju set-credential), or set {ALL_OPTIONS}"
    )
    assert "s3cret" not in state.unit_status.message


def test_without_server_cert_the_cloud_cas_verify(
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    server_cert: str,
) -> None:
    spec = cloud_spec(server_cert="")
    spec = testing.CloudSpec(
        type=spec.type,
        name=spec.name,
        endpoint=spec.endpoint,
        credential=spec.credential,
        ca_certificates=[server_cert],
    )
    state = trusted_ctx.run(trusted_ctx.on.update_status(), trusted_state(spec))
    assert state.unit_status == ACTIVE
    assert lxd.connections[0]["server_cert"] == server_cert


def test_without_any_server_cert_the_system_cas_verify(
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
) -> None:
    state = trusted_ctx.run(
        trusted_ctx.on.update_status(), trusted_state(cloud_spec(server_cert=""))
    )
    assert state.unit_status == ACTIVE
    assert lxd.connections[0]["server_cert"] is None


# --- every error status ----------------------------------------------------------


def test_invalid_endpoint_is_named(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    state = trusted_ctx.run(
        trusted_ctx.on.config_changed(),
        trusted_state(cloud_spec("unix:///var/lib/lxd/unix.socket")),
    )
    assert state.unit_status == testing.BlockedStatus(
        "invalid endpoint of the trusted cloud: unsupported scheme 'unix' in "
        "'unix:///var/lib/lxd/unix.socket': LXD endpoints are https://"
    )
    assert lxd.connections == []


def test_invalid_config_endpoint_is_named(
    ctx: testing.Context[Any], fallback_config: dict[str, str]
) -> None:
    config = {**fallback_config, "lxd-endpoint": "https://10.0.0.1:8443/1.0"}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert state.unit_status.message.startswith("invalid lxd-endpoint: invalid endpoint")
    assert "path" in state.unit_status.message


def test_garbage_client_cert(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    state = trusted_ctx.run(
        trusted_ctx.on.config_changed(), trusted_state(cloud_spec(client_cert="hello"))
    )
    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert state.unit_status.message.startswith(
        "invalid client-cert of the trusted credential: no PEM markers found"
    )


def test_private_key_given_as_client_cert(
    ctx: testing.Context[Any], fallback_config: dict[str, str]
) -> None:
    config = {**fallback_config, "lxd-client-cert": fallback_config["lxd-client-key"]}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == testing.BlockedStatus(
        "invalid lxd-client-cert: this is a private key, not a certificate; give the "
        "certificate (-----BEGIN CERTIFICATE-----) instead"
    )
    assert fallback_config["lxd-client-key"].splitlines()[1] not in state.unit_status.message


def test_key_that_does_not_match_the_certificate(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    other = generate_client_certificate("other")
    state = trusted_ctx.run(
        trusted_ctx.on.config_changed(), trusted_state(cloud_spec(client_key=other.private_key))
    )
    assert state.unit_status == testing.BlockedStatus(
        "client-key of the trusted credential does not match client-cert of the trusted credential"
    )
    assert lxd.connections == []


def test_fallback_key_that_does_not_match(
    ctx: testing.Context[Any], fallback_config: dict[str, str]
) -> None:
    config = {**fallback_config, "lxd-client-key": generate_client_certificate("x").private_key}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == testing.BlockedStatus(
        "lxd-client-key-secret does not match lxd-client-cert"
    )


def test_server_cert_that_is_not_a_certificate(
    ctx: testing.Context[Any], fallback_config: dict[str, str]
) -> None:
    config = {**fallback_config, "lxd-server-cert": "-----BEGIN CERTIFICATE-----\nAAA"}
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert isinstance(state.unit_status, testing.BlockedStatus)
    assert state.unit_status.message.startswith("invalid lxd-server-cert: a PEM BEGIN marker")


def test_server_presenting_another_certificate(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    impostor = generate_client_certificate("impostor").certificate
    state = trusted_ctx.run(
        trusted_ctx.on.config_changed(), trusted_state(cloud_spec(server_cert=impostor))
    )
    assert state.unit_status == testing.BlockedStatus(
        "LXD at https://10.0.0.1:8443 presented a certificate that does not match "
        "server-cert of the trusted credential"
    )


def test_unreachable_endpoint(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    lxd.reachable = False
    state = trusted_ctx.run(trusted_ctx.on.update_status(), trusted_state(cloud_spec()))
    assert state.unit_status == testing.BlockedStatus(
        "cannot reach LXD at https://10.0.0.1:8443: connection refused"
    )


def test_client_certificate_not_trusted_by_lxd(
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    credential: CertificatePair,
) -> None:
    lxd.trust.by_fingerprint.clear()
    state = trusted_ctx.run(trusted_ctx.on.config_changed(), trusted_state(cloud_spec()))
    assert state.unit_status == testing.BlockedStatus(
        "LXD at https://10.0.0.1:8443 does not trust client-cert of the trusted credential: "
        "add it to LXD's trust store"
    )
    assert all(client.closed for client in lxd.clients)


def test_lxd_recovering_clears_the_status(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    lxd.reachable = False
    state = trusted_ctx.run(trusted_ctx.on.update_status(), trusted_state(cloud_spec()))
    assert isinstance(state.unit_status, testing.BlockedStatus)
    lxd.reachable = True
    state = trusted_ctx.run(trusted_ctx.on.update_status(), state)
    assert state.unit_status == ACTIVE


@pytest.mark.parametrize(
    "event", ["install", "config_changed", "update_status", "upgrade_charm", "leader_elected"]
)
def test_lifecycle_hooks_run_untrusted_and_trusted(
    ctx: testing.Context[Any],
    trusted_ctx: testing.Context[Any],
    lxd: Any,
    cloud_spec: Callable[..., testing.CloudSpec],
    event: str,
) -> None:
    untrusted = ctx.run(getattr(ctx.on, event)(), testing.State(leader=True))
    assert isinstance(untrusted.unit_status, testing.BlockedStatus)
    trusted = trusted_ctx.run(
        getattr(trusted_ctx.on, event)(), trusted_state(cloud_spec(), leader=True)
    )
    assert trusted.unit_status == ACTIVE


def test_remove_keeps_nothing_on_disk(
    trusted_ctx: testing.Context[Any], lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    state = trusted_ctx.run(trusted_ctx.on.remove(), trusted_state(cloud_spec()))
    assert lxd.connections == []  # nothing to undo: keys only live within a hook
    assert state.unit_status == testing.UnknownStatus()
