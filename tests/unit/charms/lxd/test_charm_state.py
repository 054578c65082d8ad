"""What the LXD charm keeps between hooks, and how it reports trouble by who can fix it.

The charm stores only its memory of what it did (`lxd_charm.memory`) and
works out everything else each hook; a failure nobody has to fix (snapd
timing out or restarting) is waiting and retried, one the operator must fix
is blocked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm.config import LxdConfig
from lxd_charm.machine import Machine
from lxd_charm.memory import Memory
from lxd_charm.outcomes import BlockedError, WaitingError
from lxd_charm.pending import PendingConfig
from lxd_common.certs import generate_client_certificate
from lxd_common.errors import SnapdUnavailableError, SnapError
from tests.harness.fake_host import FakeHost
from tests.harness.fake_snapd import FakeSnapd

from .test_charm import installed, run

MEMORY_FIELDS = {
    "initialised",
    "init_options",
    "proxy",
    "pending",
    "sideloaded_snap",
    "https_clients",
    "fan_fallback",
    "ovn",
    "loki_url",
    "adopted",
    "failure_domain",
    "pool_wait_since",
    "reconciled_boot",
    "resources_applied",
}


def stored(state: testing.State) -> dict[str, Any]:
    return dict(state.get_stored_state("_stored", owner_path="LxdCharm").content)


# --- the record ----------------------------------------------------------------


def test_only_the_memory_record_is_stored(ctx: testing.Context[Any]) -> None:
    state = installed(ctx, **{"lxd-listen-https": True})
    content = stored(state)
    assert set(content) == {"memory"}
    assert set(content["memory"]) == MEMORY_FIELDS
    assert content["memory"]["initialised"] is True
    assert content["memory"]["init_options"] == {"mode": "standalone", "lxd-preseed": ""}


def test_memory_round_trips_through_plain_data() -> None:
    memory = Memory(
        initialised=True,
        init_options={"mode": "cluster", "lxd-preseed": ""},
        proxy={"core.proxy_http": "http://proxy:3128"},
        pending=PendingConfig({"lxcfs.cfs": "true"}, {"daemon.debug": "true"}, "boot-1"),
        sideloaded_snap="ab" * 32,
        https_clients={"3": {"client/0": "f" * 64}},
        loki_url="http://loki:3100",
        failure_domain="az1",
        reconciled_boot="boot-2",
        resources_applied=True,
    )
    assert Memory.from_dict(memory.to_dict()) == memory
    assert Memory.from_dict({}) == Memory()


def test_memory_of_an_earlier_revision_is_kept_on_upgrade(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    """That revision stored one field each; LXD must not be initialised a second time.

    Its `https_clients` record is read too: the trust entry it made for a
    relation gone since goes with it.
    """
    entry = host.fake_lxd.trust.add(generate_client_certificate("client").certificate, "c0")
    legacy = testing.StoredState(
        "_stored",
        owner_path="LxdCharm",
        content={
            "initialised": True,
            "init_options": {"mode": "standalone", "lxd-preseed": ""},
            "proxy": {},
            "pending": {},
            "sideloaded_snap": "",
            "https_clients": {"5": {"client/0": entry.fingerprint}},
            "problem": "a stale cache the new record drops",
            "cluster_summary": "",
        },
    )
    state = run(ctx, "upgrade_charm", testing.State(stored_states={legacy}))
    assert host.fake_lxd.preseeds == []
    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    memory = stored(state)["memory"]
    assert memory["initialised"] is True
    assert memory["https_clients"] == {}  # relation 5 is gone: its entry was forgotten
    assert host.fake_lxd.trust.entries() == []


# --- status by who can fix it ----------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "timeout exceeded while waiting for snapd's answer",  # a store or snapd timeout
        "cannot connect to snapd: connection refused (snapd is restarting)",
    ],
)
def test_snapd_unavailable_at_install_waits_and_a_later_hook_finishes(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd, said: str
) -> None:
    snapd.fail_on("install", SnapdUnavailableError(said))
    state = run(ctx, "install", testing.State())
    assert state.unit_status == testing.WaitingStatus(f"cannot install LXD: {said}; retrying")
    assert host.fake_lxd.preseeds == []
    snapd.clear_failures()
    state = run(ctx, "update_status", state)
    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    assert len(host.fake_lxd.preseeds) == 1


def test_snapd_unavailable_while_configuring_waits(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    state = installed(ctx)
    snapd.fail_on("set_config", SnapdUnavailableError("snapd is restarting"))
    state = run(ctx, "config_changed", replace(state, config={"snap-config-daemon-debug": True}))
    assert state.unit_status == testing.WaitingStatus(
        "cannot apply snap config: snapd is restarting; retrying"
    )


def test_snapd_refusing_blocks(ctx: testing.Context[Any], snapd: FakeSnapd) -> None:
    snapd.fail_on("install", SnapError("no snap revision on channel 5.99/stable"))
    state = run(ctx, "install", testing.State())
    assert state.unit_status == testing.BlockedStatus(
        "cannot install LXD: no snap revision on channel 5.99/stable"
    )


def test_a_hook_that_looks_at_nothing_keeps_the_last_status(ctx: testing.Context[Any]) -> None:
    """A healthy unit's update-status only checks that LXD answers: Juju keeps the status."""
    state = installed(ctx)
    kept = testing.ActiveStatus("standalone; as the last hook said")
    state = run(ctx, "update_status", replace(state, unit_status=kept))
    assert state.unit_status == kept


