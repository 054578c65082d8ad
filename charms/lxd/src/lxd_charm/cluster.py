"""The `cluster` peer protocol: who bootstraps, who joins with which token, who leaves.

Version 1.3, specified in docs/interfaces/lxd-cluster.md. In short:

- every unit announces ``hostname`` (the LXD member name it will use) in its
  unit databag, and ``joined`` once LXD has accepted it;
- the leader bootstraps the cluster, then, in one hook, issues a join token
  for every unit that is waiting, each in a Juju Secret granted to that unit
  only, and publishes the secret's id under the unit's name in the
  application databag, with ``member_config`` and the ``members`` map;
- first tokens wait until every unit Juju plans for the application has
  announced itself (or until the leader's next update-status), so units
  deployed together get theirs in one leader hook;
- units holding tokens join one at a time, lowest-numbered first
  (update-status does not wait its turn); a unit LXD refused for a reason
  of its own machine says so with ``join-refused`` and gives up its turn
  (1.2);
- a unit that finds its token expired or refused says so with
  ``expired-token`` and the leader issues a new one;
- a leader that is not a member yet (leadership moved to a unit still
  joining) cannot issue tokens: it names itself in ``leader-joining``, and
  the lowest-numbered member unit, its deputy, issues its token in a secret
  of its own, named under ``leader-token`` in the deputy's unit databag (1.1);
- a unit that is not a member yet says why in ``join-status``, and the leader
  is not active while an announced unit is not a member (1.3);
- a member unit whose member it evacuated says so in ``evacuated`` (its
  member name; empty once restored), so the leader recounts at once (1.4).

This module holds the decisions, as pure functions over the databags, so
each rule can be tested without Juju or LXD; `cluster_peer` carries them out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from lxd_charm import peer_bags

VERSION: Final = "1.4"
MEMBERS: Final = "members"
MEMBER_CONFIG: Final = "member_config"
REMOVING: Final = "removing"
HOSTNAME: Final = "hostname"
JOINED: Final = "joined"
EXPIRED_TOKEN: Final = "expired-token"  # noqa: S105 (a field name, not a secret)
LEADER_JOINING: Final = peer_bags.LEADER_JOINING
LEADER_TOKEN: Final = peer_bags.LEADER_TOKEN
JOIN_REFUSED: Final = "join-refused"
JOIN_STATUS: Final = "join-status"
"""A joining unit's own account of why it is not a member yet (1.3): `blocked: ...` or
the wait itself, so the leader's status can say what each missing unit says."""
EVACUATED: Final = "evacuated"
"""A member unit's member name while the unit's `evacuate` action has it evacuated (1.4).
Only a nudge for the leader's count: LXD's listing is what the count reads."""


class ProtocolError(ValueError):
    """A databag this version of the protocol cannot read."""


def compatible(bag: Mapping[str, str]) -> bool:
    """True when the bag speaks a 1.x version (or has not said anything yet)."""
    version = bag.get("version")
    return version is None or version.split(".")[0] == VERSION.split(".")[0]


def _json(bag: Mapping[str, str], key: str, default: Any) -> Any:
    try:
        return json.loads(bag[key]) if bag.get(key) else default
    except ValueError as e:
        raise ProtocolError(f"the {key!r} field is not valid JSON") from e


