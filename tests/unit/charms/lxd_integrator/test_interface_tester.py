"""The integrator's `api` endpoint against lxd v1's interface tests.

pytest-interface-tester runs ``interfaces/lxd/v1/interface_tests/
test_provider.py`` on the charm, trusted (as after `juju trust`) and talking
to the fake LXD of conftest.py, and validates what it writes against
``schema.py``'s `ProviderSchema`.

The tester builds its own ``scenario.Context`` and (in 3.4.1) cannot be told
that the application is trusted, which this charm needs before it can read
its credentials; the `trusted_contexts` fixture hands the tester's module a
`Context` that says so. Only that module-level name is replaced, for the
duration of one test.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import interface_tester.interface_test
import pytest
from ops import testing

from lxd_charms_interfaces._pem import certificate_fingerprint
from tests.harness.interface_specs import configured_tester, spec_repository
from tests.unit.charms.lxd_integrator.conftest import FakeLxdServer

#: Run by `tox -e interfaces` (older ops; see constraints.txt), not `tox -e unit`.
pytestmark = pytest.mark.interface_tester

CERT = Path(__file__).resolve().parents[4] / "lxd-charms-interfaces/tests/data/client.pem"
MODEL_UUID = "5a1f03c2-8d3e-4b7a-9c1d-2e3f4a5b6c7d"


@pytest.fixture
def trusted_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    trusted = functools.partial(testing.Context, app_name="lxd-integrator", app_trusted=True)
    monkeypatch.setattr(interface_tester.interface_test, "Context", trusted)


@pytest.mark.usefixtures("trusted_contexts")
def test_the_api_endpoint_follows_lxd_v1(
    charm_type: Any,
    lxd: FakeLxdServer,
    cloud_spec: Callable[..., testing.CloudSpec],
    tmp_path: Path,
) -> None:
    state = testing.State(
        leader=True, model=testing.Model(type="lxd", uuid=MODEL_UUID, cloud_spec=cloud_spec())
    )
    configured_tester(spec_repository(tmp_path), "lxd", charm_type, state_template=state).run()
    # The spec's tests send this certificate; the provider registered it in LXD.
    assert certificate_fingerprint(CERT.read_text()) in lxd.trust.by_fingerprint
