"""Preseeds: check them before LXD sees them, and build the ones we need.

A preseed is the YAML that ``lxd init --preseed`` applies in one go. LXD
applies it with its own rollback, so the only way an operator ends up with
a half-initialised daemon is by handing us something LXD misreads; hence the
strict structural check here, which names the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..errors import PreseedError

#: Top-level keys ``lxd init --preseed`` understands (LXD 5.0 to 6.x).
PRESEED_KEYS = frozenset(
    {
        "config",
        "networks",
        "storage_pools",
        "storage_volumes",
        "profiles",
        "projects",
        "cluster",
        "certificates",
    }
)
_NAMED_LISTS = ("networks", "storage_pools", "storage_volumes", "profiles", "projects")


def parse_preseed(preseed: str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse and check a preseed, returning it as a dict.

    Raises:
        PreseedError: the text is not YAML, not a mapping, has an unknown
            top-level key, or a section of the wrong shape.
    """
    if isinstance(preseed, str):
        if not preseed.strip():
            raise PreseedError("the preseed is empty")
        try:
            data = yaml.safe_load(preseed)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            problem = getattr(e, "problem", None)
            raise PreseedError(
                f"the preseed is not valid YAML{at}" + (f": {problem}" if problem else "")
            ) from e
        if data is None:
            raise PreseedError("the preseed is empty (only comments)")
    else:
        data = dict(preseed)
    if not isinstance(data, dict):
        raise PreseedError(f"the preseed must be a YAML mapping, not a {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in PRESEED_KEYS)
    if unknown:
        known = ", ".join(sorted(PRESEED_KEYS))
        raise PreseedError(f"unknown preseed key(s) {', '.join(unknown)} (known: {known})")
    _check_mapping(data, "config")
    _check_mapping(data, "cluster")
    for key in _NAMED_LISTS:
        _check_named_list(data, key)
    return data


def _check_mapping(data: Mapping[str, Any], key: str) -> None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise PreseedError(f"preseed key {key!r} must be a mapping")


def _check_named_list(data: Mapping[str, Any], key: str) -> None:
    value = data.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise PreseedError(f"preseed key {key!r} must be a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise PreseedError(f"preseed {key}[{index}] must be a mapping with a 'name'")


def join_preseed(
    server_name: str,
    server_address: str,
    token: str,
    member_config: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The preseed a new member applies to join an existing cluster.

    ``member_config`` carries the per-member values the cluster asks for
    (typically each storage pool's ``source``); LXD refuses the join when
    one is missing, so callers pass what the leader told them.
    """
    for entry in member_config:
        missing = {"entity", "name", "key"} - set(entry)
        if missing:
            raise PreseedError(f"member_config entry {dict(entry)!r} lacks {sorted(missing)}")
    return {
        "cluster": {
            "enabled": True,
            "server_name": server_name,
            "server_address": server_address,
            "cluster_token": token,
            "member_config": [
                {
                    "entity": e["entity"],
                    "name": e["name"],
                    "key": e["key"],
                    "value": e.get("value", ""),
                }
                for e in member_config
            ],
        }
    }


def dump_preseed(preseed: Mapping[str, Any]) -> str:
    """YAML text for ``lxd init --preseed``."""
    return yaml.safe_dump(dict(preseed), sort_keys=False)
