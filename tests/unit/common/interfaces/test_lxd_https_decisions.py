"""Each decision of the lxd-https models and requirer, one wrong answer each."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ops import testing

from lxd_common.certs import generate_client_certificate
from lxd_common.interfaces.lxd_https import ClientRequest, InterfaceError, ServerInfo
from tests.harness.databags import local_unit_data
from tests.unit.common.interfaces.test_lxd_https_interface import META, RequirerCharm
from tests.unit.common.interfaces.test_lxd_https_interface import PAIR as REQUIRERS

PAIR = generate_client_certificate("decisions")
OTHER = generate_client_certificate("rotated")


def test_a_request_asks_for_no_autoremove_unless_told() -> None:
    request = ClientRequest(PAIR.certificate)
    assert request.autoremove is False
    assert request.to_databag() == {
        "version": "1.0",
        "certificate": PAIR.certificate,
        "autoremove": "false",
    }


def test_an_empty_autoremove_reads_as_false() -> None:
    bag = {"version": "1.0", "certificate": PAIR.certificate, "autoremove": ""}
    assert ClientRequest.from_databag(bag) == ClientRequest(PAIR.certificate, None, False)


def test_a_provider_answer_of_another_major_version_is_refused() -> None:
    bag = ServerInfo(PAIR.certificate, "a" * 64, ("10.0.0.1:8443",)).to_databag()
    bag["version"] = "2.0"
    message = "unsupported lxd-https version '2.0' (this side speaks 1.0)"
    with pytest.raises(InterfaceError, match=f"^{re.escape(message)}$"):
        ServerInfo.from_databag(bag)


def test_an_answer_without_fingerprint_or_addresses_reads_as_empty() -> None:
    info = ServerInfo.from_databag({"version": "1.0", "certificate": PAIR.certificate})
    assert info == ServerInfo(PAIR.certificate, "", ())


def test_certificates_stay_out_of_every_repr() -> None:
    assert "BEGIN" not in repr(ClientRequest(PAIR.certificate))
    assert "BEGIN" not in repr(ServerInfo(PAIR.certificate, "a" * 64, ()))


def _relation(**kwargs: Any) -> testing.Relation:
    return testing.Relation("lxd", remote_app_name="lxd", **kwargs)


def test_the_request_is_sent_again_on_relation_changed() -> None:
    ctx = testing.Context(RequirerCharm, meta=META)
    relation = _relation()
    state = testing.State(relations={relation})
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    bag = local_unit_data(out.get_relation(relation.id))
    assert (bag["certificate"], bag["projects"]) == (REQUIRERS.certificate, "ci")


def test_update_with_a_new_request_publishes_and_keeps_it() -> None:
    ctx = testing.Context(RequirerCharm, meta=META)
    relation = _relation()
    rotated = ClientRequest(OTHER.certificate, ("default",), autoremove=False)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as manager:
        manager.charm.lxd.update(rotated)
        assert manager.charm.lxd.request == rotated
        manager.charm.lxd.update()  # the current one again
        out = manager.run()
    bag = dict(out.get_relation(relation.id).local_unit_data)
    assert {k: bag[k] for k in ("certificate", "projects", "autoremove")} == {
        "certificate": OTHER.certificate,
        "projects": "default",
        "autoremove": "false",
    }


def test_a_cluster_answering_in_its_app_bag_counts_once_whatever_its_units_say() -> None:
    cluster = ServerInfo(PAIR.certificate, "b" * 64, ("10.0.0.9:8443",)).to_databag()
    stale = ServerInfo(PAIR.certificate, "c" * 64, ("10.0.0.8:8443",)).to_databag()
    relation = _relation(remote_app_data=cluster, remote_units_data={0: stale, 1: stale})
    ctx = testing.Context(RequirerCharm, meta=META)
    with ctx(ctx.on.update_status(), testing.State(relations={relation})) as manager:
        servers = manager.charm.lxd.servers()
    assert [s.certificate_fingerprint for s in servers] == ["b" * 64]
