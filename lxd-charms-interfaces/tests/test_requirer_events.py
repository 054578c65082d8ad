"""Both `lxd` requirer events send the request: relation-joined and relation-changed.

test_library.py sends it on relation-joined; a relation-changed must send it
too, or a unit bag without it (a requirer refreshed from another charm, whose
bag had other keys) is not filled until the relation is made again.
"""

from __future__ import annotations

import json
from pathlib import Path

import ops
import pytest
from ops import testing

from lxd_charms_interfaces import lxd

CERT = (Path(__file__).resolve().parent / "data" / "client.pem").read_text()
META = {"name": "consumer", "requires": {"lxd": {"interface": "lxd"}}}


class Requirer(ops.CharmBase):
    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = lxd.LxdRequirer(self, "lxd", certificates=[CERT])


@pytest.mark.parametrize("event", ["relation_joined", "relation_changed"])
def test_each_relation_event_sends_the_request(event: str) -> None:
    ctx = testing.Context(Requirer, meta=META)
    relation = testing.Relation("lxd")
    out = ctx.run(getattr(ctx.on, event)(relation), testing.State(relations={relation}))
    sent: dict[str, str] = dict(out.get_relation(relation.id).local_unit_data)
    assert json.loads(sent["client_certificates"]) == [CERT.strip() + "\n"]
