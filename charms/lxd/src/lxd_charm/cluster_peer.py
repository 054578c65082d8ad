"""This unit's side of the `cluster` peer relation, carried out in one hook.

`lxd_charm.cluster` decides (pure functions over the databags); this module
acts on those decisions with Juju (databags, secrets) and LXD (bootstrap,
tokens, joins, removals). The protocol is docs/interfaces/lxd-cluster.md.

Errors: every step that cannot finish raises `BlockedError` (the operator
must act) or `WaitingError` (a later hook finishes it); LXD's transient
cluster-database errors propagate as `LxdApiError` for the caller to report.
What the leader cannot do for other units (a refused removal, a hostname
collision, tokens held for units still to come) is returned instead, so
that the leader's own machine still converges in that hook.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import ops

from lxd_charm import cluster, mixed, peer_bags
from lxd_charm.cluster_join import Refusal, join_with_retries, pending_problem, reason, refusal
from lxd_charm.half_join import leftover_refusal
from lxd_charm.machine import CLUSTER_ADDRESS_KEY, Machine
from lxd_charm.outcomes import BlockedError, WaitingError
from lxd_common.endpoints import host_port
from lxd_common.errors import (
    ClusterError,
    LxdApiError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
)
from lxd_common.lxd import ClusterMember, LxdClient, decode_join_token, transient

logger = logging.getLogger(__name__)

CLUSTER_PORT = 8443
JOIN_STATUS_LENGTH = 500
HALF_JOIN_CLEARS = 3
"""At most this many leftovers of an unfinished join are cleared in one hook."""
"""At most this much of a joiner's problem goes in its bag (a status line, not a log)."""
PEER = peer_bags.PEER
ZONE_VARIABLE = "JUJU_AVAILABILITY_ZONE"
"""Where Juju tells a unit its availability zone; it becomes the member's failure domain."""


ClusterProblem = BlockedError | WaitingError
"""Something the leader could not do for other units, to report after its own work."""


@dataclass(frozen=True)
class PeerOutcome:
    """What one step of the protocol left for the rest of the hook.

    Attributes:
        address: this unit's cluster address once it is a member ("" before).
        summary: the cluster's state for the unit status (see `ClusterPeer.summary`).
        problem: what the leader could not finish for other units.
    """

    address: str = ""
    summary: str = ""
    problem: ClusterProblem | None = None


