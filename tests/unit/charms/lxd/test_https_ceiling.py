"""The operator's ceiling on what `https` requirers are trusted with (`https-allowed-projects`).

A certificate LXD trusts without a project restriction is root on every
member, and the lxd-https interface lets a requirer ask for exactly that by
leaving `projects` out. The ceiling lets an operator say which projects any
related charm may have, and nothing else.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from ops import testing

from lxd_charm.config import LxdConfig
from lxd_charm.https_provider import ceiling_refusal
from lxd_common.certs import fingerprint
from lxd_common.interfaces.lxd_https import ClientRequest, ServerInfo
from tests.harness.databags import local_unit_data
from tests.harness.fake_host import FakeHost

from .test_https import ALICE, BOB, base, entries, relation, request

CEILING = "ci,staging"


def with_projects(host: FakeHost, *names: str) -> None:
    host.fake_lxd.trust.projects.update(names)


def serve_under(
    ctx: testing.Context[Any], rel: testing.Relation, ceiling: str = CEILING
) -> testing.State:
    state = base(relations={rel})
    state = replace(state, config={**state.config, "https-allowed-projects": ceiling})
    state = replace(ctx.run(ctx.on.install(), state), relations=frozenset({rel}))
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


# --- the decision ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("projects", "said"),
    [
        (None, "client/0 asked for unrestricted access; allowed: ci, staging"),
        (("prod",), "client/0 asked for project prod; allowed: ci, staging"),
        (("ci", "prod"), "client/0 asked for projects ci, prod; allowed: ci, staging"),
        (("ci",), None),
        (("staging", "ci"), None),
    ],
)
def test_the_ceiling_refuses_what_lies_outside_it(
    projects: tuple[str, ...] | None, said: str | None
) -> None:
    request_ = ClientRequest(ALICE.certificate, projects=projects)
    assert ceiling_refusal("client/0", request_, frozenset({"ci", "staging"})) == said


def test_no_ceiling_refuses_nothing() -> None:
    assert ceiling_refusal("client/0", ClientRequest(ALICE.certificate), None) is None


@pytest.mark.parametrize(
    ("text", "ceiling"),
    [("", None), (" , ", None), ("ci", {"ci"}), (" ci , staging,ci ", {"ci", "staging"})],
)
def test_the_option_reads_as_a_set_of_projects(text: str, ceiling: set[str] | None) -> None:
    got = LxdConfig(https_allowed_projects=text).https_project_ceiling()
    assert got == (None if ceiling is None else frozenset(ceiling))


def test_an_invalid_project_name_in_the_option_blocks(ctx: testing.Context[Any]) -> None:
    state = ctx.run(
        ctx.on.config_changed(), testing.State(config={"https-allowed-projects": "ci,a b"})
    )
    assert state.unit_status == testing.BlockedStatus(
        "invalid https-allowed-projects: 'a b' is not a project name (LXD project names cannot "
        "contain slashes, spaces, underscores or quotes, nor be '*', '.' or '..'); give "
        "comma-separated names, e.g. ci,staging"
    )


# --- the relation ------------------------------------------------------------------


def test_a_request_inside_the_ceiling_is_served(ctx: testing.Context[Any], host: FakeHost) -> None:
    with_projects(host, "ci", "staging")
    out = serve_under(ctx, relation(request(ALICE.certificate, projects="ci")))
    entry = entries(host)["juju-relation-client/0"]
    assert (entry.restricted, entry.projects) == (True, ["ci"])
    assert ServerInfo.from_databag(local_unit_data(out.get_relation(7))) is not None
    assert out.unit_status.name == "active"


@pytest.mark.parametrize(
    ("asked", "said"),
    [
        ({}, "client/0 asked for unrestricted access; allowed: ci, staging"),
        ({"projects": "default"}, "client/0 asked for project default; allowed: ci, staging"),
    ],
)
def test_a_request_beyond_the_ceiling_is_never_trusted_nor_answered(
    ctx: testing.Context[Any], host: FakeHost, asked: dict[str, str], said: str
) -> None:
    with_projects(host, "ci", "staging")
    out = serve_under(ctx, relation(request(ALICE.certificate, **asked)))
    assert entries(host) == {}
    assert out.unit_status == testing.BlockedStatus(f"https relation: {said}")
    bag = local_unit_data(out.get_relation(7))
    assert ServerInfo.from_databag(bag) is None
    assert "certificate" not in bag and "addresses" not in bag


def test_one_refused_unit_does_not_cost_another_its_access(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    with_projects(host, "ci", "staging")
    rel = relation(request(ALICE.certificate), request(BOB.certificate, projects="staging"))
    out = serve_under(ctx, rel)
    assert set(entries(host)) == {"juju-relation-client/1"}
    assert out.unit_status == testing.BlockedStatus(
        "https relation: client/0 asked for unrestricted access; allowed: ci, staging"
    )
    assert ServerInfo.from_databag(local_unit_data(out.get_relation(7))) is not None


def test_setting_a_ceiling_removes_entries_that_now_fall_outside_it(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    with_projects(host, "ci", "staging", "prod")
    rel = relation(request(ALICE.certificate), request(BOB.certificate, projects="ci"))
    state = serve_under(ctx, rel, ceiling="")
    assert set(entries(host)) == {"juju-relation-client/0", "juju-relation-client/1"}

    out = ctx.run(
        ctx.on.config_changed(),
        replace(state, config={**state.config, "https-allowed-projects": CEILING}),
    )
    assert set(entries(host)) == {"juju-relation-client/1"}
    assert fingerprint(ALICE.certificate) not in {e.fingerprint for e in entries(host).values()}
    assert out.unit_status == testing.BlockedStatus(
        "https relation: client/0 asked for unrestricted access; allowed: ci, staging "
        "(its trust entry juju-relation-client/0 was removed)"
    )

    # Lifting the ceiling again trusts what is asked, as the interface says.
    out = ctx.run(
        ctx.on.config_changed(), replace(out, config={**out.config, "https-allowed-projects": ""})
    )
    assert set(entries(host)) == {"juju-relation-client/0", "juju-relation-client/1"}
    assert out.unit_status.name == "active"
