"""The operator's ceiling on what the integrator registers (`allowed-projects`).

Every certificate the integrator registers for a related charm is restricted
to the listed projects; unset, they are unrestricted (root on every member),
as before. Entries an operator made are never touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ops import testing

from lxd_common.certs import fingerprint, generate_client_certificate
from lxd_common.errors import ProjectNotFoundError
from lxd_common.interfaces.lxd import RequirerData
from lxd_common.lxd import TrustEntry
from lxd_integrator.config import IntegratorConfig
from lxd_integrator.registration import EntryNames, Requester, apply_plan, plan_trust

NAMES = EntryNames(app="lxd-integrator", model_uuid="5a1f03c2-8d3e-4b7a-9c1d-2e3f4a5b6c7d")
PEMS = [generate_client_certificate(f"c{i}").certificate for i in range(3)]
A = Requester(1, "app/0")


def entry(pem: str, name: str, projects: list[str] | None = None) -> TrustEntry:
    return TrustEntry(name, fingerprint(pem), "client", projects is not None, projects or [], pem)


class Trust:
    """A trust store that knows which projects exist (what LXD checks)."""

    def __init__(self, entries: list[TrustEntry], projects: set[str]) -> None:
        self.by_fingerprint = {e.fingerprint: e for e in entries}
        self.projects = projects

    def _check(self, projects: list[str] | None) -> None:
        missing = sorted(set(projects or []) - self.projects)
        if missing:
            raise ProjectNotFoundError(f"project {missing[0]!r} does not exist")

    def add(self, pem: str, *, name: str, projects: list[str] | None = None) -> TrustEntry:
        self._check(projects)
        made = entry(pem, name, projects)
        self.by_fingerprint[made.fingerprint] = made
        return made

    def update(
        self, fp: str, *, name: str | None = None, projects: list[str] | None = None
    ) -> TrustEntry:
        self._check(projects)
        old = self.by_fingerprint[fp]
        made = entry(old.certificate, name or old.name, projects)
        self.by_fingerprint[fp] = made
        return made

    def remove(self, fp: str) -> TrustEntry:
        return self.by_fingerprint.pop(fp)


def restriction_of(trust: Trust, pem: str) -> list[str] | None:
    found = trust.by_fingerprint[fingerprint(pem)]
    return found.projects if found.restricted else None


@pytest.mark.parametrize(
    ("text", "ceiling"), [("", None), ("ci", ("ci",)), (" staging, ci,ci ", ("ci", "staging"))]
)
def test_the_option_reads_as_sorted_projects(text: str, ceiling: tuple[str, ...] | None) -> None:
    assert IntegratorConfig(allowed_projects=text).project_ceiling() == ceiling


def test_an_invalid_project_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^invalid allowed-projects: 'a/b' is not a project"):
        IntegratorConfig(allowed_projects="ci,a/b")


def test_new_certificates_are_registered_under_the_ceiling() -> None:
    trust = Trust([], {"ci"})
    wanted = {A: RequirerData.from_pems([PEMS[0]])}
    plan = plan_trust(wanted, [], NAMES, ("ci",))
    result = apply_plan(trust, plan)  # type: ignore[arg-type]
    assert restriction_of(trust, PEMS[0]) == ["ci"]
    assert result.trusted == {fingerprint(PEMS[0])}


def test_our_entries_follow_the_ceiling_and_others_are_left_alone() -> None:
    mine, renamed = NAMES.name(A), "lxd-integrator:5a1f03c2:1:app/9"
    entries = [
        entry(PEMS[0], mine),  # ours, unrestricted: restricted now
        entry(PEMS[1], renamed),  # ours, owner gone: renamed and restricted
        entry(PEMS[2], "operator-made"),  # not ours: never touched
    ]
    wanted = {A: RequirerData.from_pems(PEMS)}
    trust = Trust(entries, {"ci"})
    plan = plan_trust(wanted, entries, NAMES, ("ci",))
    assert [r.fingerprint for r in plan.restrictions] == [fingerprint(PEMS[0])]
    assert plan.changes
    apply_plan(trust, plan)  # type: ignore[arg-type]
    assert restriction_of(trust, PEMS[0]) == ["ci"]
    assert restriction_of(trust, PEMS[1]) == ["ci"]
    assert trust.by_fingerprint[fingerprint(PEMS[1])].name == mine
    assert restriction_of(trust, PEMS[2]) is None

    # Lifting the ceiling makes our entries unrestricted again; nothing else changes.
    lifted = plan_trust(wanted, list(trust.by_fingerprint.values()), NAMES, None)
    assert {r.fingerprint for r in lifted.restrictions} == {
        fingerprint(PEMS[0]),
        fingerprint(PEMS[1]),
    }
    apply_plan(trust, lifted)  # type: ignore[arg-type]
    assert restriction_of(trust, PEMS[0]) is None


def test_an_entry_already_under_the_ceiling_is_left_as_it_is() -> None:
    entries = [entry(PEMS[0], NAMES.name(A), ["ci", "staging"])]
    wanted = {A: RequirerData.from_pems([PEMS[0]])}
    assert not plan_trust(wanted, entries, NAMES, ("ci", "staging")).changes


def test_an_entry_that_cannot_be_held_to_the_ceiling_loses_its_access() -> None:
    """A project of the ceiling is missing: broader access must not stay."""
    entries = [entry(PEMS[0], NAMES.name(A))]
    trust = Trust(entries, set())
    wanted = {A: RequirerData.from_pems([PEMS[0]])}
    result = apply_plan(trust, plan_trust(wanted, entries, NAMES, ("ci",)))  # type: ignore[arg-type]
    assert trust.by_fingerprint == {}
    assert result.trusted == frozenset()


def test_a_certificate_that_cannot_be_added_under_the_ceiling_is_refused() -> None:
    trust = Trust([], set())
    wanted = {A: RequirerData.from_pems([PEMS[0]])}
    result = apply_plan(trust, plan_trust(wanted, [], NAMES, ("ci",)))  # type: ignore[arg-type]
    assert trust.by_fingerprint == {}
    assert "project 'ci' does not exist" in result.refusals[A]


# --- the charm ---------------------------------------------------------------------


def test_the_charm_registers_under_the_ceiling(
    charm_type: Any, lxd: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    ctx = testing.Context(charm_type, app_name="lxd-integrator", app_trusted=True)
    rel = testing.Relation(
        "api",
        remote_app_name="myapp",
        remote_units_data={0: {"client_certificates": json.dumps([PEMS[0]])}},
    )
    state = testing.State(
        leader=True,
        relations={rel},
        config={"allowed-projects": "ci"},
        model=testing.Model(type="lxd", uuid=NAMES.model_uuid, cloud_spec=cloud_spec()),
    )
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    registered = lxd.trust.by_fingerprint[fingerprint(PEMS[0])]
    assert (registered.restricted, registered.projects) == (True, ["ci"])
    assert out.unit_status.name == "active"


def test_an_invalid_ceiling_blocks(
    charm_type: Any, cloud_spec: Callable[..., testing.CloudSpec]
) -> None:
    ctx = testing.Context(charm_type, app_name="lxd-integrator", app_trusted=True)
    state = testing.State(
        leader=True,
        config={"allowed-projects": "a b"},
        model=testing.Model(type="lxd", uuid=NAMES.model_uuid, cloud_spec=cloud_spec()),
    )
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("invalid allowed-projects: 'a b'")
