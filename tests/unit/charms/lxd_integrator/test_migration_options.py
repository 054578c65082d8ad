"""Switching from Canonical's `lxd-integrator`: its underscored option names.

Canonical's integrator names its options `lxd_endpoint`, `lxd_client_cert`,
`lxd_client_key` and `lxd_server_cert` (test data below, from its
config.yaml). ops.testing refuses option names the charm does not declare,
as Juju does, so a bundle written for it deploys here only because ours
declares them too; they are deprecated, and our dashed names win.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ops import testing

from lxd_common.certs import CertificatePair
from scripts.packing.projects import REPO

CANONICAL_OPTIONS = ("lxd_endpoint", "lxd_client_cert", "lxd_client_key", "lxd_server_cert")
APP = "lxd-integrator"
ACTIVE = testing.ActiveStatus("LXD lxd0 at https://10.0.0.1:8443")
OURS: dict[str, Any] = yaml.safe_load(
    (REPO / "charms/lxd-integrator/charmcraft.yaml").read_text()
)["config"]["options"]


def canonical_bundle(credential: CertificatePair, server_cert: str) -> dict[str, Any]:
    """A bundle written for Canonical's integrator (its option names, its values)."""
    text = yaml.safe_dump(
        {
            "applications": {
                APP: {
                    "charm": "lxd-integrator",
                    "num_units": 1,
                    "options": {
                        "lxd_endpoint": "https://10.0.0.1:8443",
                        "lxd_client_cert": credential.certificate,
                        "lxd_client_key": credential.private_key,
                        "lxd_server_cert": server_cert,
                    },
                }
            }
        }
    )
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@pytest.fixture
def ctx(charm_type: Any) -> testing.Context[Any]:
    return testing.Context(charm_type, app_name=APP)


@pytest.mark.parametrize("name", CANONICAL_OPTIONS)
def test_every_canonical_option_is_declared_with_its_type(name: str) -> None:
    assert OURS[name]["type"] == "string"
    assert OURS[name]["default"] == ""


def test_a_bundle_for_canonicals_integrator_connects_and_warns(
    ctx: testing.Context[Any], lxd: Any, credential: CertificatePair, server_cert: str
) -> None:
    options = canonical_bundle(credential, server_cert)["applications"][APP]["options"]
    state = ctx.run(ctx.on.config_changed(), testing.State(config=options))
    assert state.unit_status == ACTIVE
    assert lxd.connections[0]["server_cert"] == server_cert
    deprecated = [log.message for log in ctx.juju_log if "is deprecated: set" in log.message]
    assert sorted(deprecated) == sorted(
        f"option {old} is deprecated: set {old.replace('_', '-')} instead"
        for old in CANONICAL_OPTIONS
    )


def test_a_dashed_option_wins_over_its_underscored_twin(
    ctx: testing.Context[Any], lxd: Any, credential: CertificatePair, server_cert: str
) -> None:
    options = canonical_bundle(credential, server_cert)["applications"][APP]["options"]
    config = {**options, "lxd_endpoint": "https://192.0.2.9:8443"}
    config["lxd-endpoint"] = "https://10.0.0.1:8443"
    state = ctx.run(ctx.on.config_changed(), testing.State(config=config))
    assert state.unit_status == ACTIVE
    assert any(
        "lxd-endpoint and deprecated lxd_endpoint both set" in log.message for log in ctx.juju_log
    )


def test_an_undeclared_option_is_refused_as_juju_refuses_it(ctx: testing.Context[Any]) -> None:
    with pytest.raises(Exception, match="lxd_bogus"):
        ctx.run(ctx.on.config_changed(), testing.State(config={"lxd_bogus": "x"}))
