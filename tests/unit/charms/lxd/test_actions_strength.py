"""The actions' answers word for word, where test_actions.py checks a part.

Each test here pins what an operator reads (a refusal or a result message)
or a branch no other test took: the access description of a token, a
certificate whose first common name is blank, the debug command's real
decoding of output that is not UTF-8, a standalone refresh refused while a
sideloaded snap is in place, and the version results when snapd cannot say.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from lxd_charm.actions import (
    ActionError,
    AddTrustedClientParams,
    GetClientTokenParams,
    RemoveTrustedClientParams,
    add_trusted_client,
    collect_debug_info,
    get_client_token,
    refresh_standalone,
    remove_trusted_client,
    snap_version,
)
from lxd_charm.config import LxdConfig
from lxd_charm.memory import Memory
from lxd_common.certs import CertificatePair, fingerprint, generate_client_certificate
from lxd_common.errors import SnapError, TrustEntryNotFoundError
from lxd_common.snap import InstalledSnap, LxdSnap
from tests.unit.charms.lxd.test_actions import (
    TOKEN,
    FakeLxd,
    FakeRun,
    as_client,
    entry,
    never_fetch,
    self_signed,
)


@pytest.fixture(scope="module")
def pair() -> CertificatePair:
    return generate_client_certificate("alice-laptop")


def _self_signed(*common_names: str) -> str:
    return self_signed(*(x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names))


# --- add-trusted-client ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("projects", "access", "shown"),
    [
        (None, "with access to every project", "(unrestricted)"),
        ("", "restricted to no project (it can connect but sees nothing)", "(none)"),
        ("web,db", "restricted to project(s) web, db", "web,db"),
    ],
)
def test_add_says_the_access_whole(
    pair: CertificatePair, projects: str | None, access: str, shown: str
) -> None:
    lxd = FakeLxd(["default", "web", "db"])
    params = AddTrustedClientParams(cert=pair.certificate, projects=projects)
    results = add_trusted_client(as_client(lxd), params, never_fetch)
    fp = fingerprint(pair.certificate)
    assert results == {
        "fingerprint": fp,
        "name": "alice-laptop",
        "projects": shown,
        "message": f"trusted client 'alice-laptop' ({fp[:12]}) {access}",
    }


def test_a_blank_first_common_name_gives_way_to_the_next() -> None:
    pem = _self_signed("  ", "bob-desktop")
    results = add_trusted_client(
        as_client(FakeLxd()), AddTrustedClientParams(cert=pem), never_fetch
    )
    assert results["name"] == "bob-desktop"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            AddTrustedClientParams(cert="x", cert_url="https://h/c.crt"),
            "give either cert or cert-url, not both",
        ),
        (
            AddTrustedClientParams(cert=" ", cert_url=""),
            'give the client certificate: cert="$(cat client.crt)" or '
            "cert-url=https://host/client.crt",
        ),
    ],
)
def test_add_refuses_the_sources_in_these_words(
    params: AddTrustedClientParams, message: str
) -> None:
    lxd = FakeLxd()
    with pytest.raises(ActionError) as info:
        add_trusted_client(as_client(lxd), params, never_fetch)
    assert str(info.value) == message
    assert lxd.trust.calls == []


# --- remove-trusted-client -------------------------------------------------------------


def test_an_ambiguous_prefix_names_each_match() -> None:
    lxd = FakeLxd()
    first, second = "ab" * 6 + "1" * 52, "ab" * 6 + "2" * 52
    lxd.trust.put(entry(first, "one"))
    lxd.trust.put(entry(second, "two"))
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams("ab" * 6))
    assert str(info.value) == (
        f"the fingerprint prefix {'ab' * 6!r} matches 2 entries "
        f"('one' ({first[:16]}), 'two' ({second[:16]})); nothing was removed. "
        "Give more of the fingerprint"
    )
    assert len(lxd.trust.by_fp) == 2


def test_an_unknown_fingerprint_is_refused_with_where_to_look() -> None:
    lxd = FakeLxd()
    lxd.trust.put(entry("ab" * 32, "one"))
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams(" " + "0" * 64))
    assert str(info.value) == (
        f"no trusted client has the fingerprint {'0' * 64!r}; nothing was removed. "
        "List the trusted clients with `lxc config trust list`"
    )


def test_an_entry_gone_before_its_removal_is_refused_with_where_to_look() -> None:
    lxd = FakeLxd()
    lxd.trust.put(entry("ab" * 32, "one"))
    lxd.trust.remove_error = TrustEntryNotFoundError("gone")
    with pytest.raises(ActionError) as info:
        remove_trusted_client(as_client(lxd), RemoveTrustedClientParams("ab" * 32))
    assert str(info.value) == (
        f"the trusted client 'one' ({'ab' * 6}) disappeared before it could be removed; "
        "nothing was removed. List the trusted clients with `lxc config trust list`"
    )


# --- get-client-token ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("projects", "access"),
    [
        (None, "with access to every project"),
        ("", "restricted to no project (it can connect but sees nothing)"),
        ("web", "restricted to project(s) web"),
    ],
)
def test_a_token_message_says_the_access_whole(projects: str | None, access: str) -> None:
    lxd = FakeLxd(["web"])
    results = get_client_token(as_client(lxd), GetClientTokenParams("ci", projects))
    assert results["token"] == TOKEN
    assert results["message"] == (
        f"one-time token for 'ci' ({access}); on the client run `lxc remote add REMOTE-NAME TOKEN`"
    )


def test_a_token_without_a_name_is_refused_in_these_words() -> None:
    with pytest.raises(ActionError) as info:
        get_client_token(as_client(FakeLxd()), GetClientTokenParams(" "))
    assert str(info.value) == "give the name the client will be trusted under: name=NAME"


# --- debug -------------------------------------------------------------------------------


def test_debug_without_the_command_says_where_it_looked() -> None:
    with pytest.raises(ActionError) as info:
        collect_debug_info(FakeRun({}))
    assert str(info.value) == (
        "lxd.buginfo is not installed (looked for /snap/bin/lxd.buginfo and on PATH); "
        "is the LXD snap installed?"
    )


@pytest.mark.parametrize("partial", [None, b"", "  \n"])
def test_a_timeout_that_printed_nothing_says_only_that(partial: bytes | str | None) -> None:
    expired = subprocess.TimeoutExpired(["lxd.buginfo"], 300, output=None, stderr=partial)
    with pytest.raises(ActionError) as info:
        collect_debug_info(FakeRun({"/snap/bin/lxd.buginfo": expired}))
    assert str(info.value) == "/snap/bin/lxd.buginfo did not finish within 300s"


def test_a_timeout_decodes_bytes_that_are_not_utf8() -> None:
    expired = subprocess.TimeoutExpired(["lxd.buginfo"], 300, stderr=b"stuck \xff here\n")
    with pytest.raises(ActionError) as info:
        collect_debug_info(FakeRun({"/snap/bin/lxd.buginfo": expired}))
    assert str(info.value) == (
        "/snap/bin/lxd.buginfo did not finish within 300s; its last output:\nstuck \ufffd here"
    )


def test_debug_reads_a_real_commands_output_that_is_not_utf8(tmp_path: Path) -> None:
    """A real process: `subprocess.run` decodes with the charm's `errors=` (lxd.buginfo
    prints whatever the machine's files hold)."""
    script = tmp_path / "lxd.buginfo"
    script.write_text("#!/bin/sh\nprintf 'kernel \\377 log\\n'\n")
    script.chmod(0o755)
    seen: list[list[str]] = []

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(args)
        if args[0] != "lxd.buginfo":
            raise FileNotFoundError(2, "No such file", args[0])
        env = {**os.environ, "PATH": str(tmp_path)}
        return cast(subprocess.CompletedProcess[str], subprocess.run(args, env=env, **kwargs))

    assert collect_debug_info(run, timeout=30) == {"buginfo": "kernel \ufffd log\n"}
    assert seen == [["/snap/bin/lxd.buginfo"], ["lxd.buginfo"]]


