"""`lxd_charm.ceph`'s pure decisions, each at its edge (test_ceph.py drives whole hooks).

These hold every answer of the module to exactly what ceph-mon and the snap
need: the whole refusal message (unit and field named, never the key), the
exact files, and the broker's request and answer rules. They are the
mutation run's cheap killers: milliseconds each, where a hook takes a second.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from lxd_charm import ceph

KEY = "AQBKjA5rHe5WEBAALWvAS4Nfhz5Ye27XGJmpmg=="
"""A key `ceph auth get-or-create-key` issued (Ceph 16.2): 28 bytes once decoded."""
OTHER_KEY = base64.b64encode(bytes(range(28))).decode()


def exactly(message: str) -> str:
    """A `match=` pattern for this whole message, not any message containing a part of it."""
    return f"^{re.escape(message)}$"


def test_the_constants_are_the_interfaces_names() -> None:
    assert (ceph.KEY, ceph.AUTH) == ("key", "auth")
    assert (ceph.PUBLIC_ADDRESS, ceph.PRIVATE_ADDRESS) == (
        "ceph-public-address",
        "private-address",
    )
    assert (ceph.BROKER_REQ, ceph.BROKER_RSP_PREFIX) == ("broker_req", "broker-rsp-")
    assert ceph.BROKER_API_VERSION == 1
    assert ceph.CEPHX_KEY_BYTES == len(base64.b64decode(KEY)) == 28
    assert ceph.AUTH_MODES == ("cephx", "none")


# --- read_access ----------------------------------------------------------------


def test_access_from_one_complete_unit() -> None:
    bags = {
        "ceph-mon/0": {"key": f" {KEY}\n", "auth": " none ", "ceph-public-address": "10.0.0.1"}
    }
    access = ceph.read_access(bags)
    assert access == ceph.CephAccess(monitors=("10.0.0.1",), key=KEY, auth="none")


def test_auth_defaults_to_cephx_when_no_unit_says() -> None:
    access = ceph.read_access({"ceph-mon/0": {"key": KEY, "ceph-public-address": "10.0.0.1"}})
    assert access is not None
    assert access.auth == "cephx"
    assert ceph.CephAccess(monitors=(), key="k").auth == "cephx"


def test_the_lowest_unit_name_wins_key_and_auth() -> None:
    bags = {
        "ceph-mon/1": {"key": OTHER_KEY, "auth": "none", "ceph-public-address": "10.0.0.2"},
        "ceph-mon/0": {"key": KEY, "auth": "cephx", "ceph-public-address": "10.0.0.1"},
    }
    access = ceph.read_access(bags)
    assert access == ceph.CephAccess(monitors=("10.0.0.1", "10.0.0.2"), key=KEY, auth="cephx")


def test_a_unit_without_key_or_auth_leaves_them_to_the_next() -> None:
    bags = {
        "ceph-mon/0": {"key": "", "auth": "", "ceph-public-address": "10.0.0.1"},
        "ceph-mon/1": {"key": KEY, "auth": "none"},
    }
    assert ceph.read_access(bags) == ceph.CephAccess(monitors=("10.0.0.1",), key=KEY, auth="none")


def test_a_later_bad_key_is_not_checked_once_one_is_found() -> None:
    bags = {
        "ceph-mon/0": {"key": KEY, "ceph-public-address": "10.0.0.1"},
        "ceph-mon/1": {"key": "not a key"},
    }
    assert ceph.read_access(bags) == ceph.CephAccess(monitors=("10.0.0.1",), key=KEY)


def test_a_later_unknown_auth_is_not_checked_once_one_is_found() -> None:
    bags = {
        "ceph-mon/0": {"key": KEY, "auth": "cephx", "ceph-public-address": "10.0.0.1"},
        "ceph-mon/1": {"auth": "kerberos"},
    }
    assert ceph.read_access(bags) == ceph.CephAccess(monitors=("10.0.0.1",), key=KEY)


@pytest.mark.parametrize(
    "bags",
    [
        {},
        {"ceph-mon/0": {"ceph-public-address": "10.0.0.1"}},
        {"ceph-mon/0": {"key": KEY}},
        {"ceph-mon/0": {"key": KEY, "ceph-public-address": ""}},
    ],
)
def test_incomplete_access_is_none(bags: dict[str, dict[str, str]]) -> None:
    assert ceph.read_access(bags) is None


def test_an_unknown_auth_is_refused_naming_unit_and_modes() -> None:
    bags = {"ceph-mon/3": {"key": KEY, "auth": " krb ", "ceph-public-address": "10.0.0.1"}}
    with pytest.raises(
        ceph.CephDataError,
        match=exactly("ceph-mon/3 sent auth 'krb'; expected one of cephx, none"),
    ):
        ceph.read_access(bags)


def test_the_key_is_kept_out_of_repr() -> None:
    access = ceph.CephAccess(monitors=("10.0.0.1",), key=KEY)
    assert KEY not in repr(access)
    assert "10.0.0.1" in repr(access)


# --- check_key --------------------------------------------------------------------


def test_a_cephx_key_is_returned_stripped() -> None:
    assert ceph.check_key("ceph-mon/0", f"\t{KEY} \n") == KEY


@pytest.mark.parametrize("size", [27, 29, 0])
def test_a_key_of_another_length_is_refused_with_both_lengths(size: int) -> None:
    key = base64.b64encode(b"k" * size).decode()
    message = f"ceph-mon/2 sent a key of {size} bytes; a cephx key has 28"
    with pytest.raises(ceph.CephDataError, match=exactly(message)):
        ceph.check_key("ceph-mon/2", key)


@pytest.mark.parametrize("key", ["not base64!", KEY[:-1], "AQBK jA5r"])
def test_a_key_that_is_not_base64_is_refused_without_the_key(key: str) -> None:
    with pytest.raises(
        ceph.CephDataError, match=exactly("ceph-mon/1 sent a key that is not base64")
    ) as caught:
        ceph.check_key("ceph-mon/1", key)
    assert caught.value.__suppress_context__


# --- read_monitors ----------------------------------------------------------------


def test_monitors_public_over_private_several_sorted_unique_ipv6_bracketed() -> None:
    bags = {
        "ceph-mon/2": {"ceph-public-address": "10.0.0.3  10.0.0.1", "private-address": "10.9.9.9"},
        "ceph-mon/0": {"private-address": "fd00::2"},
        "ceph-mon/1": {"ceph-public-address": "[fd00::1]", "private-address": "10.9.9.8"},
        "ceph-mon/3": {"ceph-public-address": "10.0.0.1"},
        "ceph-mon/4": {},
    }
    assert ceph.read_monitors(bags) == ("10.0.0.1", "10.0.0.3", "[fd00::1]", "[fd00::2]")


def test_an_empty_public_address_falls_back_to_the_private_one() -> None:
    bags = {"ceph-mon/0": {"ceph-public-address": "", "private-address": "10.0.0.7"}}
    assert ceph.read_monitors(bags) == ("10.0.0.7",)


def test_a_monitor_that_is_not_an_ip_is_refused_naming_it() -> None:
    bags = {"ceph-mon/5": {"ceph-public-address": "10.0.0.1 mon.example"}}
    message = "ceph-mon/5 sent a monitor address 'mon.example' that is not an IP"
    with pytest.raises(ceph.CephDataError, match=exactly(message)) as caught:
        ceph.read_monitors(bags)
    assert caught.value.__suppress_context__


# --- the files ---------------------------------------------------------------------


def test_render_conf_is_exactly_the_snaps_file() -> None:
    access = ceph.CephAccess(monitors=("10.0.0.1", "[fd00::1]"), key=KEY, auth="none")
    assert ceph.render_conf(access, "/var/snap/lxd/common/ceph") == (
        "# Written by the lxd charm from the ceph relation; changes are overwritten.\n"
        "[global]\n"
        "mon host = 10.0.0.1 [fd00::1]\n"
        "auth cluster required = none\n"
        "auth service required = none\n"
        "auth client required = none\n"
        "keyring = /var/snap/lxd/common/ceph/$cluster.$name.keyring\n"
    )


def test_render_keyring_is_exactly_the_users_section() -> None:
    access = ceph.CephAccess(monitors=("10.0.0.1",), key=KEY)
    assert ceph.render_keyring("lxd", access) == f"[client.lxd]\n\tkey = {KEY}\n"


# --- the broker ----------------------------------------------------------------------


def test_pool_op_is_an_rbd_create_pool() -> None:
    assert ceph.pool_op("lxd", 3) == {
        "op": "create-pool",
        "name": "lxd",
        "replicas": 3,
        "app-name": "rbd",
    }


def test_a_new_request_is_sorted_json_with_a_fresh_id() -> None:
    ops = [ceph.pool_op("lxd", 3)]
    first = ceph.broker_request(ops, None)
    second = ceph.broker_request(ops, "")
    for text in (first, second):
        request = json.loads(text)
        assert set(request) == {"api-version", "ops", "request-id"}
        assert request["api-version"] == 1
        assert request["ops"] == ops
        assert text == json.dumps(request, sort_keys=True)
    assert json.loads(first)["request-id"] != json.loads(second)["request-id"]


def test_the_previous_request_is_kept_verbatim_for_the_same_ops() -> None:
    ops = [ceph.pool_op("lxd", 3)]
    previous = json.dumps({"request-id": "abc", "ops": ops, "api-version": 1})
    assert ceph.broker_request(ops, previous) == previous


@pytest.mark.parametrize(
    "previous",
    [
        json.dumps({"request-id": "abc", "ops": [ceph.pool_op("lxd", 2)]}),
        json.dumps({"request-id": "", "ops": [ceph.pool_op("lxd", 3)]}),
        json.dumps({"ops": [ceph.pool_op("lxd", 3)]}),
        json.dumps([{"request-id": "abc"}]),
    ],
)
def test_other_ops_or_no_id_get_a_new_request(previous: str) -> None:
    ops = [ceph.pool_op("lxd", 3)]
    request = json.loads(ceph.broker_request(ops, previous))
    assert request["ops"] == ops
    assert request["request-id"] not in ("abc", "")


def test_the_response_key_is_the_unit_name_with_a_dash() -> None:
    assert ceph.broker_rsp_key("lxd-host/12") == "broker-rsp-lxd-host-12"


REQUEST = json.dumps({"api-version": 1, "ops": [], "request-id": "r1"})


def answer(**fields: object) -> dict[str, str]:
    return {"broker-rsp-lxd-0": json.dumps({"request-id": "r1", **fields})}


@pytest.mark.parametrize("code", [0, "0"])
def test_exit_code_zero_is_done(code: object) -> None:
    outcome = ceph.broker_outcome(
        REQUEST, "lxd/0", [("ceph-mon/0", answer(**{"exit-code": code}))]
    )
    assert outcome == ceph.BrokerOutcome(done=True, error="")


def test_a_refusal_carries_stderr_else_the_exit_code() -> None:
    refused = answer(**{"exit-code": 1, "stderr": "pool exists with another app"})
    assert ceph.broker_outcome(REQUEST, "lxd/0", [("m/0", refused)]) == ceph.BrokerOutcome(
        done=False, error="pool exists with another app"
    )
    bare = answer(**{"exit-code": 22, "stderr": ""})
    assert ceph.broker_outcome(REQUEST, "lxd/0", [("m/0", bare)]) == ceph.BrokerOutcome(
        error="exit code 22"
    )


def test_the_first_unit_by_name_with_the_current_answer_decides() -> None:
    bags = [
        ("ceph-mon/1", answer(**{"exit-code": 1, "stderr": "later"})),
        ("ceph-mon/0", answer(**{"exit-code": 0})),
    ]
    assert ceph.broker_outcome(REQUEST, "lxd/0", bags) == ceph.BrokerOutcome(done=True)


def test_old_or_garbled_answers_are_skipped_for_a_later_current_one() -> None:
    bags = [
        ("ceph-mon/0", {"broker-rsp-lxd-0": json.dumps({"request-id": "r0", "exit-code": 0})}),
        ("ceph-mon/1", {"broker-rsp-lxd-0": "[1, 2]"}),
        ("ceph-mon/2", {"broker-rsp-lxd-0": "{not json"}),
        ("ceph-mon/3", answer(**{"exit-code": 5, "stderr": "no"})),
    ]
    assert ceph.broker_outcome(REQUEST, "lxd/0", bags) == ceph.BrokerOutcome(error="no")


def test_no_answer_is_not_yet() -> None:
    assert ceph.broker_outcome(REQUEST, "lxd/0", [("ceph-mon/0", {})]) == ceph.BrokerOutcome()
    assert ceph.BrokerOutcome() == ceph.BrokerOutcome(done=False, error="")


@pytest.mark.parametrize("garbled", ["10.0.0.1X", "X[fd00::1]"])
def test_a_garbled_monitor_address_is_refused(garbled: str) -> None:
    message = f"ceph-mon/0 sent a monitor address {garbled!r} that is not an IP"
    with pytest.raises(ceph.CephDataError, match=exactly(message)):
        ceph.read_monitors({"ceph-mon/0": {"ceph-public-address": garbled}})
