"""OVN for LXD, free of `ops`: where the northbound database is, and how to reach it.

The `ovsdb-cms` relation tells the charm where OVN's central units listen;
the `certificates` relation hands it the TLS material that OVN insists on.
This module holds the decisions on that data, so they can be tested without
Juju or LXD:

* `parse_bound_address` and `northbound_connection` turn what ovn-central
  publishes into LXD's `network.ovn.northbound_connection`;
* `TlsMaterial` is the client certificate, its key and the CA, checked
  before LXD is pointed at them (a mismatched pair would otherwise fail
  only inside LXD, in an `ovn-nbctl` error that names no file);
* `OvnFiles` writes them where LXD 5.0 reads them; newer LXD takes them as
  server keys instead (`SSL_SERVER_KEYS`);
* `probe_northbound` asks the database itself whether it accepts us, so the
  status can tell "reachable" from "certificate refused" from "unreachable".

Failures raise `lxd_common.errors.CertificateError` (bad TLS material) or
`lxd_common.errors.EndpointError` (a bad address); `cryptography` is loaded
only when material is checked, never at import.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from lxd_common.endpoints import host_port
from lxd_common.errors import CertificateError, EndpointError

NORTHBOUND_PORT: Final = 6641
"""Where OVN's northbound database serves CMS clients over SSL."""

NORTHBOUND_KEY: Final = "network.ovn.northbound_connection"
OVN_EXTENSION: Final = "network_type_ovn"
"""LXD's API extension for OVN networks: without it the relation is of no use."""
SSL_CONFIG_EXTENSION: Final = "ovn_ssl_config"
"""LXD's API extension for the TLS material as server keys (after LXD 5.0)."""
SSL_SERVER_KEYS: Final = {
    "ca": "network.ovn.ca_cert",
    "certificate": "network.ovn.client_cert",
    "private_key": "network.ovn.client_key",
}

SNAP_OVN_DIR: Final = Path("var/snap/lxd/common/ovn")
"""Below the machine root: the directory the LXD snap (with `ovn.builtin`) shows LXD as
/etc/ovn, where LXD 5.0 reads `ovn-central.crt`, `cert_host` and `key_host`."""
CA_FILE: Final = "ovn-central.crt"
CERT_FILE: Final = "cert_host"
KEY_FILE: Final = "key_host"

PROBE_TIMEOUT: Final = 3.0
"""Each of a probe's steps (connect, handshake, answer) gets this long."""
PROBE_BUDGET: Final = 8.0
"""All of a hook's probes together end within this (`probe_all`)."""
_LIST_DBS: Final = b'{"id":0,"method":"list_dbs","params":[]}'


def parse_bound_address(value: str) -> str:
    """The IP address in an ovn-central unit's `bound-address`.

    ovn-central's reactive interface publishes values JSON-encoded (a quoted
    string); a bare address, or one in IPv6 brackets, is taken as well.

    Raises:
        EndpointError: the value is not an IP address.
    """
    text = value.strip()
    with contextlib.suppress(ValueError):
        decoded = json.loads(text)
        if isinstance(decoded, str):
            text = decoded.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise EndpointError(f"bound-address {value!r} is not an IP address") from None


def northbound_target(address: str) -> str:
    """`host:port` of the northbound database at ``address`` (IPv6 in brackets)."""
    return host_port(address, NORTHBOUND_PORT)


def northbound_connection(addresses: Iterable[str]) -> str:
    """LXD's `network.ovn.northbound_connection` for these central addresses.

    Sorted, so that every unit (and every hook) computes the same string and
    LXD is not reconfigured because the units arrived in another order.
    """
    return ",".join(sorted({f"ssl:{northbound_target(a)}" for a in addresses}))


def cms_client_address(address: str) -> str:
    """This unit's `cms-client-bound-address`: the bare IP, as CMS charms in the field send it.

    ovn-central opens its firewall to this address, so it is the address
    itself: brackets around an IPv6 address, or JSON quotes, would not be one.
    """
    return str(ipaddress.ip_address(address))


