"""The LXD charm's configuration as a typed, validated object.

The charm loads it with `self.load_config(LxdConfig)`, which passes each Juju
option as a keyword argument (dashes turned into underscores). Validation
happens at construction, so code that holds an `LxdConfig` can trust it.
Invalid values raise `ValueError` whose message tells the operator what to
set, because the charm shows that message as its blocked status.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal, get_args

Mode = Literal["standalone", "cluster"]
"""How the units of the application relate: independent servers, or one cluster."""

MODES: Final[tuple[str, ...]] = get_args(Mode)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LxdConfig:
    """The charm options the LXD charm acts on.

    Defaults mirror charmcraft.yaml so the class can be built on its own in
    tests; in a deployed charm Juju always supplies every option.

    Attributes:
        mode: `standalone` (every unit its own LXD) or `cluster` (Juju forms
            one LXD cluster from the units).
        snap_channel: the snap channel LXD is installed and refreshed from.
    """

    mode: Mode = "standalone"
    snap_channel: str = "latest/stable"

    def __post_init__(self) -> None:
        """Reject values the charm cannot act on, with a message saying what to fix.

        Raises:
            ValueError: `mode` is neither `standalone` nor `cluster`.
        """
        if self.mode not in MODES:
            raise ValueError(f"invalid mode {self.mode!r}: set mode to standalone or cluster")
