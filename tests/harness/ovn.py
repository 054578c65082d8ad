"""Real OVN for the functional tier: Debian's ovsdb-server, ovn-northd and Open vSwitch.

* `OvnCa` issues certificates as a certificate authority related on
  `certificates` would: for a CSR the charm sent (tls-certificates v4), or
  a shared client pair (what the OVN charms' CA sends, `ca`/`client.cert`/
  `client.key`); `v4_answer` and `legacy_answer` build that side's databags.
* `OvnCentral` serves OVN's northbound and southbound databases over SSL on
  one loopback address (ports 6641 and 6642, as ovn-central does), with
  `ovn-northd` between them, each a child process stopped by its PID.
* `Chassis` is this machine's Open vSwitch database and `ovs-vswitchd`,
  pointed at the southbound database: LXD 5.0 asks it where OVN's
  southbound is and adds its bridges there. This kernel has no openvswitch
  module, so `ovs-vswitchd` runs without a datapath: OVN networks can be
  created, but no packet can flow through them.
* `OvnDaemonPool` starts LXD daemons that see the machine as the LXD snap
  shows it to LXD: /etc/ovn is the snap's OVN directory (where the charm
  writes the TLS material) and /var/run/openvswitch is `Chassis`'s, each
  bound in a private mount namespace of the daemon, so nothing of the host's
  own /etc/ovn is read or written.

No systemd: every process is started here and stopped by the PID it got.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from charmlibs.interfaces import tls_certificates as tls

from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, wait_until

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
NB_PORT = 6641
SB_PORT = 6642
PACKAGES = ("ovn-central", "ovn-host", "openvswitch-switch")
START_TIMEOUT = 20.0


def missing_tools() -> str | None:
    """What is missing to run OVN here, or None."""
    for tool in ("ovsdb-server", "ovsdb-tool", "ovn-northd", "ovn-nbctl", "ovs-vsctl"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            return f"{tool} is missing: apt-get install {' '.join(PACKAGES)}"
    for schema in (NB_SCHEMA, SB_SCHEMA, OVS_SCHEMA):
        if not schema.exists():
            return f"{schema} is missing: apt-get install {' '.join(PACKAGES)}"
    return None


# --- a certificate authority ---------------------------------------------------


@dataclass
class OvnCa:
    """A certificate authority for one test."""

    name: str = "test-ca"
    key: tls.PrivateKey = field(default_factory=tls.PrivateKey.generate)
    certificate: tls.Certificate = field(init=False)

    def __post_init__(self) -> None:
        attributes = tls.CertificateRequestAttributes(common_name=self.name, is_ca=True)
        self.certificate = tls.Certificate.generate_self_signed_ca(
            attributes, self.key, timedelta(days=2)
        )

    @property
    def pem(self) -> str:
        """The CA certificate, PEM."""
        return str(self.certificate) + "\n"

    def sign(self, csr: str, validity: timedelta = timedelta(days=1)) -> str:
        """Sign a CSR (PEM); returns the certificate, PEM."""
        request = tls.CertificateSigningRequest.from_string(csr)
        return str(tls.Certificate.generate(request, self.certificate, self.key, validity)) + "\n"

    def issue(self, common_name: str) -> tuple[str, str]:
        """A fresh certificate and its key, both PEM."""
        key = tls.PrivateKey.generate()
        csr = tls.CertificateRequestAttributes(common_name=common_name).generate_csr(key)
        return self.sign(str(csr)), str(key) + "\n"


def requested_csrs(unit_data: dict[str, str]) -> list[str]:
    """The CSRs a tls-certificates v4 requirer put in its unit databag."""
    requests = json.loads(unit_data.get("certificate_signing_requests") or "[]")
    return [entry["certificate_signing_request"] for entry in requests]


def v4_answer(ca: OvnCa, unit_data: dict[str, str]) -> dict[str, str]:
    """The provider's application databag answering every CSR in ``unit_data``."""
    answers = []
    for csr in requested_csrs(unit_data):
        answers.append(
            {
                "certificate_signing_request": csr.strip(),
                "certificate": ca.sign(csr).strip(),
                "ca": ca.pem.strip(),
                "chain": [ca.pem.strip()],
            }
        )
    return {"certificates": json.dumps(answers)}