class ClusterPeer:
    """Bootstrap, lead or join, following the `cluster` peer protocol."""

    def __init__(
        self, charm: ops.CharmBase, machine: Machine, environ: Mapping[str, str] = os.environ
    ) -> None:
        self._zone = environ.get(ZONE_VARIABLE)
        self._unit = charm.unit
        self._app = charm.app
        self._model = charm.model
        self._machine = machine
        self._host = machine.host
        self._memory = machine.memory

    @property
    def relation(self) -> ops.Relation | None:
        """The peer relation; Juju creates it at install, but hooks can run before."""
        return self._model.get_relation(PEER)

    def reconcile(
        self,
        lxd: LxdClient,
        departing_unit: str | None = None,
        *,
        stop_waiting_on_peers: bool = False,
    ) -> PeerOutcome:
        """One step of the protocol for this unit.

        Raises when this unit cannot finish its own part; returns its
        cluster address, the status summary and what the leader could not
        finish for other units. ``stop_waiting_on_peers``
        (update-status) gives up waits on other units that may never end:
        the leader issues first tokens before every planned unit has
        announced itself (`cluster.hold_first_tokens`), a joiner joins
        before its turn (`cluster.plan_joiner`).
        """
        peer = self.relation
        if peer is None:
            raise WaitingError("waiting for the cluster peer relation")
        address = self._address()
        if self._memory.initialised:
            if not lxd.member_name_at_connect:
                raise BlockedError(self._left_cluster(peer))
            # LXD knows the address this member joined with; the binding is what Juju says now.
            # The connection's own read of the server config (`Machine.server_config`).
            member_address = self._machine.server_config(lxd).get(CLUSTER_ADDRESS_KEY, "")
            if member_address and address != member_address:
                raise BlockedError(
                    f"the cluster binding moved from {member_address} to {address}: "
                    "LXD cannot change a member's cluster address; bind cluster back"
                )
        peer.data[self._unit].update(
            {"version": cluster.VERSION, cluster.HOSTNAME: self.member_name(lxd)}
        )
        try:
            app = cluster.AppView.read(peer.data[self._app])
        except cluster.ProtocolError as e:
            raise BlockedError(f"cluster relation: {e}") from None
        listed: list[ClusterMember] | None = None
        problem: ClusterProblem | None = None
        leader = self._unit.is_leader()
        bags = {unit.name: peer.data[unit] for unit in peer.units}
        hold = mixed.assess(peer.data[self._app], bags)
        if hold.holds(leader):
            # A refresh from the earlier charm is under way: membership waits for it.
            said = hold.message(leader, member=self._memory.initialised)
            if leader:
                peer.data[self._app].update(app.write())  # this charm's version fences it
            if not self._memory.initialised:
                if not leader:
                    peer.data[self._unit][cluster.JOIN_STATUS] = said[:JOIN_STATUS_LENGTH]
                raise WaitingError(said)
            problem = WaitingError(said)
        elif leader:
            try:
                if not self._memory.initialised and not app.members:
                    self._bootstrap(lxd, address)
                    app.members[self._unit.name] = self._host.hostname
                    app.member_config = lxd.cluster.member_config()
                if not self._memory.initialised:
                    self._join_as_leader(lxd, peer, app, address)
                listed, problem = self._lead(
                    lxd, peer, app, departing_unit, stop_waiting_on_peers=stop_waiting_on_peers
                )
            finally:
                peer.data[self._app].update(app.write())
        elif not self._memory.initialised:
            step = cluster.plan_joiner(
                app,
                self._unit.name,
                peer.data[self._unit],
                {unit.name: peer.data[unit] for unit in peer.units},
                take_turn=not stop_waiting_on_peers,
            )
            try:
                self._join(lxd, peer, app, address, step)
            except (BlockedError, WaitingError) as e:
                # Said where the leader can read it: its status names what keeps us out.
                # The plan's own waits the leader tells from the bags (`cluster.JoinStep`).
                if isinstance(e, BlockedError):
                    said = f"blocked: {e}"[:JOIN_STATUS_LENGTH]
                else:
                    said = "" if step.action == "wait" else str(e)[:JOIN_STATUS_LENGTH]
                if peer.data[self._unit].get(cluster.JOIN_STATUS, "") != said:
                    peer.data[self._unit][cluster.JOIN_STATUS] = said
                raise
        else:
            self._deputise(lxd, peer, app)
        own = self._tend_own_member(lxd, peer, listed) if self._memory.initialised else None
        return PeerOutcome(
            address=address if self._memory.initialised else "",
            summary=self.summary(lxd, listed, own),
            problem=problem,
        )

    def _tend_own_member(
        self, lxd: LxdClient, peer: ops.Relation, listed: list[ClusterMember] | None = None
    ) -> ClusterMember | None:
        """Keep this member's failure domain on the unit's zone; say whether it is evacuated.

        Runs at the join and in every later reconcile, so a zone Juju changes
        is followed. The ``evacuated`` field mirrors what LXD says (also after
        an operator's own ``lxc cluster evacuate``), and changing it wakes
        the leader, whose count names evacuated members. ``listed`` is the
        member listing this hook made (the leader's), read instead of asking again.
        """
        name = self.member_name(lxd)
        if listed is not None:
            own = next((m for m in listed if m.name == name), None)
            if own is None:
                return None  # not (or no longer) a member: nothing to tend
        else:
            try:
                own = lxd.cluster.member(name)
            except MemberNotFoundError:
                return None  # removed under us (this unit is leaving): nothing to tend
        domain = cluster.failure_domain(self._zone)
        if own.failure_domain != domain:
            try:
                lxd.cluster.set_failure_domain(own.name, domain)
            except LxdApiError as e:
                if transient(e):
                    raise
                raise BlockedError(
                    f"LXD refused failure domain {domain!r} for {own.name} ({e}): "
                    f"check the unit's availability zone"
                ) from None
            logger.info("failure domain of %s: %s -> %s", own.name, own.failure_domain, domain)
        self._memory.failure_domain = domain
        peer.data[self._unit][cluster.EVACUATED] = own.name if own.evacuated else ""
        return own

    def summary(
        self,
        lxd: LxdClient,
        members: list[ClusterMember] | None = None,
        own: ClusterMember | None = None,
    ) -> str:
        """For the unit status: the leader counts members online, evacuated, and units.

        Other members only name themselves (and say when they are evacuated):
        they skip peer events (see charm.py), so a count of theirs would go
        stale after every change. ``members`` is a listing this hook already
        made, ``own`` this member as this hook read it, to save asking again.
        """
        peer = self.relation
        if not self._memory.initialised or peer is None:
            return ""
        name = self.member_name(lxd)
        if not self._unit.is_leader():
            if own is None:
                with contextlib.suppress(MemberNotFoundError):
                    own = lxd.cluster.member(name)
            return cluster.member_summary(name, own is not None and own.evacuated)
        if members is None:
            members = lxd.cluster.members()
        claimed = {name}
        claimed |= {peer.data[unit].get(cluster.HOSTNAME, "") for unit in peer.units}
        with contextlib.suppress(cluster.ProtocolError):
            claimed |= set(cluster.AppView.read(peer.data[self._app]).members.values())
        unowned = cluster.unowned_members(members, claimed)
        return cluster.leader_summary(members, len(peer.units) + 1, unowned)

    def member_name(self, lxd: LxdClient) -> str:
        """The name this machine's member goes by in LXD: the hostname it joined with.

        Before this unit is a member, the name it bootstraps or joins under
        (its hostname). Once it is, the name LXD gives the member, read from
        the connection (no request): LXD keeps a member's name when the
        machine is renamed, and the hostname would then find no member (its
        failure domain untended, its leader's status without an address).
        """
        if not self._memory.initialised:
            return self._host.hostname
        return member_name(lxd, self._host.hostname)

    def _left_cluster(self, peer: ops.Relation) -> str:
        """Why a unit whose LXD is a standalone daemon again can do nothing, and the way out.

        The charm made this machine a member; ``lxc cluster remove`` run on
        another member resets a member to a standalone daemon (LXD 5.0.2).
        Joining it again on its own would fight whoever removed it, and a
        leader without a member can neither issue tokens nor remove members:
        the unit stops here, and a new unit takes its place.
        """
        recorded = peer.data[self._unit].get(cluster.JOINED, "")
        with contextlib.suppress(cluster.ProtocolError):
            recorded = cluster.AppView.read(peer.data[self._app]).members.get(
                self._unit.name, recorded
            )
        was = f" (it was {recorded})" if recorded else ""
        return (
            f"LXD here is no longer a cluster member{was}, removed outside Juju: "
            f"`juju remove-unit {self._unit.name}`, then `juju add-unit {self._app.name}`"
        )

    def _address(self) -> str:
        binding = self._model.get_binding(PEER)
        address = binding.network.bind_address if binding else None
        if address is None:
            raise BlockedError("no address for the cluster endpoint: bind it to a space")
        return host_port(str(address), CLUSTER_PORT)

    def _bootstrap(self, lxd: LxdClient, address: str) -> None:
        """Initialise this unit's LXD as the first member of a new cluster."""
        self._machine.initialise(
            lxd,
            {
                "config": {CLUSTER_ADDRESS_KEY: address},
                "cluster": {"server_name": self._host.hostname, "enabled": True},
            },
        )
        logger.info("bootstrapped the LXD cluster as %s on %s", self._host.hostname, address)

    def _lead(
        self,
        lxd: LxdClient,
        peer: ops.Relation,
        app: cluster.AppView,
        departing_unit: str | None,
        *,
        stop_waiting_on_peers: bool,
    ) -> tuple[list[ClusterMember], ClusterProblem | None]:
        """Issue tokens to every waiting unit, confirm joins, remove departed members.

        Returns LXD's member listing after the removals (issuing tokens and
        confirming joins do not change it), and the first thing left undone.
        """
        app.leader_joining = ""  # a member leads: no deputy is needed any more
        present = {unit.name for unit in peer.units} | {self._unit.name}
        present.discard(departing_unit or "")
        for unit, member in app.members.items():
            # A departed unit's member leaves, also when its departure reached an
            # earlier leader (or this one missed the hook): the databag is the record.
            if unit not in present:
                app.removing.setdefault(unit, member)
        listed = lxd.cluster.members()
        lxd_members = {m.name for m in listed}
        name = self.member_name(lxd)
        if mixed.unrecorded_leader(app.members, self._unit.name, name, lxd_members):
            app.members[self._unit.name] = name  # the earlier charm's lone leader
        for unit, member in self._joined_unconfirmed(app, present, lxd_members).items():
            app.removing.setdefault(unit, member)
        lost = cluster.quorum_problem(listed, _owners(app))
        if lost is not None:
            # Below a majority LXD can neither remove nor admit a member: touch nothing.
            return listed, BlockedError(lost)
        listed, refused = self._remove_departed(lxd, app, listed)
        lxd_members = {m.name for m in listed}
        units = {
            unit.name: dict(peer.data[unit])
            for unit in peer.units
            if unit.name != departing_unit and unit.name not in app.removing
        }
        for unit in mixed.unjoined_records(app.members, lxd_members, units):
            # The earlier charm recorded the unit at its token, before a join that never came.
            logger.warning("%s never joined on the earlier charm's token: forgot it", unit)
            del app.members[unit]
        mine = {m: u for u, m in app.members.items() if u in present}
        stale = cluster.stale_members(listed, mine)
        plan = cluster.plan_leader(app, units, lxd_members, stale)
        if plan.replacing:
            replaced = self._replace_lost(lxd, app, plan.replacing, listed, present, refused)
            if replaced:
                listed = lxd.cluster.members()
                lxd_members = {m.name for m in listed}
                plan = cluster.plan_leader(app, units, lxd_members, stale - replaced)
        planned, announced = 0, cluster.announced(units)
        if not stop_waiting_on_peers and any(not waiting.renewal for waiting in plan.issue):
            planned = self._app.planned_units()  # a hook tool call: only when it matters
            cluster.hold_first_tokens(plan, announced, planned)
        held: dict[str, str] = {}
        if not stop_waiting_on_peers and departing_unit is None:
            held = cluster.hold_join_records(plan, app, units)
        app.members.update(plan.confirm)
        for unit in plan.drop_tokens:
            self._drop_token(app, unit)
        for waiting in plan.issue:
            self._drop_token(app, waiting.unit)
        # Checked against the listing above, and pending tokens listed once for all of
        # them: a peer event on the leader lists members once, also when it issues tokens.
        names = [waiting.hostname for waiting in plan.issue]
        tokens = lxd.cluster.add_join_tokens(names, members=lxd_members) if names else {}
        for waiting in plan.issue:
            token = tokens[waiting.hostname]
            secret = self._app.add_secret(
                {"token": token.token}, label=f"join-token-{waiting.unit.replace('/', '-')}"
            )
            secret.grant(peer, unit=self._model.get_unit(waiting.unit))
            app.tokens[waiting.unit] = str(secret.id)
            logger.info("issued a join token for %s (%s)", waiting.unit, waiting.hostname)
        # The held joins are members for this hook's status, as they are for LXD.
        counted = replace(app, members=app.members | held)
        problem = self._first_problem(plan, refused, announced, planned)
        if problem is None:
            gap = cluster.membership_gap(counted, self._unit.name, units)
            if gap is not None:
                problem = (BlockedError if gap.blocked else WaitingError)(gap.message)
        return listed, problem or self.health(listed, counted)

    @staticmethod
    def _first_problem(
        plan: cluster.LeaderPlan, refused: list[ClusterProblem], announced: int, planned: int
    ) -> ClusterProblem | None:
        """What the leader's status should say about units it could not serve."""
        if refused:
            return refused[0]
        if plan.collisions:
            unit, name = sorted(plan.collisions.items())[0]
            return BlockedError(
                f"{unit} wants to join as {name!r}, which another unit already uses: "
                "give that machine another hostname"
            )
        if plan.incompatible:
            return BlockedError(
                f"{', '.join(plan.incompatible)} speak another cluster protocol version: "
                "upgrade every unit to the same charm revision"
            )
        if plan.held:
            return WaitingError(cluster.hold_wait(announced, planned))
        return None

    def _joined_unconfirmed(
        self, app: cluster.AppView, present: set[str], lxd_members: set[str]
    ) -> dict[str, str]:
        """Members of units that left after LXD took their join, before we confirmed it.

        Such a unit is in no `members` entry, and its databag is gone with it;
        the token the leader issued says which member name it joined as.
        """
        found = {}
        for unit, secret_id in app.tokens.items():
            if not secret_id or unit in present or unit in app.members:
                continue
            try:
                token = self._model.get_secret(id=secret_id).get_content(refresh=True)["token"]
                name = decode_join_token(token).server_name
            except (ops.SecretNotFoundError, ops.ModelError, KeyError, ClusterError):
                continue
            if name in lxd_members:
                found[unit] = name
        return found

    def _remove_departed(
        self, lxd: LxdClient, app: cluster.AppView, listed: list[ClusterMember]
    ) -> tuple[list[ClusterMember], list[ClusterProblem]]:
        """Remove members whose units left, never at the cost of the database's quorum.

        Returns the member listing after the removals, and why members stay
        (instances left on them, a quorum the removal would break, a database
        that is electing a leader); they stay in ``removing``, retried by
        later hooks.
        """
        refused: list[ClusterProblem] = []
        for unit, member in sorted(app.removing.items()):
            listed_names = {m.name for m in listed}
            refusal = cluster.removal_refusal(listed, member, _owners(app))
            if member in listed_names and refusal is not None:
                refused.append(BlockedError(refusal))
                continue
            lost = any(m.name == member and not m.online and not m.evacuated for m in listed)
            try:
                if lost:
                    # LXD cannot clean up on an unreachable member without force (captured).
                    lxd.cluster.remove_lost_member(member)
                else:
                    lxd.cluster.remove_member(member)
            except MemberNotFoundError:
                pass  # already gone (a retried hook, or removed by hand)
            except MemberHasInstancesError as e:
                refused.append(
                    BlockedError(
                        _lost_with_instances(unit, e) if lost else _has_instances(unit, e)
                    )
                )
                continue
            except LxdApiError as e:
                if not transient(e):
                    raise
                refused.append(
                    WaitingError(f"removing {member} ({unit}) waits for the cluster database: {e}")
                )
                continue
            app.members.pop(unit, None)
            del app.removing[unit]
            self._drop_token(app, unit)
            listed = lxd.cluster.members()
        return listed, refused

    def _replace_lost(
        self,
        lxd: LxdClient,
        app: cluster.AppView,
        replacing: dict[str, str],
        listed: list[ClusterMember],
        present: set[str],
        refused: list[ClusterProblem],
    ) -> set[str]:
        """Remove the unreachable members whose names new units announce (replaced machines).

        Only a member that holds no instances goes (LXD needs force for an
        unreachable member, and force would drop instance records), and
        never at the cost of the database's quorum; otherwise the reason is
        added to ``refused``. Returns the member names removed; their old
        units' records go with them, so the new units get tokens for the names.
        """
        removed = set()
        for unit, name in sorted(replacing.items()):
            why = cluster.removal_refusal(listed, name, _owners(app))
            if why is not None:
                refused.append(BlockedError(why))
                continue
            try:
                lxd.cluster.remove_lost_member(name)
            except MemberHasInstancesError as e:
                refused.append(BlockedError(cluster.lost_member_refusal(unit, name, e.instances)))
                continue
            except MemberNotFoundError:
                pass  # gone already
            except LxdApiError as e:
                if not transient(e):
                    raise
                refused.append(
                    WaitingError(f"removing {name} waits for the cluster database: {e}")
                )
                continue
            logger.info("removed the unreachable member %s: %s joins under its name", name, unit)
            removed.add(name)
            for old, member in list(app.members.items()):
                if member == name and old not in present:
                    del app.members[old]
                    app.removing.pop(old, None)
                    self._drop_token(app, old)
        return removed

    def health(
        self, members: list[ClusterMember], app: cluster.AppView | None = None
    ) -> ClusterProblem | None:
        """What the leader's status says about the cluster itself.

        Never active while its database lacks a quorum or a member is offline.
        ``app`` is the application bag as this hook has it (read when None).
        """
        peer = self.relation
        if app is None and peer is not None:
            with contextlib.suppress(cluster.ProtocolError):
                app = cluster.AppView.read(peer.data[self._app])
        owners = _owners(app) if app is not None else {}
        lost = cluster.quorum_problem(members, owners)
        if lost is not None:
            return BlockedError(lost)
        offline = cluster.offline_members(members, owners)
        return BlockedError(offline) if offline is not None else None

    def _drop_token(self, app: cluster.AppView, unit: str) -> None:
        secret_id = app.tokens.get(unit)
        if secret_id is None:
            return
        # An empty value deletes the key from the databag; it stays "" (not popped) when
        # dropped twice in one hook, or the second drop would leave the key in the bag.
        app.tokens[unit] = ""
        self._remove_secret(secret_id)

    def _remove_secret(self, secret_id: str) -> None:
        """A consumed or replaced token's secret goes; one already gone is fine."""
        if not secret_id:
            return
        with contextlib.suppress(ops.SecretNotFoundError, ops.ModelError):
            self._model.get_secret(id=secret_id).remove_all_revisions()

    def _join_as_leader(
        self, lxd: LxdClient, peer: ops.Relation, app: cluster.AppView, address: str
    ) -> None:
        """Leadership moved to this unit before it joined: join first, then lead.

        A leader cannot issue tokens without a member's LXD, so it uses the
        token the previous leader issued it, or asks a member (its deputy)
        for one by naming itself in ``leader-joining``.
        """
        bags = {unit.name: peer.data[unit] for unit in peer.units}
        step = cluster.plan_leader_join(app, self._unit.name, peer.data[self._unit], bags)
        if step.secret_id and step.secret_id == app.tokens.get(self._unit.name):
            app.leader_joining = ""
        else:
            # The predecessor's token for us failed, or there was none: a deputy's
            # new token would revoke it in LXD anyway.
            self._drop_token(app, self._unit.name)
            app.leader_joining = self._unit.name
        self._join(lxd, peer, app, address, step)
        app.members[self._unit.name] = self._host.hostname
        app.leader_joining = ""
        self._drop_token(app, self._unit.name)

    def _deputise(self, lxd: LxdClient, peer: ops.Relation, app: cluster.AppView) -> None:
        """Issue (or withdraw) the join token of a leader that is not a member yet.

        The token is a secret owned by this unit and granted to the leader
        unit only; its id goes in this unit's ``leader-token``.
        """
        units = {unit.name: unit for unit in peer.units}
        leader = units.get(app.leader_joining)
        my_bag = peer.data[self._unit]
        step = cluster.plan_deputy(
            app,
            self._unit.name,
            set(units),
            peer.data[leader] if leader is not None else {},
            my_bag,
        )
        if step.drop or step.issue_for:
            self._remove_secret(my_bag.get(cluster.LEADER_TOKEN, ""))
            my_bag[cluster.LEADER_TOKEN] = ""
        if not step.issue_for or leader is None:
            return
        try:
            token = lxd.cluster.add_join_token(step.issue_for)
        except MemberExistsError:
            raise BlockedError(
                f"the leader {leader.name} wants to join as {step.issue_for!r}, which another "
                "member already uses: give that machine another hostname"
            ) from None
        secret = self._unit.add_secret({"token": token.token})
        secret.grant(peer, unit=leader)
        my_bag[cluster.LEADER_TOKEN] = str(secret.id)
        logger.info("issued a join token for the leader %s (%s)", leader.name, step.issue_for)

    def _join(
        self,
        lxd: LxdClient,
        peer: ops.Relation,
        app: cluster.AppView,
        address: str,
        step: cluster.JoinStep,
    ) -> None:
        """Join with the token granted to this unit, or say why it waits."""
        if step.action != "join":
            raise WaitingError(step.reason)
        if self._already_member(lxd, app):
            # An earlier run of this hook joined, then failed before Juju kept
            # what it recorded; joining again would only be refused.
            self._record_join(peer)
            return
        try:
            token = self._model.get_secret(id=step.secret_id).get_content(refresh=True)["token"]
        except (ops.SecretNotFoundError, ops.ModelError, KeyError):
            raise WaitingError("waiting for access to the join token") from None
        if decode_join_token(token).expired():
            peer.data[self._unit][cluster.EXPIRED_TOKEN] = step.secret_id
            raise WaitingError("the join token expired: asked the leader for a new one")
        member_config = cluster.member_config_for(app.member_config, self._machine.block_device)
        try:
            for attempt in range(1, HALF_JOIN_CLEARS + 2):
                try:
                    join_with_retries(lxd, self._host.hostname, address, token, member_config)
                    break
                except LxdApiError as e:
                    if (
                        attempt > HALF_JOIN_CLEARS
                        or refusal(e) is not Refusal.MACHINE
                        or not leftover_refusal(str(e))
                    ):
                        raise
                    # An earlier join died half-way and left its pools (or this member's
                    # trust entry) here: clear them, refused where that could lose data,
                    # and join again at once. Each refusal names one leftover.
                    self._machine.clear_half_join(lxd, reason(e))
        except LxdApiError as e:
            why, said = refusal(e), f"LXD refused the join ({reason(e)})"
            if why is Refusal.PENDING:  # bounded over all hooks, from the first such refusal
                self._memory.pool_wait_since = self._memory.pool_wait_since or time.time()
                peer.data[self._unit][cluster.JOIN_REFUSED] = step.secret_id  # others go first
                raise pending_problem(said, self._memory.pool_wait_since, time.time()) from None
            self._memory.pool_wait_since = 0.0
            if why is Refusal.TOKEN:
                peer.data[self._unit][cluster.EXPIRED_TOKEN] = step.secret_id
                raise WaitingError(f"{said}: asked the leader for a new token") from None
            if why is Refusal.UNREACHABLE:
                raise WaitingError(f"{said}: retrying on the next hook") from None
            peer.data[self._unit][cluster.JOIN_REFUSED] = step.secret_id  # let others go first
            raise BlockedError(
                f"{said}: fix this machine or the charm's settings; the join is retried "
                "on the next hook"
            ) from None
        self._record_join(peer)

    def _already_member(self, lxd: LxdClient, app: cluster.AppView) -> bool:
        """Whether this machine's LXD is a member of this cluster already, under its hostname."""
        name = lxd.cluster.server_name
        if not name:
            return False
        others = set(app.members.values()) - {name}
        if name != self._host.hostname or (
            others and not others & {m.name for m in lxd.cluster.members()}
        ):
            raise BlockedError(
                f"this machine's LXD is already a member of another cluster (as {name!r}): "
                "remove it from that cluster, or deploy this unit to another machine"
            )
        logger.info("this machine's LXD is already a member as %s: recording the join", name)
        return True

    def _record_join(self, peer: ops.Relation) -> None:
        self._machine.record_initialised()
        self._memory.pool_wait_since = 0.0
        peer.data[self._unit][cluster.JOINED] = self._host.hostname
        peer.data[self._unit][cluster.EXPIRED_TOKEN] = ""
        peer.data[self._unit][cluster.JOIN_REFUSED] = ""
        peer.data[self._unit][cluster.JOIN_STATUS] = ""
        logger.info("joined the LXD cluster as %s", self._host.hostname)


