"""The mixed moment of `juju refresh --switch`: some units still run the earlier charm.

Juju refreshes the units of an application one by one, so for a while some
units of `lxd` run the charm operators switch from (Canonical's) and some
run this one, and the leader may be either. The two speak different peer
protocols over the same `cluster` relation:

- the earlier charm writes ``version: "1.0"`` in every unit bag and in the
  application bag, and accepts no other version (it checks for exactly
  that string before it issues a token, joins, or removes a member); this
  charm's protocol writes its own version, 1.1 or later, so a bag saying
  1.0 is the earlier charm's (`earlier_charm`);
- the earlier charm's leader hands out join tokens in plain application
  data and adds the joiner to `members` *before* it joins; on
  relation-departed it removes the departed unit's member at once, with no
  check of quorum, and forgets it in `members` even when LXD refused.

The rule here: while any peer's bag is in the earlier charm's shape, a
unit of this charm changes no cluster membership. The leader issues no
token, records no removal and removes no member (a unit that departs in
that moment is removed once every unit runs this charm, from Juju's own
account of who is present); a joiner does not join; a member issues no
deputy token; each says why in its status. Once every unit runs this
charm, the protocol proceeds, and reads what the earlier charm left
(`members`, `adopt.plain_tokens`, `unjoined_records`). Once a leader of
this charm writes the application bag it says this charm's version, which
the earlier charm refuses: a unit still on it that becomes leader then
neither admits nor removes members.

Pure: no `ops`, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

EARLIER_VERSION: Final = "1.0"
"""The one peer protocol version the earlier charm writes and accepts."""
VERSION: Final = "version"
JOINED: Final = "joined"
"""This charm's protocol key for a confirmed join (the earlier charm never writes it)."""
SHOWN: Final = 5
"""At most this many unit names go in a status line."""


def earlier_charm(bag: Mapping[str, str]) -> bool:
    """Whether a peer databag (a unit's or the application's) is in the earlier charm's shape.

    An empty bag is a unit whose first hook has not run yet: a new unit runs
    this charm (Juju deploys the refreshed charm to new units), and a unit
    of the earlier charm writes its version in its first hook.
    """
    return bag.get(VERSION) == EARLIER_VERSION


@dataclass(frozen=True)
class Mixed:
    """What of the cluster still runs the earlier charm.

    Attributes:
        earlier_units: peers whose bag is in the earlier charm's shape.
        earlier_app: the application bag is still the earlier charm's (no
            leader of this charm has written it yet).
    """

    earlier_units: tuple[str, ...] = ()
    earlier_app: bool = False

    def holds(self, leader: bool) -> bool:
        """Whether this unit changes no membership in this hook.

        The leader holds while any peer runs the earlier charm (it rewrites
        the application bag itself). Another unit also holds while the
        application bag is the earlier charm's: the leader may still run it,
        and that leader reads nothing this charm writes.
        """
        return bool(self.earlier_units) or (not leader and self.earlier_app)

    def message(self, leader: bool, *, member: bool) -> str:
        """The status line saying what waits and for what (only when `holds`)."""
        if self.earlier_units:
            units = _names(self.earlier_units)
            still = f"{units} still {'runs' if len(self.earlier_units) == 1 else 'run'}"
            who = f"refresh in progress: {still} the earlier charm"
        else:
            who = "refresh in progress: the leader has not run this charm yet"
        if leader:
            what = "joins and removals wait"
        elif member:
            what = "this member changes no cluster membership"
        else:
            what = "joining waits"
        return f"{who}; {what} until `juju refresh` has reached every unit"


def assess(app_bag: Mapping[str, str], unit_bags: Mapping[str, Mapping[str, str]]) -> Mixed:
    """Read the peer databags: which peers (``unit_bags``, by unit name) run the earlier charm."""
    earlier = tuple(
        sorted(
            (unit for unit, bag in unit_bags.items() if earlier_charm(bag)),
            key=_unit_number,
        )
    )
    return Mixed(earlier_units=earlier, earlier_app=earlier_charm(app_bag))


def unjoined_records(
    members: Mapping[str, str],
    lxd_members: Collection[str],
    unit_bags: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """Units in `members` that never joined: the earlier charm's record of a token it issued.

    The earlier charm's leader adds a unit to `members` when it issues the
    unit's token, before the join; this charm's protocol only when LXD
    lists the member and the unit said ``joined``. A unit still present
    whose member LXD does not list and who never said ``joined`` got a
    token from the earlier charm it did not use: forgetting the record
    lets this charm's protocol issue it a token of its own. ``unit_bags``
    are the peers present (the leader's own record is never one).
    """
    return sorted(
        (
            unit
            for unit, name in members.items()
            if unit in unit_bags and name not in lxd_members and not unit_bags[unit].get(JOINED)
        ),
        key=_unit_number,
    )


def unrecorded_leader(
    members: Mapping[str, str], leader: str, hostname: str, lxd_members: Collection[str]
) -> bool:
    """Whether the leader's own member is missing from `members` and should be recorded.

    The earlier charm's leader writes `members` (itself first) only when it
    issues its first token, so a cluster it formed alone has no map: the
    leader, a member LXD lists under its hostname, is then recorded as this
    protocol records a bootstrap, unless another unit already claims that
    name (a collision the protocol reports, not one to paper over).
    """
    return leader not in members and hostname in lxd_members and hostname not in members.values()


def _names(units: tuple[str, ...]) -> str:
    shown = ", ".join(units[:SHOWN])
    return shown + (f" (+{len(units) - SHOWN} more)" if len(units) > SHOWN else "")


def _unit_number(unit: str) -> int:
    number = unit.rpartition("/")[2]
    return int(number) if number.isdigit() else -1
