"""Unit tests for lxd_common.lxd._preseed: checking, building and dumping preseeds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from lxd_common.errors import LxdError, PreseedError
from lxd_common.lxd import join_preseed, parse_preseed
from lxd_common.lxd._preseed import PRESEED_KEYS, dump_preseed

GOOD = """\
config:
  core.https_address: 127.0.0.2:8443
networks: []
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: local
      type: disk
"""


# --- parse_preseed: what is accepted ----------------------------------------


def test_a_good_preseed_parses_to_its_data() -> None:
    data = parse_preseed(GOOD)
    assert data["config"] == {"core.https_address": "127.0.0.2:8443"}
    assert data["storage_pools"] == [{"name": "local", "driver": "dir"}]
    assert data["profiles"][0]["devices"]["root"]["pool"] == "local"
    assert data["networks"] == []


def test_a_mapping_is_accepted_and_copied() -> None:
    given = {"config": {"images.auto_update_interval": "0"}, "projects": [{"name": "ci"}]}
    data = parse_preseed(given)
    assert data == given
    assert data is not given
    data["cluster"] = {}
    assert "cluster" not in given


def test_every_known_top_level_key_is_accepted() -> None:
    data: dict[str, Any] = {
        "config": {},
        "networks": [],
        "storage_pools": [],
        "storage_volumes": [],
        "profiles": [],
        "projects": [],
        "cluster": {"enabled": True},
        "certificates": [],
    }
    assert set(data) == PRESEED_KEYS
    assert parse_preseed(data) == data


def test_null_sections_are_accepted() -> None:
    assert parse_preseed("config:\nstorage_pools:\ncluster:\n") == {
        "config": None,
        "storage_pools": None,
        "cluster": None,
    }


# --- parse_preseed: what is refused -----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the preseed is empty"),
        ("   \n\t\n", "the preseed is empty"),
        ("- config\n- networks\n", "must be a YAML mapping, not a list"),
        ("just words", "must be a YAML mapping, not a str"),
        ("42", "must be a YAML mapping, not a int"),
        ("config: [a, b]\n", "preseed key 'config' must be a mapping"),
        ("config: text\n", "preseed key 'config' must be a mapping"),
        ("cluster: [enabled]\n", "preseed key 'cluster' must be a mapping"),
        ("storage_pools: {name: local}\n", "preseed key 'storage_pools' must be a list"),
        ("storage_pools: local\n", "preseed key 'storage_pools' must be a list"),
        ("networks: {}\n", "preseed key 'networks' must be a list"),
        (
            "storage_pools:\n- name: a\n- driver: dir\n",
            "preseed storage_pools[1] must be a mapping with a 'name'",
        ),
        ("profiles:\n- default\n", "preseed profiles[0] must be a mapping with a 'name'"),
        ("projects:\n- name: 7\n", "preseed projects[0] must be a mapping with a 'name'"),
        (
            "storage_volumes:\n- name:\n  pool: local\n",
            "preseed storage_volumes[0] must be a mapping with a 'name'",
        ),
    ],
)
def test_bad_preseeds_are_refused_with_the_reason(text: str, expected: str) -> None:
    with pytest.raises(PreseedError) as caught:
        parse_preseed(text)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("config:\n  a: b\n c: d\n", 3, 2),
        ("config: {a: [1, 2\n", 2, 1),
        ("config:\n\tfoo: 1\n", 2, 1),
    ],
)
def test_invalid_yaml_names_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(PreseedError) as caught:
        parse_preseed(text)
    assert str(caught.value).startswith(
        f"the preseed is not valid YAML at line {line}, column {column}: "
    )
    assert isinstance(caught.value.__cause__, yaml.YAMLError)


def test_unknown_top_level_keys_are_all_named_sorted() -> None:
    with pytest.raises(PreseedError) as caught:
        parse_preseed("config: {}\nstorage-pools: []\nnetwork: []\n")
    message = str(caught.value)
    assert message.startswith("unknown preseed key(s) network, storage-pools (known: ")
    for key in PRESEED_KEYS:
        assert key in message


def test_non_string_unknown_keys_are_named_too() -> None:
    with pytest.raises(PreseedError, match=r"unknown preseed key\(s\) 1 "):
        parse_preseed("1: one\nconfig: {}\n")


def test_a_mapping_input_is_checked_like_text() -> None:
    with pytest.raises(PreseedError, match="'storage_pools' must be a list"):
        parse_preseed({"storage_pools": {"name": "local"}})
    with pytest.raises(PreseedError, match="unknown preseed key"):
        parse_preseed({"confg": {}})


def test_preseed_errors_are_value_errors_and_lxd_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_preseed("")
    assert issubclass(PreseedError, LxdError)


# --- join_preseed ------------------------------------------------------------


def test_join_preseed_shape() -> None:
    preseed = join_preseed(
        "m3",
        "127.0.0.4:8443",
        "eyJzZXJ2ZXJfbmFtZSI6Im0zIn0=",
        [
            {
                "entity": "storage-pool",
                "name": "local",
                "key": "source",
                "value": "/var/lib/pool",
                "description": '"source" property for storage pool "local"',
            }
        ],
    )
    assert preseed == {
        "cluster": {
            "enabled": True,
            "server_name": "m3",
            "server_address": "127.0.0.4:8443",
            "cluster_token": "eyJzZXJ2ZXJfbmFtZSI6Im0zIn0=",
            "member_config": [
                {
                    "entity": "storage-pool",
                    "name": "local",
                    "key": "source",
                    "value": "/var/lib/pool",
                }
            ],
        }
    }
    assert parse_preseed(preseed) == preseed


def test_join_preseed_without_member_config() -> None:
    preseed = join_preseed("m2", "127.0.0.3:8443", "tok")
    assert preseed["cluster"]["member_config"] == []
    assert list(preseed) == ["cluster"]


def test_member_config_value_defaults_to_empty() -> None:
    preseed = join_preseed(
        "m2", "127.0.0.3:8443", "tok", [{"entity": "network", "name": "br0", "key": "bridge.x"}]
    )
    assert preseed["cluster"]["member_config"] == [
        {"entity": "network", "name": "br0", "key": "bridge.x", "value": ""}
    ]


@pytest.mark.parametrize(
    ("entry", "missing"),
    [
        ({"name": "local", "key": "source"}, "['entity']"),
        ({"entity": "storage-pool", "value": "x"}, "['key', 'name']"),
        ({}, "['entity', 'key', 'name']"),
    ],
)
def test_member_config_entry_missing_keys_is_refused(entry: dict[str, str], missing: str) -> None:
    with pytest.raises(PreseedError) as caught:
        join_preseed("m2", "127.0.0.3:8443", "tok", [entry])
    assert str(caught.value) == f"member_config entry {entry!r} lacks {missing}"


# --- dump_preseed ------------------------------------------------------------


def test_dump_round_trips_and_keeps_key_order() -> None:
    data = parse_preseed(GOOD)
    text = dump_preseed(data)
    assert yaml.safe_load(text) == data
    assert parse_preseed(text) == data
    assert [
        line.split(":")[0] for line in text.splitlines() if not line.startswith((" ", "-"))
    ] == [
        "config",
        "networks",
        "storage_pools",
        "profiles",
    ]


def test_dump_of_a_join_preseed_round_trips() -> None:
    preseed = join_preseed(
        "m3", "[fd00::3]:8443", "a+b/c==", [{"entity": "storage-pool", "name": "p", "key": "k"}]
    )
    assert yaml.safe_load(dump_preseed(preseed)) == preseed


# --- each refusal by its whole message ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the preseed is empty"),
        ("  \n", "the preseed is empty"),
        ("# only a comment\n", "the preseed is empty (only comments)"),
        (
            "a: [1",
            "the preseed is not valid YAML at line 1, column 6: "
            "expected ',' or ']', but got '<stream end>'",
        ),
        # PyYAML's reader refuses control characters with no position or problem to show
        ("a: \x07", "the preseed is not valid YAML"),
        (
            "config: {a: 1}\nbogus: 1\n",
            "unknown preseed key(s) bogus (known: certificates, cluster, config, networks, "
            "profiles, projects, storage_pools, storage_volumes)",
        ),
    ],
    ids=["empty", "blank", "comments", "yaml-error", "reader-error", "unknown-key"],
)
def test_each_refusal_says_exactly_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PreseedError) as info:
        parse_preseed(text)
    assert str(info.value) == message
