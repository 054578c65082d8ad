"""A real single-node Ceph cluster on loopback, for the functional tests.

One monitor and one OSD (BlueStore on a sparse file), both Debian's
``ceph-mon``/``ceph-osd`` 16.2, run as root from a scratch directory and
listening on their own loopback address (127.X.20.1, X chosen per process like
`lxd_daemons.DaemonPool` does), so test runs next to each other do not meet.
No manager daemon: the monitor alone creates pools and keys, the OSD serves
the objects, and sparing ``ceph-mgr`` keeps the bootstrap to a few seconds.

`CephCluster.start()` bootstraps it, `admin()` runs the ``ceph`` CLI as
``client.admin``, `issue_key(name)` mints the key ceph-mon would hand a
client application, and `stop()` kills the daemons and removes everything.
`bootstrap_seconds` records how long the bootstrap took (the CI budget counts it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APT_PACKAGES = ("ceph-mon", "ceph-osd")
OSD_SIZE = 3 * 1024**3
"""Sparse: only what is written takes room on disk."""
START_TIMEOUT = 60.0


def missing_tools() -> str | None:
    """None when the Ceph daemons are here; else what to install."""
    if os.geteuid() != 0:
        return "a real Ceph needs root"
    for tool in ("ceph-mon", "ceph-osd", "ceph", "ceph-authtool", "monmaptool"):
        if shutil.which(tool) is None:
            return f"no {tool}: apt-get install -y {' '.join(APT_PACKAGES)}"
    return None


@dataclass
class CephCluster:
    """One monitor and one OSD in ``directory``, on ``host``."""

    host: str = field(default_factory=lambda: f"127.{10 + os.getpid() % 200}.20.1")
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ceph-")))
    fsid: str = field(default_factory=lambda: str(uuid.uuid4()))
    bootstrap_seconds: float = 0.0
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        """The cluster's own ceph.conf (the admin's view, not a client's)."""
        return self.directory / "ceph.conf"

    @property
    def admin_keyring(self) -> Path:
        """client.admin's keyring."""
        return self.directory / "ceph.client.admin.keyring"

    def start(self) -> CephCluster:
        """Bootstrap the monitor, then the OSD, and wait until the OSD is up."""
        began = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        mon_keyring = self.directory / "mon.keyring"
        self._run("ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key",
                  "-n", "mon.", "--cap", "mon", "allow *")  # fmt: skip
        self._run("ceph-authtool", "--create-keyring", str(self.admin_keyring), "--gen-key",
                  "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                  "--cap", "mgr", "allow *")  # fmt: skip
        self._run("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.admin_keyring))
        monmap = self.directory / "monmap"
        self._run("monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                  f"[v2:{self.host}:3300,v1:{self.host}:6789]", str(monmap))  # fmt: skip
        self._run("ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a",
                  "--monmap", str(monmap), "--keyring", str(mon_keyring))  # fmt: skip
        self._daemon("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self.admin("osd", "new", osd_uuid).strip()
        osd_dir = self.directory / f"osd-{osd_id}"
        osd_dir.mkdir()
        self._run("ceph-osd", "-c", str(self.conf), "-i", osd_id, "--mkfs", "--mkkey",
                  "--osd-uuid", osd_uuid, "--no-mon-config")  # fmt: skip
        self.admin("auth", "add", f"osd.{osd_id}", "osd", "allow *", "mon", "allow profile osd",
                   "-i", str(osd_dir / "keyring"))  # fmt: skip
        self._daemon("ceph-osd", "-i", osd_id)
        self._wait_osd_up()
        self.bootstrap_seconds = time.monotonic() - began
        return self

    def admin(self, *args: str) -> str:
        """Run the ``ceph`` CLI as client.admin; its stdout."""
        return self._run("ceph", "-c", str(self.conf), "-k", str(self.admin_keyring), *args)

    def admin_json(self, *args: str) -> Any:
        """`admin` with ``--format json``, decoded."""
        return json.loads(self.admin(*args, "--format", "json"))

    def issue_key(self, client: str, pool: str | None = None) -> str:
        """A cephx key for ``client.<client>``, with the caps ceph-mon gives an RBD client."""
        osd_caps = f"profile rbd pool={pool}" if pool else "profile rbd"
        return self.admin("auth", "get-or-create-key", f"client.{client}",
                          "mon", "profile rbd", "osd", osd_caps).strip()  # fmt: skip

    def create_pool(self, name: str) -> None:
        """What ceph-mon's broker does for a create-pool op: one replica here, tagged rbd."""
        self.admin("osd", "pool", "create", name, "8")
        self.admin("osd", "pool", "set", name, "size", "1", "--yes-i-really-mean-it")
        self.admin("osd", "pool", "application", "enable", name, "rbd")

    def stop(self) -> None:
        """Kill the daemons (they hold nothing worth a clean shutdown) and remove the state."""
        for process in self._processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self._processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> CephCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inside --------------------------------------------------------------

    def _write_conf(self) -> None:
        d = self.directory
        self.conf.write_text(
            "\n".join(
                [
                    "[global]",
                    f"fsid = {self.fsid}",
                    "mon initial members = a",
                    f"mon host = [v2:{self.host}:3300,v1:{self.host}:6789]",
                    f"public addr = {self.host}",
                    f"cluster addr = {self.host}",
                    "auth cluster required = cephx",
                    "auth service required = cephx",
                    "auth client required = cephx",
                    "osd pool default size = 1",
                    "osd pool default min size = 1",
                    "osd crush chooseleaf type = 0",
                    "mon allow pool size one = true",
                    "mon allow pool delete = true",
                    "mon warn on pool no redundancy = false",
                    "mon data avail warn = 1",
                    "auth allow insecure global id reclaim = false",
                    f"run dir = {d}/run",
                    f"log file = {d}/$name.log",
                    f"mon data = {d}/mon-$id",
                    f"osd data = {d}/osd-$id",
                    "osd objectstore = bluestore",
                    f"bluestore block path = {d}/osd-$id/block.file",
                    "bluestore block create = true",
                    f"bluestore block size = {OSD_SIZE}",
                    "bluestore fsck on mkfs = false",
                    "osd memory target = 939524096",
                    "bluestore cache autotune = false",
                    "osd op num shards = 1",
                    "osd op num threads per shard = 1",
                    "",
                ]
            )
        )
        (d / "run").mkdir(exist_ok=True)

    def _run(self, *command: str) -> str:
        result = subprocess.run(
            list(command), capture_output=True, text=True, check=False, timeout=START_TIMEOUT
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command[:4])} ...` failed ({result.returncode}): "
                f"{result.stderr.strip()[-1500:]}"
            )
        return result.stdout

    def _daemon(self, *command: str) -> None:
        """Start a daemon in the foreground of its own session (so `stop` can kill it)."""
        process = subprocess.Popen(
            [*command[:1], "-f", "-c", str(self.conf), *command[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._processes.append(process)

    def _wait_osd_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.admin_json("osd", "stat").get("num_up_osds") == 1:
                return
            if any(p.poll() is not None for p in self._processes):
                break
            time.sleep(0.5)
        logs = "\n".join(
            p.read_text(errors="replace")[-1500:] for p in self.directory.glob("*.log")
        )
        raise RuntimeError(f"the OSD did not come up:\n{logs}")
