"""Real LXD daemons on this machine, for the functional tests, benchmarks and demo.

Each daemon is Debian's ``lxd`` started as root with its own ``LXD_DIR`` and
its own loopback address (127.X.10.1:8443, 127.X.10.2:8443, ..., X chosen per
process), so several of them can form real clusters on one host without
touching the network.
`DaemonPool` starts them and, whatever happens in between, stops them and
removes their state: instances force-stopped, daemons shut down, leftover
mounts under each ``LXD_DIR`` detached, directories deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxd_common.lxd import LxdClient

APT_PACKAGES = ("lxd", "lxd-client", "iptables", "busybox-static")
INSTALL_HINT = (
    "functional tests need Debian's LXD: run as root `apt-get install -y "
    + " ".join(APT_PACKAGES)
    + "` (or `bash .ci/run`, which does it)"
)
LXD_PORT = 8443
START_TIMEOUT = 60.0


def ensure_lxd_installed() -> str | None:
    """Install LXD with apt when missing and possible; return a reason when not.

    Returns None when ``lxd`` is ready to use, or one line saying what to do.
    """
    if os.geteuid() != 0:
        return "functional tests start LXD daemons and need root (try: sudo tox -e functional)"
    if shutil.which("lxd") and shutil.which("busybox"):
        return None
    if not shutil.which("apt-get"):
        return INSTALL_HINT
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *APT_PACKAGES],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f"{INSTALL_HINT}; `{' '.join(command)}` failed: {result.stderr.strip()[-200:]}"
    return None if shutil.which("lxd") else INSTALL_HINT


def _address_free(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, LXD_PORT))
        except OSError:
            return False
    return True


@dataclass
class LxdDaemon:
    """One running ``lxd`` process."""

    name: str
    directory: Path
    host: str
    process: subprocess.Popen[bytes]
    _clients: list[LxdClient] = field(default_factory=list, repr=False)

    @property
    def address(self) -> str:
        """``host:port`` for ``core.https_address`` / ``cluster.https_address``."""
        return f"{self.host}:{LXD_PORT}"

    @property
    def log(self) -> Path:
        """The daemon's log (where the snap's daemon logs, under its directory)."""
        return self.directory / "logs" / "lxd.log"

    @property
    def socket(self) -> Path:
        """The daemon's Unix socket."""
        return self.directory / "unix.socket"

    @property
    def env(self) -> dict[str, str]:
        """Environment for ``lxc``/``lxd`` commands aimed at this daemon."""
        return dict(os.environ, LXD_DIR=str(self.directory))

    @property
    def server_cert(self) -> str:
        """The certificate the HTTPS listener presents.

        A standalone daemon presents its own ``server.crt``; once clustered,
        every member presents the shared ``cluster.crt`` instead.
        """
        cluster_cert = self.directory / "cluster.crt"
        if cluster_cert.exists():
            return cluster_cert.read_text()
        return (self.directory / "server.crt").read_text()

    def client(self, wait: float = START_TIMEOUT) -> LxdClient:
        """A socket client for this daemon, closed when the pool is cleaned up."""
        client = LxdClient.local(self.socket, wait=wait)
        self._clients.append(client)
        return client

    def lxc(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``lxc`` against this daemon (for test setup, not for assertions on our code).

        With ``check``, a failure raises with what ``lxc`` said, so a test's own
        setup step that LXD refuses shows LXD's words.
        """
        done = subprocess.run(
            ["lxc", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"`lxc {' '.join(args)}` on {self.name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done

    def import_image(self, tarball: Path, alias: str = "busybox") -> None:
        """Import a unified image tarball under ``alias``."""
        self.lxc("image", "import", str(tarball), "--alias", alias)

    def alive(self) -> bool:
        """True while the daemon process runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop instances, shut the daemon down, and remove its directory."""
        self.stop_instances()
        self.kill()
        self.remove()

    def stop_instances(self) -> None:
        """Force-stop every instance (they would outlive the daemon and pin its files)."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        if self.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.lxc("stop", "--all", "--force", check=False, timeout=30)

    def kill(self) -> None:
        """Terminate the daemon: no graceful cluster hand-over, this is a test machine."""
        _terminate(self.process)

    def remove(self) -> None:
        """Detach what LXD left mounted and delete the daemon's directory."""
        _unmount_below(self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)


def _start_lxd(directory: Path) -> subprocess.Popen[bytes]:
    """The daemon, logging where the snap's does: ``logs/lxd.log`` under its directory."""
    (directory / "logs").mkdir(exist_ok=True)
    return subprocess.Popen(
        ["lxd", "--group", "root", "--logfile", str(directory / "logs" / "lxd.log")],
        env=dict(os.environ, LXD_DIR=str(directory)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _unmount_below(directory: Path) -> None:
    """Lazily unmount whatever LXD left mounted inside ``directory`` (deepest first)."""
    prefix = str(directory.resolve())
    mounts = []
    with contextlib.suppress(OSError), Path("/proc/self/mounts").open() as table:
        for line in table:
            target = line.split()[1].replace("\\040", " ")
            if target == prefix or target.startswith(prefix + "/"):
                mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


class DaemonPool:
    """Starts daemons on free loopback addresses; `cleanup` removes them all."""

    def __init__(self, network: str | None = None, root: Path | None = None) -> None:
        # One /24 of loopback per process, so two test runs on one machine (or a
        # benchmark next to a test run) do not race for the same addresses.
        self._network = network or f"127.{10 + os.getpid() % 200}.10."
        self._root = root
        self._next_host = 1
        self.daemons: list[LxdDaemon] = []

    def _free_host(self) -> str:
        while self._next_host < 255:
            host = f"{self._network}{self._next_host}"
            self._next_host += 1
            if _address_free(host):
                return host
        raise RuntimeError(f"no free loopback address left in {self._network}0/24")

    def start(self, count: int = 1) -> list[LxdDaemon]:
        """Start ``count`` daemons and wait until each answers on its socket."""
        started = [self._spawn() for _ in range(count)]
        for daemon in started:
            self._wait(daemon)
        return started

    def _spawn(self) -> LxdDaemon:
        host = self._free_host()
        directory = Path(tempfile.mkdtemp(prefix="lxd-", dir=self._root))
        directory.chmod(0o711)
        daemon = LxdDaemon(
            name=f"m{len(self.daemons) + 1}",
            directory=directory,
            host=host,
            process=_start_lxd(directory),
        )
        self.daemons.append(daemon)
        return daemon

    def restart(self, daemon: LxdDaemon, *, wait: bool = True) -> None:
        """Start a daemon that was killed again, on its own directory (a machine coming back).

        ``wait=False`` only starts it (as systemd restarts a failed service), for a
        daemon that is expected to fail to start.
        """
        if daemon.alive():
            raise RuntimeError(f"{daemon.name} is still running")
        daemon.process = _start_lxd(daemon.directory)
        if wait:
            self._wait(daemon)

    def _wait(self, daemon: LxdDaemon) -> None:
        result = subprocess.run(
            ["lxd", "waitready", "--timeout", str(int(START_TIMEOUT))],
            env=daemon.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not daemon.alive():
            log = daemon.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"LXD in {daemon.directory} did not start: {result.stderr}\n{log}")

    def cleanup(self) -> None:
        """Stop and remove every daemon this pool started, ignoring failures.

        Instances are stopped while every daemon still runs (a cluster needs
        its quorum to answer), then all daemons are terminated together:
        stopping cluster members one by one would leave the last ones
        waiting on a database that lost its quorum.
        """
        daemons, self.daemons = self.daemons, []
        for daemon in daemons:
            with contextlib.suppress(Exception):
                daemon.stop_instances()
        for daemon in daemons:
            with contextlib.suppress(Exception):
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in daemons:
            with contextlib.suppress(Exception):
                daemon.kill()
            with contextlib.suppress(Exception):
                daemon.remove()

    def __enter__(self) -> DaemonPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def wait_until(
    predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2
) -> bool:
    """Poll until ``predicate()`` is true or ``timeout`` passes (LXD converges asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