def test_update_status_retries_when_the_last_status_is_not_active(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx)
    tuned = len(host.tuning.applied)
    state = run(
        ctx, "update_status", replace(state, unit_status=testing.WaitingStatus("stale wait"))
    )
    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")
    assert len(host.tuning.applied) == tuned + 1  # a full reconcile, not the one-call check


def test_a_bug_fails_the_hook(ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd) -> None:
    snapd.fail_on("install", RuntimeError("a bug in the snap adapter"))
    with pytest.raises(testing.errors.UncaughtCharmError, match="a bug in the snap adapter"):
        run(ctx, "install", testing.State())


# --- the machine module alone ------------------------------------------------------


def machine_for(host: FakeHost, memory: Memory, joining: bool = False, **options: Any) -> Machine:
    return Machine(host, memory, LxdConfig(**options), environ={}, joining=joining)


def test_a_refused_snap_config_leaves_the_pending_record_as_it_was(
    host: FakeHost, snapd: FakeSnapd, tmp_path: Path
) -> None:
    snapd.seed("lxd", "latest/stable")
    before = PendingConfig({"lxcfs.cfs": "true"}, {}, "boot-1")
    memory = Memory(initialised=True, pending=PendingConfig.from_dict(before.to_dict()))
    snapd.fail_on("set_config")
    machine = machine_for(host, memory, snap_config_lxcfs_loadavg=True)
    with pytest.raises(BlockedError, match=r"^cannot apply snap config: fake snapd: set_config"):
        machine.apply_snap_config()
    assert memory.pending == before


def test_the_machine_waits_for_an_lxd_that_is_not_installed(host: FakeHost) -> None:
    host.lxd_missing = True
    host.fake_lxd.unreachable = True
    machine = machine_for(host, Memory())
    with (
        pytest.raises(WaitingError, match=r"^LXD is not installed yet: no socket$"),
        machine.lxd(),
    ):
        pass


def test_the_machine_waits_for_an_lxd_that_is_not_running(
    host: FakeHost, snapd: FakeSnapd
) -> None:
    snapd.seed("lxd", "latest/stable")
    host.lxd_not_found = True
    machine = machine_for(host, Memory())
    not_running = r"^LXD is not running yet: no LXD socket found"
    with pytest.raises(WaitingError, match=not_running), machine.lxd():
        pass


def failed_start_log(host: FakeHost, reason: str) -> None:
    """LXD 5.0's log lines when its daemon fails to start (captured)."""
    log = host.lxd_log
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        'time="2026-12-01T09:12:57Z" level=warning msg="Instance type not operational" '
        'driver=qemu err="vhost_vsock kernel module not loaded" type=virtual-machine\n'
        'time="2026-12-01T09:12:57Z" level=error msg="Failed to start the daemon" '
        f'err="{reason}"\n'
        'time="2026-12-01T09:12:57Z" level=warning msg="Could not handover member\'s '
        'responsibilities" err="No dqlite node has address 10.0.0.2:8443: %!w(<nil>)"\n'
    )


UNREGISTERED = (
    "Failed to initialize global database: No node registered with address 10.0.0.2:8443"
)


def test_an_lxd_that_cannot_start_says_why(host: FakeHost, snapd: FakeSnapd) -> None:
    snapd.seed("lxd", "latest/stable")
    host.lxd_not_found = True
    failed_start_log(host, "Failed to listen on 10.0.0.9:8443: bind: address not available")
    machine = machine_for(host, Memory())
    with pytest.raises(BlockedError) as caught, machine.lxd():
        pass
    assert str(caught.value) == (
        "LXD cannot start: Failed to listen on 10.0.0.9:8443: bind: address not available "
        f"(see {host.lxd_log})"
    )
    assert host.lxd_restarts == 0


