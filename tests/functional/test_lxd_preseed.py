"""Initialising real daemons from preseeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxd_common.errors import LxdApiError, PreseedError
from tests.harness.lxd_daemons import LxdDaemon

PRESEED = """
config:
  core.https_address: {address}
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root: {{path: /, pool: local, type: disk}}
"""


def test_preseed_initialises_storage_profile_and_listener(
    daemon: LxdDaemon, busybox_image: Path
) -> None:
    lxd = daemon.client()
    lxd.apply_preseed(PRESEED.format(address=daemon.address))

    assert lxd.server_config()["core.https_address"] == daemon.address
    pools = [p.name for p in lxd.pylxd.storage_pools.all()]
    assert pools == ["local"]
    assert lxd.pylxd.profiles.get("default").devices["root"]["pool"] == "local"
    # The daemon is usable: an instance starts from the local image.
    daemon.import_image(busybox_image)
    daemon.lxc("launch", "busybox", "c1")
    assert lxd.pylxd.instances.get("c1").status == "Running"


def test_malformed_preseed_is_refused_before_lxd_sees_it(daemon: LxdDaemon) -> None:
    lxd = daemon.client()
    with pytest.raises(PreseedError, match="not valid YAML"):
        lxd.apply_preseed("config: [unclosed")
    with pytest.raises(PreseedError, match="unknown preseed key"):
        lxd.apply_preseed("storage_pool:\n- name: x\n  driver: dir\n")
    assert lxd.pylxd.storage_pools.all() == []


def test_preseed_lxd_refuses_reports_lxds_reason_and_changes_nothing(daemon: LxdDaemon) -> None:
    lxd = daemon.client()
    bad = "storage_pools:\n- name: broken\n  driver: no-such-driver\n"
    with pytest.raises(LxdApiError, match="LXD refused the preseed"):
        lxd.apply_preseed(bad)
    assert lxd.pylxd.storage_pools.all() == []