@dataclass(frozen=True)
class TlsMaterial:
    """A client certificate for OVN, its private key, and the CA that OVN trusts.

    Attributes:
        ca: the CA certificate (PEM) that signs the central units' certificates.
        certificate: this unit's client certificate (PEM).
        private_key: its private key (PEM); never logged.
        source: where it came from, for the status and the log.
    """

    ca: str
    certificate: str
    private_key: str
    source: str

    def __repr__(self) -> str:
        return f"TlsMaterial(source={self.source!r})"  # the key stays out of logs

    @classmethod
    def from_pem(cls, ca: str, certificate: str, private_key: str, source: str) -> TlsMaterial:
        """Material from relation data, its PEM layout repaired and its content checked.

        Raises:
            CertificateError: something is missing, does not parse, or the
                certificate does not match the key.
        """
        from lxd_common import certs

        missing = [
            name
            for name, value in (("CA", ca), ("certificate", certificate), ("key", private_key))
            if not value.strip()
        ]
        if missing:
            raise CertificateError(f"{source} sent no {' and no '.join(missing)}")
        try:
            material = cls(
                ca=certs.reshape_pem(ca),
                certificate=certs.reshape_pem(certificate),
                private_key=certs.reshape_pem(private_key),
                source=source,
            )
            _load_ca(material.ca)
            certs.check_key_matches(material.certificate, material.private_key)
        except CertificateError as e:
            raise CertificateError(f"{source} sent unusable TLS material: {e}") from None
        return material

    def server_config(self) -> dict[str, str]:
        """The material as LXD's server keys (LXD with `ovn_ssl_config`)."""
        return {key: getattr(self, field) for field, key in SSL_SERVER_KEYS.items()}


