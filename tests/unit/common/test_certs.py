"""Unit tests for lxd_common.certs."""

from __future__ import annotations

import base64
import datetime
import os
import pathlib
import re
import stat
import textwrap
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lxd_common.certs import (
    CertificatePair,
    check_key_matches,
    fingerprint,
    generate_client_certificate,
    load_certificate,
    load_private_key,
    normalise_fingerprint,
    reshape_pem,
    write_certificate,
    write_private_key,
)
from lxd_common.errors import CertificateError

ENCRYPTED = (
    "the private key is encrypted and no passphrase can be given; decrypt "
    "it first (openssl pkey -in KEY -out PLAIN_KEY)"
)


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message ("encrypted" would match "unencrypted" too)."""
    return f"^{re.escape(message)}$"


# --- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> CertificatePair:
    return generate_client_certificate("unit-test")


@pytest.fixture(scope="module")
def other_pair() -> CertificatePair:
    return generate_client_certificate("other")


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
    encryption: serialization.KeySerializationEncryption | None = None,
) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, fmt, encryption or serialization.NoEncryption()
    ).decode()


def _block(label: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Let a test set the umask, restoring it afterwards."""
    original = os.umask(0o022)
    os.umask(original)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(original)


# --- CertificatePair & generate_client_certificate ---------------------------


def test_pair_repr_hides_private_key(pair: CertificatePair) -> None:
    shown = repr(pair)
    assert "PRIVATE KEY" not in shown
    assert "private_key" not in shown
    assert "BEGIN CERTIFICATE" in shown


def test_pair_is_frozen(pair: CertificatePair) -> None:
    with pytest.raises(AttributeError):
        pair.certificate = "x"  # type: ignore[misc]


def test_generated_pair_round_trips(pair: CertificatePair) -> None:
    cert = load_certificate(pair.certificate)
    key = load_private_key(pair.private_key)
    check_key_matches(pair.certificate, pair.private_key)
    assert fingerprint(pair.certificate) == cert.fingerprint(hashes.SHA256()).hex()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert pair.private_key.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert pair.certificate.endswith("-----END CERTIFICATE-----\n")


def test_generated_certificate_is_an_lxd_client_certificate(pair: CertificatePair) -> None:
    cert = load_certificate(pair.certificate)
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP384R1)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "unit-test"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False
    assert constraints.critical
    # Self-signed: the certificate verifies against its own key.
    cert.verify_directly_issued_by(cert)


def test_generated_certificate_validity() -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    cert = load_certificate(generate_client_certificate(days=30).certificate)
    assert cert.not_valid_before_utc < before - datetime.timedelta(minutes=1)
    lifetime = cert.not_valid_after_utc - before
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)


def test_default_validity_is_ten_years(pair: CertificatePair) -> None:
    cert = load_certificate(pair.certificate)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime >= datetime.timedelta(days=3650)


