"""A standard-library check of one PEM certificate, and LXD's fingerprint of it.

The package must depend on ``ops`` alone, so it cannot parse X.509 with
``cryptography``. What a requirer needs is less than a parse: to refuse what
would be wrong on the wire (no PEM, a private key, a chain, broken base64,
something that is not DER) before sending it, and LXD's fingerprint, which is
the SHA-256 of the DER bytes. Both need only ``base64`` and ``hashlib``. A
provider that registers certificates in LXD should parse them fully (the
lxd-integrator charm does, with ``cryptography``, through the
``check_certificate`` hook of `lxd_charms_interfaces.lxd.RequirerData`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

__all__ = ["certificate_fingerprint"]

_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----(?P<body>[\s\S]*?)-----END (?P=label)-----"
)


def _der_length_ok(der: bytes) -> bool:
    """True if ``der`` is exactly one DER SEQUENCE (an X.509 certificate is one)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return len(der) == 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(der) < 2 + count:
        return False
    length = int.from_bytes(der[2 : 2 + count], "big")
    return len(der) == 2 + count + length


def certificate_fingerprint(pem: str) -> str:
    """Check that ``pem`` is exactly one PEM certificate; return LXD's fingerprint of it.

    Returns:
        The SHA-256 of the certificate's DER as 64 lowercase hex digits, the
        form ``lxc config trust list`` shows.

    Raises:
        ValueError: no PEM markers, a private key, more than one block, a
            block that is not a CERTIFICATE, or base64/DER that is corrupt.
            The message never contains the text.
    """
    blocks = list(_BLOCK.finditer(pem))
    if not blocks:
        if "-----BEGIN" in pem:
            raise ValueError("a PEM BEGIN marker has no matching END marker")
        raise ValueError(
            "no PEM markers found; expected a certificate starting with "
            "'-----BEGIN CERTIFICATE-----'"
        )
    labels = [block["label"] for block in blocks]
    if any("PRIVATE KEY" in label for label in labels):
        raise ValueError(
            "this is a private key, not a certificate; give the certificate "
            "(-----BEGIN CERTIFICATE-----) instead"
            if "CERTIFICATE" not in labels
            else "the text holds a private key as well as a certificate; give the "
            "certificate alone and keep the key secret"
        )
    if len(blocks) > 1:
        raise ValueError(
            f"expected exactly one certificate, found {len(blocks)} PEM blocks "
            f"({', '.join(labels)}); give only the client certificate, not a chain"
        )
    if labels != ["CERTIFICATE"]:
        raise ValueError(f"expected a CERTIFICATE block, found {labels[0]}")
    try:
        der = base64.b64decode("".join(blocks[0]["body"].split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the CERTIFICATE block is not valid base64") from None
    if not _der_length_ok(der):
        raise ValueError("the CERTIFICATE block decodes but is not a DER certificate")
    return hashlib.sha256(der).hexdigest()