def _has_instances(unit: str, error: MemberHasInstancesError) -> str:
    """Why a departed unit's member stays, and the way forward: evacuating it.

    The charm never moves instances on its own at removal; the operator's
    ``evacuate`` action on that unit does (or deleting them).
    """
    shown = ", ".join(error.instances[:5]) + (", ..." if len(error.instances) > 5 else "")
    return (
        f"cannot remove {unit}: member {error.member!r} still holds "
        f"{len(error.instances)} instance(s) ({shown}); move them first with "
        f"`juju run {unit} evacuate` (`lxc cluster evacuate {error.member}` once the unit "
        "is gone), or delete them"
    )


def _lost_with_instances(unit: str, error: MemberHasInstancesError) -> str:
    """Why a departed unit's unreachable member stays: it cannot be evacuated, only discarded."""
    shown = ", ".join(error.instances[:5]) + (", ..." if len(error.instances) > 5 else "")
    return (
        f"cannot remove {unit}: its member {error.member!r} is offline and holds "
        f"{len(error.instances)} instance(s) ({shown}); bring its machine back, or discard "
        f"them with `lxc cluster remove --force {error.member}`"
    )


def member_name(lxd: LxdClient, hostname: str) -> str:
    """The member name LXD gives this machine, else (not a member) its ``hostname``."""
    return lxd.member_name_at_connect or hostname


def owners(model: ops.Model) -> dict[str, str]:
    """Member name -> owning unit, from the application databag (for action messages)."""
    peer = model.get_relation(PEER)
    if peer is None or peer.app is None:
        return {}
    with contextlib.suppress(cluster.ProtocolError):
        return _owners(cluster.AppView.read(peer.data[peer.app]))
    return {}


def _owners(app: cluster.AppView) -> dict[str, str]:
    """Member name -> the unit that owns it, from the application databag's record."""
    return {member: unit for unit, member in app.members.items()}
