"""A fake LXD daemon for the unit tier: `FakeLxd`, its trust store and its cluster.

`FakeLxd` is the subset of `lxd_common.lxd.LxdClient` the LXD charm's hooks
use, with LXD's semantics (the functional tier checks the same behaviour
against real daemons, so the fake cannot drift unnoticed).

Cluster mode: `FakeLxd.cluster` is a `FakeCluster`, the fake of
`lxd_common.lxd.Cluster`. Several `FakeLxd` (one per unit's machine) form
one cluster the way real daemons do: one bootstraps through a preseed with a
`cluster` section, the others join with a join token it issued, and from then
on they share one `ClusterDatabase`, so any member answers for all.
`encode_join_token`, `token_payload` and `go_time` build and pick apart join
tokens in LXD's own format, for tests that forge one.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import json
import secrets
import uuid
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from lxd_common.certs import (
    CertificatePair,
    fingerprint,
    generate_client_certificate,
    load_certificate,
)
from lxd_common.errors import (
    ClusterError,
    LxdApiError,
    LxdUnreachableError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
    ProjectNotFoundError,
    TrustEntryNotFoundError,
)
from lxd_common.lxd import (
    ClusterMember,
    ExistingSetup,
    JoinToken,
    Placement,
    TrustEntry,
    decode_join_token,
    join_preseed,
    parse_preseed,
)
from tests.harness.fake_storage import FakeStoragePools


class FakeTrust:
    """The trust store as LXD behaves (checked by tests/functional/test_lxd_trust.py)."""

    def __init__(self, projects: set[str]) -> None:
        self.projects = projects
        self.by_fingerprint: dict[str, TrustEntry] = {}

    def entries(self) -> list[TrustEntry]:
        return list(self.by_fingerprint.values())

    def find_all(self, name: str) -> list[TrustEntry]:
        return [e for e in self.entries() if e.name == name]

    def add(
        self,
        certificate_pem: str,
        name: str,
        projects: list[str] | None = None,
        *,
        kind: str = "client",
    ) -> TrustEntry:
        fp = fingerprint(load_certificate(certificate_pem))
        missing = [p for p in projects or [] if p not in self.projects]
        if missing:
            raise ProjectNotFoundError(f"project(s) {', '.join(missing)} do not exist")
        existing = self.by_fingerprint.get(fp)
        if existing is not None and existing.type != kind:
            raise LxdApiError(f"already trusted as {existing.type} certificate", 409)
        entry = TrustEntry(
            name, fp, kind, projects is not None, list(projects or []), certificate_pem
        )
        self.by_fingerprint[fp] = entry
        return entry

    def remove(self, key: str) -> TrustEntry:
        entry = self.by_fingerprint.pop(key, None)
        if entry is None:
            raise TrustEntryNotFoundError(key)
        return entry


# --- cluster -------------------------------------------------------------------

#: LXD's default `cluster.join_token_expiry`.
JOIN_TOKEN_EXPIRY = timedelta(hours=3)
#: Per-member keys LXD asks a joining member for, when the entity has them set.
MEMBER_SPECIFIC_KEYS = {
    "storage-pool": ("source", "size", "zfs.pool_name", "lvm.vg_name", "lvm.thinpool_name"),
    "network": ("bridge.external_interfaces", "parent"),
}


def go_time(moment: datetime) -> str:
    """A timestamp as LXD (Go) writes it: RFC 3339, nanoseconds, UTC as ``Z``."""
    utc = moment.astimezone(timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}000Z"


def encode_join_token(
    server_name: str,
    *,
    fingerprint: str,
    addresses: Sequence[str],
    secret: str,
    expires_at: str,
) -> str:
    """A join token in LXD's format: base64 of compact JSON (what `decode_join_token` reads).

    ``expires_at`` is LXD's timestamp text (see `go_time`), empty for none.
    """
    payload = {
        "server_name": server_name,
        "fingerprint": fingerprint,
        "addresses": list(addresses),
        "secret": secret,
        "expires_at": expires_at,
    }
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def token_payload(token: str) -> dict[str, Any]:
    """The JSON inside a join token (to check it or to forge a variant of it)."""
    payload: dict[str, Any] = json.loads(base64.b64decode(token.strip(), validate=True))
    return payload


@dataclass(eq=False)
class ClusterDatabase:
    """What every member of one cluster sees alike (LXD's replicated database)."""

    fingerprint: str
    """The cluster certificate's fingerprint: every join token carries it."""
    member_config: list[dict[str, str]]
    members: dict[str, ClusterMember] = field(default_factory=dict)
    pending_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Token operations not used or revoked yet, by operation id (LXD's metadata keys)."""
    instances: dict[tuple[str, str], str] = field(default_factory=dict)
    """(project, instance) -> the member it lives on."""
    views: dict[str, FakeCluster] = field(default_factory=dict)
    """Each member's own daemon, so a removed member stops being clustered."""
    networks: dict[str, dict[str, str]] = field(default_factory=dict)
    """Managed networks and their config, created at bootstrap: LXD's are cluster-wide."""
    evacuated_from: dict[tuple[str, str], str] = field(default_factory=dict)
    """(project, instance) -> the member evacuation moved it away from (restore's way back)."""
    stay_on_evacuation: set[tuple[str, str]] = field(default_factory=set)
    """Instances whose ``cluster.evacuate`` is ``stop``: evacuation stops them in place."""
    stopped: set[tuple[str, str]] = field(default_factory=set)
    server_pair: CertificatePair | None = None
    """The cluster certificate: the first member's, which every joining member presents."""


#: The clusters a joining daemon can reach, by certificate fingerprint: the
#: fake's network. Weak, so a test's clusters vanish with its fakes.
_REACHABLE: weakref.WeakValueDictionary[str, ClusterDatabase] = weakref.WeakValueDictionary()


class FakeCluster:
    """`lxd_common.lxd.Cluster` on one `FakeLxd`, with the same names, results and errors.

    Real LXD's behaviour, as tests/functional/test_lxd_cluster.py shows it:
    tokens are refused for a name that is a member, a new token for a name
    revokes the older one, a token works once, a member holding instances is
    not removed, and any member lists all of them. `launch`, `delete_instance`
    and `set_status` stand in for what operators and LXD itself do.
    """

    def __init__(self, lxd: FakeLxd) -> None:
        self._lxd = lxd
        self.database: ClusterDatabase | None = None
        self.name = ""
        self.token_expiry = JOIN_TOKEN_EXPIRY
        self.listings = 0
        """`members` calls: the real one is a request each."""
        self.state_reads = 0
        """`enabled` and `server_name` reads: a ``GET /1.0/cluster`` each."""
        self.member_reads = 0
        """`member` calls (one member's record): a request each."""

    # --- the `Cluster` API -----------------------------------------------------

    @property
    def enabled(self) -> bool:
        self._lxd._call()
        self.state_reads += 1
        return self.database is not None

    @property
    def server_name(self) -> str:
        self._lxd._call()
        self.state_reads += 1
        return self.name if self.database is not None else ""

    def member_config(self) -> list[dict[str, str]]:
        self._lxd._call()
        if self.database is None:
            return []
        return [dict(entry) for entry in self.database.member_config]

    def enable(self, server_name: str, address: str) -> None:
        self._lxd._call()
        if self.database is not None:
            if self.name != server_name:
                raise ClusterError(f"already clustered as {self.name!r}, not {server_name!r}")
            return
        self._bootstrap(server_name, address, self._lxd.preseeds)
        self._lxd.config["cluster.https_address"] = address

    def members(self) -> list[ClusterMember]:
        self._lxd._call()
        self.listings += 1
        return [] if self.database is None else list(self.database.members.values())

    def add_join_tokens(
        self, server_names: Sequence[str], *, members: Collection[str] | None = None
    ) -> dict[str, JoinToken]:
        """As LXD's: every name checked first (against ``members``, if given), then a token."""
        self._lxd._call()
        database = self.database
        if database is None:
            raise ClusterError("cannot issue a join token: this LXD is not clustered")
        if members is None:
            members = [m.name for m in self.members()]
        for server_name in server_names:
            if server_name in members:
                raise MemberExistsError(f"a cluster member called {server_name!r} already exists")
        return {name: self._issue(name) for name in server_names}

    def add_join_token(self, server_name: str) -> JoinToken:
        return self.add_join_tokens([server_name])[server_name]

    def _issue(self, server_name: str) -> JoinToken:
        database = self.database
        assert database is not None
        self.revoke_join_tokens(server_name)
        operation_id = str(uuid.uuid4())
        metadata = {
            "serverName": server_name,
            "fingerprint": database.fingerprint,
            "addresses": [m.url.removeprefix("https://") for m in database.members.values()],
            "secret": secrets.token_hex(32),
            "expiresAt": go_time(datetime.now(timezone.utc) + self.token_expiry),
        }
        database.pending_tokens[operation_id] = metadata
        return self._token(operation_id, metadata)

    def join_tokens(self) -> list[JoinToken]:
        self._lxd._call()
        if self.database is None:
            return []
        return [self._token(op, meta) for op, meta in self.database.pending_tokens.items()]

    def revoke_join_tokens(self, server_name: str) -> int:
        self._lxd._call()
        if self.database is None:
            return 0
        pending = self.database.pending_tokens
        revoked = [op for op, meta in pending.items() if meta["serverName"] == server_name]
        for operation_id in revoked:
            del pending[operation_id]
        return len(revoked)

    def instances_on(self, member: str) -> list[str]:
        self._lxd._call()
        if self.database is None:
            return []
        return sorted(
            name if project == "default" else f"{project}/{name}"
            for (project, name), location in self.database.instances.items()
            if location == member
        )

    def remove_member(self, server_name: str) -> None:
        self._lxd._call()
        database = self.database
        if database is None or server_name not in database.members:
            raise MemberNotFoundError(f"no cluster member is called {server_name!r}")
        instances = self.instances_on(server_name)
        if instances:
            raise MemberHasInstancesError(server_name, instances)
        member = database.members[server_name]
        if not member.online and not member.evacuated:
            # LXD 5.0 cleans up on the member first, and cannot reach it (captured).
            raise LxdApiError(
                f"LXD refused removing cluster member {server_name!r}: Delete "
                f'"{member.url}/1.0/storage-pools/local": Unable to connect to: '
                f"{member.url.removeprefix('https://')}",
                500,
            )
        self._forget(server_name)

    def remove_lost_member(self, server_name: str) -> None:
        """LXD's forced removal, with `Cluster.remove_lost_member`'s checks."""
        self._lxd._call()
        database = self.database
        if database is None or server_name not in database.members:
            raise MemberNotFoundError(f"no cluster member is called {server_name!r}")
        member = database.members[server_name]
        if member.online or member.evacuated:
            raise ClusterError(f"member {server_name!r} is {member.status}: not forcing it out")
        instances = self.instances_on(server_name)
        if instances:
            raise MemberHasInstancesError(server_name, instances)
        self._forget(server_name)

    def _forget(self, server_name: str) -> None:
        database = self._database()
        del database.members[server_name]
        removed = database.views.pop(server_name, None)
        if removed is not None:  # LXD resets a removed member to a standalone daemon
            removed.database, removed.name = None, ""

    def member(self, name: str) -> ClusterMember:
        self._lxd._call()
        self.member_reads += 1
        database = self.database
        if database is None or name not in database.members:
            raise MemberNotFoundError(f"no cluster member is called {name!r}")
        return database.members[name]

    def set_failure_domain(self, name: str, domain: str) -> bool:
        member = self.member(name)
        if not domain:
            raise ValueError("a failure domain needs a name")
        if member.failure_domain == domain:
            return False
        self._database().members[name] = dataclasses.replace(member, failure_domain=domain)
        return True

    def evacuation_modes(self) -> bool:
        """LXD 5.0.2 lacks ``clustering_evacuation_mode``: there the mode is ignored."""
        self._lxd._call()
        return "clustering_evacuation_mode" in self._lxd.api_extensions

    def evacuate(self, name: str, mode: str | None = None) -> None:
        """As LXD 5.0 does (captured): instances move to members up, those set to stop stay."""
        member = self.member(name)
        database = self._database()
        targets = sorted(m.name for m in database.members.values() if m.online and m.name != name)
        for index, (key, location) in enumerate(sorted(database.instances.items())):
            if location != name:
                continue
            if key in database.stay_on_evacuation or not targets:
                database.stopped.add(key)
                continue
            database.instances[key] = targets[index % len(targets)]
            database.evacuated_from[key] = name
        database.members[name] = dataclasses.replace(
            member, status="Evacuated", message="Unavailable due to maintenance"
        )

    def restore(self, name: str) -> None:
        member = self.member(name)
        database = self._database()
        for key, origin in list(database.evacuated_from.items()):
            if origin == name:
                database.instances[key] = name
                del database.evacuated_from[key]
        database.stopped -= {k for k, at in database.instances.items() if at == name}
        database.members[name] = dataclasses.replace(
            member, status="Online", message="Fully operational"
        )

    def placements(self) -> dict[str, Placement]:
        self._lxd._call()
        if self.database is None:
            return {}
        return {
            (name if project == "default" else f"{project}/{name}"): Placement(
                location, "Stopped" if (project, name) in self.database.stopped else "Running"
            )
            for (project, name), location in self.database.instances.items()
        }

    # --- what operators and LXD do outside the charm -----------------------------

    def launch(self, instance: str, target: str, project: str = "default") -> None:
        """``lxc launch ... --target``: an instance now lives on ``target``."""
        database = self._database()
        if target not in database.members:
            raise MemberNotFoundError(f"no cluster member is called {target!r}")
        database.instances[(project, instance)] = target

    def delete_instance(self, instance: str, project: str = "default") -> None:
        """``lxc delete``: the instance is gone from whichever member held it."""
        del self._database().instances[(project, instance)]

    def set_status(self, member: str, status: str, message: str = "") -> None:
        """What LXD's heartbeats report, e.g. ``Offline`` for a member that stopped."""
        database = self._database()
        database.members[member] = dataclasses.replace(
            database.members[member], status=status, message=message
        )

    # --- inside LXD ---------------------------------------------------------------

    def _database(self) -> ClusterDatabase:
        if self.database is None:
            raise ClusterError("this LXD is not clustered")
        return self.database

    @staticmethod
    def _token(operation_id: str, meta: Mapping[str, Any]) -> JoinToken:
        """What `Cluster` makes of a token operation's metadata."""
        token = encode_join_token(
            meta["serverName"],
            fingerprint=meta["fingerprint"],
            addresses=meta["addresses"],
            secret=meta["secret"],
            expires_at=meta["expiresAt"],
        )
        return dataclasses.replace(decode_join_token(token), operation_id=operation_id)

    def _bootstrap(
        self, server_name: str, address: str, preseeds: Iterable[Mapping[str, Any]]
    ) -> None:
        """Become the first member; LXD asks joiners for the per-member keys set so far."""
        if not server_name:
            raise LxdApiError("LXD refused the preseed: Error: Cluster server name is empty")
        if not address:
            raise LxdApiError(
                "LXD refused the preseed: Error: No cluster.https_address config key is set "
                "on this member"
            )
        member_config: list[dict[str, str]] = []
        networks: dict[str, dict[str, str]] = {}
        for preseed in preseeds:
            for item in preseed.get("networks") or []:
                networks[item["name"]] = dict(item.get("config") or {})
            for section, entity in (("storage_pools", "storage-pool"), ("networks", "network")):
                for item in preseed.get(section) or []:
                    config = item.get("config") or {}
                    keys = [k for k in MEMBER_SPECIFIC_KEYS[entity] if k in config]
                    if entity == "storage-pool" and "source" not in keys:
                        keys.insert(0, "source")  # LXD fills in a default source
                    member_config += [
                        {"entity": entity, "name": item["name"], "key": key, "value": ""}
                        for key in keys
                    ]
        database = ClusterDatabase(
            fingerprint=secrets.token_hex(32), member_config=member_config, networks=networks
        )
        self._add_member(database, server_name, address, ["database-leader", "database"])
        _REACHABLE[database.fingerprint] = database

    def _join(self, section: Mapping[str, Any]) -> None:
        """``lxd init`` with a join preseed: checked the way LXD checks it, then a member."""

        def refuse(reason: str) -> LxdApiError:
            return LxdApiError(f"LXD refused the preseed: Error: Failed to join cluster: {reason}")

        if self.database is not None:
            raise refuse("This server is already clustered")
        name, address = section.get("server_name", ""), section.get("server_address", "")
        try:
            token = decode_join_token(section["cluster_token"])
            payload = token_payload(token.token)
        except (ClusterError, binascii.Error, ValueError):
            raise refuse("Invalid cluster join token") from None
        database = _REACHABLE.get(payload.get("fingerprint", ""))
        if database is None:
            raise refuse("Unable to connect to any of the cluster members specified in join token")
        operation_id = next(
            (
                op
                for op, meta in database.pending_tokens.items()
                if meta["secret"] == payload["secret"]
            ),
            None,
        )
        trust = "Failed to setup cluster trust: Failed to add server cert to cluster: "
        if operation_id is None:
            raise refuse(f"{trust}No matching cluster join operation found")
        if token.expired():
            del database.pending_tokens[operation_id]
            raise refuse(
                f"{trust}Failed during search for join token operation: Token has expired"
            )
        name = database.pending_tokens[operation_id][
            "serverName"
        ]  # LXD 5.0: the token's name wins
        if name in database.members:
            raise refuse(f"The cluster already has a member with name: {name}")
        given = {(e["entity"], e["name"], e["key"]) for e in section.get("member_config") or []}
        for entry in database.member_config:
            if (entry["entity"], entry["name"], entry["key"]) not in given:
                raise refuse(
                    f"Missing member config {entry['key']!r} for {entry['entity']} "
                    f"{entry['name']!r}"
                )
        del database.pending_tokens[operation_id]
        roles = ["database"] if len(database.members) < 3 else ["database-standby"]
        self._add_member(database, name, address, roles)

    def _add_member(
        self, database: ClusterDatabase, name: str, address: str, roles: list[str]
    ) -> None:
        database.members[name] = ClusterMember(
            name=name, url=f"https://{address}", status="Online", roles=roles
        )
        database.views[name] = self
        if database.server_pair is None:
            database.server_pair = self._lxd.server_pair
        self._lxd.server_pair = database.server_pair
        self.database, self.name = database, name
        self._lxd.config["cluster.https_address"] = address


def _member_in(info: Mapping[str, Any]) -> str:
    """The member name a ``GET /1.0`` answer gives ("" when the daemon is not clustered)."""
    environment = info["environment"]
    return str(environment["server_name"]) if environment["server_clustered"] else ""


class FakeLxd:
    """The subset of `LxdClient` the charm's hooks use, with real semantics."""

    def __init__(self) -> None:
        self.trust = FakeTrust({"default"})
        self.server_pair = generate_client_certificate("fake-lxd-server")
        self.api_extensions: list[str] = []
        """What `GET /1.0` lists; tests set it from a captured answer."""
        self.config: dict[str, str] = {}
        self.preseeds: list[dict[str, Any]] = []
        self.refuse_preseed: str | None = None
        self.unreachable = False
        self.calls = 0
        self.count_connections = True
        self.connections = 0
        """Clients made (`FakeHost.lxd`): one hook's steps after the snap's share one."""
        self.server_reads = 0
        """``GET /1.0`` reads after connecting (`server_info`, `server_config`, and
        `set_server_config` without ``current``): the connection's own is `connections`."""
        self._at_connect: dict[str, Any] | None = None
        """What the last connection read to connect (`info_at_connect`)."""
        self.join_timeouts: list[float] = []
        self.cluster = FakeCluster(self)
        self.storage: FakeStoragePools | None = None
        """`LxdClient.storage`: none until a test that reaches storage pools attaches one."""
        self.set_up_by_hand = ExistingSetup()
        """What someone other than the charm initialised (pools, networks, profiles)."""
        self.local_instances: list[str] = []
        self.pool_volumes: dict[str, list[str]] = {}
        """Storage pools and the volumes in each (`instance_names`, `storage_pool_volumes`)."""

    def __enter__(self) -> FakeLxd:
        return self

    def instance_names(self) -> list[str]:
        self._call()
        return sorted(self.local_instances)

    def storage_pool_volumes(self, pool: str) -> list[str]:
        self._call()
        return sorted(self.pool_volumes.get(pool, []))

    def delete_storage_pool(self, pool: str) -> None:
        self._call()
        self.pool_volumes.pop(pool, None)

    def __exit__(self, *exc: object) -> None:
        return None

    def connect(self) -> None:
        """What creating a client costs: one ``GET /1.0`` (unless a test said not to count it)."""
        self.connections += 1
        if self.count_connections:
            self._call()
        self._at_connect = self._info()

    @property
    def info_at_connect(self) -> dict[str, Any]:
        """As `LxdClient.info_at_connect`: the server as the connection found it (no request).

        A test that stubs `connect` out gets the server as it is now.
        """
        return copy.deepcopy(self._at_connect if self._at_connect is not None else self._info())

    @property
    def member_name_at_connect(self) -> str:
        """As `LxdClient.member_name_at_connect`: from `info_at_connect`, no request."""
        return _member_in(self.info_at_connect)

    def _call(self) -> None:
        self.calls += 1
        if self.unreachable:
            raise LxdUnreachableError("cannot reach LXD while testing: connection refused")

    def server_info(self) -> dict[str, Any]:
        self._call()
        self.server_reads += 1
        return self._info()

    def _info(self) -> dict[str, Any]:
        """``GET /1.0`` as LXD 5.0.2 answers it, the parts the charm reads.

        `server_name` is the member name when clustered (the hand-made
        membership of `set_up_by_hand` included), else the host name.
        """
        member = self.cluster.name if self.cluster.database is not None else ""
        member = member or self.set_up_by_hand.cluster_member
        return {
            "auth": "trusted",
            "api_extensions": list(self.api_extensions),
            "config": dict(self.config),
            "environment": {
                "certificate": self.server_pair.certificate,
                "certificate_fingerprint": fingerprint(self.server_pair.certificate),
                "server_clustered": bool(member),
                "server_name": member or "fake-host",
            },
        }

    def server_config(self, info: Mapping[str, Any] | None = None) -> dict[str, str]:
        if info is not None:
            return {str(k): str(v) for k, v in (info.get("config") or {}).items()}
        self._call()
        self.server_reads += 1
        return dict(self.config)

    def set_server_config(
        self, values: Mapping[str, str | None], *, current: Mapping[str, str] | None = None
    ) -> list[str]:
        """As `LxdClient`'s: the diff against ``current`` (when given) is what is sent.

        A request to read the config (without ``current``), and one for the
        PATCH when anything differs.
        """
        if current is None:
            current = self.server_config()
        patch: dict[str, str] = {}
        for key, value in values.items():
            if not value:
                if key in current:
                    patch[key] = ""
            elif current.get(key) != value:
                patch[key] = value
        if patch:
            self._call()
        for key, value in patch.items():
            if value:
                self.config[key] = value
            else:
                self.config.pop(key, None)
        return sorted(patch)

    def managed_networks(self) -> dict[str, dict[str, str]]:
        """The networks the applied preseeds created (and `set_up_by_hand`'s, without config).

        A member sees the cluster's networks, created where it bootstrapped.
        """
        self._call()
        networks: dict[str, dict[str, str]] = {name: {} for name in self.set_up_by_hand.networks}
        if self.cluster.database is not None:
            networks.update(self.cluster.database.networks)
        for preseed in self.preseeds:
            for network in preseed.get("networks") or []:
                networks[network["name"]] = dict(network.get("config") or {})
        return networks

    def existing_setup(self, info: Mapping[str, Any] | None = None) -> ExistingSetup:
        """What the applied preseeds and `set_up_by_hand` left, as `LxdClient` reports it.

        Three listings; the membership from ``info`` when given, else a fourth request.
        """
        for _ in range(3):
            self._call()
        hand = self.set_up_by_hand
        pools = {
            *hand.storage_pools,
            *(p["name"] for d in self.preseeds for p in d.get("storage_pools") or []),
        }
        networks = {
            *hand.networks,
            *(n["name"] for d in self.preseeds for n in d.get("networks") or []),
        }
        profiles = {
            *hand.profiles,
            *(
                p["name"]
                for d in self.preseeds
                for p in d.get("profiles") or []
                if p.get("devices")
            ),
        }
        return ExistingSetup(
            storage_pools=tuple(sorted(pools)),
            networks=tuple(sorted(networks)),
            profiles=tuple(sorted(profiles)),
            cluster_member=(
                self.cluster.server_name or hand.cluster_member
                if info is None
                else _member_in(info)
            ),
        )

    def apply_preseed(self, preseed: Mapping[str, Any]) -> None:
        self._call()
        data = parse_preseed(preseed)
        if self.refuse_preseed:
            raise LxdApiError(f"LXD refused the preseed: {self.refuse_preseed}")
        section = data.get("cluster") or {}
        if section.get("enabled") and section.get("cluster_token"):
            self.cluster._join(section)
        elif section.get("enabled"):
            address = (data.get("config") or {}).get("cluster.https_address") or section.get(
                "server_address", ""
            )
            self.cluster._bootstrap(
                section.get("server_name", ""), address, [*self.preseeds, data]
            )
        self.preseeds.append(data)
        self.config.update(data.get("config") or {})

    def join_cluster(
        self,
        server_name: str,
        server_address: str,
        token: str,
        member_config: Sequence[Mapping[str, str]] = (),
        *,
        timeout: float = 300.0,
    ) -> None:
        """Like `LxdClient.join_cluster`: `lxd init` with the join preseed."""
        self.join_timeouts.append(timeout)
        self.apply_preseed(join_preseed(server_name, server_address, token, member_config))
