"""X.509 certificates and keys as an LXD client needs them, on `cryptography` alone.

A charm talks to LXD over HTTPS with a client certificate that LXD trusts by
its SHA-256 fingerprint. Operators hand certificates to the charms through
action arguments and relation data, where PEM text routinely arrives
mangled, so this module keeps three jobs apart:

* `reshape_pem` repairs the *layout* of pasted PEM text (lost or escaped
  newlines, quotes, CRLF) without judging its content;
* `load_certificate`, `load_private_key` and `check_key_matches` judge the
  content, each failure with a message an operator can act on;
* `generate_client_certificate`, `fingerprint`, `normalise_fingerprint`,
  `write_private_key` and `write_certificate` produce what LXD expects.

Typical use in an action handler::

    pem = reshape_pem(params.certificate)
    cert = load_certificate(pem)
    trust(fingerprint(cert), pem)

Every failure raises `lxd_common.errors.CertificateError` (a `ValueError`),
except `write_private_key`/`write_certificate`, which raise `OSError` when
the filesystem refuses.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import os
import pathlib
import re
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lxd_common.errors import CertificateError

__all__ = [
    "CertificatePair",
    "check_key_matches",
    "fingerprint",
    "generate_client_certificate",
    "load_certificate",
    "load_private_key",
    "normalise_fingerprint",
    "reshape_pem",
    "write_certificate",
    "write_private_key",
]

# A block is matched on its own markers only, so text around it (openssl's
# "subject=" lines, PKCS#12 "Bag Attributes") does not get in the way. The
# END label must repeat the BEGIN label, as RFC 7468 requires.
_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9][A-Z0-9 ]*?)-----"
    r"(?P<body>.*?)"
    r"-----END (?P=label)-----",
    re.DOTALL,
)
_BEGIN_MARKER = re.compile(r"-----BEGIN [A-Z0-9 ]*-----")
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_WHITESPACE = re.compile(r"\s+")

# Clock skew between this machine and an LXD server must not make a brand-new
# certificate "not yet valid" there.
_BACKDATE = datetime.timedelta(hours=1)

_FINGERPRINT_HEX_LEN = 64
# LXD resolves a fingerprint prefix when it is unique; shorter prefixes than
# this are too likely to match the wrong certificate once the trust store grows.
_MIN_FINGERPRINT_PREFIX = 12


@dataclass(frozen=True)
class CertificatePair:
    """A certificate and its private key, as PEM text.

    The key is left out of the repr so that logging the pair, or a traceback
    that shows it, does not leak the credential.
    """

    certificate: str
    private_key: str = field(repr=False)


@dataclass(frozen=True)
class _PemBlock:
    label: str
    raw_body: str  # as found, headers and whitespace included

    @property
    def has_headers(self) -> bool:
        # RFC 1421 headers (Proc-Type, DEK-Info) mark legacy encrypted keys;
        # base64 never contains a colon, so one betrays a header.
        return ":" in self.raw_body

    @property
    def base64(self) -> str:
        return _WHITESPACE.sub("", self.raw_body)

    def canonical(self) -> str:
        body = self.base64
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "".join(
            [f"-----BEGIN {self.label}-----\n"]
            + [f"{line}\n" for line in lines]
            + [f"-----END {self.label}-----\n"]
        )

    def der(self) -> bytes:
        body = self.base64
        if not _BASE64_BODY.fullmatch(body):
            raise CertificateError(
                f"the {self.label} block contains characters that are not base64; "
                "the PEM text is corrupt"
            )
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise CertificateError(
                f"the {self.label} block is not valid base64 ({exc}); the PEM text is "
                "corrupt or truncated"
            ) from exc


def _as_text(pem: str | bytes) -> str:
    if isinstance(pem, bytes):
        if pem.lstrip()[:1] == b"\x30":
            # 0x30 opens an ASN.1 SEQUENCE: binary DER rather than PEM.
            raise CertificateError(
                "this looks like binary DER, not PEM text; convert it with "
                "'openssl x509 -inform der' first"
            )
        try:
            pem = pem.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CertificateError("not PEM text: the data is not valid UTF-8") from exc
    return pem.replace("\r\n", "\n").replace("\r", "\n").strip()


def _find_blocks(text: str, expected: str, label: str) -> list[_PemBlock]:
    """Split PEM text into blocks, explaining why there are none if so."""
    if not text:
        raise CertificateError(f"empty input; expected a PEM {expected}")
    blocks = [_PemBlock(match["label"], match["body"]) for match in _PEM_BLOCK.finditer(text)]
    if not blocks:
        if _BEGIN_MARKER.search(text):
            raise CertificateError(
                f"a PEM BEGIN marker has no matching END marker; the {expected} "
                "is truncated or its END line is mislabelled"
            )
        raise CertificateError(
            f"no PEM markers found; expected a {expected} starting with '-----BEGIN {label}-----'"
        )
    return blocks


def _is_private_key_label(label: str) -> bool:
    return label.endswith("PRIVATE KEY")


def generate_client_certificate(
    common_name: str = "lxd-charm", *, days: int = 3650
) -> CertificatePair:
    """Create a self-signed certificate for authenticating to LXD as a client.

    LXD trusts client certificates by fingerprint, not by issuer, so a
    self-signed one is all it needs. The choices mirror what LXD generates
    for its own clients, so the certificate is accepted by every LXD version
    the charms support: P-384 with SHA-384, clientAuth only (so it cannot be
    misused to impersonate a server), and never a CA.

    Args:
        common_name: Subject CN; LXD shows it as the trust entry's name
            when none is given.
        days: Validity period. The default of ten years matches LXD's,
            because an expired client certificate silently cuts the charm
            off from its daemon.

    Returns:
        The certificate and its unencrypted PKCS#8 private key, as PEM.

    Raises:
        CertificateError: `common_name` is empty or `days` is not positive.
    """
    if not common_name:
        raise CertificateError("the certificate common name must not be empty")
    if days < 1:
        raise CertificateError(f"the validity must be at least one day, not {days}")
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return CertificatePair(
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        private_key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
    )


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse exactly one PEM certificate.

    Exactly one, because LXD trusts one certificate per entry: silently
    taking the first of a chain would trust a certificate the operator may
    not have meant. A private key in the text is refused rather than ignored,
    since the text is about to be stored or sent where only public data
    belongs.

    Args:
        pem: PEM text; surrounding whitespace, CRLF line ends and any layout
            of the base64 lines are accepted.

    Returns:
        The certificate.

    Raises:
        CertificateError: The input is empty, has no PEM markers, holds a
            private key, holds no certificate or more than one, or the
            certificate's base64 or DER is corrupt.
    """
    blocks = _find_blocks(_as_text(pem), "certificate", "CERTIFICATE")
    labels = [block.label for block in blocks]
    if any(_is_private_key_label(label) for label in labels):
        if "CERTIFICATE" not in labels:
            raise CertificateError(
                "this is a private key, not a certificate; give the certificate "
                "(-----BEGIN CERTIFICATE-----) instead"
            )
        raise CertificateError(
            "the text holds a private key as well as a certificate; give the "
            "certificate alone and keep the key secret"
        )
    certs = [block for block in blocks if block.label == "CERTIFICATE"]
    if not certs:
        raise CertificateError(f"expected a CERTIFICATE block, found {', '.join(labels)}")
    if len(blocks) > 1:
        raise CertificateError(
            f"expected exactly one certificate, found {len(blocks)} PEM blocks "
            f"({', '.join(labels)}); give only the client certificate, not a chain"
        )
    der = certs[0].der()
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateError(
            "the CERTIFICATE block decodes but is not a valid X.509 certificate (malformed DER)"
        ) from exc


