"""A join that died half-way heals on its own: the charm's own code on real daemons.

Each test kills the joining unit's daemon (SIGKILL) at the moment LXD writes a
given piece of local state during the join, found by watching its directory,
so each outcome is reproduced deterministically rather than by timing.
Captured from LXD 5.0 this way (see `lxd_charm.half_join`):

- killed once ``cluster.crt`` is written: the daemon starts again, but every
  later join is refused ("Pool source cannot be changed when not in pending
  state") because of the pool the dead join created;
- killed once ``database/global/db.bin`` is written: the daemon cannot start
  ("Failed to initialize global database: No node registered with address").
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, wait_until
from tests.harness.lxd_units import LxdUnits

UNREGISTERED = "No node registered with address"


@pytest.fixture
def lxd_units(lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LxdUnits:
    return LxdUnits(lxd_pool, tmp_path, monkeypatch)


def written(path: Path) -> bool:
    """A file LXD has finished writing (a PEM file: its END line is there)."""
    try:
        text = path.read_text()
    except OSError:
        return False
    return bool(text) and ("-----END" in text or path.suffix not in (".crt", ".key"))


class KillAt(threading.Thread):
    """SIGKILLs ``daemon`` as soon as ``marker`` (relative to its directory) is written.

    A certificate counts once its key is written too: killed between the two,
    the daemon fails to start on the empty key instead ("failed to load TLS
    certificate: tls: failed to find any PEM data in key input", seen once in
    five runs), a third outcome the unit tier covers.
    """

    def __init__(self, daemon: LxdDaemon, marker: str, timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.daemon_under_test = daemon
        self.markers = [daemon.directory / marker]
        if marker.endswith(".crt"):
            self.markers.append(daemon.directory / marker.replace(".crt", ".key"))
        self.timeout = timeout
        self.killed = False
        self.start()

    def _reached(self) -> bool:
        return all(written(marker) for marker in self.markers)

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not self._reached():
            time.sleep(0.001)
        if self._reached():
            self.daemon_under_test.process.send_signal(signal.SIGKILL)
            self.daemon_under_test.process.wait()
            self.killed = True


def members(units: LxdUnits) -> list[str]:
    return sorted(m.name for m in units.daemon("lxd/0").client().cluster.members())


def status(units: LxdUnits, unit: str) -> tuple[str, str]:
    got = units.sim.units[unit].state.unit_status
    return got.name, got.message


def join_dies_at(units: LxdUnits, marker: str) -> LxdDaemon:
    """A one-member cluster, then a second unit whose join is killed at ``marker``."""
    units.add(1)
    units.sim.settle()
    units.add(1)
    joiner = units.daemon("lxd/1")
    watcher = KillAt(joiner, marker)
    units.sim.settle()
    watcher.join()
    assert watcher.killed, f"the join finished before {marker} appeared"
    assert members(units) == ["node0"]
    name, message = status(units, "lxd/1")
    assert name == "blocked" and message.startswith("LXD refused the join"), message
    # The leader does not call that active: it names the unit and what it said.
    name, message = status(units, "lxd/0")
    assert name == "blocked"
    assert message.startswith("1/2 units are members; lxd/1 is not: blocked: LXD refused")
    return joiner


def test_a_daemon_that_cannot_start_after_a_dead_join_is_reset_and_joins(
    lxd_units: LxdUnits, lxd_pool: DaemonPool
) -> None:
    joiner = join_dies_at(lxd_units, "database/global/db.bin")
    lxd_pool.restart(joiner, wait=False)  # systemd starts it again: it fails
    assert wait_until(lambda: not joiner.alive(), timeout=60, interval=0.5)
    assert UNREGISTERED in joiner.log.read_text()

    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert members(lxd_units) == ["node0", "node1"]
    assert joiner.alive()
    assert status(lxd_units, "lxd/1")[0] == "active", status(lxd_units, "lxd/1")
    assert status(lxd_units, "lxd/0")[0] == "active", status(lxd_units, "lxd/0")
    assert "join-status" not in lxd_units.sim.unit_data["lxd/1"]


def test_pools_a_dead_join_left_behind_are_cleared_and_the_unit_joins(
    lxd_units: LxdUnits, lxd_pool: DaemonPool
) -> None:
    joiner = join_dies_at(lxd_units, "cluster.crt")
    lxd_pool.restart(joiner)  # systemd starts it again: it runs, standalone
    left = joiner.client()
    assert left.cluster.server_name == ""
    assert [p.name for p in left.pylxd.storage_pools.all()] == ["default"]

    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert members(lxd_units) == ["node0", "node1"]
    assert status(lxd_units, "lxd/1")[0] == "active", status(lxd_units, "lxd/1")
    assert status(lxd_units, "lxd/0")[0] == "active", status(lxd_units, "lxd/0")


def test_a_dead_join_is_not_cleared_where_a_volume_would_be_lost(
    lxd_units: LxdUnits, lxd_pool: DaemonPool
) -> None:
    joiner = join_dies_at(lxd_units, "cluster.crt")
    lxd_pool.restart(joiner)
    joiner.lxc("storage", "volume", "create", "default", "precious")

    lxd_units.sim.update_status()
    lxd_units.sim.settle()
    assert members(lxd_units) == ["node0"]
    name, message = status(lxd_units, "lxd/1")
    assert name == "blocked"
    assert "default: custom/precious" in message
    assert message.endswith("lxc storage delete default")
    assert "precious" in joiner.lxc("storage", "volume", "list", "default").stdout