def test_generated_serials_and_keys_differ(
    pair: CertificatePair, other_pair: CertificatePair
) -> None:
    first, second = load_certificate(pair.certificate), load_certificate(other_pair.certificate)
    assert first.serial_number != second.serial_number
    assert first.serial_number > 0
    assert fingerprint(first) != fingerprint(second)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"common_name": ""}, "common name must not be empty"),
        ({"days": 0}, "at least one day"),
        ({"days": -5}, "at least one day"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        generate_client_certificate(**kwargs)  # type: ignore[arg-type]


# --- load_certificate ----------------------------------------------------------


def test_load_certificate_accepts_bytes_whitespace_and_crlf(pair: CertificatePair) -> None:
    expected = load_certificate(pair.certificate)
    crlf = "\r\n  " + pair.certificate.replace("\n", "\r\n") + "\r\n\r\n"
    assert load_certificate(crlf) == expected
    assert load_certificate(pair.certificate.encode()) == expected
    assert load_certificate(pair.certificate.replace("\n", "\r")) == expected


def test_load_certificate_ignores_text_around_the_block(pair: CertificatePair) -> None:
    text = f"subject=CN = unit-test\nissuer=CN = unit-test\n{pair.certificate}trailing note"
    assert load_certificate(text) == load_certificate(pair.certificate)


def _corrupt_base64(pem: str) -> str:
    lines = pem.splitlines()
    lines[3] = "!!!!" + lines[3][4:]
    return "\n".join(lines)


def _bad_padding(pem: str) -> str:
    lines = pem.splitlines()
    lines[3] = lines[3][1:]  # one base64 character fewer: length no longer a multiple of 4
    return "\n".join(lines)


def _bad_der(pem: str) -> str:
    return _block("CERTIFICATE", b"\x30\x03\x02\x01\x01")


def _two_certs(pem: str) -> str:
    return pem + pem


def _truncated(pem: str) -> str:
    return pem[: len(pem) // 2]


def _mislabelled_end(pem: str) -> str:
    return pem.replace("END CERTIFICATE", "END CERTIFICAT")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda pem: "", "empty input"),
        (lambda pem: " \r\n\t ", "empty input"),
        (lambda pem: b"", "empty input"),
        (lambda pem: "MIIBujCCAUGgAwIBAgIU", "no PEM markers found"),
        (lambda pem: "just some text", "BEGIN CERTIFICATE"),
        (_corrupt_base64, "not base64"),
        (_bad_padding, "not valid base64"),
        (_bad_der, r"not a valid X\.509 certificate"),
        (_two_certs, "expected exactly one certificate, found 2"),
        (_truncated, "no matching END marker"),
        (_mislabelled_end, "no matching END marker"),
        (lambda pem: pem.replace("CERTIFICATE", "PUBLIC KEY"), "expected a CERTIFICATE block"),
        (lambda pem: pem.encode().replace(b"-----BEGIN", b"\xff-----BEGIN"), "not valid UTF-8"),
        (lambda pem: b"\x30\x82\x01\xba", "binary DER"),
    ],
    ids=[
        "empty",
        "whitespace-only",
        "empty-bytes",
        "bare-base64",
        "prose",
        "garbage-in-pem",
        "bad-padding",
        "bad-der",
        "two-certificates",
        "truncated",
        "mislabelled-end",
        "wrong-block-type",
        "not-utf8",
        "der-bytes",
    ],
)
def test_load_certificate_rejects(
    pair: CertificatePair, mangle: Callable[[str], str | bytes], message: str
) -> None:
    with pytest.raises(CertificateError, match=message):
        load_certificate(mangle(pair.certificate))


def test_load_certificate_rejects_private_key(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="this is a private key, not a certificate"):
        load_certificate(pair.private_key)


def test_load_certificate_rejects_certificate_bundled_with_key(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="private key as well as a certificate"):
        load_certificate(pair.certificate + pair.private_key)


def test_certificate_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty input"):
        load_certificate("")


# --- load_private_key ----------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: _pem_key(ec.generate_private_key(ec.SECP384R1())),
        lambda: _pem_key(
            ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL
        ),
        lambda: _pem_key(
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            serialization.PrivateFormat.TraditionalOpenSSL,
        ),
        lambda: _pem_key(ed25519.Ed25519PrivateKey.generate()),
    ],
    ids=["pkcs8-ec", "traditional-ec", "traditional-rsa", "pkcs8-ed25519"],
)
def test_load_private_key_accepts_formats(make: Callable[[], str]) -> None:
    pem = make()
    key = load_private_key(pem)
    again = load_private_key(pem.replace("\n", "\r\n").encode())
    assert _public_der(key.public_key()) == _public_der(again.public_key())


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_load_private_key_rejects_certificate(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="this is a certificate, not a private key"):
        load_private_key(pair.certificate)


@pytest.mark.parametrize(
    "fmt",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
    ids=["pkcs8", "traditional-proc-type"],
)
def test_load_private_key_rejects_encrypted_key(
    ec_key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat
) -> None:
    pem = _pem_key(ec_key, fmt, serialization.BestAvailableEncryption(b"secret"))
    with pytest.raises(CertificateError, match=exactly(ENCRYPTED)):
        load_private_key(pem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty input"),
        ("not a key", "no PEM markers found; expected a private key"),
        ("-----BEGIN PRIVATE KEY-----\nMIGHAgEA", "no matching END marker"),
        (_block("PRIVATE KEY", b"\x30\x03\x02\x01\x00"), "not a valid private key"),
        ("-----BEGIN PRIVATE KEY-----\nM!!!\n-----END PRIVATE KEY-----\n", "not base64"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nX-Note: hi\n\nMIGH\n-----END EC PRIVATE KEY-----\n",
            "carries PEM headers",
        ),
        (_block("PUBLIC KEY", b"\x30\x00"), "expected a PRIVATE KEY block, found PUBLIC KEY"),
    ],
    ids=["empty", "garbage", "truncated", "bad-der", "bad-base64", "headers", "public-key"],
)
def test_load_private_key_rejects(text: str, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        load_private_key(text)


def test_load_private_key_rejects_two_keys(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="exactly one private key, found 2"):
        load_private_key(pair.private_key + pair.private_key)


def test_load_private_key_rejects_key_bundled_with_certificate(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="exactly one private key"):
        load_private_key(pair.private_key + pair.certificate)


def test_load_private_key_rejects_openssh_key() -> None:
    pem = _pem_key(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    with pytest.raises(CertificateError, match="OpenSSH key"):
        load_private_key(pem)


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (
            TypeError("Password was not given but private key is encrypted"),
            "the private key is encrypted and no passphrase can be given; decrypt it first",
        ),
        (UnsupportedAlgorithm("nope"), "the private key uses an unsupported algorithm (nope)"),
    ],
)
def test_load_private_key_translates_library_errors(
    pair: CertificatePair,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    message: str,
) -> None:
    # Neither error is reachable with keys the earlier checks let through, but
    # they must still surface as CertificateError if a future library raises them.
    def fail(data: bytes, password: bytes | None) -> None:
        raise raised

    monkeypatch.setattr(serialization, "load_pem_private_key", fail)
    with pytest.raises(CertificateError, match=exactly(message)):
        load_private_key(pair.private_key)


