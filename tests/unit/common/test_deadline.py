"""`total_deadline`: a blocked wait is interrupted once the block's whole allowance is spent."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lxd_common.deadline import DeadlineExceededError, total_deadline
from lxd_common.errors import LxdUnreachableError


def test_a_blocked_read_is_interrupted_at_the_deadline() -> None:
    """A read no bytes ever arrive on: a socket timeout of 30 s would wait 30 s."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30)
        started = time.monotonic()
        with (
            pytest.raises(DeadlineExceededError) as caught,
            total_deadline(0.2, "reading the answer"),
        ):
            ours.recv(1)
    assert time.monotonic() - started < 5
    assert str(caught.value) == "reading the answer did not finish within 0.2 seconds"
    assert isinstance(caught.value, LxdUnreachableError)  # callers already handle these


def test_a_trickle_of_bytes_does_not_keep_the_block_alive() -> None:
    """Every read succeeds within its own timeout, and the block still ends."""
    ours, theirs = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            theirs.send(b"x")
            time.sleep(0.05)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        ours.settimeout(1)
        with pytest.raises(DeadlineExceededError), total_deadline(0.3, "reading"):
            while True:
                ours.recv(1)
    finally:
        stop.set()
        sender.join()
        ours.close()
        theirs.close()


def test_a_block_that_finishes_in_time_is_untouched_and_the_timer_is_cleared() -> None:
    with total_deadline(5, "quick work"):
        value = sum(range(10))
    assert value == 45
    time.sleep(0.01)  # no alarm left behind to fire later


def test_an_enclosing_deadline_keeps_running() -> None:
    with pytest.raises(DeadlineExceededError, match="outer"), total_deadline(0.3, "outer"):
        with total_deadline(5, "inner"):
            pass
        time.sleep(2)


def test_off_the_main_thread_only_the_block_runs() -> None:
    ran = []

    def work() -> None:
        with total_deadline(0.01, "in a thread"):
            time.sleep(0.05)
            ran.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert ran == [True]
