"""The OVN decisions without Juju or LXD: addresses, TLS material, files, verdicts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lxd_charm import ovn
from lxd_common.certs import generate_client_certificate
from lxd_common.errors import CertificateError, EndpointError
from tests.harness.ovn import OvnCa

CA = OvnCa()
CERT, KEY = CA.issue("lxd-0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"10.0.0.7"', "10.0.0.7"),  # what ovn-central's reactive side publishes
        ("10.0.0.7", "10.0.0.7"),
        (" 10.0.0.7\n", "10.0.0.7"),
        ('"2001:db8::7"', "2001:db8::7"),
        ("[2001:DB8::7]", "2001:db8::7"),
        ('"[2001:db8::7]"', "2001:db8::7"),
    ],
)
def test_bound_address_forms(value: str, expected: str) -> None:
    assert ovn.parse_bound_address(value) == expected


@pytest.mark.parametrize("value", ["", '""', "ovn-central-0", "10.0.0.300", '["10.0.0.1"]', "{"])
def test_unparseable_bound_addresses_are_refused_with_the_value(value: str) -> None:
    with pytest.raises(EndpointError, match="is not an IP address") as error:
        ovn.parse_bound_address(value)
    assert repr(value) in str(error.value)


def test_northbound_connection_is_sorted_deduplicated_and_brackets_ipv6() -> None:
    connection = ovn.northbound_connection(["10.0.0.9", "2001:db8::1", "10.0.0.10", "10.0.0.9"])
    assert connection == "ssl:10.0.0.10:6641,ssl:10.0.0.9:6641,ssl:[2001:db8::1]:6641"


def test_cms_client_address_is_the_bare_ip() -> None:
    assert ovn.cms_client_address("2001:DB8::5") == "2001:db8::5"
    assert ovn.cms_client_address("10.1.2.3") == "10.1.2.3"


def test_material_from_good_pem() -> None:
    material = ovn.TlsMaterial.from_pem(CA.pem, CERT, KEY, "vault/0")
    assert material.certificate == CERT
    assert material.server_config() == {
        "network.ovn.ca_cert": material.ca,
        "network.ovn.client_cert": CERT,
        "network.ovn.client_key": material.private_key,
    }
    assert "PRIVATE" not in repr(material)


def test_pem_with_spaces_for_newlines_is_repaired() -> None:
    """The shape that made the other charm rebuild PEM by hand: newlines lost on the way."""
    flat = " ".join(KEY.splitlines())
    material = ovn.TlsMaterial.from_pem(CA.pem, " ".join(CERT.splitlines()), flat, "vault/0")
    assert material.certificate == CERT
    assert material.private_key.startswith("-----BEGIN ")


def test_a_certificate_that_does_not_match_its_key_is_refused() -> None:
    _, other_key = CA.issue("someone-else")
    with pytest.raises(CertificateError, match=r"vault/0 sent unusable TLS material: .*match"):
        ovn.TlsMaterial.from_pem(CA.pem, CERT, other_key, "vault/0")


@pytest.mark.parametrize(
    ("ca", "cert", "key", "missing"),
    [
        ("", CERT, KEY, "no CA"),
        (CA.pem, "", KEY, "no certificate"),
        (CA.pem, CERT, " ", "no key"),
        ("", "", "", "no CA and no certificate and no key"),
    ],
)
def test_missing_parts_are_named(ca: str, cert: str, key: str, missing: str) -> None:
    with pytest.raises(CertificateError, match=f"vault/0 sent {missing}$"):
        ovn.TlsMaterial.from_pem(ca, cert, key, "vault/0")


def test_a_ca_that_is_not_a_certificate_is_refused() -> None:
    with pytest.raises(CertificateError, match="unusable TLS material"):
        ovn.TlsMaterial.from_pem(KEY, CERT, KEY, "vault/0")


def test_a_ca_chain_is_accepted() -> None:
    other = OvnCa("intermediate")
    material = ovn.TlsMaterial.from_pem(CA.pem + other.pem, CERT, KEY, "vault/0")
    assert material.ca.count("BEGIN CERTIFICATE") == 2


def test_files_are_written_with_modes_and_rewritten_only_on_change(tmp_path: Path) -> None:
    files = ovn.OvnFiles(tmp_path)
    material = ovn.TlsMaterial.from_pem(CA.pem, CERT, KEY, "vault/0")
    assert files.write(material) is True
    ca, cert, key = files.paths
    assert files.directory == tmp_path / "var/snap/lxd/common/ovn"
    assert (ca.name, cert.name, key.name) == ("ovn-central.crt", "cert_host", "key_host")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert key.read_text() == material.private_key
    assert files.write(material) is False

    new_cert, new_key = CA.issue("lxd-0")
    assert files.write(ovn.TlsMaterial.from_pem(CA.pem, new_cert, new_key, "vault/0")) is True
    assert cert.read_text() == new_cert
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    files.remove()
    assert not files.present()
    assert files.directory.is_dir()


def test_a_self_signed_pair_still_needs_a_ca() -> None:
    pair = generate_client_certificate("lxd-0")
    with pytest.raises(CertificateError, match="sent no CA"):
        ovn.TlsMaterial.from_pem("", pair.certificate, pair.private_key, "vault/0")


@pytest.mark.parametrize(
    ("kinds", "verdict"),
    [
        ({"a": "unreachable", "b": "reachable"}, ("reachable", "b")),
        ({"a": "unreachable", "b": "refused"}, ("refused", "b")),
        ({"a": "untrusted", "b": "unreachable"}, ("untrusted", "a")),
        ({"b": "unreachable", "a": "unreachable"}, ("unreachable", "a")),
    ],
)
def test_probe_summary_prefers_reachable_then_what_the_operator_can_fix(
    kinds: dict[str, ovn.ProbeKind], verdict: tuple[ovn.ProbeKind, str]
) -> None:
    probes = {unit: ovn.Probe(f"{unit}:6641", kind) for unit, kind in kinds.items()}
    assert ovn.probe_summary(probes) == verdict


def test_json_encoded_pem_is_repaired() -> None:
    """A reactive provider's `to_publish` JSON-encodes: quotes and literal \\n arrive."""
    import json

    material = ovn.TlsMaterial.from_pem(
        json.dumps(CA.pem), json.dumps(CERT), json.dumps(KEY), "vault/0"
    )
    assert (material.ca, material.certificate) == (CA.pem, CERT)
