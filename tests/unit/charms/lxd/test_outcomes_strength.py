"""`lxd_charm.outcomes.blocked_on`: which failure blocks, which waits, which is a bug.

Every machine step maps its library's errors through `blocked_on`, so a wrong
answer here is wrong everywhere at once: a swallowed error lets the reconcile
go on half-applied, a transient one shown as blocked asks the operator to fix
what fixes itself, and a bug turned into a status hides its traceback.
"""

from __future__ import annotations

import pytest

from lxd_charm.outcomes import (
    BlockedError,
    CannotFinishError,
    WaitingError,
    blocked_on,
)
from lxd_common.errors import SideloadError, SnapdUnavailableError, SnapError


def test_a_block_that_succeeds_runs_once_and_raises_nothing() -> None:
    ran: list[str] = []
    with blocked_on(SnapError, "cannot install LXD"):
        ran.append("step")
    assert ran == ["step"]


def test_the_named_error_blocks_with_what_was_being_done() -> None:
    with pytest.raises(BlockedError) as caught, blocked_on(SnapError, "cannot install LXD"):
        raise SnapError("snap 'lxd' has no channel 6.0/edge")
    assert str(caught.value) == "cannot install LXD: snap 'lxd' has no channel 6.0/edge"
    # `from None`: the status shows the message; no chained traceback in the log.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_a_subclass_of_the_named_error_blocks_too() -> None:
    with (
        pytest.raises(BlockedError) as caught,
        blocked_on(SnapError, "cannot use the lxd-binary resource"),
    ):
        raise SideloadError("LXD binary /nowhere/lxd does not exist")
    assert str(caught.value) == (
        "cannot use the lxd-binary resource: LXD binary /nowhere/lxd does not exist"
    )


def test_snapd_not_answering_waits_even_where_snap_errors_block() -> None:
    # SnapdUnavailableError is a SnapError: the transient check must come first.
    assert issubclass(SnapdUnavailableError, SnapError)
    with pytest.raises(WaitingError) as caught, blocked_on(SnapError, "cannot install LXD"):
        raise SnapdUnavailableError("snapd did not answer in 30 s")
    assert str(caught.value) == "cannot install LXD: snapd did not answer in 30 s; retrying"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_snapd_not_answering_waits_whatever_error_is_named() -> None:
    with pytest.raises(WaitingError) as caught, blocked_on(KeyError, "reading the snap's config"):
        raise SnapdUnavailableError("connection refused")
    assert str(caught.value) == "reading the snap's config: connection refused; retrying"


def test_any_other_error_is_a_bug_and_escapes_unchanged() -> None:
    bug = RuntimeError("unexpected")
    with pytest.raises(RuntimeError) as caught, blocked_on(SnapError, "cannot install LXD"):
        raise bug
    assert caught.value is bug


def test_blocked_and_waiting_are_both_cannot_finish_and_not_each_other() -> None:
    # charm.py catches CannotFinishError once and picks the status by type.
    assert issubclass(BlockedError, CannotFinishError)
    assert issubclass(WaitingError, CannotFinishError)
    assert not issubclass(BlockedError, WaitingError)
    assert not issubclass(WaitingError, BlockedError)
