"""A fake of `lxd_common.lxd.StoragePools` for the unit tier, with LXD 5.0.2's semantics.

Tests attach one to a `FakeLxd` (``fake_lxd.storage = FakeStoragePools()``);
cluster tests share one between the units' `FakeLxd`, as members share one
database. What it does was captured from real daemons on real Ceph
(tests/functional/test_ceph.py checks the same behaviour): a Ceph pool made
on an existing, empty OSD pool reports ``volatile.pool.pristine: "true"``,
and deleting it then makes LXD delete the OSD pool too, which a client key
of ``profile rbd`` may not (`PRISTINE_DELETE_REFUSAL`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxd_common.errors import LxdApiError, StoragePoolInUseError
from lxd_common.lxd import StoragePool

PRISTINE_DELETE_REFUSAL = (
    "LXD refused deleting storage pool {name!r}: Failed to run: ceph --name client.{user} "
    "--cluster ceph osd pool delete {source} {source} --yes-i-really-really-mean-it: "
    "exit status 13 (Error EACCES: access denied)"
)


@dataclass
class FakeStoragePools:
    """Pools by name; ``volumes`` by pool; ``refuse_create`` makes the global create fail."""

    pools: dict[str, StoragePool] = field(default_factory=dict)
    volumes_in: dict[str, list[str]] = field(default_factory=dict)
    refuse_create: str = ""
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(operation, pool, target member or "") in order."""

    def all(self) -> list[StoragePool]:
        return list(self.pools.values())

    def get(self, name: str) -> StoragePool | None:
        return self.pools.get(name)

    def volumes(self, name: str) -> list[str]:
        return sorted(self.volumes_in.get(name, []))

    def create(
        self,
        name: str,
        driver: str,
        config: Mapping[str, str],
        *,
        members: Sequence[str] = (),
    ) -> StoragePool:
        existing = self.pools.get(name)
        if existing is not None and existing.created:
            return existing
        locations = list(existing.locations) if existing else []
        for member in members:
            if member not in locations:
                self.calls.append(("define", name, member))
                locations.append(member)
        self.pools[name] = StoragePool(name, driver, "Pending", {}, [], locations)
        self.calls.append(("create", name, ""))
        if self.refuse_create:
            self.pools[name] = StoragePool(name, driver, "Errored", {}, [], locations)
            raise LxdApiError(f"LXD refused creating storage pool {name!r}: {self.refuse_create}")
        full = {**config, "volatile.pool.pristine": "true"}
        if driver == "ceph":
            full.setdefault("ceph.osd.pool_name", config.get("source", name))
        self.pools[name] = StoragePool(name, driver, "Created", full, [], locations or ["none"])
        return self.pools[name]

    def delete(self, name: str, *, keep_backing: bool = False) -> bool:
        pool = self.pools.get(name)
        if pool is None:
            return False
        if self.volumes(name):
            raise StoragePoolInUseError(name, self.volumes(name))
        if pool.driver == "ceph" and pool.config.get("volatile.pool.pristine") == "true":
            if not keep_backing:
                raise LxdApiError(
                    PRISTINE_DELETE_REFUSAL.format(
                        name=name,
                        user=pool.config.get("ceph.user.name", "admin"),
                        source=pool.config.get("source", name),
                    )
                )
            self.calls.append(("keep-backing", name, ""))
        self.calls.append(("delete", name, ""))
        del self.pools[name]
        return True