# --- check_key_matches ---------------------------------------------------------


def test_check_key_matches_accepts_own_key(pair: CertificatePair) -> None:
    check_key_matches(pair.certificate.encode(), pair.private_key.encode())


@pytest.mark.parametrize("key_kind", ["other-ec", "rsa"])
def test_check_key_matches_rejects_other_key(
    pair: CertificatePair, other_pair: CertificatePair, key_kind: str
) -> None:
    key = (
        other_pair.private_key
        if key_kind == "other-ec"
        else _pem_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    )
    with pytest.raises(CertificateError, match="the private key does not match the certificate"):
        check_key_matches(pair.certificate, key)


def test_check_key_matches_reports_swapped_arguments(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="this is a private key, not a certificate"):
        check_key_matches(pair.private_key, pair.certificate)


# --- fingerprint ---------------------------------------------------------------


def test_fingerprint_matches_lxd_format(pair: CertificatePair) -> None:
    cert = load_certificate(pair.certificate)
    expected = cert.fingerprint(hashes.SHA256()).hex()
    assert fingerprint(cert) == expected
    assert fingerprint(pair.certificate) == expected
    assert fingerprint(pair.certificate.encode()) == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_fingerprint_rejects_bad_pem(pair: CertificatePair) -> None:
    with pytest.raises(CertificateError, match="this is a private key"):
        fingerprint(pair.private_key)


# --- normalise_fingerprint -----------------------------------------------------

_FP = "18510c799429a270ab185a0ee63f1913a94f11e4a368d04525f14bf35b33a876"
_FP_COLONS = ":".join(_FP[i : i + 2] for i in range(0, 64, 2)).upper()


@pytest.mark.parametrize(
    "text",
    [
        _FP,
        _FP.upper(),
        f"  {_FP}\n",
        f"'{_FP}'",
        _FP_COLONS,
        _FP_COLONS.replace(":", " "),
        f"sha256 Fingerprint={_FP_COLONS}",
        f"SHA256 Fingerprint={_FP_COLONS}",
        f"SHA-256 Fingerprint: {_FP_COLONS}",
        f"Fingerprint={_FP_COLONS}",
        f"sha256:{_FP}",
    ],
)
def test_normalise_fingerprint_accepts_pasted_forms(text: str) -> None:
    assert normalise_fingerprint(text) == _FP


@pytest.mark.parametrize("text", [_FP[:12], _FP[:12].upper(), _FP_COLONS[:17], _FP[:40]])
def test_normalise_fingerprint_accepts_prefixes(text: str) -> None:
    assert normalise_fingerprint(text) == text.replace(":", "").lower()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty fingerprint"),
        ("sha256 Fingerprint=", "empty fingerprint"),
        (_FP[:11], "only 11 hex characters"),
        (_FP + "00", "66 hex characters, more than"),
        ("g" * 64, "non-hex characters"),
        (_FP[:30] + "-" + _FP[30:], "non-hex characters"),
        (f"SHA1 Fingerprint={_FP_COLONS[:59]}", "this is a SHA1 fingerprint"),
        (f"md5:{_FP[:32]}", "this is a md5 fingerprint"),
    ],
)
def test_normalise_fingerprint_rejects(text: str, message: str) -> None:
    with pytest.raises(CertificateError, match=message) as info:
        normalise_fingerprint(text)
    if "hex characters" in message or "empty" in message:
        assert "expected a SHA-256 fingerprint" in str(info.value)


