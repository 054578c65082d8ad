"""Switching from Canonical's `lxd` charm: its options, its bundles, a refresh.

The option table below is test data, written down from Canonical's
charm-lxd charmcraft.yaml (names, types, defaults); nothing of it is code.
Juju's rules for option values are emulated from its charm config code
(juju/charm `config.go`, with juju/schema's checkers):

- `ParseSettingsYAML` (a bundle's options, a `--config` file): a value that
  is a string is *parsed* for the option's type (`strconv.ParseBool` for a
  boolean: "true", "False", "1", "f"...); any other value must already have
  the type (`validate`, juju/schema's `String()` accepts only strings), or
  the deploy is refused with `option %q expected %s, got %#v`, e.g.
  `option "lxd-init-storage" expected string, got false` for an unquoted
  `lxd-init-storage: false` under a string option. That is why
  `lxd-init-storage` and `lxd-init-network` are booleans here, as there.
- on `juju refresh --switch` the application's settings are filtered
  through the new charm's options (`FilterSettings`): a value that does not
  validate against the new type is dropped, so the option falls back to the
  new charm's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ops import testing

import tests.harness.charms  # noqa: F401  (puts each charm's src/ on sys.path)
from lxd_charm.config import LxdConfig
from lxd_common.snap import LxdSnap
from scripts.packing.projects import REPO
from tests.harness.fake_host import FakeHost
from tests.harness.fake_snapd import FakeSnapd

# name: (type, default) in Canonical's charm; None: no default.
CANONICAL_OPTIONS: dict[str, tuple[str, Any]] = {
    "kernel-hardening": ("boolean", True),
    "lxd-init-network": ("boolean", True),
    "lxd-init-storage": ("boolean", True),
    "lxd-listen-bgp": ("boolean", False),
    "lxd-listen-dns": ("boolean", False),
    "lxd-listen-https": ("boolean", False),
    "lxd-listen-metrics": ("boolean", False),
    "lxd-preseed": ("string", None),
    "mode": ("string", "standalone"),
    "snap-channel": ("string", "auto"),
    "snap-config-ceph-builtin": ("boolean", True),
    "snap-config-ceph-external": ("boolean", None),
    "snap-config-criu-enable": ("boolean", None),
    "snap-config-daemon-debug": ("boolean", None),
    "snap-config-daemon-group": ("string", None),
    "snap-config-daemon-syslog": ("boolean", None),
    "snap-config-lvm-external": ("boolean", None),
    "snap-config-lxcfs-pidfd": ("boolean", None),
    "snap-config-lxcfs-loadavg": ("boolean", None),
    "snap-config-lxcfs-cfs": ("boolean", None),
    "snap-config-lxcfs-debug": ("boolean", None),
    "snap-config-openvswitch-builtin": ("boolean", None),
    "snap-config-openvswitch-external": ("boolean", None),
    "snap-config-ovn-builtin": ("boolean", True),
    "snap-config-shiftfs-enable": ("string", None),
    "snap-config-ui-enable": ("boolean", False),
    "sysctl-tuning": ("boolean", True),
}
#: A bundle written for Canonical's charm: its README's deploy line and its
#: lxd-and-ceph bundle's options, plus the options an operator sets most.
CANONICAL_BUNDLE = """
applications:
  lxd:
    charm: lxd
    num_units: 4
    options:
      mode: cluster
      snap-channel: 5.0/stable
      lxd-listen-https: true
      snap-config-ceph-builtin: true
      snap-config-ui-enable: true
      snap-config-lxcfs-debug: false
      snap-config-openvswitch-external: true
      snap-config-daemon-group: lxd
      lxd-init-storage: false
      lxd-init-network: true
"""

OUR_OPTIONS: dict[str, Any] = yaml.safe_load((REPO / "charms/lxd/charmcraft.yaml").read_text())[
    "config"
]["options"]

EMPTY_RESOURCES = frozenset(
    testing.Resource(name=name, path=Path("/dev/null")) for name in ("lxd-binary", "lxd-snap")
)
_PYTHON_TYPES = {"string": str, "boolean": bool, "int": int, "float": float}


#: strconv.ParseBool's spellings, what Juju parses a string value of a boolean option with.
PARSE_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


def juju_parse(options: dict[str, Any], charm_options: dict[str, Any]) -> dict[str, Any]:
    """Juju's ParseSettingsYAML: strings parsed per type, other values must have it.

    Raises:
        ValueError: with Juju's complaint (`option %q expected %s, got %#v`),
            where Juju refuses the deploy.
    """
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in charm_options:
            raise ValueError(f"unknown option {name!r}")
        kind = charm_options[name]["type"]
        if isinstance(value, str) and kind == "boolean":
            if value not in PARSE_BOOL:
                raise ValueError(f'option "{name}" expected boolean, got "{value}"')
            value = PARSE_BOOL[value]
        elif not isinstance(value, _PYTHON_TYPES[kind]) or (
            kind != "boolean" and isinstance(value, bool)
        ):
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f'option "{name}" expected {kind}, got {shown}')
        out[name] = value
    return out


def juju_filter(settings: dict[str, Any], charm_options: dict[str, Any]) -> dict[str, Any]:
    """Juju's FilterSettings on refresh: values the new option types refuse are dropped."""
    kept = {}
    for name, value in settings.items():
        kind = charm_options.get(name, {}).get("type")
        if kind is None:
            continue
        python = _PYTHON_TYPES[kind]
        if isinstance(value, python) and (kind == "boolean" or not isinstance(value, bool)):
            kept[name] = value
    return kept


