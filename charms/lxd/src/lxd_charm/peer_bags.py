"""Two databag reads that decide whether a peer event has any work, kept import-free.

Most peer events reach members that are not the leader and have nothing to
do; Juju starts a process for each, so deciding that must not import the
protocol's machinery (or pylxd behind it). The keys are the protocol's
(`lxd_charm.cluster`, docs/interfaces/lxd-cluster.md).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

PEER: Final = "cluster"
LEADER_JOINING: Final = "leader-joining"
LEADER_TOKEN: Final = "leader-token"  # noqa: S105 (a field name, not a secret)
REFRESH_ROUND: Final = "refresh-round"
"""App bag: the number of the leader's latest refresh round (`lxd_charm.snap_refresh`)."""
REFRESH_CHANNEL: Final = "refresh-channel"
"""App bag: the channel that round refreshes to ("" for the channel each member tracks)."""
REFRESH_DONE: Final = "refresh-done"
"""Unit bag: the last round this unit's member refreshed in."""


class _Model(Protocol):
    def get_relation(self, name: str) -> Any: ...


def deputy_work(model: _Model, unit: Any) -> bool:
    """Whether a member that is not the leader has anything to do for a peer change.

    Only a leader that is not a member yet needs one (its deputy issues its
    token, see `cluster_peer.ClusterPeer._deputise`).
    """
    peer = model.get_relation(PEER)
    if peer is None or peer.app is None:
        return False
    return bool(peer.data[peer.app].get(LEADER_JOINING) or peer.data[unit].get(LEADER_TOKEN))


def holds_join_token(model: _Model, unit: Any) -> bool:
    """Whether the leader (or a deputy) issued ``unit`` a join token."""
    peer = model.get_relation(PEER)
    if peer is None or peer.app is None:
        return False
    app_bag = peer.data[peer.app]
    return bool(app_bag.get(unit.name) or app_bag.get(LEADER_JOINING) == unit.name)


def refresh_due(model: _Model, unit: Any) -> bool:
    """Whether the leader started a refresh round this unit has not refreshed in yet.

    Every member refreshes in the round the peer event announces, so this is
    work a member that is not the leader must not skip.
    """
    peer = model.get_relation(PEER)
    if peer is None or peer.app is None:
        return False
    number = peer.data[peer.app].get(REFRESH_ROUND, "")
    return bool(number) and peer.data[unit].get(REFRESH_DONE, "") != number
