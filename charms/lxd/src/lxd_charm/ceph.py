"""The `ceph` relation's decisions, free of `ops` and of LXD.

The ceph-mon charm answers a ceph-client requirer in each of its units'
databags: `key` (the cephx key it issued for this application, whose Ceph
user is the application's name), `auth` (`cephx` or `none`), and where the
monitor listens, `ceph-public-address` (one address, or several separated by
spaces), or only `private-address` from older revisions. Requests for pools
go the other way, as one `broker_req` JSON document in the requirer unit's
databag; ceph-mon answers each requiring unit in `broker-rsp-<unit>` (the
unit name with `/` turned into `-`), echoing the `request-id`. The
interface is docs/interfaces/ceph-client.md.

This module reads those answers (`read_monitors`), renders the two files
the LXD snap reads (`render_conf`, `render_keyring`), and writes and
answers broker requests (`broker_request`, `broker_outcome`). Bad data from
ceph-mon is a `CephDataError`, naming the unit and the field.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

KEY: Final = "key"
AUTH: Final = "auth"
PUBLIC_ADDRESS: Final = "ceph-public-address"
PRIVATE_ADDRESS: Final = "private-address"
BROKER_REQ: Final = "broker_req"
BROKER_RSP_PREFIX: Final = "broker-rsp-"
BROKER_API_VERSION: Final = 1
CEPHX_KEY_BYTES: Final = 28
"""A cephx secret, decoded: type (2), creation time (8), length (2), AES-128 key (16)."""
AUTH_MODES: Final = ("cephx", "none")


class CephDataError(ValueError):
    """A ceph-mon unit sent data this charm cannot use (the message names unit and field)."""


@dataclass(frozen=True)
class CephAccess:
    """What a client needs to reach the Ceph cluster: the monitors and its key.

    The key is a credential: it is kept out of ``repr`` so that no log line
    or traceback that shows this object shows the key.
    """

    monitors: tuple[str, ...]
    key: str = field(repr=False)
    auth: str = "cephx"


def read_access(bags: Mapping[str, Mapping[str, str]]) -> CephAccess | None:
    """The access ceph-mon's units grant, from their databags (unit name -> bag).

    None while it is incomplete (no key yet, or no monitor address yet):
    ceph-mon sends the key only once its cluster has formed. Units that
    disagree on the key are resolved by unit name (the lowest wins), since
    ceph-mon issues one key per application and all its units share it.

    Raises:
        CephDataError: a unit sent a key that is not a cephx key, an
            unknown `auth`, or an address that is not an IP address.
    """
    key = ""
    auth = ""
    for unit in sorted(bags):
        bag = bags[unit]
        if bag.get(KEY) and not key:
            key = check_key(unit, bag[KEY])
        if bag.get(AUTH) and not auth:
            auth = bag[AUTH].strip()
            if auth not in AUTH_MODES:
                raise CephDataError(
                    f"{unit} sent auth {auth!r}; expected one of {', '.join(AUTH_MODES)}"
                )
    monitors = read_monitors(bags)
    if not key or not monitors:
        return None
    return CephAccess(monitors=monitors, key=key, auth=auth or "cephx")


def check_key(unit: str, key: str) -> str:
    """The key, stripped, if it is a cephx key (base64 of 28 bytes).

    Raises:
        CephDataError: it is not (the key itself is never in the message).
    """
    text = key.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CephDataError(f"{unit} sent a key that is not base64") from None
    if len(raw) != CEPHX_KEY_BYTES:
        raise CephDataError(
            f"{unit} sent a key of {len(raw)} bytes; a cephx key has {CEPHX_KEY_BYTES}"
        )
    return text


def read_monitors(bags: Mapping[str, Mapping[str, str]]) -> tuple[str, ...]:
    """Every monitor address, sorted, as ceph.conf's `mon host` wants it (IPv6 bracketed).

    Each unit's `ceph-public-address` (several addresses allowed, separated
    by spaces), else its `private-address`.

    Raises:
        CephDataError: an address that is not an IP address.
    """
    found: set[str] = set()
    for unit in sorted(bags):
        bag = bags[unit]
        text = bag.get(PUBLIC_ADDRESS) or bag.get(PRIVATE_ADDRESS) or ""
        for word in text.split():
            found.add(_mon_address(unit, word))
    return tuple(sorted(found))


def _mon_address(unit: str, text: str) -> str:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise CephDataError(f"{unit} sent a monitor address {text!r} that is not an IP") from None
    return f"[{address}]" if address.version == 6 else str(address)


def render_conf(access: CephAccess, keyring_dir: str) -> str:
    """The client's ceph.conf: the monitors, the auth mode, where its keyring is.

    ``keyring_dir`` is where the keyring is written, as LXD sees it;
    ``$cluster.$name`` lets Ceph's tools pick ``ceph.client.<app>.keyring``
    for whichever user LXD names (``ceph.user.name``).
    """
    auth = access.auth
    return "\n".join(
        [
            "# Written by the lxd charm from the ceph relation; changes are overwritten.",
            "[global]",
            f"mon host = {' '.join(access.monitors)}",
            f"auth cluster required = {auth}",
            f"auth service required = {auth}",
            f"auth client required = {auth}",
            f"keyring = {keyring_dir}/$cluster.$name.keyring",
            "",
        ]
    )


def render_keyring(user: str, access: CephAccess) -> str:
    """``ceph.client.<user>.keyring``: the one key ceph-mon issued for this application."""
    return f"[client.{user}]\n\tkey = {access.key}\n"


# --- the broker protocol ---------------------------------------------------------


def pool_op(pool: str, replicas: int) -> dict[str, Any]:
    """The create-pool operation for an RBD pool (tagged `rbd`, as LXD's driver expects)."""
    return {"op": "create-pool", "name": pool, "replicas": replicas, "app-name": "rbd"}


def broker_request(ops: list[dict[str, Any]], previous: str | None) -> str:
    """The `broker_req` to publish: the previous one when it asked for the same.

    Keeping its `request-id` keeps ceph-mon from seeing a new request (and
    this unit from waiting again) on every hook; a change of the
    operations gets a new id, which ceph-mon then processes.
    """
    old = _json(previous)
    if old is not None and old.get("ops") == ops and old.get("request-id"):
        return str(previous)
    request = {"api-version": BROKER_API_VERSION, "ops": ops, "request-id": str(uuid.uuid4())}
    return json.dumps(request, sort_keys=True)


@dataclass(frozen=True)
class BrokerOutcome:
    """ceph-mon's answer to our current request: done, refused (why), or not yet."""

    done: bool = False
    error: str = ""


def broker_rsp_key(unit_name: str) -> str:
    """The key ceph-mon answers a unit's request under."""
    return BROKER_RSP_PREFIX + unit_name.replace("/", "-")


def broker_outcome(
    request: str, unit_name: str, bags: Iterable[tuple[str, Mapping[str, str]]]
) -> BrokerOutcome:
    """What ceph-mon's units answered to ``request`` (the `broker_req` we published).

    Only an answer carrying the request's id counts: an older answer is for
    an older request. A non-zero `exit-code` is a refusal, with ceph-mon's
    `stderr` as the reason.
    """
    wanted = (_json(request) or {}).get("request-id")
    key = broker_rsp_key(unit_name)
    for _unit, bag in sorted(bags):
        answer = _json(bag.get(key))
        if answer is None or answer.get("request-id") != wanted:
            continue
        code = answer.get("exit-code")
        if code in (0, "0"):
            return BrokerOutcome(done=True)
        reason = str(answer.get("stderr") or f"exit code {code}")
        return BrokerOutcome(error=reason)
    return BrokerOutcome()


def _json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
