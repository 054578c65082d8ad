"""InterfaceError: one class, the published package's, re-exported by lxd_common.

The interfaces' code is the package lxd_charms_interfaces (``ops`` its only
dependency), so it cannot derive from ``LxdCommonError``: lxd_common's
``InterfaceError`` is that package's class, a ``ValueError``. These tests pin
that there is one class (so a charm catching it by either name catches what
both raise), and that the provider's ``RequirerData`` is the stricter one.
"""

from __future__ import annotations

import base64
import re

import pytest

import lxd_charms_interfaces
from lxd_charms_interfaces import lxd as package_lxd
from lxd_common import certs, errors
from lxd_common.interfaces import lxd, lxd_https


def test_one_interface_error_everywhere() -> None:
    assert lxd.InterfaceError is errors.InterfaceError
    assert lxd_https.InterfaceError is errors.InterfaceError
    assert errors.InterfaceError is lxd_charms_interfaces.InterfaceError
    assert issubclass(errors.InterfaceError, ValueError)
    assert not issubclass(errors.InterfaceError, errors.LxdCommonError)
    with pytest.raises(errors.InterfaceError, match="unsupported lxd-https version"):
        lxd_https.ClientRequest.from_databag({"version": "2.0", "certificate": "x"})


def test_lxd_common_reexports_the_package_not_a_copy() -> None:
    for name in lxd_https.__all__:
        assert getattr(lxd_https, name) is getattr(lxd_charms_interfaces.lxd_https, name), name
    for name in set(lxd.__all__) - {"RequirerData"}:
        assert getattr(lxd, name) is getattr(package_lxd, name), name
    assert issubclass(lxd.RequirerData, package_lxd.RequirerData)


def _valid_der_that_is_not_x509() -> str:
    """A PEM CERTIFICATE block whose DER is well-formed but is no certificate."""
    der = bytes([0x30, 0x03, 0x02, 0x01, 0x05])  # SEQUENCE { INTEGER 5 }
    body = base64.b64encode(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def test_the_provider_parses_certificates_as_x509_and_the_package_does_not() -> None:
    pem = _valid_der_that_is_not_x509()
    (accepted,) = package_lxd.RequirerData.from_pems([pem]).client_certificates
    assert re.fullmatch("[0-9a-f]{64}", accepted.fingerprint)
    with pytest.raises(errors.InterfaceError, match=r"certificate 1 of 1: .*malformed DER"):
        lxd.RequirerData.from_pems([pem])


def test_both_checks_give_lxds_fingerprint() -> None:
    pair = certs.generate_client_certificate("both")
    ours = lxd.RequirerData.from_pems([pair.certificate]).fingerprints
    theirs = package_lxd.RequirerData.from_pems([pair.certificate]).fingerprints
    assert ours == theirs == {certs.fingerprint(pair.certificate)}
