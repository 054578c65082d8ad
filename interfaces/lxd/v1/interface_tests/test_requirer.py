"""lxd v1 interface tests, requirer side (pytest-interface-tester).

A requirer sends its client certificates in its unit bag when the relation
joins, and keeps them there once the provider has answered. Only classes
are imported here: the tester collects every function of this module as a
test.
"""

from __future__ import annotations

import json

from interface_tester import Tester
from scenario import Relation, State


def test_requirer_sends_its_certificates_on_joining() -> None:
    """The certificates are in the requirer's unit bag from the first hook."""
    tester = Tester(State(relations=[Relation(endpoint="lxd", interface="lxd")]))
    tester.run("lxd-relation-joined")
    tester.assert_schema_valid()


def test_requirer_keeps_its_certificates_once_answered() -> None:
    """The provider's answer changes nothing the requirer sends."""
    nodes = [{"name": "m1", "endpoint": "https://10.0.0.1:8443", "trusted_certs_fp": []}]
    answer = {"version": "1.0", "nodes": json.dumps(nodes)}
    relation = Relation(endpoint="lxd", interface="lxd", remote_app_data=answer)
    tester = Tester(State(relations=[relation]))
    tester.run("lxd-relation-changed")
    tester.assert_schema_valid()
