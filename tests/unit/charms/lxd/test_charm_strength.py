"""The LXD charm's hook wiring and status, word for word where other tests check a part.

test_charm.py and its siblings drive whole hooks; the tests here pin what a
mutation of charm.py showed untested: the actions' refusals that charm.py
itself makes, each whole, and the branches of the wiring no other test took.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from ops import testing

from tests.harness.fake_host import FakeHost
from tests.unit.charms.lxd.test_charm import installed
from tests.unit.charms.lxd.test_https import ALICE, BOB, relation, request
from tests.unit.charms.lxd.test_https_ceiling import serve_under, with_projects


def test_a_token_without_the_https_listener_is_refused_with_the_command(
    ctx: testing.Context[Any],
) -> None:
    state = installed(ctx)
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action("get-client-token", params={"name": "ci"}), state)
    assert info.value.message == (
        "clients redeem tokens over HTTPS: first run `juju config lxd lxd-listen-https=true`"
    )


@pytest.mark.parametrize("action", ["evacuate", "restore"])
def test_a_standalone_unit_refuses_evacuate_and_restore(
    ctx: testing.Context[Any], action: str
) -> None:
    state = installed(ctx)
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action(action), state)
    assert info.value.message == "only a cluster member can be evacuated or restored"


def test_refresh_with_invalid_options_is_refused(ctx: testing.Context[Any]) -> None:
    state = installed(ctx)
    state = replace(state, config={"mode": "x"})
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action("refresh"), state)
    assert info.value.message == "the charm's options are invalid: see the unit status"


def test_two_refused_requirers_show_the_first_and_how_many_more(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    with_projects(host, "ci", "staging")
    out = serve_under(ctx, relation(request(ALICE.certificate), request(BOB.certificate)))
    assert out.unit_status == testing.BlockedStatus(
        "https relation: client/0 asked for unrestricted access; allowed: ci, staging (+1 more)"
    )