def legacy_answer(ca: OvnCa, certificate: str, key: str) -> dict[str, str]:
    """What the OVN charms' CA puts in its unit databag for every related unit."""
    return {"ca": ca.pem, "client.cert": certificate, "client.key": key}


# --- processes ---------------------------------------------------------------


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _create_db(path: Path, schema: Path) -> None:
    subprocess.run(["ovsdb-tool", "create", str(path), str(schema)], check=True)


@dataclass
class OvnCentral:
    """OVN's northbound and southbound databases on ``host``, over SSL, and ovn-northd."""

    host: str
    ca: OvnCa
    directory: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def nb_socket(self) -> Path:
        """The northbound database's local socket, for looking at what LXD wrote."""
        return self.directory / "nb.sock"

    @property
    def sb_connection(self) -> str:
        """Where OVN's southbound database serves chassis."""
        return f"ssl:{self.host}:{SB_PORT}"

    def start(self) -> OvnCentral:
        """Create both databases and start serving them (idempotent)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        cert, key = self.ca.issue(f"ovn-central-{self.host}")
        for name, pem in (("server.crt", cert), ("server.key", key), ("ca.crt", self.ca.pem)):
            (self.directory / name).write_text(pem)
        (self.directory / "server.key").chmod(0o600)
        for db, schema in (("nb", NB_SCHEMA), ("sb", SB_SCHEMA)):
            if not (self.directory / f"{db}.db").exists():
                _create_db(self.directory / f"{db}.db", schema)
        self.start_db("nb")
        self.start_db("sb")
        if "northd" not in self.processes:
            self.processes["northd"] = _spawn(
                [
                    "ovn-northd",
                    f"--ovnnb-db=unix:{self.directory / 'nb.sock'}",
                    f"--ovnsb-db=unix:{self.directory / 'sb.sock'}",
                    f"--unixctl={self.directory / 'northd.ctl'}",
                    "--no-chdir",
                ],
                self.directory / "northd.log",
            )
        return self

    def start_db(self, db: str) -> None:
        """(Re)start the ``nb`` or ``sb`` database server."""
        if db in self.processes and self.processes[db].poll() is None:
            return
        port = NB_PORT if db == "nb" else SB_PORT
        socket_path = self.directory / f"{db}.sock"
        socket_path.unlink(missing_ok=True)
        self.processes[db] = _spawn(
            [
                "ovsdb-server",
                str(self.directory / f"{db}.db"),
                f"--remote=pssl:{port}:{self.host}",
                f"--remote=punix:{socket_path}",
                f"--private-key={self.directory / 'server.key'}",
                f"--certificate={self.directory / 'server.crt'}",
                f"--ca-cert={self.directory / 'ca.crt'}",
                f"--unixctl={self.directory / f'{db}.ctl'}",
                "--no-chdir",
            ],
            self.directory / f"{db}.log",
        )
        if not wait_until(socket_path.exists, timeout=START_TIMEOUT):
            log = (self.directory / f"{db}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"ovsdb-server ({db}) did not start:\n{log}")

    def stop_db(self, db: str) -> None:
        """Stop one database server (the central unit becomes unreachable)."""
        _stop(self.processes.pop(db, None))

    def nbctl(self, *args: str) -> str:
        """`ovn-nbctl` on the local socket: what is in the northbound database."""
        result = subprocess.run(
            ["ovn-nbctl", f"--db=unix:{self.nb_socket}", "--timeout=10", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def stop(self) -> None:
        """Stop every process started here."""
        for name in list(self.processes):
            _stop(self.processes.pop(name))


@dataclass
class Chassis:
    """This machine's Open vSwitch database and switch daemon, pointed at ``central``."""

    central: OvnCentral
    directory: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        """What LXD sees as /var/run/openvswitch."""
        return self.directory / "run"

    @property
    def socket(self) -> Path:
        """The Open vSwitch database socket."""
        return self.run_dir / "db.sock"

    def start(self) -> Chassis:
        """Start the database, register this chassis, start ovs-vswitchd."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "conf.db"
        if not conf.exists():
            _create_db(conf, OVS_SCHEMA)
        self.processes["ovsdb"] = _spawn(
            [
                "ovsdb-server",
                str(conf),
                f"--remote=punix:{self.socket}",
                f"--unixctl={self.directory / 'ovsdb.ctl'}",
                "--no-chdir",
            ],
            self.directory / "ovsdb.log",
        )
        if not wait_until(self.socket.exists, timeout=START_TIMEOUT):
            raise RuntimeError("the Open vSwitch database did not start")
        self.vsctl("--no-wait", "init")
        self.vsctl(
            "--no-wait",
            "set",
            "open_vswitch",
            ".",
            f"external_ids:ovn-remote={self.central.sb_connection}",
            f"external_ids:system-id=chassis-{os.getpid()}",
            "external_ids:ovn-encap-type=geneve",
            # LXD looks the encapsulation address up among the interfaces' addresses.
            "external_ids:ovn-encap-ip=127.0.0.1",
        )
        self.processes["vswitchd"] = _spawn(
            [
                "ovs-vswitchd",
                f"unix:{self.socket}",
                f"--unixctl={self.directory / 'vswitchd.ctl'}",
                "--no-chdir",
            ],
            self.directory / "vswitchd.log",
        )
        return self

    def vsctl(self, *args: str) -> str:
        """`ovs-vsctl` on this chassis's database."""
        result = subprocess.run(
            ["ovs-vsctl", f"--db=unix:{self.socket}", "--timeout=10", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def stop(self) -> None:
        """Stop ovs-vswitchd and the database."""
        for name in ("vswitchd", "ovsdb"):
            _stop(self.processes.pop(name, None))


class OvnDaemonPool(DaemonPool):
    """LXD daemons that see /etc/ovn and /var/run/openvswitch as the LXD snap shows them."""

    def __init__(self, etc_ovn: Path, ovs_run: Path) -> None:
        super().__init__()
        self.etc_ovn = etc_ovn
        self.ovs_run = ovs_run

    def _spawn(self) -> LxdDaemon:
        host = self._free_host()
        directory = Path(tempfile.mkdtemp(prefix="lxd-ovn-"))
        directory.chmod(0o711)
        log = directory / "lxd.log"
        for path in (self.etc_ovn, self.ovs_run):
            path.mkdir(parents=True, exist_ok=True)
        # The mount points must exist on the host; what is bound over them is private.
        for point in (Path("/etc/ovn"), Path("/var/run/openvswitch")):
            point.mkdir(parents=True, exist_ok=True)
        script = (
            'mount --bind "$1" /etc/ovn && mount --bind "$2" /var/run/openvswitch && '
            'exec lxd --group root --logfile "$3"'
        )
        process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                str(self.etc_ovn),
                str(self.ovs_run),
                str(log),
            ],
            env=dict(os.environ, LXD_DIR=str(directory)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        daemon = LxdDaemon(
            name=f"m{len(self.daemons) + 1}", directory=directory, host=host, process=process
        )
        self.daemons.append(daemon)
        return daemon


@contextlib.contextmanager
def uplink_bridge() -> Iterator[str]:
    """A host bridge without addresses for LXD's `physical` uplink network, then gone.

    OVN networks need an uplink; a managed LXD bridge would need dnsmasq,
    which this machine does not have.
    """
    name = f"ovnup{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def lxc(daemon: LxdDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    """`lxc` against ``daemon``; the caller reads LXD's words from the result."""
    return subprocess.run(
        ["lxc", *args], env=daemon.env, capture_output=True, text=True, check=False, timeout=120
    )


def create_ovn_network(daemon: LxdDaemon, uplink: str, name: str, subnet: int) -> Any:
    """`lxc network create NAME --type=ovn network=UPLINK` on a /24 of 10.231.0.0/16.

    Returns the completed `lxc` run: LXD's answer is the test's evidence.
    """
    return lxc(
        daemon,
        "network",
        "create",
        name,
        "--type=ovn",
        f"network={uplink}",
        f"ipv4.address=10.231.{subnet}.1/24",
        "ipv6.address=none",
    )
