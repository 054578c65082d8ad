"""`total_deadline`'s timer itself: cleared when the block ends, untouched by a zero deadline.

test_deadline.py shows blocks interrupted and left alone; these read the
real interval timer (`signal.getitimer`) to pin what it cannot see: that a
block finishing in time leaves no timer armed (a later SIGALRM, with the
handler gone, would kill the hook's process), and that a zero allowance
means "no deadline of its own" without pausing an enclosing one.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator

import pytest

from lxd_common.deadline import DeadlineExceededError, total_deadline


@pytest.fixture(autouse=True)
def no_timer_left() -> Iterator[None]:
    """However a test ends, it leaves no timer armed for the next one."""
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)


def test_a_block_that_finishes_in_time_leaves_no_timer_armed() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with total_deadline(30, "quick work"):
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 29  # armed while it runs
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == before


def test_a_zero_allowance_inside_a_deadline_does_not_pause_it() -> None:
    """The outer deadline still ends a read blocked inside the inner, zero-allowance block."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)
        with (
            pytest.raises(DeadlineExceededError) as caught,
            total_deadline(0.3, "outer"),
            total_deadline(0, "inner"),
        ):
            assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.3
            ours.recv(1)
    assert str(caught.value) == "outer did not finish within 0.3 seconds"
