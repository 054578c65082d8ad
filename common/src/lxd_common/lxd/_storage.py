"""Storage pools: find, create (cluster-wide too), and delete only when empty.

LXD's clustering asks two steps of a new pool: first a *pending* definition
on every member (``POST /1.0/storage-pools?target=<member>`` with only the
member-specific keys), then one global create with the rest, which makes
LXD create it everywhere at once. A standalone daemon takes the global
create alone. Both steps are idempotent here, so a hook that died between
them finishes the job the next time.

LXD deletes a pool together with everything on it, and for a Ceph pool it
created itself also the OSD pool behind it. `StoragePools.delete` refuses a
pool that still holds volumes (`StoragePoolInUseError`), and can ask LXD to
keep the OSD pool (for one that another party, such as ceph-mon, made).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LxdApiError, StoragePoolInUseError
from ._api import check, translate_errors

if TYPE_CHECKING:
    import pylxd

HTTP_NOT_FOUND = 404
PRISTINE_KEY = "volatile.pool.pristine"
"""LXD 5.0 deletes a Ceph pool's OSD pool with it when this is "true"."""
VOLUME_PREFIX = "/1.0/storage-pools/"
MEMBER_KEYS = frozenset({"source", "size", "zfs.pool_name", "lvm.thinpool_name", "lvm.vg_name"})
"""Keys a cluster takes per member only; LXD 5.0.2 refuses them in the global create
(``Config key "source" is cluster member specific``, even for a Ceph pool)."""


@dataclass(frozen=True)
class StoragePool:
    """One pool as ``GET /1.0/storage-pools/<name>`` describes it."""

    name: str
    driver: str
    status: str = ""
    config: dict[str, str] = field(default_factory=dict)
    used_by: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> StoragePool:
        """Build from LXD's JSON (``used_by`` is null for an unused pool in 5.0)."""
        return cls(
            name=str(data["name"]),
            driver=str(data.get("driver") or ""),
            status=str(data.get("status") or ""),
            config={str(k): str(v) for k, v in (data.get("config") or {}).items()},
            used_by=[str(u) for u in data.get("used_by") or []],
            locations=[str(m) for m in data.get("locations") or []],
        )

    @property
    def created(self) -> bool:
        """True once the global create went through (not merely pending or errored)."""
        return self.status.lower() == "created"


class StoragePools:
    """The storage pools of one daemon (of the whole cluster, for a member)."""

    def __init__(self, client: pylxd.Client) -> None:
        self._client = client

    def all(self) -> list[StoragePool]:
        """Every pool, whatever its state (one API call)."""
        doing = "listing storage pools"
        with translate_errors(doing):
            response = self._client.api.storage_pools.get(params={"recursion": "1"})
        return [StoragePool.from_api(p) for p in check(response, doing)["metadata"] or []]

    def get(self, name: str) -> StoragePool | None:
        """The pool called ``name``, or None when there is none."""
        doing = f"reading storage pool {name!r}"
        try:
            with translate_errors(doing):
                response = self._client.api.storage_pools[name].get()
            return StoragePool.from_api(check(response, doing)["metadata"])
        except LxdApiError as e:
            if e.status == HTTP_NOT_FOUND:
                return None
            raise

    def volumes(self, name: str) -> list[str]:
        """The volumes in pool ``name``, as ``<type>/<name>`` (custom/data, container/c1...)."""
        doing = f"listing the volumes of storage pool {name!r}"
        with translate_errors(doing):
            response = self._client.api.storage_pools[name].volumes.get()
        urls = check(response, doing)["metadata"] or []
        prefix = f"{VOLUME_PREFIX}{name}/volumes/"
        return sorted(str(url).split("?")[0].removeprefix(prefix) for url in urls)

    def create(
        self,
        name: str,
        driver: str,
        config: Mapping[str, str],
        *,
        members: Sequence[str] = (),
    ) -> StoragePool:
        """Create pool ``name`` unless it exists; returns it as LXD then reports it.

        ``members`` (a cluster's member names) turns on the two-step create:
        each member gets a pending definition with the member-specific keys
        of ``config`` (`MEMBER_KEYS`, the same value on every member), then
        the global create carries the rest. A member that already has its
        pending definition is skipped; a pool already created is left as it is.

        Raises:
            LxdApiError: LXD refused; its reason is in the message (a Ceph
                pool's, for one, names the ``ceph`` command that failed).
        """
        existing = self.get(name)
        if existing is not None and existing.created:
            return existing
        defined = set(existing.locations) if existing is not None else set()
        per_member = {k: v for k, v in config.items() if k in MEMBER_KEYS}
        shared = {k: v for k, v in config.items() if k not in MEMBER_KEYS} if members else config
        for member in members:
            if member in defined:
                continue
            doing = f"defining storage pool {name!r} on member {member!r}"
            body = {"name": name, "driver": driver, "config": per_member}
            with translate_errors(doing):
                response = self._client.api.storage_pools.post(
                    json=body, params={"target": member}
                )
            check(response, doing)
        doing = f"creating storage pool {name!r} ({driver})"
        with translate_errors(doing):
            response = self._client.api.storage_pools.post(
                json={"name": name, "driver": driver, "config": dict(shared)}
            )
        check(response, doing)
        created = self.get(name)
        if created is None:  # another client deleted it between our create and our read
            raise LxdApiError(f"storage pool {name!r} vanished right after its creation")
        return created

    def delete(self, name: str, *, keep_backing: bool = False) -> bool:
        """Delete pool ``name`` if it holds no volume; False when there was no such pool.

        ``keep_backing`` first tells LXD the pool is not pristine, so that
        it leaves the storage behind it (a Ceph OSD pool) alone.

        Raises:
            StoragePoolInUseError: the pool still holds volumes; nothing was changed.
            LxdApiError: LXD refused for another reason (a profile still uses it...).
        """
        pool = self.get(name)
        if pool is None:
            return False
        volumes = self.volumes(name)
        if volumes:
            raise StoragePoolInUseError(name, volumes)
        if keep_backing and pool.config.get(PRISTINE_KEY) == "true":
            doing = f"keeping the storage behind pool {name!r}"
            with translate_errors(doing):
                response = self._client.api.storage_pools[name].patch(
                    json={"config": {PRISTINE_KEY: "false"}}
                )
            check(response, doing)
        doing = f"deleting storage pool {name!r}"
        with translate_errors(doing):
            response = self._client.api.storage_pools[name].delete()
        check(response, doing)
        return True