def load_private_key(pem: str | bytes) -> PrivateKeyTypes:
    """Parse exactly one unencrypted PEM private key.

    Encrypted keys are refused up front because nothing in a charm can
    supply the passphrase; saying so is more useful than a decryption error.

    Args:
        pem: PEM text in PKCS#8 (`PRIVATE KEY`) or a traditional format
            (`EC PRIVATE KEY`, `RSA PRIVATE KEY`).

    Returns:
        The private key.

    Raises:
        CertificateError: The input is empty, has no PEM markers, is a
            certificate, holds several keys, is encrypted, is corrupt, or uses
            an algorithm `cryptography` does not support.
    """
    blocks = _find_blocks(_as_text(pem), "private key", "PRIVATE KEY")
    labels = [block.label for block in blocks]
    keys = [block for block in blocks if _is_private_key_label(block.label)]
    if not keys:
        if "CERTIFICATE" in labels:
            raise CertificateError(
                "this is a certificate, not a private key; give the private key "
                "(-----BEGIN PRIVATE KEY-----) instead"
            )
        raise CertificateError(f"expected a PRIVATE KEY block, found {', '.join(labels)}")
    if len(blocks) > 1:
        raise CertificateError(
            f"expected exactly one private key, found {len(blocks)} PEM blocks "
            f"({', '.join(labels)})"
        )
    block = keys[0]
    if block.label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in block.raw_body:
        raise CertificateError(
            "the private key is encrypted and no passphrase can be given; decrypt "
            "it first (openssl pkey -in KEY -out PLAIN_KEY)"
        )
    if block.label == "OPENSSH PRIVATE KEY":
        raise CertificateError(
            "this is an OpenSSH key, not a TLS private key; LXD needs a PEM key"
        )
    if block.has_headers:
        raise CertificateError(
            f"the {block.label} block carries PEM headers, which an unencrypted key "
            "does not have; the PEM text is corrupt"
        )
    block.der()  # for a precise message when the base64 itself is broken
    try:
        return serialization.load_pem_private_key(block.canonical().encode(), password=None)
    except TypeError as exc:  # cryptography's way of saying "needs a password"
        raise CertificateError(
            "the private key is encrypted and no passphrase can be given; decrypt it first"
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise CertificateError(f"the private key uses an unsupported algorithm ({exc})") from exc
    except ValueError as exc:
        raise CertificateError(
            f"the {block.label} block decodes but is not a valid private key (malformed DER)"
        ) from exc


def _public_key_der(public_key: PublicKeyTypes) -> bytes:
    # Comparing the encoded SubjectPublicKeyInfo works for every key type
    # without a case per algorithm.
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_key_matches(certificate_pem: str | bytes, private_key_pem: str | bytes) -> None:
    """Make sure a private key belongs to a certificate.

    A mismatched pair loads fine on its own and only fails later, at the TLS
    handshake, with an error that names neither file; checking up front
    turns that into an action failure that says what is wrong.

    Args:
        certificate_pem: The certificate, as PEM.
        private_key_pem: The private key, as PEM.

    Raises:
        CertificateError: Either input does not load, or the key's public
            half differs from the certificate's.
    """
    cert = load_certificate(certificate_pem)
    key = load_private_key(private_key_pem)
    if _public_key_der(cert.public_key()) != _public_key_der(key.public_key()):
        raise CertificateError("the private key does not match the certificate")


def fingerprint(cert: str | bytes | x509.Certificate) -> str:
    """Compute a certificate's fingerprint the way LXD shows and accepts it.

    LXD identifies trust entries by the SHA-256 of the certificate's DER, as
    lowercase hex with no separators; producing exactly that form lets the
    result be compared with `lxc config trust list` and the API directly.

    Args:
        cert: A certificate object or its PEM text.

    Returns:
        64 lowercase hex characters.

    Raises:
        CertificateError: PEM text was given and does not load.
    """
    if not isinstance(cert, x509.Certificate):
        cert = load_certificate(cert)
    return cert.fingerprint(hashes.SHA256()).hex()


_FINGERPRINT_LABEL = re.compile(
    r"^(?:(?P<algo>[a-z0-9-]+)\s*)?fingerprint\s*[=:]\s*", re.IGNORECASE
)
_ALGO_PREFIX = re.compile(r"^(?P<algo>sha-?\d+|md5)\s*[=:]\s*", re.IGNORECASE)


def normalise_fingerprint(text: str) -> str:
    """Turn a fingerprint as an operator pastes it into the form LXD uses.

    Operators copy fingerprints from `openssl x509 -fingerprint -sha256`
    (`sha256 Fingerprint=AA:BB:...`), from browsers (space-separated), or from
    `lxc config trust list` (a short prefix). All of these name the same
    certificate, so they are accepted; a SHA-1 fingerprint is refused by name
    because LXD only knows SHA-256 and would otherwise just not find it.

    Args:
        text: The fingerprint, with or without openssl's label, separated by
            colons or spaces, in any case.

    Returns:
        Lowercase hex without separators: the full 64 characters, or the
        prefix given (at least 12 characters, which LXD resolves when unique).

    Raises:
        CertificateError: The text is not hex, is too short to be a safe
            prefix, is longer than a SHA-256 fingerprint, or is labelled with
            a digest other than SHA-256.
    """
    value = text.strip().strip("'\"").strip()
    algo: str | None = None
    if match := _FINGERPRINT_LABEL.match(value) or _ALGO_PREFIX.match(value):
        algo = match["algo"]
        value = value[match.end() :]
    if algo is not None and algo.lower().replace("-", "") != "sha256":
        raise CertificateError(
            f"this is a {algo} fingerprint; LXD uses SHA-256 fingerprints "
            "(openssl x509 -noout -fingerprint -sha256)"
        )
    digits = re.sub(r"[\s:]", "", value).lower()
    expected = (
        "expected a SHA-256 fingerprint: 64 hex characters (colons or spaces "
        f"allowed) or a prefix of at least {_MIN_FINGERPRINT_PREFIX}"
    )
    if not digits:
        raise CertificateError(f"empty fingerprint; {expected}")
    if not re.fullmatch(r"[0-9a-f]+", digits):
        raise CertificateError(f"the fingerprint contains non-hex characters; {expected}")
    if len(digits) > _FINGERPRINT_HEX_LEN:
        raise CertificateError(
            f"the fingerprint has {len(digits)} hex characters, more than SHA-256's "
            f"{_FINGERPRINT_HEX_LEN}; {expected}"
        )
    if len(digits) < _MIN_FINGERPRINT_PREFIX:
        raise CertificateError(
            f"the fingerprint has only {len(digits)} hex characters; {expected}"
        )
    return digits


def reshape_pem(text: str) -> str:
    r"""Repair the layout of PEM text that was mangled on its way in.

    Juju action arguments and shell quoting lose newlines (or turn them into
    spaces or literal `\n`), add quotes, and keep CRLF from Windows
    clipboards. The base64 content survives all of that, so the blocks can be
    rebuilt from their markers alone. Content is not checked here, so that a
    caller gets `load_certificate`'s precise message about what is wrong
    rather than a vague "could not reshape". Text between blocks (such as
    openssl's `subject=` lines) is dropped.

    Args:
        text: One or more PEM blocks of any type, e.g. a certificate chain.

    Returns:
        Canonical PEM: each block as BEGIN line, 64-character base64 lines,
        END line, each line ending in a newline.

    Raises:
        CertificateError: The text holds no complete BEGIN/END block, or a
            block carries RFC 1421 headers (a legacy encrypted key), whose
            line structure cannot be recovered once newlines are gone.
    """
    value = text.strip().strip("'\"").strip()
    # Undo escaping: a literal backslash never appears in PEM, so this cannot
    # damage the content.
    value = value.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    blocks = _find_blocks(_as_text(value), "PEM block", "<TYPE>")
    for block in blocks:
        if block.has_headers:
            raise CertificateError(
                f"the {block.label} block carries PEM headers (e.g. Proc-Type), which "
                "means an encrypted legacy key; decrypt it first"
            )
    return "".join(block.canonical() for block in blocks)


def _write_atomically(path: pathlib.Path, content: str, mode: int) -> None:
    """Replace `path` with `content` so that readers never see a partial file.

    The temporary file is created with its final mode (never wider), so a
    private key is not readable by others even for a moment; `fchmod` then
    sets the mode exactly, whatever the umask. O_NOFOLLOW and O_EXCL stop a
    planted symlink or file at the temporary name from redirecting the write.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_WRONLY | os.O_NOFOLLOW
    fd = os.open(tmp, flags, mode)
    try:
        try:
            os.fchmod(fd, mode)
            data = content.encode("utf-8")
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)  # atomic rename(2) within one directory
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # Make the rename itself durable, so a crash cannot bring the old file back.
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private_key(path: pathlib.Path, pem: str) -> None:
    """Write a private key readable by its owner only (mode 0600).

    The file is replaced rather than rewritten in place, so an existing file
    with a wider mode (or a symlink placed at `path`) never receives the key.

    Args:
        path: Destination; its directory must exist.
        pem: The key as PEM text, written as is.

    Raises:
        OSError: The file cannot be written.
    """
    _write_atomically(path, pem, 0o600)


def write_certificate(path: pathlib.Path, pem: str) -> None:
    """Write a certificate readable by everyone (mode 0644).

    Because the file ends up world-readable, text that holds a private key is
    refused: passing the wrong variable here would otherwise publish the key.

    Args:
        path: Destination; its directory must exist.
        pem: The certificate as PEM text, written as is.

    Raises:
        CertificateError: The text contains a private key.
        OSError: The file cannot be written.
    """
    if "PRIVATE KEY-----" in pem:
        raise CertificateError(
            "refusing to write a private key to a world-readable certificate file"
        )
    _write_atomically(path, pem, 0o644)