# --- reshape_pem ---------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        lambda pem: pem,
        lambda pem: pem.replace("\n", " "),
        lambda pem: pem.replace("\n", ""),
        lambda pem: pem.replace("\n", "\\n"),
        lambda pem: pem.replace("\n", "\\r\\n"),
        lambda pem: pem.replace("\n", "\r\n"),
        lambda pem: f'  "{pem}"  ',
        lambda pem: f"'{pem.replace(chr(10), chr(92) + 'n')}'",
        lambda pem: f"\n\t{pem.rstrip()}",
        lambda pem: pem.replace("\n", "  \n "),
    ],
    ids=[
        "canonical",
        "newlines-to-spaces",
        "newlines-removed",
        "escaped-newlines",
        "escaped-crlf",
        "crlf",
        "double-quoted",
        "single-quoted-escaped",
        "surrounding-whitespace",
        "extra-spaces",
    ],
)
def test_reshape_pem_restores_certificate(
    pair: CertificatePair, mangle: Callable[[str], str]
) -> None:
    assert reshape_pem(mangle(pair.certificate)) == pair.certificate


def test_reshape_pem_rewraps_lines_of_any_length(pair: CertificatePair) -> None:
    lines = pair.certificate.splitlines()
    body = "".join(lines[1:-1])
    one_line = f"{lines[0]}\n{body}\n{lines[-1]}\n"
    short_lines = "\n".join([lines[0], *textwrap.wrap(body, 20), lines[-1]])
    assert reshape_pem(one_line) == pair.certificate
    assert reshape_pem(short_lines) == pair.certificate
    assert all(len(line) <= 64 for line in reshape_pem(one_line).splitlines())


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_reshape_pem_restores_keys(ec_key: ec.EllipticCurvePrivateKey, fmt: str) -> None:
    pem = _pem_key(
        ec_key,
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL,
    )
    assert reshape_pem(pem.replace("\n", " ")) == pem
    load_private_key(reshape_pem(pem.replace("\n", "")))


def test_reshape_pem_handles_chains_and_drops_text_between(
    pair: CertificatePair, other_pair: CertificatePair
) -> None:
    chain = pair.certificate + other_pair.certificate
    pasted = f"subject=CN=a {pair.certificate.replace(chr(10), ' ')} issuer=CN=b " + (
        other_pair.certificate.replace("\n", "")
    )
    assert reshape_pem(pasted) == chain


