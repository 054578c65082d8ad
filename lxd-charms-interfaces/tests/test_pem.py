"""`certificate_fingerprint`'s refusals word for word, and its DER length check at each boundary.

test_library.py checks the fingerprint against openssl's and that each kind
of wrong text is refused; these pin the whole message of each refusal (the
requirer shows it to its operator) and walk the DER header check through
every length form: short, long with one to four length bytes, indefinite,
too many length bytes, truncated. Each DER value is built here, wrapped in
PEM, and its fingerprint is by definition the SHA-256 of those bytes.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from lxd_charms_interfaces._pem import certificate_fingerprint

CERT = (Path(__file__).resolve().parent / "data" / "client.pem").read_text()
BODY = CERT.split("-----")[2]
NOT_DER = "the CERTIFICATE block decodes but is not a DER certificate"


def pem(der: bytes, label: str = "CERTIFICATE") -> str:
    return f"-----BEGIN {label}-----\n{base64.b64encode(der).decode()}\n-----END {label}-----\n"


@pytest.mark.parametrize(
    "der",
    [
        b"\x30\x00",  # short form, empty
        b"\x30\x03abc",
        b"\x30\x7f" + b"a" * 0x7F,  # the longest short form
        b"\x30\x81\x00",  # long form, one length byte, empty
        b"\x30\x81\x80" + b"a" * 0x80,
        b"\x30\x82\x01\x00" + b"a" * 0x100,
        b"\x30\x84\x00\x00\x00\x01a",  # four length bytes: the most accepted
    ],
)
def test_one_der_sequence_of_any_length_form_is_accepted(der: bytes) -> None:
    assert certificate_fingerprint(pem(der)) == hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    "der",
    [
        b"\x30",  # no length
        b"\x31\x00",  # a SET, not a SEQUENCE
        b"\x30\x01",  # shorter than it says
        b"\x30\x00\x00",  # longer than it says
        b"\x30\x80",  # indefinite length: not DER
        b"\x30\x80" + b"a" * 0x80,
        b"\x30\x85\x00\x00\x00\x00\x01a",  # five length bytes
        b"\x30\x82\x01",  # length bytes cut short
        b"\x30\x81\x02a",
    ],
)
def test_anything_else_is_not_a_der_certificate(der: bytes) -> None:
    with pytest.raises(ValueError) as info:
        certificate_fingerprint(pem(der))
    assert str(info.value) == NOT_DER


KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "garbage",
            "no PEM markers found; expected a certificate starting with "
            "'-----BEGIN CERTIFICATE-----'",
        ),
        ("-----BEGIN CERTIFICATE-----\nMIIB", "a PEM BEGIN marker has no matching END marker"),
        (
            KEY,
            "this is a private key, not a certificate; give the certificate "
            "(-----BEGIN CERTIFICATE-----) instead",
        ),
        (
            CERT + KEY,
            "the text holds a private key as well as a certificate; give the "
            "certificate alone and keep the key secret",
        ),
        (
            CERT + pem(b"\x30\x00"),
            "expected exactly one certificate, found 2 PEM blocks (CERTIFICATE, CERTIFICATE); "
            "give only the client certificate, not a chain",
        ),
        (pem(b"\x30\x00", "PUBLIC KEY"), "expected a CERTIFICATE block, found PUBLIC KEY"),
        (
            CERT.replace(BODY, BODY[:-10] + "*" + BODY[-9:]),
            "the CERTIFICATE block is not valid base64",
        ),
        # a character outside base64 is refused, not skipped (the rest would decode)
        (
            CERT.replace(BODY, BODY[:20] + "!" + BODY[20:]),
            "the CERTIFICATE block is not valid base64",
        ),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        certificate_fingerprint(text)
    assert str(info.value) == message
