"""The unit's memory record read back exactly, whatever Juju's stored state holds.

`Memory.from_dict` reads what an earlier hook (or an earlier revision of the
charm) saved; a field it misreads is an action the charm forgets it took, or
one it thinks it took. These tests pin every field's reading of well-formed,
absent and malformed data, and `from_canonical`'s reading of the stored
state of the charm operators switch from.
"""

from __future__ import annotations

from typing import Any

import pytest

from lxd_charm.memory import CANONICAL_FIELDS, LEGACY_FIELDS, Memory, from_canonical
from lxd_charm.pending import PendingConfig


def full_record() -> dict[str, Any]:
    return {
        "initialised": True,
        "init_options": {"mode": "cluster", "lxd-preseed": "config: {}"},
        "proxy": {"core.proxy_http": "http://proxy:3128"},
        "pending": {
            "reboot_keys": {"lxcfs.cfs": "true"},
            "queued": {"daemon.debug": None},
            "boot": "boot-1",
        },
        "sideloaded_snap": "ab" * 32,
        "https_clients": {"3": {"client/0": "f" * 64}, "4": {}},
        "fan_fallback": "Failed creating the fan bridge",
        "ovn": {"network.ovn.northbound_connection": "ssl:10.0.0.1:6641"},
        "loki_url": "http://loki:3100",
        "adopted": "LXD initialised by hand",
        "failure_domain": "az1",
        "pool_wait_since": 1700000000.5,
        "reconciled_boot": "boot-2",
        "resources_applied": True,
    }


def test_every_field_is_written_and_read_back() -> None:
    record = full_record()
    memory = Memory.from_dict(record)
    assert memory == Memory(
        initialised=True,
        init_options={"mode": "cluster", "lxd-preseed": "config: {}"},
        proxy={"core.proxy_http": "http://proxy:3128"},
        pending=PendingConfig({"lxcfs.cfs": "true"}, {"daemon.debug": None}, "boot-1"),
        sideloaded_snap="ab" * 32,
        https_clients={"3": {"client/0": "f" * 64}, "4": {}},
        fan_fallback="Failed creating the fan bridge",
        ovn={"network.ovn.northbound_connection": "ssl:10.0.0.1:6641"},
        loki_url="http://loki:3100",
        adopted="LXD initialised by hand",
        failure_domain="az1",
        pool_wait_since=1700000000.5,
        reconciled_boot="boot-2",
        resources_applied=True,
    )
    assert memory.to_dict() == record


def test_to_dict_copies_so_the_saved_record_does_not_follow_later_changes() -> None:
    memory = Memory.from_dict(full_record())
    saved = memory.to_dict()
    memory.init_options["mode"] = "standalone"
    memory.proxy["core.proxy_https"] = "x"
    memory.https_clients["3"]["client/1"] = "e" * 64
    memory.ovn.clear()
    memory.pending.reboot_keys.clear()
    assert saved == full_record()


def test_none_and_absent_fields_read_as_the_defaults() -> None:
    nones = dict.fromkeys(full_record())
    assert Memory.from_dict(nones) == Memory()
    assert Memory.from_dict({}) == Memory()
    assert Memory.from_dict({}).to_dict() == Memory().to_dict()
    assert Memory().to_dict()["pool_wait_since"] == 0.0
    assert Memory().initialised is False


@pytest.mark.parametrize("malformed", ["text", 7, ["a", "b"]])
def test_malformed_mappings_read_as_empty(malformed: object) -> None:
    memory = Memory.from_dict(
        {
            "init_options": malformed,
            "proxy": malformed,
            "pending": malformed,
            "https_clients": malformed,
            "ovn": malformed,
        }
    )
    assert memory == Memory()


def test_values_are_read_as_text() -> None:
    memory = Memory.from_dict(
        {
            "init_options": {"mode": 1},
            "https_clients": {3: {"client/0": 5}, "4": "not a mapping"},
            "sideloaded_snap": 12,
            "failure_domain": 3,
        }
    )
    assert memory.init_options == {"mode": "1"}
    assert memory.https_clients == {"3": {"client/0": "5"}, "4": {}}
    assert memory.sideloaded_snap == "12"
    assert memory.failure_domain == "3"


@pytest.mark.parametrize(
    ("stored", "read"),
    [("12.5", 12.5), (3, 3.0), ("not a number", 0.0), (None, 0.0), ([1], 0.0)],
)
def test_the_pool_wait_reads_numbers_and_nothing_else(stored: object, read: float) -> None:
    assert Memory.from_dict({"pool_wait_since": stored}).pool_wait_since == read


def test_initialised_reads_truthiness() -> None:
    assert Memory.from_dict({"initialised": 1}).initialised is True
    assert Memory.from_dict({"initialised": 0}).initialised is False


def test_the_stored_field_names_of_earlier_charms() -> None:
    """charm.py reads these handles' fields by name: a misspelt one is memory lost."""
    assert LEGACY_FIELDS == ("initialised", "init_options", "proxy", "pending", "sideloaded_snap")
    assert CANONICAL_FIELDS == ("lxd_initialized", "lxd_clustered", "config")


def test_canonical_state_with_recorded_options_of_a_cluster_member() -> None:
    memory = from_canonical(
        {
            "lxd_initialized": True,
            "lxd_clustered": True,
            "config": {"mode": "cluster", "lxd-preseed": None},
        },
        {"mode": "standalone", "lxd-preseed": "current"},
    )
    assert memory == Memory(
        initialised=True,
        init_options={"mode": "cluster", "lxd-preseed": ""},
        adopted="LXD initialised by the earlier charm (cluster member)",
    )


def test_canonical_state_without_a_record_takes_the_options_or_their_defaults() -> None:
    memory = from_canonical({"lxd_initialized": True, "config": "garbled"}, {})
    assert memory == Memory(
        initialised=True,
        init_options={"mode": "standalone", "lxd-preseed": ""},
        adopted="LXD initialised by the earlier charm (standalone)",
    )
    current = from_canonical({"lxd_initialized": True}, {"mode": "cluster"})
    assert current.init_options == {"mode": "cluster", "lxd-preseed": ""}


def test_canonical_state_that_never_initialised_is_no_memory() -> None:
    assert from_canonical({"lxd_initialized": None, "lxd_clustered": True}, {}) == Memory()
