"""Each decision of the snap policy (downgrades, config values), one wrong answer each."""

from __future__ import annotations

import re

import pytest

from lxd_common.errors import SnapConfigError, SnapDowngradeError
from lxd_common.snap import InstalledSnap, LxdSnap
from lxd_common.snap._config import desired_value
from tests.harness.fake_snapd import FakeSnapd


def test_a_downgrade_from_a_local_install_says_exactly_what_to_set() -> None:
    snapd = FakeSnapd()
    snapd.snaps["lxd"] = InstalledSnap("lxd", "", "x1", "5.21.0")
    message = (
        "refusing to move lxd from a local install of 5.21.0 to 5.0/stable: LXD cannot be "
        "downgraded; set snap-channel back to a track no older than that"
    )
    with pytest.raises(SnapDowngradeError, match=f"^{re.escape(message)}$"):
        LxdSnap(snapd).ensure("5.0/stable")
    assert snapd.calls == []


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lxcfs.cfs", "false", "false"),
        ("lxcfs.cfs", "False", "false"),
        ("daemon.debug", "TRUE", "true"),
        ("daemon.group", "LXD-Admins", "LXD-Admins"),  # a group name keeps its case
        ("shiftfs.enable", "Auto", "Auto"),
    ],
)
def test_boolean_keys_are_lowercased_and_string_keys_kept(
    key: str, value: str, expected: str
) -> None:
    assert desired_value(key, value) == expected


def test_a_boolean_key_refuses_other_words_by_name() -> None:
    message = "snap config 'lxcfs.cfs' takes true or false, not 'maybe'"
    with pytest.raises(SnapConfigError, match=f"^{re.escape(message)}$"):
        desired_value("lxcfs.cfs", "maybe")
