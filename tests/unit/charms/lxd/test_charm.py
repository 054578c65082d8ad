"""The LXD charm's hooks, driven by ops.testing against a fake machine (see conftest)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm.config import LxdConfig
from lxd_common.snap import machine_arch
from tests.harness.fake_host import FakeHost, set_boot
from tests.harness.fake_snapd import FakeSnapd

EMPTY = Path("/dev/null")
HTTPS_NET = testing.Network("https", [testing.BindAddress([testing.Address("10.0.0.5")])])


def run(
    ctx: testing.Context[Any], event: str, state: testing.State, **kwargs: Any
) -> testing.State:
    """Run one hook; resources the state does not name are attached as empty files.

    An empty file is what Charmhub serves for a resource nobody uploaded, and
    what an operator attaches to detach one.
    """
    named = {resource.name for resource in state.resources}
    missing = {
        testing.Resource(name=n, path=EMPTY) for n in ("lxd-binary", "lxd-snap") if n not in named
    }
    return ctx.run(
        getattr(ctx.on, event)(**kwargs),
        replace(state, resources=frozenset({*state.resources, *missing})),
    )


def installed(ctx: testing.Context[Any], **config: Any) -> testing.State:
    """The state after a successful install with ``config``."""
    state = run(ctx, "install", testing.State(config=config))
    return run(ctx, "start", state)


# --- install and initialisation ----------------------------------------------


def test_install_initialises_with_defaults(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    state = installed(ctx)
    # snap-channel=auto, no lxd-installer: the store's default channel
    assert snapd.calls[0] == ("install", "lxd", None)
    assert snapd.snaps["lxd"].channel == snapd.default_channel
    (preseed,) = host.fake_lxd.preseeds
    assert preseed["storage_pools"] == [{"name": "default", "driver": "dir"}]
    assert preseed["networks"][0]["name"] == "lxdbr0"
    assert preseed["profiles"][0]["devices"]["root"]["pool"] == "default"
    assert preseed["profiles"][0]["devices"]["eth0"]["network"] == "lxdbr0"
    assert host.tuning.applied[-1] is True and host.hardened.applied[-1] is True
    assert state.unit_status == testing.ActiveStatus("standalone; no network listener")


def test_install_uses_the_operators_preseed(ctx: testing.Context[Any], host: FakeHost) -> None:
    preseed = "config:\n  images.auto_update_interval: '0'\n"
    installed(ctx, **{"lxd-preseed": preseed})
    assert host.fake_lxd.preseeds == [{"config": {"images.auto_update_interval": "0"}}]


def test_no_storage_no_network(ctx: testing.Context[Any], host: FakeHost) -> None:
    installed(ctx, **{"lxd-init-storage": False, "lxd-init-network": False})
    assert host.fake_lxd.preseeds == [{}]


def test_block_device_goes_to_a_block_driver(ctx: testing.Context[Any], host: FakeHost) -> None:
    local = testing.Storage("local")
    state = testing.State(config={"lxd-init-storage-driver": "zfs"}, storages={local})
    run(ctx, "install", state)
    pool = host.fake_lxd.preseeds[0]["storage_pools"][0]
    assert pool["driver"] == "zfs"
    assert pool["config"]["source"] == str(local.get_filesystem(ctx))


def test_block_device_with_dir_driver_blocks(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = testing.State(
        config={"lxd-init-storage-driver": "dir"}, storages={testing.Storage("local")}
    )
    out = run(ctx, "install", state)
    assert host.fake_lxd.preseeds == []
    assert out.unit_status.name == "blocked"
    assert "cannot use the attached block device" in out.unit_status.message


def test_preseed_lxd_refuses_blocks_and_is_retried(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    host.fake_lxd.refuse_preseed = "Storage pool driver 'nope' is unknown"
    out = run(ctx, "install", testing.State())
    assert out.unit_status == testing.BlockedStatus(
        "LXD refused the preseed: Storage pool driver 'nope' is unknown: fix lxd-init-*"
    )
    host.fake_lxd.refuse_preseed = None
    out = run(ctx, "update-status".replace("-", "_"), out)
    assert len(host.fake_lxd.preseeds) == 1
    assert out.unit_status.name == "active"


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("lxd-preseed", "config: [unclosed", "invalid lxd-preseed: the preseed is not valid YAML"),
        ("lxd-preseed", "bogus: 1", "invalid lxd-preseed: unknown preseed key(s) bogus"),
        ("snap-channel", "latest/bogus", "invalid snap-channel"),
        ("mode", "x", "invalid mode 'x': set mode to standalone or cluster"),
        ("lxd-init-storage-driver", "ext4", "invalid lxd-init-storage-driver 'ext4'"),
        ("lxd-init-storage-driver", "", "invalid lxd-init-storage-driver ''"),
        ("lxd-init-network-bridge", "bad name!", "invalid lxd-init-network-bridge 'bad name!'"),
        ("lxd-init-network-bridge", "", "invalid lxd-init-network-bridge ''"),
    ],
)
def test_bad_config_blocks_and_changes_nothing(
    ctx: testing.Context[Any],
    host: FakeHost,
    snapd: FakeSnapd,
    option: str,
    value: str,
    error: str,
) -> None:
    out = run(ctx, "install", testing.State(config={option: value}))
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(error)
    assert snapd.calls == [] and host.fake_lxd.preseeds == []


# --- immutable options ---------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"), [("lxd-preseed", "config: {}\n"), ("mode", "cluster")]
)
def test_changing_an_init_option_is_refused_until_undone(
    ctx: testing.Context[Any], host: FakeHost, option: str, value: str
) -> None:
    state = installed(ctx)
    changed = run(ctx, "config_changed", replace(state, config={**state.config, option: value}))
    assert changed.unit_status.name == "blocked"
    assert (
        f"{option} cannot change once LXD is initialised: set it back to"
        in changed.unit_status.message
    )
    assert len(host.fake_lxd.preseeds) == 1, "nothing is re-initialised"
    undone = run(ctx, "config_changed", replace(changed, config=state.config))
    assert undone.unit_status.name == "active"


# --- snap ----------------------------------------------------------------------


def test_channel_change_refreshes(ctx: testing.Context[Any], snapd: FakeSnapd) -> None:
    state = installed(ctx, **{"snap-channel": "5.0/stable"})
    run(ctx, "config_changed", replace(state, config={"snap-channel": "5.21/stable"}))
    assert snapd.snaps["lxd"].channel == "5.21/stable"
    assert ("refresh", "lxd", "5.21/stable") in snapd.calls


def test_downgrade_is_refused_naming_both_channels(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    state = installed(ctx, **{"snap-channel": "5.21/stable"})
    out = run(ctx, "config_changed", replace(state, config={"snap-channel": "5.0/stable"}))
    assert snapd.snaps["lxd"].channel == "5.21/stable"
    assert out.unit_status.name == "blocked"
    assert "5.0/stable" in out.unit_status.message and "5.21/stable" in out.unit_status.message


def test_snapd_failure_blocks_with_reason(ctx: testing.Context[Any], snapd: FakeSnapd) -> None:
    snapd.fail_on("install")
    out = run(ctx, "install", testing.State())
    assert out.unit_status == testing.BlockedStatus(
        "cannot install LXD: fake snapd: install failed"
    )


def test_live_snap_config_applies_now(ctx: testing.Context[Any], snapd: FakeSnapd) -> None:
    state = installed(ctx)
    run(ctx, "config_changed", replace(state, config={"snap-config-daemon-debug": True}))
    assert snapd.config["lxd"]["daemon.debug"] == "true"


def test_lxcfs_keys_wait_for_a_reboot(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    state = installed(ctx)
    out = run(ctx, "config_changed", replace(state, config={"snap-config-lxcfs-loadavg": True}))
    assert out.unit_status == testing.BlockedStatus(
        "reboot to apply snap config lxcfs.loadavg (see show-pending-config)"
    )
    # Later live changes queue behind the reboot.
    out = run(
        ctx,
        "config_changed",
        replace(out, config={"snap-config-lxcfs-loadavg": True, "snap-config-daemon-debug": True}),
    )
    assert "daemon.debug" not in snapd.config["lxd"]
    ctx.run(ctx.on.action("show-pending-config"), out)
    assert ctx.action_results is not None
    pending = ctx.action_results["pending"]
    assert "lxcfs.loadavg=true" in pending and "daemon.debug=true" in pending
    # After the reboot the queue is applied and the unit is active again.
    set_boot(host.root, "boot-2")
    out = run(ctx, "start", out)
    assert snapd.config["lxd"]["daemon.debug"] == "true"
    assert out.unit_status.name == "active"
    ctx.run(ctx.on.action("show-pending-config"), out)
    assert ctx.action_results == {"pending": "nothing pending"}


def test_lxcfs_keys_before_initialisation_apply_at_once(
    ctx: testing.Context[Any], snapd: FakeSnapd
) -> None:
    out = installed(ctx, **{"snap-config-lxcfs-cfs": True})
    assert snapd.config["lxd"]["lxcfs.cfs"] == "true"
    assert out.unit_status.name == "active"


# --- listeners -------------------------------------------------------------------


def test_https_listener_on_the_bound_space(ctx: testing.Context[Any], host: FakeHost) -> None:
    state = replace(installed(ctx), networks=frozenset({HTTPS_NET}))
    out = run(ctx, "config_changed", replace(state, config={"lxd-listen-https": True}))
    assert host.fake_lxd.config["core.https_address"] == "10.0.0.5:8443"
    assert out.opened_ports == {testing.TCPPort(8443)}
    assert out.unit_status == testing.ActiveStatus("standalone; https on 10.0.0.5:8443")
    off = run(ctx, "config_changed", replace(out, config={"lxd-listen-https": False}))
    assert "core.https_address" not in host.fake_lxd.config
    assert off.opened_ports == frozenset()


def test_ipv6_listener_is_bracketed_and_dns_opens_udp(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    dns = testing.Network("dns", [testing.BindAddress([testing.Address("2001:db8::7")])])
    state = replace(installed(ctx), networks=frozenset({dns}))
    out = run(ctx, "config_changed", replace(state, config={"lxd-listen-dns": True}))
    assert host.fake_lxd.config["core.dns_address"] == "[2001:db8::7]:53"
    assert out.opened_ports == {testing.TCPPort(53), testing.UDPPort(53)}


# --- proxy -------------------------------------------------------------------------


def test_model_proxy_is_mirrored_then_undone(
    ctx: testing.Context[Any], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUJU_CHARM_HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("JUJU_CHARM_NO_PROXY", "10.0.0.0/8")
    state = installed(ctx)
    assert host.fake_lxd.config["core.proxy_http"] == "http://proxy:3128"
    assert host.fake_lxd.config["core.proxy_ignore_hosts"] == "10.0.0.0/8"
    monkeypatch.delenv("JUJU_CHARM_HTTP_PROXY")
    monkeypatch.delenv("JUJU_CHARM_NO_PROXY")
    run(ctx, "config_changed", state)
    assert "core.proxy_http" not in host.fake_lxd.config
    assert "core.proxy_ignore_hosts" not in host.fake_lxd.config


# --- LXD availability and idempotency ------------------------------------------------


def test_unreachable_lxd_waits_then_recovers(ctx: testing.Context[Any], host: FakeHost) -> None:
    host.fake_lxd.unreachable = True
    out = run(ctx, "install", testing.State())
    assert out.unit_status == testing.WaitingStatus(
        "LXD is not answering: cannot reach LXD while testing: connection refused"
    )
    host.fake_lxd.unreachable = False
    out = run(ctx, "update_status", out)
    assert out.unit_status.name == "active"


def test_lxd_that_stops_answering_mid_hook_waits_then_recovers(
    ctx: testing.Context[Any], host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host.fake_lxd, "connect", lambda: None)  # it answered the connection
    host.fake_lxd.unreachable = True
    out = run(ctx, "install", testing.State())
    assert out.unit_status.name == "waiting"
    assert "LXD stopped answering" in out.unit_status.message
    host.fake_lxd.unreachable = False
    out = run(ctx, "update_status", out)
    assert out.unit_status.name == "active"


def test_update_status_costs_one_lxd_call(ctx: testing.Context[Any], host: FakeHost) -> None:
    """Connecting is the one request (pylxd asks /1.0): it proves LXD answers."""
    state = installed(ctx)
    before = host.fake_lxd.calls
    out = run(ctx, "update_status", state)
    assert host.fake_lxd.calls - before == 1
    assert out.unit_status == state.unit_status


def test_the_same_hook_twice_changes_nothing_the_second_time(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    config = {"lxd-listen-https": True, "snap-config-daemon-debug": True}
    state = replace(installed(ctx, **config), networks=frozenset({HTTPS_NET}))
    once = run(ctx, "config_changed", state)
    calls, lxd_config, preseeds = (
        list(snapd.calls),
        dict(host.fake_lxd.config),
        len(host.fake_lxd.preseeds),
    )
    twice = run(ctx, "config_changed", once)
    assert snapd.calls == calls
    assert host.fake_lxd.config == lxd_config
    assert len(host.fake_lxd.preseeds) == preseeds == 1
    assert twice.unit_status == once.unit_status


# --- resources -----------------------------------------------------------------------


def other_arch() -> str:
    """An architecture this machine is not."""
    return "s390x" if machine_arch() != "s390x" else "amd64"


def snap_tarball(path: Path, arch: str) -> Path:
    """An `lxd-snap` resource tarball (written over ``path``) holding one snap, for ``arch``."""
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(f"lxd_{arch}.snap")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"snap"))
    return path


def test_binary_resource_is_sideloaded_and_detached(
    ctx: testing.Context[Any], host: FakeHost, tmp_path: Path
) -> None:
    binary = tmp_path / "lxd"
    binary.write_bytes(b"\x7fELF debug build")
    host.debug_binary.parent.mkdir(parents=True)
    state = testing.State(resources={testing.Resource(name="lxd-binary", path=binary)})
    run(ctx, "install", state)
    assert host.debug_binary.read_bytes() == b"\x7fELF debug build"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    run(
        ctx,
        "upgrade_charm",
        replace(state, resources=frozenset({testing.Resource(name="lxd-binary", path=empty)})),
    )
    assert not host.debug_binary.exists()


def test_resources_are_fetched_at_install_and_upgrade_charm_only(
    ctx: testing.Context[Any], host: FakeHost, tmp_path: Path
) -> None:
    """Juju changes a unit's resources only through upgrade-charm (`juju attach-resource`).

    Other hooks do not fetch them: each `resource-get` syncs with the
    controller. A state that names another file for the resource stands for
    what `resource-get` would give; only upgrade-charm looks at it.
    """
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"\x7fELF first build")
    second.write_bytes(b"\x7fELF second build")
    host.debug_binary.parent.mkdir(parents=True)
    state = run(
        ctx, "install", testing.State(resources={testing.Resource(name="lxd-binary", path=first)})
    )
    # The snap comes first on a fresh machine: LXD restarts onto the build in its directory.
    assert state.unit_status == testing.ActiveStatus(state.unit_status.message)
    assert host.debug_binary.read_bytes() == b"\x7fELF first build"
    newer = frozenset({testing.Resource(name="lxd-binary", path=second)})
    attached = replace(state, resources=newer)
    for hook in ("config_changed", "update_status", "start"):
        # Not active: update-status and start reconcile too, instead of skipping.
        state = run(ctx, hook, replace(attached, unit_status=testing.WaitingStatus("x")))
        assert host.debug_binary.read_bytes() == b"\x7fELF first build", hook
    run(ctx, "upgrade_charm", replace(state, resources=attached.resources))
    assert host.debug_binary.read_bytes() == b"\x7fELF second build"


def test_a_sideload_that_failed_is_tried_again_by_the_next_reconcile(
    ctx: testing.Context[Any], snapd: FakeSnapd, tmp_path: Path
) -> None:
    tarball = snap_tarball(tmp_path / "snaps.tar", other_arch())
    resource = testing.Resource(name="lxd-snap", path=tarball)
    out = run(ctx, "install", testing.State(resources={resource}))
    assert out.unit_status.name == "blocked"
    snap_tarball(tarball, machine_arch())  # the same resource, now with this machine's snap
    out = run(ctx, "config_changed", out)
    assert [path.name for path in snapd.installed_files] == [f"lxd_{machine_arch()}.snap"]
    assert out.unit_status.name == "active"


def test_snap_tarball_without_this_arch_blocks(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd, tmp_path: Path
) -> None:
    tarball = snap_tarball(tmp_path / "snaps.tar", other_arch())
    out = run(
        ctx, "install", testing.State(resources={testing.Resource(name="lxd-snap", path=tarball)})
    )
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("cannot use the lxd-snap resource")
    assert machine_arch() in out.unit_status.message
    assert snapd.installed_files == []


def test_snap_resource_is_installed_once(
    ctx: testing.Context[Any], snapd: FakeSnapd, tmp_path: Path
) -> None:
    snap = tmp_path / "lxd.snap"
    snap.write_bytes(b"a snap")
    state = testing.State(resources={testing.Resource(name="lxd-snap", path=snap)})
    out = run(ctx, "install", state)
    run(ctx, "config_changed", out)
    assert snapd.installed_files == [snap]
    assert snapd.snaps["lxd"].revision == "x1"


def test_config_class_defaults_match_charmcraft_yaml(ctx: testing.Context[Any]) -> None:
    import yaml

    options = yaml.safe_load(
        (Path(__file__).parents[4] / "charms/lxd/charmcraft.yaml").read_text()
    )["config"]["options"]
    defaults = LxdConfig()
    for name, option in options.items():
        assert getattr(defaults, name.replace("-", "_")) == option.get("default"), name


# --- actions wiring (the actions' own logic is in test_actions.py) ---------------------


def test_token_action_needs_the_https_listener(ctx: testing.Context[Any]) -> None:
    state = installed(ctx)
    with pytest.raises(testing.ActionFailed, match="lxd-listen-https=true"):
        ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)


def test_actions_fail_with_lxds_reason_when_it_is_down(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx, **{"lxd-listen-https": True})
    host.fake_lxd.unreachable = True
    host.lxd_missing = True
    with pytest.raises(testing.ActionFailed, match="LXD: no socket"):
        ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)


def test_debug_action_failure_is_an_action_failure(
    ctx: testing.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lxd_charm import actions

    def no_buginfo() -> dict[str, str]:
        raise actions.ActionError("lxd.buginfo is not installed")

    monkeypatch.setattr(actions, "collect_debug_info", no_buginfo)
    with pytest.raises(testing.ActionFailed, match=r"lxd\.buginfo is not installed"):
        ctx.run(ctx.on.action("debug"), installed(ctx))


def test_debug_action_returns_the_report(
    ctx: testing.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lxd_charm import actions

    monkeypatch.setattr(actions, "collect_debug_info", lambda: {"buginfo": "report"})
    ctx.run(ctx.on.action("debug"), installed(ctx))
    assert ctx.action_results == {"buginfo": "report"}


def test_detaching_the_snap_resource_goes_back_to_the_store(
    ctx: testing.Context[Any], snapd: FakeSnapd, tmp_path: Path
) -> None:
    snap = tmp_path / "lxd.snap"
    snap.write_bytes(b"a snap")
    state = testing.State(resources={testing.Resource(name="lxd-snap", path=snap)})
    out = run(ctx, "install", state)
    assert snapd.snaps["lxd"].revision == "x1"
    empty = tmp_path / "empty.snap"
    empty.write_bytes(b"")
    out = run(
        ctx,
        "upgrade_charm",
        replace(out, resources=frozenset({testing.Resource(name="lxd-snap", path=empty)})),
    )
    # snap-channel=auto: back to the store's default channel
    assert snapd.calls[-1] == ("refresh", "lxd", None)
    assert snapd.snaps["lxd"].channel == snapd.default_channel
    assert out.unit_status.name == "active"