def lxd_config(settings: dict[str, Any]) -> LxdConfig:
    """What `load_config(LxdConfig)` builds: our defaults, then the settings."""
    values = {name: spec.get("default") for name, spec in OUR_OPTIONS.items()}
    values.update(settings)
    return LxdConfig(**{name.replace("-", "_"): v for name, v in values.items()})


# --- every option of theirs, with a compatible type and the same default ---------


@pytest.mark.parametrize("name", sorted(CANONICAL_OPTIONS))
def test_every_canonical_option_exists_here_with_a_compatible_type(name: str) -> None:
    kind, default = CANONICAL_OPTIONS[name]
    ours = OUR_OPTIONS[name]
    assert ours["type"] == kind
    if kind == "string" and default is None:
        assert not ours.get("default")  # unset there, empty here: the same to the charm
    else:
        assert ours.get("default") == default


def test_the_new_snap_options_reach_the_snap() -> None:
    config = lxd_config(
        {
            "snap-config-lxcfs-debug": True,
            "snap-config-openvswitch-external": True,
            "snap-config-ui-enable": True,
        }
    )
    snapd = FakeSnapd()
    snapd.seed("lxd", "5.21/stable")
    changes = LxdSnap(snapd).config_changes(config.snap_config())
    assert changes["lxcfs.debug"] == "true"
    assert changes["openvswitch.external"] == "true"
    assert changes["ui.enable"] == "true"
    assert changes["ceph.builtin"] == "true"  # the default now, as in Canonical's charm
    assert LxdSnap.split_pending(["lxcfs.debug"]) == ([], ["lxcfs.debug"])


# --- lxd-init-storage / lxd-init-network: booleans, as there ---------------------------


@pytest.mark.parametrize(
    ("settings", "driver", "bridge"),
    [
        ({}, "dir", "lxdbr0"),
        ({"lxd-init-storage": False, "lxd-init-network": False}, "", ""),
        ({"lxd-init-storage": True, "lxd-init-network": False}, "dir", ""),
        (
            {"lxd-init-storage-driver": "zfs", "lxd-init-network-bridge": "br-lab"},
            "zfs",
            "br-lab",
        ),
        # a name for something not created is kept, and unused
        ({"lxd-init-storage": False, "lxd-init-storage-driver": "lvm"}, "", "lxdbr0"),
    ],
)
def test_the_booleans_say_whether_and_the_strings_say_what(
    settings: dict[str, Any], driver: str, bridge: str
) -> None:
    config = lxd_config(settings)
    assert (config.storage_driver, config.network_bridge) == (driver, bridge)


def test_the_new_string_options_are_ours_only_and_strings() -> None:
    for name in ("lxd-init-storage-driver", "lxd-init-network-bridge"):
        assert name not in CANONICAL_OPTIONS
        assert OUR_OPTIONS[name]["type"] == "string"


def test_a_bundle_written_for_canonicals_charm_deploys() -> None:
    """The bundle's options, unquoted booleans included, pass Juju's type rules here."""
    bundle = yaml.safe_load(CANONICAL_BUNDLE)
    options = bundle["applications"]["lxd"]["options"]
    assert options["lxd-init-storage"] is False, "test data: a YAML boolean, unquoted"
    for name in options:
        assert name in CANONICAL_OPTIONS, f"test data: {name} is not Canonical's"
    config = lxd_config(juju_parse(options, OUR_OPTIONS))
    assert config.mode == "cluster"
    assert config.snap_channel == "5.0/stable"
    assert config.lxd_listen_https is True
    assert (config.storage_driver, config.network_bridge) == ("", "lxdbr0")
    snap = config.snap_config()
    assert snap["ui-enable"] is True and snap["openvswitch-external"] is True
    assert snap["lxcfs-debug"] is False and snap["daemon-group"] == "lxd"


def test_juju_parses_the_quoted_spellings_too() -> None:
    for spelling, value in (("false", False), ("True", True), ("0", False), ("t", True)):
        parsed = juju_parse({"lxd-init-network": spelling}, OUR_OPTIONS)
        assert lxd_config(parsed).lxd_init_network is value


