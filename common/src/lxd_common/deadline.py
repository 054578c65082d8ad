"""A total deadline for a block of network work, however the peer paces its bytes.

Socket timeouts bound each read, not the whole: a server that sends one byte
every few seconds keeps a request alive for as long as it likes, and every
hook of the unit queues behind it. `total_deadline` bounds the block as a
whole with a real-time interval timer (``SIGALRM``), which interrupts a
blocked read where a timeout cannot. It needs the main thread (where Juju
runs a charm's hook); elsewhere it cannot set the timer, and only the
socket timeouts apply.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .errors import LxdUnreachableError


class DeadlineExceededError(LxdUnreachableError):
    """The block did not finish within its deadline."""


@contextlib.contextmanager
def total_deadline(seconds: float, what: str) -> Iterator[None]:
    """Run the block within ``seconds`` in total, or raise `DeadlineExceededError`.

    Args:
        seconds: the whole block's allowance (connecting, every request, every byte).
        what: the work, for the message ("talking to LXD at https://10.0.0.1:8443").
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise DeadlineExceededError(f"{what} did not finish within {seconds:g} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, outer)  # an enclosing deadline keeps running
