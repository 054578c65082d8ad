#!/usr/bin/env python3
"""Juju charm that lets related charms use the LXD cloud hosting the model.

This module only wires Juju events to handlers and decides the unit status;
the decisions live in the `lxd_integrator` package (no `ops`): where the
credentials come from and whether they are usable (`credentials`), how to
reach LXD and list its members (`connection`), and which requirer
certificates LXD should trust (`registration`). The relation data follows
the `lxd` interface, typed in `lxd_common.interfaces.lxd`.

Every hook that may change something reconciles everything: check the
credentials, connect, list the members, (leader) make LXD's trust store hold
exactly what the requiring units ask for, and publish `version` + `nodes` on
every relation. On `update-status` the leader only lists the members, and
does the rest when membership changed or the last reconcile did not finish;
other units also re-read the trust store, to keep `trusted_certs_fp` in
their unit bags accurate.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import ops

from lxd_integrator.config import (
    CLIENT_KEY_FIELD,
    DEPRECATED_KEY_OPTION,
    KEY_SECRET_OPTION,
    IntegratorConfig,
    resolve_spellings,
)

# What talks to LXD (pylxd, requests), checks certificates (cryptography) or
# plans trust is imported in the handlers that use it: Juju starts a process
# per hook, and only the hooks that reach LXD should pay for that stack.
if TYPE_CHECKING:
    from lxd_common.interfaces.lxd import Node, RequirerData
    from lxd_common.lxd import LxdClient
    from lxd_integrator.credentials import Credentials, TrustedCloud
    from lxd_integrator.registration import Requester

logger = logging.getLogger(__name__)
# urllib3 logs every HTTP request at DEBUG, and ops forwards every record to
# Juju as a `juju-log` call (a hook tool process each): LXD's requests would
# be most of a hook's tool calls. Its warnings (retries, pool full) still go.
logging.getLogger("urllib3").setLevel(logging.INFO)

RELATION = "api"


class LxdIntegratorCharm(ops.CharmBase):
    """Hands the model's LXD cloud to charms related on the `lxd` interface."""

    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        # True from the start of a full reconcile until it published everything.
        self._stored.set_default(pending=True)
        self._problem: str | None = None
        self._summary: str | None = None
        for event in (
            self.on.install,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.leader_elected,
            # a new revision of the user secret holding the client key
            self.on.secret_changed,
        ):
            framework.observe(event, self._on_change)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on[RELATION].relation_joined, self._on_api_changed)
        framework.observe(self.on[RELATION].relation_changed, self._on_api_changed)
        framework.observe(self.on[RELATION].relation_departed, self._on_api_departed)
        framework.observe(self.on[RELATION].relation_broken, self._on_api_broken)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    def _on_change(self, _: ops.EventBase) -> None:
        self._reconcile()

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        # The leader changes the trust store, so what it published stays true
        # until membership changes. Another unit cannot know when the leader
        # trusted something, so it re-reads the trust store every time.
        self._reconcile(only_if_changed=self.unit.is_leader())

    def _on_api_changed(self, _: ops.RelationEvent) -> None:
        self._reconcile()

    def _on_api_departed(self, event: ops.RelationDepartedEvent) -> None:
        departing = event.departing_unit.name if event.departing_unit else None
        self._reconcile(departed=(event.relation.id, departing) if departing else None)

    def _on_api_broken(self, _: ops.RelationBrokenEvent) -> None:
        # ops leaves the broken relation out of `model.relations`, so its
        # certificates are no longer wanted and the reconcile removes them.
        self._reconcile()

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        """Nothing on disk to clean: the client key only ever lives in a per-hook temp dir."""
        logger.info("remove: no key files to delete (each hook's client removes its own)")

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        """One status per hook: credentials/connection problems, refused requirers, or serving."""
        if self._problem is not None:
            event.add_status(ops.BlockedStatus(self._problem))
            return
        if self._summary is None:
            return  # this hook did not look at LXD: keep the status as it is
        refused = self._published_errors()
        if refused:
            units = sorted(refused)
            first = units[0]
            more = f" (and {len(units) - 1} more units)" if len(units) > 1 else ""
            event.add_status(
                ops.BlockedStatus(f"ignored certificates from {first}{more}: {refused[first]}")
            )
            return
        event.add_status(ops.ActiveStatus(self._summary))

    # --- helpers -------------------------------------------------------------

    def _reconcile(
        self, *, only_if_changed: bool = False, departed: tuple[int, str] | None = None
    ) -> None:
        """Connect to LXD, register certificates (leader), publish the nodes on every relation.

        Args:
            only_if_changed: list the members, and do the rest only if they
                differ from what is published or the last reconcile failed.
            departed: (relation id, unit name) of a unit leaving a relation,
                whose certificates are no longer wanted.
        """
        from lxd_common.deadline import total_deadline
        from lxd_common.errors import LxdError, LxdUnreachableError
        from lxd_integrator import connection
        from lxd_integrator.credentials import CredentialsProblem, load_credentials

        try:
            config = self._config()
            credentials = load_credentials(self._trusted_cloud(), config, app_name=self.app.name)
        except CredentialsProblem as e:
            logger.warning("no usable LXD credentials: %s", e)
            self._problem = str(e)
            return
        try:
            with (
                total_deadline(
                    connection.HOOK_DEADLINE, f"talking to LXD at {credentials.endpoint}"
                ),
                connection.open_lxd(credentials) as lxd,
            ):
                nodes = connection.read_nodes(lxd, credentials)
                self._summary = _summary(nodes, credentials)
                if only_if_changed and not self._stored.pending and self._published(nodes):
                    return
                self._stored.pending = True
                self._register_and_publish(lxd, nodes, departed, config.project_ceiling())
                self._stored.pending = False
        except connection.LxdConnectionProblem as e:
            logger.warning("LXD is not usable: %s", e)
            self._problem = str(e)
        except LxdUnreachableError as e:
            # LXD went away mid-hook: `pending` stays set, update-status finishes the job.
            logger.warning("LXD stopped answering: %s", e)
            self._problem = connection.explain_unreachable(credentials, e)
        except LxdError as e:
            # Unexpected (LXD refused to remove an entry...): fail the hook, Juju retries it.
            logger.error("LXD failed while reconciling: %s", e)
            raise

    def _register_and_publish(
        self,
        lxd: LxdClient,
        nodes: tuple[Node, ...],
        departed: tuple[int, str] | None,
        ceiling: tuple[str, ...] | None,
    ) -> None:
        from lxd_common.interfaces.lxd import Node, ProviderData
        from lxd_integrator.registration import (
            REGISTERED,
            EntryNames,
            apply_plan,
            plan_trust,
            registered_certificates,
            trusted_by_relation,
        )

        relations = self.model.relations[RELATION]
        wanted, errors = self._requests(relations, departed)
        names = EntryNames(app=self.app.name, model_uuid=self.model.uuid)
        plan = plan_trust(wanted, lxd.trust.entries(), names, ceiling)
        trusted, refusals = plan.present, dict(plan.refusals)
        if self.unit.is_leader():
            result = apply_plan(lxd.trust, plan)
            trusted = result.trusted
            refusals.update(result.refusals)
        for requester, reason in refusals.items():
            errors.setdefault(requester.relation_id, {})[requester.unit] = reason
        fingerprints = trusted_by_relation(wanted, trusted)
        for relation in relations:
            fps = fingerprints.get(relation.id, ())
            data = ProviderData(
                nodes=tuple(Node(n.name, n.endpoint, fps) for n in nodes),
                errors=errors.get(relation.id, {}),
            )
            bag = data.to_databag()
            bag[REGISTERED] = registered_certificates(wanted, relation.id, fps)
            relation.data[self.unit].update(bag)
            if self.unit.is_leader():
                relation.data[self.app].update(bag)

    def _requests(
        self, relations: list[ops.Relation], departed: tuple[int, str] | None
    ) -> tuple[dict[Requester, RequirerData], dict[int, dict[str, str]]]:
        """Each requiring unit's valid request; and, per relation, why others were refused."""
        from lxd_common.interfaces.lxd import InterfaceError, RequirerData
        from lxd_integrator.registration import Requester

        wanted: dict[Requester, RequirerData] = {}
        errors: dict[int, dict[str, str]] = {}
        for relation in relations:
            for unit in relation.units:
                if departed == (relation.id, unit.name):
                    continue  # still listed by some Juju versions while departing
                try:
                    request = RequirerData.from_databag(relation.data[unit])
                except InterfaceError as e:
                    logger.warning("ignoring the certificates of %s: %s", unit.name, e)
                    errors.setdefault(relation.id, {})[unit.name] = str(e)
                    continue
                if request.client_certificates:
                    wanted[Requester(relation.id, unit.name)] = request
        return wanted, errors

    def _published(self, nodes: tuple[Node, ...]) -> bool:
        """Whether every relation already shows these members (names and endpoints)."""
        from lxd_common.interfaces.lxd import InterfaceError, ProviderData

        current = [(n.name, n.endpoint) for n in nodes]
        for relation in self.model.relations[RELATION]:
            try:
                data = ProviderData.from_databag(relation.data[self.unit])
            except InterfaceError:
                return False
            if data is None or [(n.name, n.endpoint) for n in data.nodes] != current:
                return False
        return True

    def _published_errors(self) -> dict[str, str]:
        """Requiring unit -> why its certificates were refused, as this unit last published."""
        from lxd_common.interfaces.lxd import InterfaceError, ProviderData

        refused: dict[str, str] = {}
        for relation in self.model.relations[RELATION]:
            try:
                data = ProviderData.from_databag(relation.data[self.unit])
            except InterfaceError:
                continue
            if data is not None:
                refused.update(data.errors)
        return refused

    def _config(self) -> IntegratorConfig:
        """The options, with the client key read from its user secret.

        Raises:
            CredentialsUnavailable: the secret is not granted to this
                application (or was removed).
            CredentialsInvalid: the secret has no `client-key` field.
        """
        from lxd_integrator.credentials import CredentialsInvalid, CredentialsUnavailable

        try:
            config = resolve_spellings(self.load_config(IntegratorConfig), self.config)
        except ValueError as e:  # an option the charm cannot use: the message says which
            raise CredentialsInvalid(str(e)) from None
        secret = config.lxd_client_key_secret
        if secret is None:
            if config.uses_deprecated_key():
                logger.warning(
                    "%s is deprecated: put the key in a user secret and set %s "
                    "(juju add-secret lxd-client-key %s#file=key.pem; "
                    "juju grant-secret lxd-client-key %s)",
                    DEPRECATED_KEY_OPTION,
                    KEY_SECRET_OPTION,
                    CLIENT_KEY_FIELD,
                    self.app.name,
                )
            return config
        try:
            content = secret.get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError):
            raise CredentialsUnavailable(
                f"cannot read {KEY_SECRET_OPTION} {secret.id}: "
                f"juju grant-secret <secret> {self.app.name}"
            ) from None
        key = content.get(CLIENT_KEY_FIELD, "")
        if not key.strip():
            raise CredentialsInvalid(
                f"{KEY_SECRET_OPTION} {secret.id} has no {CLIENT_KEY_FIELD} field: "
                f"juju update-secret <secret> {CLIENT_KEY_FIELD}#file=key.pem"
            )
        return config.with_client_key(key)

    def _trusted_cloud(self) -> TrustedCloud | None:
        """The model's cloud spec from `juju trust`, or None if the charm is not trusted.

        Juju answers an untrusted charm's request with an error (ModelError),
        which is the normal state before `juju trust`, not a failure.
        """
        from lxd_integrator.credentials import TrustedCloud

        try:
            spec = self.model.get_cloud_spec()
        except ops.ModelError as e:
            logger.debug("no cloud spec (charm not trusted?): %s", e)
            return None
        attributes = spec.credential.attributes if spec.credential else {}
        return TrustedCloud(
            cloud_type=spec.type,
            endpoint=spec.endpoint,
            attributes=attributes,
            ca_certificates=spec.ca_certificates,
            auth_type=spec.credential.auth_type if spec.credential else "certificate",
        )


def _summary(nodes: tuple[Node, ...], credentials: Credentials) -> str:
    if len(nodes) == 1:
        return f"LXD {nodes[0].name} at {credentials.endpoint}"
    return f"LXD cluster of {len(nodes)} members at {credentials.endpoint}"


if __name__ == "__main__":
    ops.main(LxdIntegratorCharm)