def test_juju_refuses_a_boolean_under_a_string_option() -> None:
    """Juju's words, from `Option.validate`: `option %q expected %s, got %#v`.

    What a bundle with `lxd-init-storage: false` met while the option was a
    string here; now only our own string options can meet it.
    """
    options = yaml.safe_load("lxd-init-storage-driver: false\n")
    with pytest.raises(ValueError) as refused:
        juju_parse(options, OUR_OPTIONS)
    assert str(refused.value) == 'option "lxd-init-storage-driver" expected string, got false'
    assert juju_parse(yaml.safe_load("lxd-init-storage: false\n"), OUR_OPTIONS) == {
        "lxd-init-storage": False
    }


def test_a_refresh_keeps_their_boolean_init_values() -> None:
    # Stored by Juju for Canonical's charm: only what the operator set.
    theirs = {
        "lxd-init-storage": False,
        "lxd-init-network": False,
        "snap-channel": "5.21/stable",
        "mode": "cluster",
        "snap-config-ceph-builtin": False,
        "lxd-listen-https": True,
    }
    kept = juju_filter(theirs, OUR_OPTIONS)
    assert kept == theirs, "every value has the same type here: nothing is dropped"
    config = lxd_config(kept)
    assert (config.storage_driver, config.network_bridge) == ("", "")


def test_a_unit_initialised_after_a_refresh_follows_their_booleans(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    config = {"lxd-init-storage": False, "lxd-init-network": True}
    ctx.run(ctx.on.install(), testing.State(config=config, resources=EMPTY_RESOURCES))
    [preseed] = host.fake_lxd.preseeds
    assert "storage_pools" not in preseed
    assert [n["name"] for n in preseed["networks"]] == ["lxdbr0"]


# --- snap-channel=auto --------------------------------------------------------------


def test_auto_installs_through_lxd_installer_where_present() -> None:
    snapd = FakeSnapd(lxd_installer="5.21/stable")
    assert LxdSnap(snapd).ensure("auto") is True
    assert snapd.calls == [("run_installer", "lxd")]
    assert snapd.snaps["lxd"].channel == "5.21/stable"
    assert LxdSnap(snapd).ensure("auto") is False, "installed: auto moves nothing"


def test_auto_without_lxd_installer_installs_from_the_default_channel() -> None:
    snapd = FakeSnapd(default_channel="6/stable")
    assert LxdSnap(snapd).ensure("auto") is True
    assert snapd.calls == [("install", "lxd", None)]
    assert snapd.snaps["lxd"].channel == "6/stable"


def test_auto_leaves_an_installed_snap_on_its_channel() -> None:
    snapd = FakeSnapd(lxd_installer="5.21/stable")
    snapd.seed("lxd", "5.0/stable")
    assert LxdSnap(snapd).ensure("auto") is False
    assert snapd.calls == []


def test_the_charm_installs_through_lxd_installer_by_default(
    ctx: testing.Context[Any], host: FakeHost, snapd: FakeSnapd
) -> None:
    snapd.lxd_installer = "5.21/stable"
    out = ctx.run(ctx.on.install(), testing.State(resources=EMPTY_RESOURCES))
    assert snapd.calls[0] == ("run_installer", "lxd")
    assert snapd.snaps["lxd"].channel == "5.21/stable"
    assert out.unit_status.name == "active"


def test_an_invalid_channel_still_names_auto() -> None:
    with pytest.raises(ValueError, match="or `auto`"):
        LxdConfig(snap_channel="automatic")


def test_the_real_backend_finds_lxd_installers_script_not_a_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lxd_common.snap import _snapd

    monkeypatch.setattr(_snapd, "INSTALLER_DIR", tmp_path)
    backend = _snapd.CharmlibsSnapBackend()
    assert backend.installer("lxd") is None  # no wrapper
    (tmp_path / "lxd").write_bytes(b"\x7fELF\x02\x01")  # a distribution's real binary
    assert backend.installer("lxd") is None
    (tmp_path / "lxd").write_text("#!/bin/sh\nexec snap install lxd\n")
    assert backend.installer("lxd") == tmp_path / "lxd"


def test_the_real_backend_runs_the_wrapper_and_maps_its_failure(tmp_path: Path) -> None:
    from lxd_common.errors import SnapError
    from lxd_common.snap import CharmlibsSnapBackend

    ran = tmp_path / "ran"
    wrapper = tmp_path / "lxd"
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {ran}\n')
    wrapper.chmod(0o755)
    CharmlibsSnapBackend().run_installer(wrapper)
    assert ran.read_text() == "version\n"
    wrapper.write_text("#!/bin/sh\necho 'no network' >&2\nexit 1\n")
    with pytest.raises(SnapError, match=r"lxd-installer.*no network"):
        CharmlibsSnapBackend().run_installer(wrapper)
