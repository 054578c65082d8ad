"""Cluster membership: bootstrap, join tokens, members, removal, maintenance, failure domains.

LXD is permissive in two places where a charm must not be: it issues a join
token for a name that is already a member, and it removes a member's record
before an operator has noticed the instances still on it. Both are checked
here first, so the caller gets a specific error instead of a surprise.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ..errors import (
    ClusterError,
    LxdApiError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
)
from ._api import check, retry_transient, translate_errors

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    import pylxd

DEFAULT_PROJECT = "default"
DEFAULT_FAILURE_DOMAIN = "default"
"""The failure domain every member starts in (LXD creates and names it)."""
EVACUATED = "Evacuated"
EVACUATION_MODES = ("auto", "stop", "migrate")
EVACUATION_MODE_EXTENSION = "clustering_evacuation_mode"
"""Without this API extension (LXD 5.0.2 has only ``clustering_evacuation``), LXD ignores
the ``mode`` of an evacuation: each instance's ``cluster.evacuate`` key decides (captured:
``mode: stop`` moved running containers, and an unknown mode was accepted)."""
_WRITABLE_MEMBER_FIELDS = ("roles", "failure_domain", "description", "config", "groups")
NOT_CLUSTERED = "Server is not clustered"
_ZONE = re.compile(r"[+-]\d{2}:\d{2}")


@dataclass(frozen=True)
class ClusterMember:
    """One member as ``GET /1.0/cluster/members?recursion=1`` reports it."""

    name: str
    url: str
    status: str
    roles: list[str]
    message: str = ""
    failure_domain: str = DEFAULT_FAILURE_DOMAIN

    @property
    def online(self) -> bool:
        """True when LXD counts the member as working."""
        return self.status.lower() == "online"

    @property
    def evacuated(self) -> bool:
        """True while the member is evacuated for maintenance.

        LXD 5.0 lists such a member as ``Evacuated`` ("Unavailable due to
        maintenance") whether its daemon runs or not: it keeps that status,
        not ``Offline``, after its daemon stops (captured).
        """
        return self.status.lower() == EVACUATED.lower()


@dataclass(frozen=True)
class Placement:
    """Where one instance is and in what state (``GET /1.0/instances?recursion=1``)."""

    location: str
    status: str


@dataclass(frozen=True)
class JoinToken:
    """A join token for one future member. The token itself is a credential."""

    server_name: str
    token: str = field(repr=False)
    expires_at: datetime | None = None
    operation_id: str = ""

    def expired(self, now: datetime | None = None) -> bool:
        """True once LXD will refuse the token because of its age."""
        if self.expires_at is None:
            return False
        return (now or datetime.now(timezone.utc)) >= self.expires_at


def decode_join_token(token: str) -> JoinToken:
    """Read the server name and expiry a join token carries.

    A joining unit uses this to spot an expired or mismatched token before
    handing it to LXD, so it can ask for a new one instead of failing.

    Raises:
        ClusterError: the text is not an LXD join token.
    """
    try:
        data = json.loads(base64.b64decode(token.strip(), validate=True))
        name = str(data["server_name"])
        if not data.get("secret") or not data.get("addresses"):
            raise KeyError("secret")
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise ClusterError("this is not an LXD cluster join token") from e
    return JoinToken(
        server_name=name, token=token.strip(), expires_at=_parse_time(data.get("expires_at"))
    )


def _parse_time(value: object) -> datetime | None:
    """Parse LXD's RFC 3339 timestamps; None when absent or LXD's "no expiry".

    Go writes between 0 and 9 fraction digits, while Python 3.10 only reads
    exactly 3 or 6, so the fraction is normalised to 6 first. Go's zero time
    (year 1) is what LXD sends when tokens do not expire.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        if zone and not _ZONE.fullmatch(zone):
            return None
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


class Cluster:
    """Cluster operations on one daemon (any member can answer for all)."""

    def __init__(self, client: pylxd.Client) -> None:
        self._client = client

    def _info(self) -> dict[str, Any]:
        with translate_errors("reading the cluster state"):
            response = self._client.api.cluster.get()
        metadata: dict[str, Any] = check(response, "reading the cluster state")["metadata"]
        return metadata

    @property
    def enabled(self) -> bool:
        """True when this daemon is a cluster member."""
        return bool(self._info().get("enabled"))

    @property
    def server_name(self) -> str:
        """This daemon's member name (empty when not clustered)."""
        return str(self._info().get("server_name") or "")

    def member_config(self) -> list[dict[str, str]]:
        """The per-member keys a joining member must supply (pool sources...)."""
        return [
            {
                "entity": c["entity"],
                "name": c["name"],
                "key": c["key"],
                "value": c.get("value", ""),
            }
            for c in self._info().get("member_config") or []
        ]

    def enable(self, server_name: str, address: str) -> None:
        """Turn a standalone daemon into the first member of a new cluster.

        ``address`` (``host:port``) becomes ``cluster.https_address``; every
        later member reaches the cluster there, which is why the charm
        treats it as read-only afterwards.
        """
        info = self._info()
        if info.get("enabled"):
            if info.get("server_name") != server_name:
                raise ClusterError(
                    f"already clustered as {info.get('server_name')!r}, not {server_name!r}"
                )
            return
        doing = f"bootstrapping the cluster as {server_name!r}"
        with translate_errors(doing):
            check(
                self._client.api.patch(json={"config": {"cluster.https_address": address}}),
                doing,
            )
            body = check(
                self._client.api.cluster.put(json={"server_name": server_name, "enabled": True}),
                doing,
            )
            self._client.operations.wait_for_operation(body["operation"])

    def members(self) -> list[ClusterMember]:
        """Every member with its status.

        Retried briefly while the cluster database settles (after a member
        that led it was removed, LXD answers "context deadline exceeded").
        """
        return retry_transient(self._members)

    def _members(self) -> list[ClusterMember]:
        # One request, not two: a standalone LXD (5.0) answers this one with
        # 500 "Server is not clustered" rather than an empty list.
        doing = "listing cluster members"
        try:
            with translate_errors(doing):
                response = self._client.api.cluster.members.get(params={"recursion": "1"})
            metadata = check(response, doing)["metadata"] or []
        except LxdApiError as e:
            if NOT_CLUSTERED in str(e):
                return []
            raise
        return [
            ClusterMember(
                name=m["server_name"],
                url=m.get("url", ""),
                status=m.get("status", ""),
                roles=list(m.get("roles") or []),
                message=m.get("message", ""),
                failure_domain=m.get("failure_domain") or DEFAULT_FAILURE_DOMAIN,
            )
            for m in metadata
        ]

    def _member_record(self, name: str) -> dict[str, Any]:
        doing = f"reading cluster member {name!r}"
        try:
            with translate_errors(doing):
                response = self._client.api.cluster.members[name].get()
            record: dict[str, Any] = check(response, doing)["metadata"]
        except LxdApiError as e:
            if e.status == HTTPStatus.NOT_FOUND:
                raise MemberNotFoundError(f"no cluster member is called {name!r}") from e
            raise
        return record

    def member(self, name: str) -> ClusterMember:
        """One member (``GET /1.0/cluster/members/<name>``).

        Raises:
            MemberNotFoundError: no such member.
        """
        m = retry_transient(lambda: self._member_record(name))
        return ClusterMember(
            name=m["server_name"],
            url=m.get("url", ""),
            status=m.get("status", ""),
            roles=list(m.get("roles") or []),
            message=m.get("message", ""),
            failure_domain=m.get("failure_domain") or DEFAULT_FAILURE_DOMAIN,
        )

    def set_failure_domain(self, name: str, domain: str) -> bool:
        """Put member ``name`` in failure domain ``domain``; False when it already is.

        LXD creates a domain the first time a member names it. LXD 5.0 treats
        a PATCH of a member like a PUT (captured): without ``roles`` it
        answers "The "database" role cannot be dropped at this time", without
        ``groups`` "Cluster members need to belong to at least one group". So
        the member's writable fields are sent back as read, with only the
        domain changed. An empty name is refused by LXD ("Failure domain name
        can't be empty"), and by this method before asking.

        Raises:
            ValueError: ``domain`` is empty.
            MemberNotFoundError: no such member.
        """
        if not domain:
            raise ValueError("a failure domain needs a name")
        record = retry_transient(lambda: self._member_record(name))
        if (record.get("failure_domain") or DEFAULT_FAILURE_DOMAIN) == domain:
            return False
        body = {key: record[key] for key in _WRITABLE_MEMBER_FIELDS if key in record}
        body["failure_domain"] = domain
        doing = f"setting the failure domain of {name!r} to {domain!r}"

        def patch() -> None:
            with translate_errors(doing):
                check(self._client.api.cluster.members[name].patch(json=body), doing)

        retry_transient(patch)
        return True

    def evacuation_modes(self) -> bool:
        """Whether this LXD honours an evacuation's ``mode`` (see `EVACUATION_MODE_EXTENSION`)."""
        with translate_errors("reading server information"):
            response = self._client.api.get()
        extensions = check(response, "reading server information")["metadata"].get(
            "api_extensions"
        )
        return EVACUATION_MODE_EXTENSION in (extensions or [])

    def evacuate(self, name: str, mode: str | None = None) -> None:
        """Evacuate member ``name`` and wait until LXD has moved or stopped its instances.

        ``mode`` is sent only when given (LXD's own default is ``auto``);
        callers check `evacuation_modes` first, since an LXD without the
        extension ignores it. LXD 5.0 moves running containers on a dir pool
        cold (stop, copy, start on the target: "Migrating", then "Starting"),
        moves stopped ones too, and keeps instances whose ``cluster.evacuate``
        is ``stop`` in place, stopped (captured).

        Raises:
            ValueError: ``mode`` is not one of LXD's.
            LxdApiError: LXD refused it, or the evacuation failed.
        """
        if mode is not None and mode not in EVACUATION_MODES:
            raise ValueError(
                f"evacuation mode {mode!r} is not one of {', '.join(EVACUATION_MODES)}"
            )
        body = {"action": "evacuate"} if mode is None else {"action": "evacuate", "mode": mode}
        self._change_state(name, body, f"evacuating cluster member {name!r}")

    def restore(self, name: str) -> None:
        """Bring an evacuated member back and wait until LXD has returned its instances.

        LXD moves the instances evacuation moved back and starts those it
        stopped (captured). An offline member cannot be restored: LXD answers
        "Missing event connection with target cluster member".

        Raises:
            LxdApiError: LXD refused it, or the restore failed.
        """
        self._change_state(name, {"action": "restore"}, f"restoring cluster member {name!r}")

    def _change_state(self, name: str, body: dict[str, str], doing: str) -> None:
        with translate_errors(doing):
            response = self._client.api.cluster.members[name].state.post(json=body)
            operation = check(response, doing).get("operation")
            if operation:
                self._client.operations.wait_for_operation(operation)

    def placements(self) -> dict[str, Placement]:
        """Every instance, across all projects, by name (``project/name`` outside default)."""
        return retry_transient(self._placements)

    def _placements(self) -> dict[str, Placement]:
        with translate_errors("listing instances"):
            response = self._client.api.instances.get(
                params={"recursion": "1", "all-projects": "true"}
            )
        found = {}
        for inst in check(response, "listing instances")["metadata"] or []:
            project = inst.get("project") or DEFAULT_PROJECT
            name = inst["name"] if project == DEFAULT_PROJECT else f"{project}/{inst['name']}"
            found[name] = Placement(
                location=inst.get("location") or "", status=inst.get("status") or ""
            )
        return found

    def add_join_token(self, server_name: str) -> JoinToken:
        """Issue a join token for a new member called ``server_name``.

        A pending token for the same name is revoked first, so at most one
        valid token per name exists (the newest).

        Raises:
            ClusterError: this daemon is not clustered.
            MemberExistsError: a member already has that name.
        """
        return self.add_join_tokens([server_name])[server_name]

    def add_join_tokens(
        self, server_names: Sequence[str], *, members: Collection[str] | None = None
    ) -> dict[str, JoinToken]:
        """Issue a join token for each of ``server_names``, by name, as `add_join_token` does.

        The members and the pending tokens are listed once for all of them
        (a leader issues every first token in one hook), and no token is
        issued unless every name is free: LXD itself issues a token for a
        name a member already has (5.0.2, captured). ``members`` are the
        member names the caller listed a moment ago, to save listing again.

        Raises:
            ClusterError: this daemon is not clustered.
            MemberExistsError: a member already has one of the names.
        """
        if not self.enabled:
            raise ClusterError("cannot issue a join token: this LXD is not clustered")
        if members is None:
            members = {m.name for m in self.members()}
        for server_name in server_names:
            if server_name in members:
                raise MemberExistsError(f"a cluster member called {server_name!r} already exists")
        pending = self.join_tokens()
        issued: dict[str, JoinToken] = {}
        for server_name in server_names:
            self._revoke(server_name, pending)
            doing = f"issuing a join token for {server_name!r}"
            with translate_errors(doing):
                response = self._client.api.cluster.members.post(json={"server_name": server_name})
            operation = check(response, doing)["metadata"]
            issued[server_name] = _token_from_operation(operation)
        return issued

    def join_tokens(self) -> list[JoinToken]:
        """Pending (unused, unrevoked) join tokens."""
        with translate_errors("listing join tokens"):
            response = self._client.api.operations.get(params={"recursion": "1"})
        groups = check(response, "listing join tokens")["metadata"] or {}
        return [
            _token_from_operation(op)
            for op in groups.get("running", [])
            if op.get("class") == "token" and "serverName" in (op.get("metadata") or {})
        ]

    def revoke_join_tokens(self, server_name: str) -> int:
        """Revoke every pending token for ``server_name``; returns how many."""
        return self._revoke(server_name, self.join_tokens())

    def _revoke(self, server_name: str, pending: list[JoinToken]) -> int:
        revoked = 0
        for token in pending:
            if token.server_name != server_name:
                continue
            doing = f"revoking the join token for {server_name!r}"
            with translate_errors(doing):
                check(self._client.api.operations[token.operation_id].delete(), doing)
            revoked += 1
        return revoked

    def instances_on(self, member: str) -> list[str]:
        """Instances located on ``member``, across all projects.

        Names outside the default project are shown as ``project/name``.
        Retried briefly while the cluster database settles, like `members`.
        """
        return retry_transient(lambda: self._instances_on(member))

    def _instances_on(self, member: str) -> list[str]:
        return sorted(name for name, at in self._placements().items() if at.location == member)

    def remove_member(self, server_name: str) -> None:
        """Remove a member that holds no instances.

        Never forced: instances are the operator's to move, not ours to lose.

        Raises:
            MemberNotFoundError: no such member.
            MemberHasInstancesError: instances still live on it.
        """
        if server_name not in {m.name for m in self.members()}:
            raise MemberNotFoundError(f"no cluster member is called {server_name!r}")
        instances = self.instances_on(server_name)
        if instances:
            raise MemberHasInstancesError(server_name, instances)
        doing = f"removing cluster member {server_name!r}"

        def delete() -> None:
            with translate_errors(doing):
                check(self._client.api.cluster.members[server_name].delete(), doing)

        retry_transient(delete)

    def remove_lost_member(self, server_name: str) -> None:
        """Remove a member LXD cannot reach, which holds no instances, with LXD's force.

        LXD 5.0 refuses to remove an unreachable member without force (it
        tries to clean up on it: "Delete .../storage-pools/local: Unable to
        connect to ...", captured), and with force it also drops the records
        of the instances on it ("lxc cluster remove --force" loses them,
        captured). So this refuses a member that is online (use
        `remove_member`) or that any instance is still recorded on.

        Raises:
            MemberNotFoundError: no such member.
            MemberHasInstancesError: instances are recorded on it.
            ClusterError: LXD lists it online or evacuated.
        """
        listed = {m.name: m for m in self.members()}
        member = listed.get(server_name)
        if member is None:
            raise MemberNotFoundError(f"no cluster member is called {server_name!r}")
        if member.online or member.evacuated:
            raise ClusterError(f"member {server_name!r} is {member.status}: not forcing it out")
        instances = self.instances_on(server_name)
        if instances:
            raise MemberHasInstancesError(server_name, instances)
        doing = f"removing unreachable cluster member {server_name!r}"

        def delete() -> None:
            with translate_errors(doing):
                check(
                    self._client.api.cluster.members[server_name].delete(params={"force": "1"}),
                    doing,
                )

        retry_transient(delete)


def _token_from_operation(operation: dict[str, Any]) -> JoinToken:
    meta = operation.get("metadata") or {}
    payload = {
        "server_name": meta["serverName"],
        "fingerprint": meta["fingerprint"],
        "addresses": meta["addresses"],
        "secret": meta["secret"],
        "expires_at": meta.get("expiresAt", ""),
    }
    token = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return JoinToken(
        server_name=meta["serverName"],
        token=token,
        expires_at=_parse_time(meta.get("expiresAt")),
        operation_id=str(operation.get("id", "")),
    )