def half_joined(host: FakeHost, *, instance: str = "", reason: str = UNREGISTERED) -> None:
    """What a join killed after writing its local database leaves (captured from LXD 5.0)."""
    lxd_dir = host.lxd_dir
    for part in ("database/global", "containers", "virtual-machines"):
        (lxd_dir / part).mkdir(parents=True, exist_ok=True)
    (lxd_dir / "database/local.db").write_text("raft_nodes: 10.0.0.2:8443")
    (lxd_dir / "database/global/db.bin").write_text("half a raft log")
    (lxd_dir / "cluster.crt").write_text("cert")
    (lxd_dir / "cluster.key").write_text("key")
    for part in ("containers", "custom", "images"):
        (lxd_dir / "storage-pools/local" / part).mkdir(parents=True, exist_ok=True)
    (lxd_dir / "server.crt").write_text("this machine's own certificate stays")
    if instance:
        (lxd_dir / "containers" / instance).mkdir()
    failed_start_log(host, reason)


EMPTY_KEY = "failed to load TLS certificate: tls: failed to find any PEM data in key input"


@pytest.mark.parametrize("reason", [UNREGISTERED, EMPTY_KEY])
def test_a_join_that_died_half_way_is_reset_and_lxd_started_again(
    host: FakeHost, snapd: FakeSnapd, reason: str
) -> None:
    snapd.seed("lxd", "latest/stable")
    host.lxd_not_found = True
    half_joined(host, reason=reason)
    machine = machine_for(host, Memory(), joining=True, mode="cluster")
    with machine.lxd() as lxd:
        assert lxd is host.fake_lxd  # type: ignore[comparison-overlap]  # the fake stands in
    assert host.lxd_restarts == 1
    left = sorted(str(p.relative_to(host.lxd_dir)) for p in host.lxd_dir.rglob("*"))
    assert left == [
        "containers",
        "logs",
        "logs/lxd.log",
        "server.crt",
        "storage-pools",
        "virtual-machines",
    ]


@pytest.mark.parametrize(
    ("memory", "joining", "instance"),
    [
        (Memory(initialised=True), True, ""),  # it was a member: never reset
        (Memory(), True, "precious"),  # an instance lives here
        (Memory(), False, ""),  # no join of ours could have written that database
    ],
)
def test_a_half_join_is_never_reset_where_that_could_lose_something(
    host: FakeHost, snapd: FakeSnapd, memory: Memory, joining: bool, instance: str
) -> None:
    snapd.seed("lxd", "latest/stable")
    host.lxd_not_found = True
    half_joined(host, instance=instance)
    machine = machine_for(host, memory, joining=joining, mode="cluster")
    cannot_start = r"^LXD cannot start: Failed to initialize global"
    with pytest.raises(BlockedError, match=cannot_start), machine.lxd():
        pass
    assert host.lxd_restarts == 0
    assert (host.lxd_dir / "database/global/db.bin").exists()


LEFTOVER_CERT = (
    'Failed to initialize member: Failed adding local trusted certificate "node1" '
    '(c0bbf6b28585bbaad8de5fcf5b0435e9fd38a31921d28e65bba40391d50a8229): This "certificates" '
    "entry already exists"
)


def test_a_join_refused_over_its_own_leftover_trust_entry_is_recognised() -> None:
    """Captured from LXD 5.0 (one run of five under load): killed just after the pool case."""
    from lxd_charm import half_join

    assert half_join.leftover_refusal(LEFTOVER_CERT)
    assert half_join.leftover_certificates(LEFTOVER_CERT) == [
        ("node1", "c0bbf6b28585bbaad8de5fcf5b0435e9fd38a31921d28e65bba40391d50a8229")
    ]
    assert not half_join.leftover_refusal("Failed to initialize member: the disk is full")


def test_clearing_a_half_join_removes_the_leftover_trust_entry(
    host: FakeHost, snapd: FakeSnapd
) -> None:
    pem = generate_client_certificate("node1").certificate
    entry = host.fake_lxd.trust.add(pem, name="node1")
    refusal = LEFTOVER_CERT.replace(
        "c0bbf6b28585bbaad8de5fcf5b0435e9fd38a31921d28e65bba40391d50a8229", entry.fingerprint
    )
    machine = machine_for(host, Memory(), joining=True, mode="cluster")
    cleared = machine.clear_half_join(host.fake_lxd, refusal)  # type: ignore[arg-type]
    assert cleared == ["trust entry node1"]
    assert host.fake_lxd.trust.entries() == []