def test_reshape_pem_does_not_validate_content() -> None:
    pem = "-----BEGIN CERTIFICATE----- AAAA BBBB -----END CERTIFICATE-----"
    assert reshape_pem(pem) == "-----BEGIN CERTIFICATE-----\nAAAABBBB\n-----END CERTIFICATE-----\n"
    with pytest.raises(CertificateError, match=r"not a valid X\.509 certificate"):
        load_certificate(reshape_pem(pem))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty input"),
        ('""', "empty input"),
        ("MIIBujCCAUGgAwIBAgIU", "no PEM markers found"),
        ("-----BEGIN CERTIFICATE----- MIIB", "no matching END marker"),
        ("-----BEGIN CERTIFICATE----- MIIB -----END PRIVATE KEY-----", "no matching END"),
    ],
)
def test_reshape_pem_rejects_text_without_blocks(text: str, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        reshape_pem(text)


def test_reshape_pem_rejects_legacy_encrypted_key(ec_key: ec.EllipticCurvePrivateKey) -> None:
    pem = _pem_key(
        ec_key,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CertificateError, match="Proc-Type"):
        reshape_pem(pem)


# --- write_private_key / write_certificate ---------------------------------------


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_key_creates_0600(tmp_path: pathlib.Path, pair: CertificatePair) -> None:
    path = tmp_path / "client.key"
    write_private_key(path, pair.private_key)
    assert _mode(path) == 0o600
    assert path.read_text() == pair.private_key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key"]


def test_write_private_key_tightens_existing_0644(
    tmp_path: pathlib.Path, pair: CertificatePair
) -> None:
    path = tmp_path / "client.key"
    path.write_text("old")
    path.chmod(0o644)
    write_private_key(path, pair.private_key)
    assert _mode(path) == 0o600
    assert path.read_text() == pair.private_key


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_write_modes_ignore_umask(
    tmp_path: pathlib.Path, pair: CertificatePair, umask: Callable[[int], None], mask: int
) -> None:
    umask(mask)
    write_private_key(tmp_path / "k", pair.private_key)
    write_certificate(tmp_path / "c", pair.certificate)
    assert _mode(tmp_path / "k") == 0o600
    assert _mode(tmp_path / "c") == 0o644


def test_write_private_key_replaces_symlink_without_following(
    tmp_path: pathlib.Path, pair: CertificatePair
) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    link = tmp_path / "client.key"
    link.symlink_to(target)
    write_private_key(link, pair.private_key)
    assert not link.is_symlink()
    assert link.read_text() == pair.private_key
    assert target.read_text() == "untouched"


def test_write_private_key_cleans_up_after_failure(
    tmp_path: pathlib.Path, pair: CertificatePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "client.key"
    path.write_text("old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_private_key(path, pair.private_key)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key"]


def test_write_private_key_needs_existing_directory(
    tmp_path: pathlib.Path, pair: CertificatePair
) -> None:
    with pytest.raises(FileNotFoundError):
        write_private_key(tmp_path / "missing" / "client.key", pair.private_key)


def test_write_certificate_creates_0644(tmp_path: pathlib.Path, pair: CertificatePair) -> None:
    path = tmp_path / "client.crt"
    path.write_text("old")
    path.chmod(0o600)
    write_certificate(path, pair.certificate)
    assert _mode(path) == 0o644
    assert path.read_text() == pair.certificate


def test_write_certificate_refuses_private_key(
    tmp_path: pathlib.Path, pair: CertificatePair
) -> None:
    path = tmp_path / "client.crt"
    with pytest.raises(CertificateError, match="refusing to write a private key"):
        write_certificate(path, pair.certificate + pair.private_key)
    assert not path.exists()


def test_a_write_whose_first_fsync_fails_raises_and_leaves_the_old_file(
    tmp_path: pathlib.Path, pair: CertificatePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the file's fsync fails; the directory's would succeed, so nothing else raises."""
    path = tmp_path / "client.key"
    path.write_text("old")
    real_fsync, calls = os.fsync, []

    def fsync_failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_once)
    with pytest.raises(OSError, match=exactly("disk full")):
        write_private_key(path, pair.private_key)
    assert len(calls) == 1
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key"]


def test_a_written_file_is_synced_then_its_directory(
    tmp_path: pathlib.Path, pair: CertificatePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, synced = os.fsync, []

    def recording_fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_certificate(tmp_path / "client.crt", pair.certificate)
    assert synced == [False, True]


def test_a_large_file_is_written_whole(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.write may write less than asked: the loop writes the rest."""
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[:1000])

    monkeypatch.setattr(os, "write", short_write)
    text = "-----BEGIN CERTIFICATE-----\n" + "A" * 5000 + "\n-----END CERTIFICATE-----\n"
    write_certificate(tmp_path / "client.crt", text)
    assert (tmp_path / "client.crt").read_text() == text


def test_every_key_usage_flag_and_criticality_of_a_generated_certificate(
    pair: CertificatePair,
) -> None:
    extensions = {e.oid: e for e in load_certificate(pair.certificate).extensions}
    key_usage = extensions[x509.oid.ExtensionOID.KEY_USAGE]
    assert key_usage.critical is True
    assert key_usage.value == x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    constraints = extensions[x509.oid.ExtensionOID.BASIC_CONSTRAINTS]
    assert (constraints.critical, constraints.value) == (
        True,
        x509.BasicConstraints(ca=False, path_length=None),
    )
    eku = extensions[x509.oid.ExtensionOID.EXTENDED_KEY_USAGE]
    assert (eku.critical, list(eku.value)) == (False, [ExtendedKeyUsageOID.CLIENT_AUTH])
    ski = extensions[x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER]
    assert ski.critical is False
    assert set(extensions) == {
        x509.oid.ExtensionOID.KEY_USAGE,
        x509.oid.ExtensionOID.BASIC_CONSTRAINTS,
        x509.oid.ExtensionOID.EXTENDED_KEY_USAGE,
        x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    }


def test_an_unencrypted_pkcs8_key_is_not_mistaken_for_an_encrypted_one(
    pair: CertificatePair,
) -> None:
    assert isinstance(load_private_key(pair.private_key), ec.EllipticCurvePrivateKey)


# --- each refusal says exactly which one it is --------------------------------------


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(CertificateError) as info:
        call()
    return str(info.value)


def test_binary_and_undecodable_input_are_told_apart() -> None:
    assert _message(lambda: load_certificate(b"\x30\x82\x01\x0a")) == (
        "this looks like binary DER, not PEM text; convert it with "
        "'openssl x509 -inform der' first"
    )
    assert _message(lambda: load_certificate(b"\xff\xfe-----BEGIN")) == (
        "not PEM text: the data is not valid UTF-8"
    )


def test_generate_refusals_and_the_shortest_validity() -> None:
    assert _message(lambda: generate_client_certificate("")) == (
        "the certificate common name must not be empty"
    )
    assert _message(lambda: generate_client_certificate(days=0)) == (
        "the validity must be at least one day, not 0"
    )
    cert = load_certificate(generate_client_certificate(days=1).certificate)
    assert datetime.timedelta(days=1) <= cert.not_valid_after_utc - cert.not_valid_before_utc


def test_swapped_or_bundled_pem_is_named_exactly(pair: CertificatePair) -> None:
    assert _message(lambda: load_certificate(pair.certificate + pair.private_key)) == (
        "the text holds a private key as well as a certificate; give the certificate "
        "alone and keep the key secret"
    )
    assert _message(lambda: load_private_key(pair.certificate)) == (
        "this is a certificate, not a private key; give the private key "
        "(-----BEGIN PRIVATE KEY-----) instead"
    )
    assert _message(lambda: load_private_key("not a key")) == (
        "no PEM markers found; expected a private key starting with '-----BEGIN PRIVATE KEY-----'"
    )
    assert _message(lambda: reshape_pem("not pem")) == (
        "no PEM markers found; expected a PEM block starting with '-----BEGIN <TYPE>-----'"
    )


def test_a_malformed_certificate_and_an_openssh_key_are_named_exactly() -> None:
    assert _message(lambda: load_certificate(_block("CERTIFICATE", b"\x30\x03\x02\x01\x00"))) == (
        "the CERTIFICATE block decodes but is not a valid X.509 certificate (malformed DER)"
    )
    pem = _pem_key(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    assert _message(lambda: load_private_key(pem)) == (
        "this is an OpenSSH key, not a TLS private key; LXD needs a PEM key"
    )


def test_a_key_of_another_certificate_is_named_exactly(
    pair: CertificatePair, other_pair: CertificatePair
) -> None:
    assert _message(lambda: check_key_matches(pair.certificate, other_pair.private_key)) == (
        "the private key does not match the certificate"
    )


def test_writing_a_key_as_a_certificate_is_refused_exactly(
    tmp_path: pathlib.Path, pair: CertificatePair
) -> None:
    path = tmp_path / "client.crt"
    assert _message(lambda: write_certificate(path, pair.private_key)) == (
        "refusing to write a private key to a world-readable certificate file"
    )
    assert not path.exists()


def test_only_quotes_and_spaces_are_stripped_from_a_fingerprint(pair: CertificatePair) -> None:
    fp = fingerprint(pair.certificate)
    assert normalise_fingerprint(f" '{fp}' ") == fp
    for stray in (f"X{fp}", f"{fp}X"):
        assert _message(lambda s=stray: normalise_fingerprint(s)) == (  # type: ignore[misc]
            "the fingerprint contains non-hex characters; expected a SHA-256 fingerprint: "
            "64 hex characters (colons or spaces allowed) or a prefix of at least 12"
        )


def test_reshape_pem_undoes_escaped_carriage_returns(pair: CertificatePair) -> None:
    assert reshape_pem(pair.certificate.replace("\n", "\\r")) == pair.certificate
    assert reshape_pem(pair.certificate.replace("\n", "\\r\\n")) == pair.certificate


def test_a_file_planted_at_the_temporary_name_is_not_written_through(
    tmp_path: pathlib.Path, pair: CertificatePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("secrets.token_hex", lambda n: "0" * (2 * n))
    planted = tmp_path / f".client.key.{'0' * 16}.tmp"
    planted.write_text("planted")
    with pytest.raises(FileExistsError):
        write_private_key(tmp_path / "client.key", pair.private_key)
    assert planted.read_text() == "planted"
    assert not (tmp_path / "client.key").exists()


def test_writing_leaves_no_file_descriptor_open(
    tmp_path: pathlib.Path, pair: CertificatePair
) -> None:
    before = sorted(pathlib.Path("/proc/self/fd").iterdir())
    write_private_key(tmp_path / "client.key", pair.private_key)
    write_certificate(tmp_path / "client.crt", pair.certificate)
    assert sorted(pathlib.Path("/proc/self/fd").iterdir()) == before
