"""How a reconcile step says it cannot finish: blocked on the operator, or waiting.

Every step of the charm's reconcile raises one of these instead of returning
a status, so that the first problem stops the hook before anything is
half-applied, and `charm.py` alone turns it into the unit status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class BlockedError(Exception):
    """The operator has to change something before the charm can go on."""


class WaitingError(Exception):
    """Something outside the operator's hands is not ready yet; a later hook retries."""


@contextlib.contextmanager
def blocked_on(error: type[Exception], doing: str) -> Iterator[None]:
    """Turn an operator-fixable error into `BlockedError`, saying what was being done."""
    try:
        yield
    except error as e:
        raise BlockedError(f"{doing}: {e}") from None
