"""The LXD charm's `https` endpoint against lxd-https v1's interface tests.

pytest-interface-tester runs ``interfaces/lxd_https/v1/interface_tests/
test_provider.py`` on the charm, from a state where the charm has installed
LXD on the fake machine (the `host` fixture), and validates what it writes
against ``schema.py``'s `ProviderSchema`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ops import testing

from tests.harness.fake_host import FakeHost
from tests.harness.interface_specs import configured_tester, spec_repository

#: Run by `tox -e interfaces` (older ops; see constraints.txt), not `tox -e unit`.
pytestmark = pytest.mark.interface_tester

EMPTY = {testing.Resource(name=n, path=Path("/dev/null")) for n in ("lxd-binary", "lxd-snap")}
HTTPS_NET = testing.Network("https", [testing.BindAddress([testing.Address("10.0.0.5")])])


def installed(ctx: testing.Context[Any]) -> testing.State:
    """The charm after its install hook: LXD initialised, listening on HTTPS."""
    base = testing.State(
        config={"lxd-listen-https": True, "lxd-init-network": False},
        networks={HTTPS_NET},
        resources=EMPTY,
    )
    return ctx.run(ctx.on.install(), base)


def test_the_https_endpoint_follows_lxd_https_v1(
    ctx: testing.Context[Any], charm_module: ModuleType, host: FakeHost, tmp_path: Path
) -> None:
    state = installed(ctx)
    configured_tester(
        spec_repository(tmp_path), "lxd-https", charm_module.LxdCharm, state_template=state
    ).run()
    names = [e.name for e in host.fake_lxd.trust.entries()]
    assert "juju-relation-remote/0" in names, names