@dataclass
class AppView:
    """The leader's application databag, decoded."""

    members: dict[str, str] = field(default_factory=dict)
    member_config: list[dict[str, str]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    removing: dict[str, str] = field(default_factory=dict)
    leader_joining: str = ""
    """The leader's unit name while it is not a member yet (it needs a deputy's token)."""

    @classmethod
    def read(cls, bag: Mapping[str, str]) -> AppView:
        """Decode; unit-named keys (``app/N``) hold join-token secret ids."""
        return cls(
            members=dict(_json(bag, MEMBERS, {})),
            member_config=list(_json(bag, MEMBER_CONFIG, [])),
            tokens={key: value for key, value in bag.items() if "/" in key},
            removing=dict(_json(bag, REMOVING, {})),
            leader_joining=bag.get(LEADER_JOINING, ""),
        )

    def write(self) -> dict[str, str]:
        """Encode; keys whose value is empty are how Juju deletes them."""
        bag = {
            "version": VERSION,
            MEMBERS: json.dumps(self.members, sort_keys=True),
            MEMBER_CONFIG: json.dumps(self.member_config),
            REMOVING: json.dumps(self.removing, sort_keys=True) if self.removing else "",
            LEADER_JOINING: self.leader_joining,
        }
        bag.update(self.tokens)
        return bag


@dataclass(frozen=True)
class Waiting:
    """A unit that has announced itself and has no member yet."""

    unit: str
    hostname: str
    renewal: bool = False
    """True when the unit reported its previous token expired or refused."""


@dataclass
class LeaderPlan:
    """What the leader should do in this hook."""

    issue: list[Waiting] = field(default_factory=list)
    held: list[Waiting] = field(default_factory=list)
    """Units whose first token waits for the units Juju still plans (`hold_first_tokens`)."""
    confirm: dict[str, str] = field(default_factory=dict)
    drop_tokens: list[str] = field(default_factory=list)
    collisions: dict[str, str] = field(default_factory=dict)
    incompatible: list[str] = field(default_factory=list)
    replacing: dict[str, str] = field(default_factory=dict)
    """Units announcing the name of a member that is offline and owned by no unit present:
    a replaced machine. The leader removes that member (if it holds no instances) first."""


def plan_leader(
    app: AppView,
    units: Mapping[str, Mapping[str, str]],
    lxd_members: set[str],
    stale: Collection[str] = (),
) -> LeaderPlan:
    """Decide, for every peer unit at once, what the leader does next.

    Batching is the point: one leader hook issues tokens for all waiting
    units. Juju shows the leader its peers one ``relation-joined`` at a time,
    though, so on its own this issues one token per hook; `hold_first_tokens`
    is what gathers them. ``stale`` names the members LXD lists offline that
    no unit present owns (`stale_members`): a unit announcing one of them
    replaces a dead machine, which is not a collision with a live unit.
    """
    plan = LeaderPlan()
    taken = {name: unit for unit, name in app.members.items()}
    in_order = sorted(units.items(), key=lambda item: unit_number(item[0]))
    # A hostname two waiting units announce goes to the one holding a token for
    # it, else the lowest-numbered: LXD keeps one token per name, so a second
    # token would revoke the first and the two units would take turns failing.
    claimed = {
        bag[HOSTNAME]: unit
        for unit, bag in reversed(in_order)
        if app.tokens.get(unit) and unit not in app.members and bag.get(HOSTNAME)
    }
    for unit, bag in in_order:
        if unit in app.members:
            if unit in app.tokens:
                plan.drop_tokens.append(unit)
            continue
        if not compatible(bag):
            plan.incompatible.append(unit)
            continue
        hostname = bag.get(HOSTNAME, "")
        if not hostname:
            continue
        if bag.get(JOINED) == hostname and hostname in lxd_members and hostname not in taken:
            plan.confirm[unit] = hostname
            if unit in app.tokens:
                plan.drop_tokens.append(unit)
            continue
        token = app.tokens.get(unit)
        if hostname in lxd_members and hostname not in taken and token:
            continue  # LXD took its join; its `joined` has not reached us yet
        if hostname in stale and hostname in lxd_members:
            if claimed.setdefault(hostname, unit) == unit:
                plan.replacing[unit] = hostname
            else:
                plan.collisions[unit] = hostname
            continue
        if hostname in taken or hostname in lxd_members:
            plan.collisions[unit] = hostname
            continue
        if claimed.setdefault(hostname, unit) != unit:
            plan.collisions[unit] = hostname
            continue
        if token and bag.get(EXPIRED_TOKEN) != token:
            continue  # a usable token is on its way
        plan.issue.append(Waiting(unit, hostname, renewal=bool(token)))
    plan.drop_tokens += [
        unit for unit in app.tokens if unit not in units and unit not in plan.drop_tokens
    ]
    return plan


def announced(units: Mapping[str, Mapping[str, str]]) -> int:
    """How many units have announced a hostname: these peers and the leader itself."""
    return 1 + sum(1 for bag in units.values() if bag.get(HOSTNAME))


def hold_first_tokens(plan: LeaderPlan, announced: int, planned: int) -> None:
    """Hold first tokens back while units Juju plans have not announced themselves.

    ``planned`` is Juju's count of the application's units (``goal-state``:
    deployed or still being provisioned, not dying). Without the hold, units
    deployed together get one leader hook of tokens each, because the leader
    sees them one at a time; with it, the leader issues all of them in the hook
    where the last one appears, so token rounds do not grow with N. Renewals
    are never held: that unit was already served. A unit that never comes up
    must not stall the rest, so the charm issues held tokens anyway at the
    leader's next update-status (it does not call this there).
    """
    if announced >= planned:
        return
    plan.held = [waiting for waiting in plan.issue if not waiting.renewal]
    plan.issue = [waiting for waiting in plan.issue if waiting.renewal]


def hold_wait(announced: int, planned: int) -> str:
    """The leader's status while `hold_first_tokens` holds tokens back."""
    return (
        f"{announced} of {planned} planned units have announced themselves: join "
        "tokens go out when all have, or at the next update-status"
    )


_HOLD_WAIT = re.compile(
    r"\d+ of \d+ planned units have announced themselves: join tokens go out when all "
    r"have, or at the next update-status"
)


def is_hold_wait(message: str) -> bool:
    """Whether ``message`` is a `hold_wait` status, whatever the counts."""
    return _HOLD_WAIT.fullmatch(message) is not None


def still_holding(
    app: AppView, units: Mapping[str, Mapping[str, str]], planned: int
) -> str | None:
    """The leader's hold status, when these databags alone say every first token stays held.

    For a leader whose last reconcile ended holding first tokens: Juju
    shows it the units deployed with it one ``relation-changed`` at a
    time, and each of those hooks would only count them again. None when
    anything there is for the leader to do or to check in LXD: a token out,
    a removal, a leader joining, a join or a token reported, a unit to
    confirm, refuse or replace, or every planned unit announced (the tokens
    go out). Names are checked against the recorded members only; a name
    that only LXD knows is found by the reconcile that issues the tokens.
    """
    if any(app.tokens.values()) or app.removing or app.leader_joining:
        return None
    reported = (JOINED, EXPIRED_TOKEN, JOIN_REFUSED, JOIN_STATUS)
    if any(bag.get(key) for bag in units.values() for key in reported):
        return None
    plan = plan_leader(app, units, set(app.members.values()))
    if plan.collisions or plan.incompatible:
        return None
    count = announced(units)
    hold_first_tokens(plan, count, planned)
    if plan.issue or not plan.held:
        return None
    return hold_wait(count, planned)


_TURN_WAIT = re.compile(r"waiting for \S+ to join first: LXD takes one join at a time")


def turn_wait(ahead: str) -> str:
    """The status of a unit whose turn to join comes after ``ahead``'s."""
    return f"waiting for {ahead} to join first: LXD takes one join at a time"


def is_turn_wait(message: str) -> bool:
    """Whether ``message`` is a `turn_wait` status, whoever is ahead."""
    return _TURN_WAIT.fullmatch(message) is not None


@dataclass(frozen=True)
class JoinStep:
    """What a non-leader unit that is not a member yet should do.

    A wait's ``reason`` is the unit's status. Its `join-status` stays empty
    for these waits (its token, a replaced token, its turn): the leader reads
    the same databags and names each itself (`membership_gap`). Writing them
    would cost more than words: every change of a unit bag wakes every peer
    (a hook each), and the turn moves at every join.
    """

    action: str  # "announce", "wait", "join"
    secret_id: str = ""
    reason: str = ""


def plan_joiner(
    app: AppView,
    me: str,
    my_bag: Mapping[str, str],
    peer_bags: Mapping[str, Mapping[str, str]],
    *,
    take_turn: bool = True,
) -> JoinStep:
    """Decide a joining unit's next step from the leader's answer.

    Units whose tokens came in the same leader hook join one at a time, in
    unit-number order: LXD 5.0 sometimes wedges a daemon that joins while
    another join is under way (seen about once in five runs of three joins
    at once). ``take_turn=False`` (update-status) goes ahead anyway, so a
    unit whose turn never ends cannot hold the others up for good.
    """
    secret_id = app.tokens.get(me, "")
    if not secret_id:
        return JoinStep("wait", reason="waiting for the leader to issue a join token")
    if my_bag.get(EXPIRED_TOKEN) == secret_id:
        return JoinStep("wait", reason="waiting for the leader to replace an expired join token")
    ahead = joining_ahead(app, me, peer_bags)
    if take_turn and ahead:
        return JoinStep("wait", reason=turn_wait(ahead))
    return JoinStep("join", secret_id=secret_id)


def joining_ahead(app: AppView, me: str, peer_bags: Mapping[str, Mapping[str, str]]) -> str | None:
    """The lowest-numbered peer that holds a usable token and has not joined, if before ``me``.

    A peer that reported its token expired, or LXD refusing its machine
    (``join-refused``, 1.2), is not joining now: it is not in the way.
    """
    for unit, bag in sorted(peer_bags.items(), key=lambda item: unit_number(item[0])):
        if unit_number(unit) >= unit_number(me):
            break
        if _joining(app, unit, bag):
            return unit
    return None


def _joining(app: AppView, unit: str, bag: Mapping[str, str]) -> bool:
    """Whether ``unit`` holds a usable token and has not said it joined: its turn is under way."""
    token = app.tokens.get(unit, "")
    hostname = bag.get(HOSTNAME, "")
    return bool(
        token
        and unit not in app.members
        and token not in (bag.get(EXPIRED_TOKEN), bag.get(JOIN_REFUSED))
        and not (hostname and bag.get(JOINED) == hostname)
    )


def hold_join_records(
    plan: LeaderPlan, app: AppView, units: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """Keep this hook's confirmed joins out of the databag while the round's joins go on.

    Every change of the application databag is a ``relation-changed`` on
    every other unit, so a record per join costs (N-1) hooks a join; one
    record when the round's last join lands costs (N-1) once. Nothing waits
    on the record meanwhile: a joiner's turn moves on its peers' ``joined``
    (`joining_ahead`), and any leader finds the held joins again from the
    units' ``joined`` and LXD's listing (`plan_leader`). The tokens stay
    published until the record, so a unit that departs before it is still
    found by its token. The caller records everything whenever a unit
    departs and at update-status, so a join that never ends holds nothing
    for longer than that.

    Returns:
        The held records (unit to member name), taken out of ``plan.confirm``
        and ``plan.drop_tokens``: members for the leader's status, not yet
        for the databag.
    """
    if not plan.issue and not any(_joining(app, unit, bag) for unit, bag in units.items()):
        return {}
    held, plan.confirm = plan.confirm, {}
    plan.drop_tokens = [unit for unit in plan.drop_tokens if unit not in held]
    return held


def unit_number(unit: str) -> int:
    """The number in a unit name (``lxd/12`` -> 12): Juju never reuses one."""
    return int(unit.rsplit("/", 1)[1])


def deputy(app: AppView, present: set[str]) -> str | None:
    """The member unit that issues the join token of a leader that is not a member.

    The lowest-numbered member unit still present and not being removed: every
    unit computes the same answer from the same databag, so exactly one acts.
    """
    candidates = [
        unit
        for unit in app.members
        if unit in present and unit not in app.removing and unit != app.leader_joining
    ]
    return min(candidates, key=unit_number, default=None)


def plan_leader_join(
    app: AppView,
    me: str,
    my_bag: Mapping[str, str],
    unit_bags: Mapping[str, Mapping[str, str]],
) -> JoinStep:
    """How a leader that is not a member yet gets its token.

    A token the previous leader issued to this unit comes first; otherwise
    the deputy's (see `deputy`). A token reported in ``expired-token`` is not
    used again.
    """
    reported = my_bag.get(EXPIRED_TOKEN, "")
    own = app.tokens.get(me, "")
    if own and own != reported:
        return JoinStep("join", secret_id=own)
    helper = deputy(app, set(unit_bags) | {me})
    if helper is None:
        return JoinStep(
            "wait",
            reason="this leader is not a member yet: waiting for a member unit to issue "
            "its join token",
        )
    granted = unit_bags.get(helper, {}).get(LEADER_TOKEN, "")
    if not granted or granted == reported:
        return JoinStep(
            "wait",
            reason=f"this leader is not a member yet: waiting for {helper} to issue "
            "its join token",
        )
    return JoinStep("join", secret_id=granted)


@dataclass(frozen=True)
class DeputyStep:
    """What a member unit does for a leader that is not a member yet."""

    issue_for: str = ""
    """The leader's hostname, when it needs a (new) token from this unit."""
    drop: bool = False
    """True when this unit's token for the leader is no longer needed."""


def plan_deputy(
    app: AppView,
    me: str,
    present: set[str],
    leader_bag: Mapping[str, str],
    my_bag: Mapping[str, str],
) -> DeputyStep:
    """Decide a member unit's part in a non-member leader's join."""
    mine = my_bag.get(LEADER_TOKEN, "")
    if not app.leader_joining or deputy(app, present | {me}) != me:
        return DeputyStep(drop=bool(mine))
    hostname = leader_bag.get(HOSTNAME, "")
    if not hostname or leader_bag.get(JOINED) == hostname:
        return DeputyStep()
    if mine and leader_bag.get(EXPIRED_TOKEN) != mine:
        return DeputyStep()  # the leader has a usable token from us
    return DeputyStep(issue_for=hostname)


def member_config_for(
    cluster_config: list[dict[str, str]], block_device: str | None
) -> list[dict[str, str]]:
    """The joining member's own values for the cluster's per-member keys.

    Storage pools whose source is per member get this unit's Juju `local`
    block device when one is attached; every other key keeps the value the
    cluster suggests (LXD's default for it).
    """
    answer = []
    for entry in cluster_config:
        value = entry.get("value", "")
        if entry["entity"] == "storage-pool" and entry["key"] == "source" and block_device:
            value = block_device
        answer.append({**entry, "value": value})
    return answer


# --- the cluster database's quorum ---------------------------------------------

DATABASE_ROLE: Final = "database"
STANDBY_ROLE: Final = "database-standby"


class MemberView(Protocol):
    """What the quorum rules read of a member (`lxd_common.lxd.ClusterMember` has it)."""

    @property
    def name(self) -> str:
        """The member's name."""
        ...

    @property
    def online(self) -> bool:
        """Whether LXD counts it as working."""
        ...

    @property
    def roles(self) -> list[str]:
        """Its database roles (``database``, ``database-standby``...)."""
        ...

    @property
    def evacuated(self) -> bool:
        """Whether it is evacuated for maintenance (LXD's status ``Evacuated``)."""
        ...


def quorum_problem(members: Iterable[MemberView], owners: Mapping[str, str]) -> str | None:
    """Why the cluster's database cannot act now, or None while a majority of it is online.

    LXD's database (dqlite) needs a majority of its voters, the members with
    the ``database`` role, to change anything: below that, no member can be
    added or removed, and LXD itself lists every member offline. An evacuated
    member still votes while its daemon runs (LXD 5.0 keeps its ``database``
    role, captured), so it counts as up here; `evacuation_refusal` is where
    evacuated members count as down.
    """
    voters = [m for m in members if DATABASE_ROLE in m.roles]
    offline = sorted(m.name for m in voters if not m.online and not m.evacuated)
    if not voters or (len(voters) - len(offline)) * 2 > len(voters):
        return None
    return (
        f"the cluster database has lost its quorum: {_named(offline, owners)} offline "
        f"({len(voters) - len(offline)}/{len(voters)} database members online); "
        "bring them back"
    )


def removal_refusal(
    members: Iterable[MemberView], leaving: str, owners: Mapping[str, str]
) -> str | None:
    """Why removing the member ``leaving`` would cost the database its majority, or None.

    Counts roles, not members (captured from LXD 5.0): with three members all
    three are voters; from four on, LXD keeps three voters and up to two
    ``database-standby`` members, and promotes an online standby when a voter
    goes (it demoted a killed voter and promoted a standby within seconds).
    So the removal is safe when, after it, the remaining voters plus the
    standby LXD would promote still have a majority online. ``owners`` maps
    member names to the units that own them, for the message.
    """
    listed = list(members)
    voters = {m.name for m in listed if DATABASE_ROLE in m.roles}
    online = {m.name for m in listed if m.online}
    after = voters - {leaving}
    if leaving in voters:
        standbys = sorted(
            m.name for m in listed if STANDBY_ROLE in m.roles and m.online and m.name != leaving
        )
        after |= set(standbys[:1])
    if not after or len(after & online) * 2 > len(after):
        return None
    offline = sorted(after - online)
    ways = [f"bring {', '.join(offline)} back"]
    owned = [owners[name] for name in offline if name in owners]
    if owned:
        ways.append(f"remove {', '.join(owned)} first")
    unit = owners.get(leaving)
    shown = f"{leaving} ({unit})" if unit else leaving
    return (
        f"not removing {shown}: {_named(offline, owners)} "
        f"{'is' if len(offline) == 1 else 'are'} offline and the cluster would lose its "
        f"quorum; {' or '.join(ways)}"
    )


def offline_members(members: Iterable[MemberView], owners: Mapping[str, str]) -> str | None:
    """Members LXD lists offline, for the leader's status (never active while one is).

    Evacuated members are not among them: the operator took them out on
    purpose, and the leader's count says so (`leader_summary`).
    """
    offline = sorted(m.name for m in members if not m.online and not m.evacuated)
    if not offline:
        return None
    if len(offline) == 1:
        return f"{_named(offline, owners)} is offline: bring it back, or remove the unit"
    return f"{_named(offline, owners)} are offline: bring them back, or remove the units"


def evacuation_refusal(
    members: Iterable[MemberView], leaving: str, owners: Mapping[str, str], *, mode: str = "auto"
) -> str | None:
    """Why evacuating the member ``leaving`` is refused, or None.

    Evacuation is what an operator does before taking a machine down, so the
    rule counts ``leaving`` and every member already evacuated or offline as
    down. LXD 5.0 keeps an evacuated member's database role while its daemon
    runs and, once the daemon stops, demotes it and promotes an online
    standby in its place (captured), so each voter down may be replaced by
    one standby that is up. The evacuation is refused when the voters still
    up would not be a majority: taking the machine down would then cost the
    cluster its database. A member that does not vote is never refused for
    this. Unless ``mode`` is ``stop``, it is also refused when no other
    member is up to take the instances (LXD would stop them instead:
    captured, evacuating the last member stopped its running containers).
    """
    listed = list(members)
    names = {m.name for m in listed}
    if leaving not in names:
        return f"{leaving} is not a member of this cluster"
    unit = owners.get(leaving)
    shown = f"{leaving} ({unit})" if unit else leaving
    down = {m.name for m in listed if (not m.online) or m.evacuated} | {leaving}
    if mode != "stop" and not names - down:
        return (
            f"not evacuating {shown}: no other member is online to take its instances "
            "(LXD would stop them); restore or bring back another member first"
        )
    voters = {m.name for m in listed if DATABASE_ROLE in m.roles}
    if leaving not in voters:
        return None
    standbys = {m.name for m in listed if STANDBY_ROLE in m.roles} - down
    lost = voters & down
    up = len(voters - down) + min(len(lost), len(standbys))
    if up * 2 > len(voters):
        return None
    others = sorted(lost - {leaving})
    if not others:
        return (
            f"not evacuating {shown}: it is the cluster's only database member up and no "
            "standby could take its place; add members first"
        )
    return (
        f"not evacuating {shown}: {_named(others, owners)} "
        f"{'is' if len(others) == 1 else 'are'} already evacuated or offline, and taking "
        f"{leaving} down too would cost the cluster its database quorum "
        f"({up}/{len(voters)} database members left); restore or bring back "
        f"{', '.join(others)} first"
    )


def leader_summary(
    members: Iterable[MemberView], units: int, unowned: Collection[str] = ()
) -> str:
    """The leader's count: members online, those evacuated (named), units, unowned members.

    Unowned members are those LXD lists that no unit owns (`unowned_members`);
    the charm never removes them.
    """
    listed = list(members)
    online = sum(1 for m in listed if m.online)
    evacuated = sorted(m.name for m in listed if m.evacuated)
    away = f", {len(evacuated)} evacuated ({', '.join(evacuated)})" if evacuated else ""
    foreign = f"; owned by no unit: {', '.join(sorted(unowned))}" if unowned else ""
    return f"{online}/{len(listed)} members online{away}, {units} units{foreign}"


def stale_members(members: Iterable[MemberView], owners: Mapping[str, str]) -> set[str]:
    """Members LXD lists offline (not evacuated) that no unit present owns.

    ``owners`` maps member names to the units present that own them. Such a
    member is what a dead machine leaves behind once its unit is gone.
    """
    return {m.name for m in members if not m.online and not m.evacuated and m.name not in owners}


def unowned_members(members: Iterable[MemberView], claimed: Collection[str]) -> list[str]:
    """Members LXD lists under a name no unit owns or announces (added by hand, or left behind).

    ``claimed`` are the names in the ``members`` record and every name a
    unit present announces (a unit LXD took but the leader has not
    confirmed yet is not unowned).
    """
    return sorted(m.name for m in members if m.name not in claimed)


def lost_member_refusal(unit: str, member: str, instances: list[str]) -> str:
    """Why an unreachable member a new unit's name belongs to stays: its instances.

    Never lose an instance silently: the operator decides, and the message
    gives the command that would discard them (LXD's force drops their
    records, captured).
    """
    shown = ", ".join(instances[:5]) + (", ..." if len(instances) > 5 else "")
    return (
        f"{unit} wants to join as {member!r}, whose old member is offline, owned by no unit "
        f"and holds {len(instances)} instance(s) ({shown}): bring its machine back, or "
        f"discard them with `lxc cluster remove --force {member}`"
    )


def member_summary(hostname: str, evacuated: bool) -> str:
    """A member's own status line: its name, and that it is evacuated while it is."""
    if evacuated:
        return f"member {hostname} is evacuated: run the restore action to take instances again"
    return f"member {hostname}"


def failure_domain(zone: str | None) -> str:
    """The LXD failure domain for a unit in Juju availability zone ``zone``.

    Units without a zone stay in LXD's own ``default`` domain (LXD refuses
    an empty domain name: "Failure domain name can't be empty", captured).
    """
    return zone.strip() if zone and zone.strip() else "default"


def _named(members: Iterable[str], owners: Mapping[str, str]) -> str:
    """Member names, each with the unit that owns it."""
    return ", ".join(f"{name} ({owners[name]})" if name in owners else name for name in members)


# --- units that are not members ------------------------------------------------------


@dataclass(frozen=True)
class MembershipGap:
    """Units in the relation that are not cluster members, for the leader's status.

    Attributes:
        message: e.g. "2/3 units are members; lxd/1 is not: blocked: LXD refused ...".
        blocked: whether one of them waits on the operator (else they are on their way).
    """

    message: str
    blocked: bool


def membership_gap(
    app: AppView, leader: str, peer_bags: Mapping[str, Mapping[str, str]]
) -> MembershipGap | None:
    """Which units are not members yet, in the words each of them reported.

    ``peer_bags`` are the other units' bags (units leaving are left out by
    the caller); the leader counts itself as a member.
    """
    missing = sorted((unit for unit in peer_bags if unit not in app.members), key=unit_number)
    if not missing:
        return None
    total = len(peer_bags) + (0 if leader in peer_bags else 1)
    said = {unit: _reported(app, unit, peer_bags[unit]) for unit in missing}
    first = missing[0]
    more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
    return MembershipGap(
        message=(
            f"{total - len(missing)}/{total} units are members; {first} is not: "
            f"{said[first]}{more}"
        ),
        blocked=any(text.startswith("blocked:") for text in said.values()),
    )


def _reported(app: AppView, unit: str, bag: Mapping[str, str]) -> str:
    """What a unit that is not a member says of itself, or what the record shows of it.

    A joiner's own words win when it is blocked; a wait it reported before
    the leader issued its token is out of date once the token is there.
    """
    said = bag.get(JOIN_STATUS, "")
    token = app.tokens.get(unit, "")
    if said.startswith("blocked:"):
        return said
    if not bag.get(HOSTNAME):
        return "it has not announced itself yet"
    if token and token == bag.get(EXPIRED_TOKEN):
        return "its join token expired: a new one is on its way"
    if token:
        return "joining with its token"
    return said or "no join token issued yet"