# --- refresh (standalone) and the version results --------------------------------------


class _Snap:
    """The two calls of `LxdSnap` these functions make."""

    def __init__(self, installed: InstalledSnap | SnapError | None) -> None:
        self.answer = installed
        self.refreshes: list[str] = []

    def installed(self) -> InstalledSnap | None:
        if isinstance(self.answer, SnapError):
            raise self.answer
        return self.answer

    def refresh(self, channel: str, **_: Any) -> bool:
        self.refreshes.append(channel)
        return True


def test_a_standalone_refresh_is_refused_while_a_sideloaded_snap_runs() -> None:
    snap = _Snap(None)
    memory = Memory(sideloaded_snap="ab" * 32)
    with pytest.raises(ActionError) as info:
        refresh_standalone(cast(LxdSnap, snap), LxdConfig(), memory)
    assert str(info.value) == (
        "LXD runs the snap attached as the lxd-snap resource: attach an empty file "
        "to go back to the store's LXD, then refresh"
    )
    assert snap.refreshes == []


def test_a_standalone_refresh_without_a_sideloaded_snap_refreshes() -> None:
    snap = _Snap(None)
    assert refresh_standalone(cast(LxdSnap, snap), LxdConfig(), Memory()) == {"refreshed": "yes"}
    assert snap.refreshes == [LxdConfig().snap_channel]


@pytest.mark.parametrize("answer", [None, SnapError("snapd is not answering")])
def test_no_version_results_when_snapd_cannot_say(answer: SnapError | None) -> None:
    assert snap_version(cast(LxdSnap, _Snap(answer))) == {}


def test_the_version_results() -> None:
    installed = InstalledSnap("lxd", "5.21/stable", "33110", "5.21.3-c5ae129")
    assert snap_version(cast(LxdSnap, _Snap(installed))) == {
        "version": "5.21.3-c5ae129",
        "revision": "33110",
    }
