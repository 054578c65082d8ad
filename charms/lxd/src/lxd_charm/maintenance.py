"""The `evacuate` and `restore` actions: a member's maintenance, at the operator's word.

The charm never moves an instance on its own initiative; these actions are
the operator asking it to. `evacuate` evacuates this unit's own member (LXD
moves or stops its instances) and reports which instances went where;
`restore` brings the member back and reports where its instances are now.

Both are refused, with a message that says what to do, where LXD would do
something the operator cannot have meant:

- evacuating when taking the member down would cost the cluster its
  database quorum, or when no other member is up to take the instances
  (`lxd_charm.cluster.evacuation_refusal`);
- a mode other than ``auto`` on an LXD that ignores the mode (5.0.2: see
  `lxd_common.lxd.EVACUATION_MODES` and the ``clustering_evacuation_mode``
  extension); there each instance's ``cluster.evacuate`` key decides.

Pure planning (`moves`) is separate from the calls, so each decision is
unit-tested without LXD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxd_charm import cluster
from lxd_charm.actions import ActionError
from lxd_common.errors import MemberNotFoundError
from lxd_common.lxd import EVACUATION_MODES, LxdClient, Placement


@dataclass(frozen=True)
class EvacuateParams:
    """Parameters of ``evacuate``.

    Attributes:
        mode: LXD's evacuation mode: ``auto`` (each instance's own
            ``cluster.evacuate`` policy, by default moving it), ``stop``
            (stop instances in place) or ``migrate`` (move every instance).
    """

    mode: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode not in EVACUATION_MODES:
            raise ValueError(f"mode must be one of {', '.join(EVACUATION_MODES)}")


def moves(
    member: str, before: Mapping[str, Placement], after: Mapping[str, Placement]
) -> dict[str, str]:
    """What happened to each instance that was on ``member`` (evacuate) or came back to it.

    Keys are instance names, values say where each is now and in what
    state, e.g. ``"node2 -> node1 (Running)"`` or ``"stays on node2 (Stopped)"``.
    An instance on ``member`` before or after is reported; one gone is said to be.
    """
    names = {n for n, at in before.items() if at.location == member}
    names |= {n for n, at in after.items() if at.location == member}
    report = {}
    for name in sorted(names):
        was, now = before.get(name), after.get(name)
        if now is None:
            report[name] = "gone"
        elif was is None or was.location == now.location:
            report[name] = f"stays on {now.location} ({now.status})"
        else:
            report[name] = f"{was.location} -> {now.location} ({now.status})"
    return report


def _results(member: str, report: dict[str, str], **extra: str) -> dict[str, Any]:
    """Juju action results: instance names are not valid result keys, so one text block."""
    lines = [f"{name}: {where}" for name, where in report.items()]
    return {
        "member": member,
        **extra,
        "instances": "\n".join(lines) if lines else "none",
        "count": str(len(report)),
    }


def evacuate(lxd: LxdClient, member: str, mode: str, owners: Mapping[str, str]) -> dict[str, Any]:
    """Evacuate ``member`` (this unit's own) and say where its instances went.

    Raises:
        ActionError: refused (quorum, nowhere to go, a mode LXD would ignore).
    """
    members = lxd.cluster.members()
    own = next((m for m in members if m.name == member), None)
    if own is None:
        raise ActionError(f"{member} is not a member of the cluster (yet): nothing to evacuate")
    if own.evacuated:
        return _results(member, {}, mode=mode, state="already evacuated: run restore to undo")
    if not own.online:
        raise ActionError(
            f"{member} is {own.status.lower()}: LXD can only evacuate a member that is online"
        )
    refusal = cluster.evacuation_refusal(members, member, owners, mode=mode)
    if refusal is not None:
        raise ActionError(refusal)
    honoured = lxd.cluster.evacuation_modes()
    if mode != "auto" and not honoured:
        raise ActionError(
            f"this LXD ignores the evacuation mode (it lacks the clustering_evacuation_mode "
            f"API extension), so mode={mode} cannot be honoured: run with mode=auto, where "
            "each instance's cluster.evacuate key (auto, migrate or stop) decides"
        )
    before = lxd.cluster.placements()
    lxd.cluster.evacuate(member, mode if honoured else None)
    report = moves(member, before, lxd.cluster.placements())
    return _results(member, report, mode=mode, state="evacuated")


def restore(lxd: LxdClient, member: str) -> dict[str, Any]:
    """Restore ``member`` from evacuation and say where its instances are now.

    Raises:
        ActionError: the member is not evacuated, or LXD cannot reach it.
    """
    try:
        own = lxd.cluster.member(member)
    except MemberNotFoundError:
        raise ActionError(f"{member} is not a member of the cluster: nothing to restore") from None
    if not own.evacuated:
        return _results(member, {}, state="not evacuated: nothing to restore")
    before = lxd.cluster.placements()
    lxd.cluster.restore(member)
    return _results(member, moves(member, before, lxd.cluster.placements()), state="restored")
