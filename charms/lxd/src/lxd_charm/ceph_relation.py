"""The `ceph` relation with Juju: Ceph's client files for the LXD snap, and an RBD pool.

Every unit writes the two files its LXD reads to reach Ceph (each machine
runs its own daemon), from what ceph-mon sent (`lxd_charm.ceph`):
``ceph.conf`` and ``ceph.client.<app>.keyring`` (0600) in the snap's Ceph
directory, which the snap uses with ``ceph.builtin=true``. With
`ceph-create-pool`, the unit that owns LXD's configuration (the leader of a
cluster, every standalone unit) also asks ceph-mon for an RBD pool through
the broker protocol and, once ceph-mon made it, creates LXD's `remote`
storage pool on it: cluster-wide in a cluster.

When the relation goes, the pool goes with it if it holds no volume (the OSD
pool stays: ceph-mon made it, and other data may live there), then the files.
While any LXD pool still uses Ceph, the files stay and the unit blocks,
naming the pool. The interface is docs/interfaces/ceph-client.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import ops

from lxd_charm import ceph
from lxd_charm.machine import Machine
from lxd_charm.outcomes import BlockedError, CannotFinishError, WaitingError
from lxd_common.errors import LxdApiError, StoragePoolInUseError

if TYPE_CHECKING:
    from lxd_common.lxd import LxdClient, StoragePool

logger = logging.getLogger(__name__)

RELATION = "ceph"
CEPH_DIR = Path("var/snap/lxd/common/ceph")
"""Where the LXD snap reads Ceph's client files with ceph.builtin=true (under Host.root)."""
CEPH_DRIVERS = frozenset({"ceph", "cephfs", "cephobject"})
CLUSTER_NAME = "ceph"


