"""`cos-agent` (provides, `cos_agent`): what each unit hands the agent on its machine.

What the unit writes is read back through `tests.harness.cos_agent`, this
repository's statement of what the consuming side checks and does (the
interface's schema in charm-relation-interfaces and the agents' requirer;
no package on PyPI ships either, see that module). The interface is
docs/interfaces/cos_agent.md.
"""

from __future__ import annotations

import base64
import json
import lzma
from typing import Any

import pytest
from ops import testing

from lxd_charm.cos import dashboards, scrape
from lxd_common.certs import check_key_matches, fingerprint
from tests.harness import cos_agent
from tests.harness.databags import local_unit_data
from tests.harness.fake_host import FakeHost
from tests.harness.juju_sim import Sim
from tests.unit.charms.lxd.test_charm_cluster import formed, run
from tests.unit.charms.lxd.test_metrics_endpoint import (
    installed,
    metrics_entries,
    peers,
    relate,
    sim,  # noqa: F401  (the cluster fixture)
)

REL = 50


def agent(relation_id: int = REL) -> testing.Relation:
    """The principal's side of the subordinate's container-scoped relation."""
    return testing.Relation(
        "cos-agent",
        interface="cos_agent",
        remote_app_name="grafana-agent",
        id=relation_id,
        remote_units_data={0: {"config": "{{ not what we expect"}},
    )


def config_of(state: testing.State) -> cos_agent.AgentConfig:
    return cos_agent.read_config(local_unit_data(state.get_relation(REL)))


def topology(state: testing.State, unit: str = "lxd/0") -> dict[str, str]:
    return {
        "model": state.model.name,
        "model_uuid": state.model.uuid,
        "application": "lxd",
        "unit": unit,
    }


def test_the_agent_accepts_the_config_and_scrapes_this_unit_verifying_it(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx, agent(), peers())
    state = ctx.run(ctx.on.relation_changed(state.get_relation(REL), remote_unit=0), state)
    assert state.unit_status.name == "active", state.unit_status.message
    config = config_of(state)

    [job] = cos_agent.scrape_configs(config, topology(state))
    assert job["metrics_path"] == "/1.0/metrics" and job["scheme"] == "https"
    [static] = job["static_configs"]
    assert static["targets"] == ["10.0.9.5:8444"]
    assert static["labels"] == {f"juju_{k}": v for k, v in topology(state).items()}
    tls = job["tls_config"]
    # Contents inline: the agents write no files for cos-agent jobs.
    assert not {"ca_file", "cert_file", "key_file"} & set(tls)
    assert tls["ca"] == host.fake_lxd.server_pair.certificate
    assert tls.get("server_name") == scrape.server_name(tls["ca"])
    assert "insecure_skip_verify" not in tls
    check_key_matches(tls["cert"], tls["key"])
    entry = metrics_entries(host)["juju-metrics-grafana-agent-50"]
    assert entry.fingerprint == fingerprint(tls["cert"])

    rules = config.metrics_alert_rules["groups"][0]["rules"]
    assert rules[0]["alert"] == "LXDUnreachable"
    [encoded] = config.dashboards
    assert json.loads(dashboards.decode(encoded))["title"] == "LXD"
    assert config.log_alert_rules == {}
    # The LXD snap has no slot for the agent's `logs` plug: none is asked for.
    assert config.log_slots == [] and cos_agent.log_slots(config) == []


def test_without_a_listener_the_config_is_still_valid_with_no_job(
    ctx: testing.Context[Any], host: FakeHost
) -> None:
    state = installed(ctx, agent(), peers(), metrics=False)
    assert state.unit_status == testing.BlockedStatus(
        "cos-agent: scrapers cannot reach LXD: set lxd-listen-metrics=true "
        "(or lxd-listen-https=true)"
    )
    assert config_of(state).metrics_scrape_jobs == []


def test_on_a_cluster_member_the_agent_scrapes_that_member(
    sim: Sim,  # noqa: F811
    host: FakeHost,
) -> None:
    formed(sim, 2)
    relate(sim, 0, 1, rel=agent())
    run(sim, 0, "config_changed")  # the leader makes the key
    out = run(sim, 1, "config_changed")
    [job] = cos_agent.scrape_configs(config_of(out), topology(out, "lxd/1"))
    assert job["static_configs"][0]["targets"] == ["10.0.0.2:8444"]
    assert job["static_configs"][0]["labels"]["juju_unit"] == "lxd/1"


def _valid() -> dict[str, Any]:
    board = base64.b64encode(lzma.compress(b'{"title": "x"}')).decode()
    return {
        "metrics_alert_rules": {},
        "log_alert_rules": {},
        "dashboards": [board],
        "metrics_scrape_jobs": [],
        "log_slots": [],
    }


@pytest.mark.parametrize(
    "change",
    [
        {"dashboards": ["not lzma"]},
        {"dashboards": [base64.b64encode(lzma.compress(b"not json")).decode()]},
        {"metrics_scrape_jobs": {"job_name": "x"}},
        {"log_slots": "lxd:logs"},
    ],
)
def test_the_test_model_refuses_what_the_agent_refuses(change: dict[str, Any]) -> None:
    """The model can fail: each of these is a validation error on the agent's side."""
    cos_agent.read_config({"config": json.dumps(_valid())})
    with pytest.raises(cos_agent.AgentRefusedError):
        cos_agent.read_config({"config": json.dumps({**_valid(), **change})})


@pytest.mark.parametrize("missing", sorted(_valid()))
def test_every_field_the_schema_requires_is_required(missing: str) -> None:
    config = {k: v for k, v in _valid().items() if k != missing}
    with pytest.raises(cos_agent.AgentRefusedError):
        cos_agent.read_config({"config": json.dumps(config)})
    with pytest.raises(cos_agent.AgentRefusedError):
        cos_agent.read_config({"config": "{{"})


def test_a_short_form_job_becomes_a_localhost_job_as_the_agent_does_it() -> None:
    config = cos_agent.AgentConfig.model_validate(
        {**_valid(), "metrics_scrape_jobs": [{"job_name": "j", "path": "/m", "port": 9}]}
    )
    [job] = cos_agent.scrape_configs(config, {"model": "m", "unit": "a/0", "application": ""})
    assert job["static_configs"] == [
        {"targets": ["localhost:9"], "labels": {"juju_model": "m", "juju_unit": "a/0"}}
    ]
    assert job["tls_config"] == {"insecure_skip_verify": True}


def test_the_agent_keeps_a_jobs_own_labels() -> None:
    job: dict[str, Any] = {
        "job_name": "j",
        "static_configs": [{"targets": ["t"], "labels": {"a": "b"}}],
    }
    config = cos_agent.AgentConfig.model_validate({**_valid(), "metrics_scrape_jobs": [job]})
    [out] = cos_agent.scrape_configs(config, {"unit": "u/0"})
    assert out["static_configs"][0]["labels"] == {"a": "b", "juju_unit": "u/0"}
    assert job["static_configs"][0]["labels"] == {"a": "b"}, "the input is not changed"
