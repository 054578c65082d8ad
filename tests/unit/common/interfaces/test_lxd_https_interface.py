"""The lxd-https interface models, schemas, document and requirer class."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import ops
import pytest
from ops import testing

from lxd_common.certs import generate_client_certificate
from lxd_common.interfaces.lxd_https import (
    PROVIDER_SCHEMA,
    REQUIRER_SCHEMA,
    ClientRequest,
    InterfaceError,
    LxdHttpsRequirer,
    ServerInfo,
    schemas_as_json,
)
from tests.harness.databags import local_unit_data

DOC = Path(__file__).resolve().parents[4] / "interfaces/lxd_https/v1/README.md"
PAIR = generate_client_certificate("requirer")


def test_the_document_shows_the_schemas_the_code_uses() -> None:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert json.loads(blocks[0]) == json.loads(schemas_as_json())


@pytest.mark.parametrize(
    ("projects", "bag_projects"), [(None, None), (("a",), "a"), (("a", "b"), "a,b")]
)
def test_request_round_trip(projects: tuple[str, ...] | None, bag_projects: str | None) -> None:
    request = ClientRequest(PAIR.certificate, projects, autoremove=True)
    bag = request.to_databag()
    jsonschema.validate(bag, REQUIRER_SCHEMA)
    assert bag.get("projects") == bag_projects
    assert ClientRequest.from_databag(bag) == request


def test_upstream_style_request_is_read() -> None:
    bag = {"version": "1.0", "certificate": PAIR.certificate, "projects": " foo, bar ,"}
    request = ClientRequest.from_databag(bag)
    assert request is not None
    assert (request.projects, request.autoremove) == (("foo", "bar"), False)


@pytest.mark.parametrize(
    ("bag", "error"),
    [
        ({"version": "2.0", "certificate": "x"}, "unsupported lxd-https version '2.0'"),
        ({"certificate": "x"}, "unsupported lxd-https version ''"),
        ({"version": "1.0", "certificate": "x", "autoremove": "maybe"}, "autoremove must be"),
    ],
)
def test_bad_requests(bag: dict[str, str], error: str) -> None:
    with pytest.raises(InterfaceError, match=re.escape(error)):
        ClientRequest.from_databag(bag)


def test_nothing_sent_yet_is_none() -> None:
    assert ClientRequest.from_databag({}) is None
    assert ServerInfo.from_databag({"version": "1.0"}) is None


def test_server_info_round_trip_and_schema() -> None:
    info = ServerInfo(PAIR.certificate, "a" * 64, ("10.0.0.1:8443", "[2001:db8::1]:8443"))
    bag = info.to_databag()
    jsonschema.validate(bag, PROVIDER_SCHEMA)
    assert bag["addresses"] == "10.0.0.1:8443,[2001:db8::1]:8443"
    assert ServerInfo.from_databag(bag) == info


def test_schema_rejects_a_private_key_and_bad_addresses() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "1.0", "certificate": PAIR.private_key}, REQUIRER_SCHEMA)
    bad = ServerInfo(PAIR.certificate, "a" * 64, ("10.0.0.1",)).to_databag()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, PROVIDER_SCHEMA)


def test_secrets_stay_out_of_reprs() -> None:
    assert "BEGIN" not in repr(ClientRequest(PAIR.certificate))


META = {"name": "requirer", "requires": {"lxd": {"interface": "lxd-https"}}}


class RequirerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = LxdHttpsRequirer(self, "lxd", certificate=PAIR.certificate, projects=["ci"])


def test_requirer_sends_its_request_on_join() -> None:
    ctx = testing.Context(RequirerCharm, meta=META)
    relation = testing.Relation("lxd", remote_app_name="lxd")
    out = ctx.run(ctx.on.relation_joined(relation), testing.State(relations={relation}))
    bag = dict(local_unit_data(out.get_relation(relation.id)))
    jsonschema.validate(bag, REQUIRER_SCHEMA)
    assert bag["projects"] == "ci" and bag["autoremove"] == "true"


class ChangingRequirer(ops.CharmBase):
    """Asks for `projects` (a comma list, or "unrestricted") and `autoremove` from its config."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.lxd = LxdHttpsRequirer(self, "lxd", certificate=PAIR.certificate)
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        projects = str(self.config["projects"])
        self.lxd.update(
            ClientRequest(
                PAIR.certificate,
                projects=None if projects == "unrestricted" else tuple(projects.split(",")),
                autoremove=bool(self.config["autoremove"]),
            )
        )


CHANGING_CONFIG = {
    "options": {
        "projects": {"type": "string", "default": "unrestricted"},
        "autoremove": {"type": "boolean", "default": False},
    }
}


def test_a_dropped_restriction_leaves_the_bag() -> None:
    """Projects once sent, then dropped: the provider must see an unrestricted request."""
    ctx = testing.Context(ChangingRequirer, meta=META, config=CHANGING_CONFIG)
    juju_keys = {"ingress-address": "10.0.0.7", "private-address": "10.0.0.7"}
    relation = testing.Relation("lxd", remote_app_name="lxd", local_unit_data=juju_keys)
    state = testing.State(relations={relation}, config={"projects": "ci,staging"})
    out = ctx.run(ctx.on.config_changed(), state)
    assert local_unit_data(out.get_relation(relation.id))["projects"] == "ci,staging"
    out = ctx.run(ctx.on.config_changed(), replace(out, config={"projects": "unrestricted"}))
    bag = dict(local_unit_data(out.get_relation(relation.id)))
    assert "projects" not in bag
    assert bag == {
        **juju_keys,
        "version": "1.0",
        "certificate": PAIR.certificate,
        "autoremove": "false",
    }
    assert ClientRequest.from_databag(bag) == ClientRequest(PAIR.certificate, projects=None)


@pytest.mark.parametrize("clustered", [True, False])
def test_requirer_reads_cluster_and_standalone_answers(clustered: bool) -> None:
    answer = ServerInfo(PAIR.certificate, "b" * 64, ("10.0.0.9:8443",)).to_databag()
    relation = testing.Relation(
        "lxd",
        remote_app_name="lxd",
        remote_app_data=answer if clustered else {},
        remote_units_data={0: {} if clustered else answer, 1: {} if clustered else answer},
    )
    ctx = testing.Context(RequirerCharm, meta=META)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as manager:
        servers: list[Any] = manager.charm.lxd.servers()
    assert [s.addresses for s in servers] == [("10.0.0.9:8443",)] * (1 if clustered else 2)


def test_an_empty_project_list_is_refused_rather_than_sent_as_unrestricted() -> None:
    with pytest.raises(InterfaceError, match=r"^projects is empty: Juju drops empty values"):
        ClientRequest(PAIR.certificate, projects=())
    # A bag that says "," names no project either: refused, never trusted unrestricted.
    with pytest.raises(InterfaceError, match=r"^projects is empty"):
        ClientRequest.from_databag(
            {"version": "1.0", "certificate": PAIR.certificate, "projects": ","}
        )
