"""Snap settings that only take effect after a reboot, and how the charm tracks them.

LXCFS cannot be reconfigured live: restarting it would break every running
instance. So a change to an `lxcfs.*` snap key is written to the snap at
once (the snap hands it to LXCFS when it next starts, at boot) and recorded
here as pending, with the boot it was made in. While anything is pending,
other snap-config changes queue too, as the spec asks; the first hook after
a reboot applies the queue and clears the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BOOT_ID = Path("proc/sys/kernel/random/boot_id")


def boot_id(root: Path = Path("/")) -> str:
    """This boot's identity: it changes on every reboot, and only then."""
    return (root / BOOT_ID).read_text().strip()


@dataclass
class PendingConfig:
    """Snap config written or queued for after a reboot.

    Attributes:
        reboot_keys: `lxcfs.*` keys already set in the snap, effective at next boot.
        queued: other snap keys held back until after the reboot.
        boot: the boot id in which the first pending change was made.
    """

    reboot_keys: dict[str, str | None] = field(default_factory=dict)
    queued: dict[str, str | None] = field(default_factory=dict)
    boot: str = ""

    @property
    def waiting(self) -> bool:
        """True while a reboot is needed."""
        return bool(self.reboot_keys or self.queued)

    def rebooted(self, current_boot: str) -> bool:
        """True when the machine has rebooted since the changes were made."""
        return self.waiting and current_boot != self.boot

    def all_changes(self) -> dict[str, str | None]:
        """Everything pending, for show-pending-config."""
        return {**self.reboot_keys, **self.queued}

    def to_dict(self) -> dict[str, object]:
        """Plain data for the charm's stored state."""
        return {
            "reboot_keys": dict(self.reboot_keys),
            "queued": dict(self.queued),
            "boot": self.boot,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PendingConfig:
        """Inverse of `to_dict`, tolerant of an empty record."""
        reboot = data.get("reboot_keys")
        queued = data.get("queued")
        return cls(
            dict(reboot) if isinstance(reboot, Mapping) else {},
            dict(queued) if isinstance(queued, Mapping) else {},
            str(data.get("boot") or ""),
        )
