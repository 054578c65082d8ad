"""Whether to adopt an LXD someone else initialised, decided from what LXD holds.

A unit's memory says whether *this charm* initialised LXD. After `juju
refresh --switch` from another charm, or on a machine LXD was set up on by
hand, cloud-init or MAAS, that memory is empty while LXD is in use: a first
preseed there would fail half-way or change a running server. So before
initialising, the charm asks LXD what exists (`LxdClient.existing_setup`)
and, where anything does, adopts it as it is: no preseed, and the options it
was found with are recorded as if the charm had initialised it, so later
`mode` and `lxd-preseed` changes are refused as usual.

The charm never joins or leaves a cluster on its own to make LXD fit the
options: where the `mode` does not match what LXD is, the unit blocks and
says what the operator can do. This module is pure (no `ops`, no I/O).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lxd_charm.outcomes import BlockedError

if TYPE_CHECKING:
    from lxd_common.lxd import ExistingSetup


def adoption(found: ExistingSetup, mode: str, app_members: Mapping[str, str]) -> bool:
    """Whether to adopt ``found``; blocks where ``mode`` does not fit it.

    In cluster mode a member is adopted only when the application's
    `members` map already names it (a refresh from the charm operators
    switch from, which keeps that map in the same form): any other member
    is the cluster protocol's to judge, which records a join it made itself
    and refuses a machine of another cluster (`lxd_charm.cluster_peer`). A
    machine that is no member is left to the protocol too, which clears
    what a join left half-done or refuses to join over it.

    Args:
        found: what LXD holds.
        mode: the `mode` option.
        app_members: the application's `members` map (unit -> member name), as
            the peer relation's application data holds it.

    Returns:
        True to adopt; False where the charm's own initialisation (or the
        cluster protocol) goes ahead.

    Raises:
        BlockedError: mode=standalone on a cluster member.
    """
    if not found.initialised:
        return False
    member = found.cluster_member
    if mode == "standalone":
        if member:
            raise BlockedError(
                f"LXD here is already member {member} of an LXD cluster, but "
                "mode=standalone: set mode=cluster to manage that cluster with this "
                f"application, or remove the member from its cluster by hand "
                f"(lxc cluster remove {member} on another member)"
            )
        return True
    return bool(member) and member in app_members.values()


def members_of(app_data: Mapping[str, str]) -> dict[str, str]:
    """The `members` map (unit -> member name) of the peer application data, or {}.

    The charm operators switch from keeps it in the same key and form, so
    this reads both; anything unreadable counts as no map (the cluster
    protocol reports a malformed bag itself).
    """
    try:
        members = json.loads(app_data.get("members") or "{}")
    except ValueError:
        return {}
    if not isinstance(members, dict):
        return {}
    return {str(unit): str(name) for unit, name in members.items()}


def plain_tokens(app_data: Mapping[str, str]) -> list[str]:
    """Unit-named keys of the peer application data holding a join token itself.

    The charm operators switch from hands each joining unit its token in
    plain application data, under the unit's name: the key under which our
    protocol keeps the ID of the Juju secret holding it. A value that is not
    a secret ID is such a token, readable by every unit; the leader deletes
    it (a unit still waiting for one gets a token the protocol's way).
    """
    return sorted(
        key
        for key, value in app_data.items()
        if "/" in key and value and not value.startswith("secret:")
    )