def _load_ca(pem: str) -> None:
    """The CA may be a chain (intermediate and root): every block must be a certificate."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError as e:
        raise CertificateError(f"the CA does not parse: {e}") from None


class OvnFiles:
    """The three files LXD 5.0 reads for OVN's TLS, in the snap's OVN directory."""

    def __init__(self, root: Path) -> None:
        self.directory = root / SNAP_OVN_DIR

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        """CA, certificate and key, in that order."""
        return (
            self.directory / CA_FILE,
            self.directory / CERT_FILE,
            self.directory / KEY_FILE,
        )

    def write(self, material: TlsMaterial) -> bool:
        """Write what differs from the files on disk; returns whether anything changed.

        Each file is replaced atomically (the key at 0600), so LXD, which
        reads them each time it runs `ovn-nbctl`, sees the old set or the
        new one: that is the rotation.
        """
        from lxd_common import certs

        self.directory.mkdir(parents=True, exist_ok=True)
        ca_path, cert_path, key_path = self.paths
        changed = False
        for path, content, writer in (
            (ca_path, material.ca, certs.write_certificate),
            (cert_path, material.certificate, certs.write_certificate),
            (key_path, material.private_key, certs.write_private_key),
        ):
            if _read(path) != content:
                writer(path, content)
                changed = True
        return changed

    def present(self) -> bool:
        """Whether any of the files exists."""
        return any(path.exists() for path in self.paths)

    def remove(self) -> None:
        """Remove the files (the directory stays: the snap owns it)."""
        for path in self.paths:
            path.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


ProbeKind = Literal["reachable", "refused", "untrusted", "unreachable", "not-ovn"]


@dataclass(frozen=True)
class Probe:
    """What one northbound address said to this unit's certificate.

    kind: `reachable` (it answered as OVN's northbound database), `refused`
    (it refused our client certificate), `untrusted` (its certificate is not
    signed by our CA), `unreachable` (no connection), `not-ovn` (something
    else answered).
    """

    target: str
    kind: ProbeKind
    detail: str = ""


def probe_northbound(address: str, material: TlsMaterial, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Connect to the northbound database at ``address`` as LXD will, and ask it one thing.

    The TLS handshake alone cannot tell whether the server accepted our
    certificate (with TLS 1.3 it rejects it after the handshake), so the
    probe sends OVSDB's `list_dbs` and reads the answer.
    """
    target = northbound_target(address)
    try:
        context = _client_context(material)
    except (ssl.SSLError, OSError) as e:
        return Probe(target, "untrusted", f"cannot use the CA or client certificate: {e}")
    try:
        raw = socket.create_connection((address, NORTHBOUND_PORT), timeout=timeout)
    except OSError as e:
        return Probe(target, "unreachable", e.strerror or str(e))
    with raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.sendall(_LIST_DBS)
                answer = tls.recv(65536)
        except ssl.SSLCertVerificationError as e:
            return Probe(target, "untrusted", e.verify_message or str(e))
        except (ssl.SSLError, ConnectionError) as e:
            return Probe(target, "refused", _reason(e))
        except TimeoutError:
            return Probe(target, "unreachable", "no answer")
        except OSError as e:
            return Probe(target, "unreachable", e.strerror or str(e))
    if not answer:
        return Probe(target, "refused", "the connection was closed without an answer")
    if b"OVN_Northbound" not in answer:
        return Probe(target, "not-ovn", "it does not serve OVN_Northbound")
    return Probe(target, "reachable")


def probe_all(
    addresses: Mapping[str, str], material: TlsMaterial, budget: float = PROBE_BUDGET
) -> dict[str, Probe]:
    """`probe_northbound` for every central unit at once (by unit name), within ``budget``.

    The probes run side by side, so a hook waits about as long for three
    silent central units as for one; a probe still running when the budget
    ends counts as unreachable. update-status runs this on healthy units
    too, so its cost must not grow with the number of central units.
    """
    from concurrent.futures import ThreadPoolExecutor, wait

    if not addresses:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(addresses), thread_name_prefix="ovn-probe")
    futures = {
        unit: pool.submit(probe_northbound, address, material, min(PROBE_TIMEOUT, budget))
        for unit, address in addresses.items()
    }
    wait(futures.values(), timeout=budget)
    pool.shutdown(wait=False, cancel_futures=True)
    return {
        unit: future.result()
        if future.done()
        else Probe(northbound_target(addresses[unit]), "unreachable", f"no answer in {budget:g} s")
        for unit, future in futures.items()
    }


def _client_context(material: TlsMaterial) -> ssl.SSLContext:
    """A TLS client context with our certificate, trusting only the relation's CA.

    Host names are not checked: OVN's central certificates name the units,
    and OVSDB clients (LXD's `ovn-nbctl` among them) check the CA only.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=material.ca)
    # ssl loads a key pair from files only: a private directory, gone at once.
    with tempfile.TemporaryDirectory(prefix="lxd-ovn-probe-") as directory:
        cert = Path(directory) / "cert.pem"
        key = Path(directory) / "key.pem"
        cert.write_text(material.certificate)
        key.touch(mode=0o600)
        key.write_text(material.private_key)
        context.load_cert_chain(cert, key)
    return context


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).lower().replace("_", " ")
    return str(error) or type(error).__name__


def probe_summary(probes: Mapping[str, Probe]) -> tuple[ProbeKind, str]:
    """The verdict over every central unit's probe, and the one to show.

    One reachable unit is enough (OVSDB clients move to whichever answers);
    otherwise a refusal says more than an unreachable unit, because the
    operator can fix it.
    """
    order: tuple[ProbeKind, ...] = ("reachable", "refused", "untrusted", "not-ovn", "unreachable")
    for kind in order:
        named = sorted(name for name, probe in probes.items() if probe.kind == kind)
        if named:
            return kind, named[0]
    raise ValueError("no probes")