class CephRelation:
    """This unit's side of the `ceph` relation, for one hook."""

    def __init__(self, charm: ops.CharmBase, machine: Machine, *, clustered: bool) -> None:
        self._unit = charm.unit
        self._app = charm.app
        self._model = charm.model
        self._machine = machine
        self._config = machine.config
        self._clustered = clustered
        self._dir = machine.host.root / CEPH_DIR

    @property
    def conf_path(self) -> Path:
        """The ceph.conf LXD reads."""
        return self._dir / "ceph.conf"

    @property
    def keyring_path(self) -> Path:
        """This application's keyring (its Ceph user is the application's name)."""
        return self._dir / f"ceph.client.{self._app.name}.keyring"

    def _relation(self) -> ops.Relation | None:
        # ops leaves a relation that is being broken out of `relations`.
        relations = self._model.relations.get(RELATION) or []
        return relations[0] if relations else None

    # --- the files -----------------------------------------------------------

    def write_files(self) -> CannotFinishError | None:
        """Bring ceph.conf and the keyring in line with what ceph-mon sent.

        Runs before LXD's own steps, because a joining member's LXD needs
        them to bring up the cluster's Ceph pools. Returns the problem (a
        missing option, data still missing or unusable) rather than raising,
        so that this machine's other steps go on.
        """
        relation = self._relation()
        if relation is None:
            return None  # cleaned up in `serve`, which can ask LXD who still uses the files
        try:
            self._require_builtin()
            access = self._access(relation)
            self._write(access)
        except CannotFinishError as e:
            return e
        return None

    def _require_builtin(self) -> None:
        if self._config.snap_config_ceph_builtin is not True:
            raise BlockedError(
                "the ceph relation needs the snap's own Ceph configuration: "
                f"juju config {self._app.name} snap-config-ceph-builtin=true"
            )

    def _access(self, relation: ops.Relation) -> ceph.CephAccess:
        bags = {unit.name: dict(relation.data[unit]) for unit in relation.units}
        if not bags:
            raise WaitingError("waiting for ceph-mon units on the ceph relation")
        try:
            access = ceph.read_access(bags)
        except ceph.CephDataError as e:
            raise BlockedError(f"ceph relation: {e}; check the ceph-mon application") from None
        if access is None:
            raise WaitingError("waiting for ceph-mon to send this application's key and monitors")
        return access

    def _write(self, access: ceph.CephAccess) -> None:
        conf = ceph.render_conf(access, str(self._dir))
        keyring = ceph.render_keyring(self._app.name, access)
        self._dir.mkdir(parents=True, exist_ok=True)
        changed = _replace(self.keyring_path, keyring, 0o600)
        if _replace(self.conf_path, conf, 0o644):
            logger.info("ceph.conf written: monitors %s", " ".join(access.monitors))
        elif changed:
            logger.info("ceph keyring for client.%s written", self._app.name)

    def _remove_files(self) -> None:
        removed = [p.name for p in (self.conf_path, self.keyring_path) if p.exists()]
        for path in (self.conf_path, self.keyring_path):
            path.unlink(missing_ok=True)
        if removed:
            logger.info("ceph relation gone: removed %s", ", ".join(removed))

    # --- the pool ------------------------------------------------------------

    def serve(self) -> CannotFinishError | None:
        """Ask for the RBD pool and create LXD's pool on it; or clean up after a break.

        Returns the problem for the status (None when all is done). LXD's
        own refusals become a blocked status with LXD's words.
        """
        try:
            relation = self._relation()
            if relation is None:
                self._clean_up()
            else:
                self._serve(relation)
        except CannotFinishError as e:
            return e
        return None

    def _owns_lxd_config(self) -> bool:
        return not self._clustered or self._unit.is_leader()

    def _serve(self, relation: ops.Relation) -> None:
        self._require_builtin()
        self._access(relation)  # the files are written: no pool before them
        if not self._config.ceph_create_pool or not self._owns_lxd_config():
            return
        pool = self._config.ceph_rbd_pool
        self._ask_for_pool(relation, pool)
        if not self._machine.memory.initialised:
            return
        with self._machine.lxd() as lxd:
            self._create_lxd_pool(lxd, pool)

    def _ask_for_pool(self, relation: ops.Relation, pool: str) -> None:
        bag = relation.data[self._unit]
        ops_ = [ceph.pool_op(pool, self._config.ceph_rbd_replicas)]
        request = ceph.broker_request(ops_, bag.get(ceph.BROKER_REQ))
        if bag.get(ceph.BROKER_REQ) != request:
            bag[ceph.BROKER_REQ] = request
            logger.info("asked ceph-mon for the RBD pool %s", pool)
        answers = [(unit.name, relation.data[unit]) for unit in relation.units]
        outcome = ceph.broker_outcome(request, self._unit.name, answers)
        if outcome.error:
            raise BlockedError(f"ceph-mon refused to create the RBD pool {pool}: {outcome.error}")
        if not outcome.done:
            raise WaitingError(f"waiting for ceph-mon to create the RBD pool {pool}")

    def _create_lxd_pool(self, lxd: LxdClient, pool: str) -> None:
        existing = lxd.storage.get(pool)
        if existing is not None and existing.driver != "ceph":
            raise BlockedError(
                f"LXD already has a {existing.driver} storage pool called {pool}: "
                f"juju config {self._app.name} ceph-rbd-pool=<another name>"
            )
        if existing is not None and existing.created:
            return
        members = [m.name for m in lxd.cluster.members()] if self._clustered else []
        config = {
            "source": pool,
            "ceph.cluster_name": CLUSTER_NAME,
            "ceph.user.name": self._app.name,
        }
        try:
            lxd.storage.create(pool, "ceph", config, members=members)
        except LxdApiError as e:
            raise BlockedError(f"cannot create the LXD storage pool {pool} on Ceph: {e}") from None
        logger.info("created the LXD storage pool %s on the RBD pool %s", pool, pool)

    def _clean_up(self) -> None:
        """After a break: our pool goes if it is empty; the files go once no pool uses Ceph."""
        if not (self.conf_path.exists() or self.keyring_path.exists()):
            return
        if not self._machine.memory.initialised:
            self._remove_files()
            return
        with self._machine.lxd() as lxd:
            if self._owns_lxd_config():
                self._delete_own_pool(lxd)
            using = [p for p in lxd.storage.all() if self._uses_our_files(p)]
        users = [p.name for p in using]
        if users and not self._owns_lxd_config() and all(map(self._is_own_pool, using)):
            # The leader deletes it (or says why it cannot): a member only waits for that.
            raise WaitingError(
                f"the ceph relation is gone: waiting for the leader to delete the storage "
                f"pool {users[0]}; the Ceph files stay until then"
            )
        if users:
            raise BlockedError(
                f"storage pool {users[0]} still uses Ceph without the ceph relation: "
                f"delete it (lxc storage delete {users[0]}) or relate ceph again"
            )
        self._remove_files()

    def _uses_our_files(self, pool: StoragePool) -> bool:
        return pool.driver in CEPH_DRIVERS

    def _is_own_pool(self, pool: StoragePool) -> bool:
        """The pool this application created: its name, on Ceph, with this application's key."""
        return (
            pool.name == self._config.ceph_rbd_pool
            and pool.driver == "ceph"
            and pool.config.get("ceph.user.name") == self._app.name
        )

    def _delete_own_pool(self, lxd: LxdClient) -> None:
        name = self._config.ceph_rbd_pool
        pool = lxd.storage.get(name)
        if pool is None or pool.driver != "ceph":
            return
        if pool.config.get("ceph.user.name") != self._app.name:
            return  # not made with this application's key: not ours to delete
        try:
            lxd.storage.delete(name, keep_backing=True)
        except StoragePoolInUseError as e:
            raise BlockedError(
                f"the ceph relation is gone but {e}; the Ceph files stay until then"
            ) from None
        except LxdApiError as e:
            raise BlockedError(f"cannot delete the storage pool {name}: {e}") from None
        logger.info("ceph relation gone: deleted the empty LXD storage pool %s", name)


def _replace(path: Path, content: str, mode: int) -> bool:
    """Write ``content`` atomically with ``mode`` from the start; False when it was already so.

    The temporary file is created with ``mode`` before anything is written,
    so a keyring is never readable by others, not even for a moment.
    """
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == content and (path.stat().st_mode & 0o777) == mode:
            return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
