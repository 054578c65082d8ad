"""How a step says it cannot finish: blocked on the operator, or waiting.

Every step of the charm's reconcile raises one of these instead of returning
a status, so that the first problem stops the hook before anything is
half-applied, and `charm.py` alone turns it into the unit status. The two
kinds are types, not strings: who can fix the problem decides which one a
step raises, and anything else (a bug) is not caught at all, so the hook
fails and Juju retries it with the traceback in the log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lxd_common.errors import SnapdUnavailableError


class CannotFinishError(Exception):
    """A step stopped, for a reason the unit status should show."""


class BlockedError(CannotFinishError):
    """The operator has to change something before the charm can go on."""


class WaitingError(CannotFinishError):
    """Something outside the operator's hands is not ready yet; a later hook retries."""


TRANSIENT: tuple[type[Exception], ...] = (SnapdUnavailableError,)
"""Failures that nobody has to fix: the same step is expected to work later."""


@contextlib.contextmanager
def blocked_on(error: type[Exception], doing: str) -> Iterator[None]:
    """Turn ``error`` into `BlockedError`, saying what was being done.

    Transient failures among them (snapd timing out or restarting) become
    `WaitingError` instead: the operator has nothing to do, the next hook
    tries again.
    """
    try:
        yield
    except TRANSIENT as e:
        raise WaitingError(f"{doing}: {e}; retrying") from None
    except error as e:
        raise BlockedError(f"{doing}: {e}") from None
