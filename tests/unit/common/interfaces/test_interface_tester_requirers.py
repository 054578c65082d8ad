"""The requirer sides of lxd-https and lxd, checked by pytest-interface-tester.

The interface tests and schemas are ``interfaces/<name>/v1/`` (the
charm-relation-interfaces layout); the charms under test are the two test
requirers of tests/integration/charms, which use the published package
``lxd_charms_interfaces`` alone, as a charm outside this repository would.
The provider sides run in tests/unit/charms/*/test_interface_tester.py,
beside each provider charm's fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from interface_tester.errors import InterfaceTestsFailed
from scenario import State

from tests.harness.interface_specs import configured_tester, load_test_charm, spec_repository

#: Run by `tox -e interfaces` (older ops; see constraints.txt), not `tox -e unit`.
pytestmark = pytest.mark.interface_tester

CERT = (
    Path(__file__).resolve().parents[4] / "lxd-charms-interfaces/tests/data/client.pem"
).read_text()


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> str:
    return spec_repository(tmp_path_factory.mktemp("interfaces"))


def test_https_requirer_follows_lxd_https_v1(specs: str) -> None:
    charm = load_test_charm("https-requirer").HttpsRequirerCharm
    config = State(config={"client-certificate": CERT, "projects": "ci"})
    configured_tester(specs, "lxd-https", charm, state_template=config).run()


def test_lxd_requirer_follows_lxd_v1(specs: str) -> None:
    charm = load_test_charm("lxd-requirer").LxdRequirerCharm
    config = State(config={"client-certificate": CERT})
    configured_tester(specs, "lxd", charm, state_template=config).run()


def test_a_requirer_without_a_certificate_fails_them(specs: str) -> None:
    """The tests can fail: with no certificate configured, no valid request is sent."""
    charm = load_test_charm("https-requirer").HttpsRequirerCharm
    with pytest.raises(InterfaceTestsFailed, match="interface tests completed with 2 errors"):
        configured_tester(specs, "lxd-https", charm).run()
