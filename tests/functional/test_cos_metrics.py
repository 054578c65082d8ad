"""A real Prometheus scrapes real LXD daemons through the jobs the charm published.

The LXD charm's own code runs per simulated unit on its own daemon
(`LxdUnits`); what its leader published on `metrics-endpoint` is turned into
Prometheus' configuration the way the consuming side does it
(`tests.harness.prometheus.consumer_jobs`), and Debian's Prometheus scrapes
with it. Assertions go through Prometheus' HTTP API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from lxd_charm.cos import dashboards
from tests.harness import cos_agent, prometheus
from tests.harness.databags import local_app_data, local_unit_data
from tests.harness.juju_sim import SimUnit
from tests.harness.lxd_daemons import DaemonPool
from tests.harness.lxd_units import LxdUnits
from tests.harness.prometheus import Prometheus, consumer_jobs, manual_jobs

CAPTURE = Path(__file__).parent.parent / "data" / "lxd-5.0.2-metrics.txt"
RELATION_ID = 77
AGENT_RELATION_ID = 78
NO_NIC_PANELS = {"Network received by member and project", "Network sent by member and project"}
SWAP_SERIES = "lxd_memory_Swap_bytes"


def host_accounts_swap() -> bool:
    """Whether this kernel accounts swap per cgroup, without which LXD leaves out swap series.

    LXD 5.0.2 exports `lxd_memory_Swap_bytes` only where it found swap
    accounting when it started (otherwise it logs "Couldn't find the CGroup
    memory swap accounting"). The two files it looks for are named in its
    binary: cgroup v1's `memory.memsw.usage_in_bytes` and cgroup v2's
    `init.scope/memory.swap.current`. The test machines differ in this (one
    CI machine exported no swap series), so the expectation follows the host
    rather than the capture, which was made on a machine that accounts swap.
    """
    root = Path("/sys/fs/cgroup")
    return any(
        (root / name).exists()
        for name in ("memory/memory.memsw.usage_in_bytes", "init.scope/memory.swap.current")
    )


def unexported_series() -> set[str]:
    """The captured series this host's LXD cannot export."""
    return set() if host_accounts_swap() else {SWAP_SERIES}


pytestmark = pytest.mark.skipif(prometheus.missing() is not None, reason=str(prometheus.missing()))


class MetricsUnits(LxdUnits):
    """LXD units whose `metrics` endpoint is bound to their daemon's address too."""

    def _networks(self, unit: SimUnit) -> list[testing.Network]:
        host = unit.machine.host
        return [
            *super()._networks(unit),
            testing.Network(
                "metrics", [testing.BindAddress([testing.Address(host)])], ingress_addresses=[host]
            ),
        ]


def scraper(
    endpoint: str = "metrics-endpoint",
    relation_id: int = RELATION_ID,
    remote_units: tuple[int, ...] = (0,),
) -> testing.Relation:
    return testing.Relation(
        endpoint,
        remote_app_name="prometheus",
        id=relation_id,
        remote_units_data={n: {} for n in remote_units},
    )


def relate(
    units: LxdUnits,
    endpoint: str = "metrics-endpoint",
    relation_id: int = RELATION_ID,
    remote_units: tuple[int, ...] = (0,),
) -> None:
    """Juju relates the application to Prometheus: every unit gets relation-changed."""
    rel = scraper(endpoint, relation_id, remote_units)
    for unit in units.sim.units.values():
        unit.state = replace(unit.state, relations=frozenset({*unit.state.relations, rel}))
    for name in units.sim.units:
        units.sim.run(name, units.sim.on.relation_changed(rel, remote_unit=0))
    units.sim.settle()


def unrelate(units: LxdUnits) -> None:
    for name, unit in units.sim.units.items():
        rel = unit.state.get_relation(RELATION_ID)
        units.sim.run(name, units.sim.on.relation_broken(rel))
        unit.state = replace(
            unit.state, relations=frozenset(r for r in unit.state.relations if r.id != RELATION_ID)
        )
    units.sim.settle()


def published(units: LxdUnits) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """What the consumer reads: the leader's application bag, every unit's bag."""
    leader = units.sim.leader
    assert leader is not None
    app_bag = dict(local_app_data(leader.state.get_relation(RELATION_ID)))
    unit_bags = {
        name: dict(local_unit_data(unit.state.get_relation(RELATION_ID)))
        for name, unit in units.sim.units.items()
    }
    return app_bag, unit_bags


def up_targets(prom: Prometheus) -> dict[str, str]:
    """juju_unit -> health of every active target."""
    return {t["labels"].get("juju_unit", "?"): t["health"] for t in prom.targets()}


@pytest.fixture
def prom(tmp_path: Path) -> Iterator[Prometheus]:
    with Prometheus(tmp_path / "prometheus") as server:
        yield server


def test_two_standalone_units_each_scraped_verifying_their_own_certificate(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prom: Prometheus
) -> None:
    units = MetricsUnits(
        lxd_pool, tmp_path, monkeypatch, config={"mode": "standalone", "lxd-listen-metrics": True}
    )
    units.add(2)
    units.sim.settle()
    relate(units)
    app_bag, unit_bags = published(units)
    jobs = consumer_jobs(app_bag, unit_bags, tmp_path / "certs")
    assert len(jobs) == 2
    # Each job pins its own unit's certificate, and no job turns verification off.
    cas = {Path(job["tls_config"]["ca_file"]).read_text() for job in jobs}
    assert cas == {units.daemon(f"lxd/{n}").server_cert for n in (0, 1)}
    assert all("insecure_skip_verify" not in job["tls_config"] for job in jobs)

    prom.start(jobs)
    prom.wait_for(lambda: up_targets(prom) == {"lxd/0": "up", "lxd/1": "up"}, what="both units up")
    for name, unit in units.sim.units.items():
        assert unit.state.unit_status.name == "active", (name, unit.state.unit_status.message)
        [entry] = [e for e in units.daemon(name).client().trust.entries() if e.type == "metrics"]
        assert entry.name == f"juju-metrics-prometheus-{RELATION_ID}"

    # Verification is really on: each job refuses the other unit's certificate.
    swapped = [
        {**job, "tls_config": {**job["tls_config"], "ca_file": other["tls_config"]["ca_file"]}}
        for job, other in zip(jobs, reversed(jobs), strict=True)
    ]
    prom.reload(swapped)
    prom.wait_for(lambda: set(up_targets(prom).values()) == {"down"}, what="a foreign CA refused")
    assert all("x509" in t["lastError"] for t in prom.targets()), prom.targets()
    prom.reload(jobs)
    prom.wait_for(lambda: set(up_targets(prom).values()) == {"up"}, what="both up again")

    unrelate(units)
    for name in units.sim.units:
        assert [
            e for e in units.daemon(name).client().trust.entries() if e.type == "metrics"
        ] == []
    prom.wait_for(
        lambda: set(up_targets(prom).values()) == {"down"}, what="the removed key to be refused"
    )
    assert all("403" in t["lastError"] for t in prom.targets()), prom.targets()


def test_a_cluster_is_scraped_as_one_job_and_an_instance_shows_on_its_member(
    lxd_pool: DaemonPool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prom: Prometheus,
    busybox_image: Path,
) -> None:
    units = MetricsUnits(lxd_pool, tmp_path, monkeypatch, config={"lxd-listen-metrics": True})
    units.add(3)
    units.sim.settle()
    relate(units)
    app_bag, unit_bags = published(units)
    assert len(consumer_jobs(app_bag, {}, tmp_path / "unsplit")) == 1, "one job for the cluster"
    jobs = consumer_jobs(app_bag, unit_bags, tmp_path / "certs")
    prom.start(jobs)
    everyone = {f"lxd/{n}": "up" for n in range(3)}
    prom.wait_for(lambda: up_targets(prom) == everyone, what="every member up")

    leader = units.daemon("lxd/0")
    leader.import_image(busybox_image)
    leader.lxc("launch", "busybox", "probe", "--target", "node1")
    series = prom.wait_for(
        lambda: prom.query('lxd_procs_total{name="probe"}'), what="the instance's series"
    )
    assert [s["metric"]["juju_unit"] for s in series] == ["lxd/1"]
    assert series[0]["metric"]["project"] == "default"
    _check_capture(prom)
    _check_dashboard(prom)

    # The agent on each machine scrapes its own member with the job that unit handed
    # it, read and passed on as the agent does (tests/harness/cos_agent.py).
    relate(units, "cos-agent", AGENT_RELATION_ID)
    agent_jobs: list[dict[str, Any]] = []
    for name, unit in units.sim.units.items():
        config = cos_agent.read_config(local_unit_data(unit.state.get_relation(AGENT_RELATION_ID)))
        topology = {
            "model": unit.state.model.name,
            "model_uuid": unit.state.model.uuid,
            "application": "lxd",
            "unit": name,
        }
        [job] = cos_agent.scrape_configs(config, topology)
        assert job["static_configs"][0]["targets"] == [f"{units.daemon(name).host}:8444"]
        job = {**job, "job_name": f"agent-{job['job_name']}-{name.replace('/', '-')}"}
        agent_jobs += cos_agent.for_older_prometheus([job], tmp_path / f"agent-{name}")
    prom.reload(jobs + agent_jobs)
    prom.wait_for(
        lambda: len([t for t in prom.targets() if t["health"] == "up"]) == 6,
        what="the agents' jobs up too",
    )
    agent_units = {
        t["labels"]["juju_unit"] for t in prom.targets() if t["labels"]["job"].startswith("agent-")
    }
    assert agent_units == set(everyone), "each agent's series carry its own unit"


def health_by_job(prom: Prometheus) -> dict[str, str]:
    return {t["labels"]["job"]: t["health"] for t in prom.targets()}


def all_up(prom: Prometheus, count: int) -> bool:
    return len(prom.targets()) == count and set(health_by_job(prom).values()) == {"up"}


def test_each_prometheus2_unit_scrapes_with_its_own_certificate_until_it_departs(
    lxd_pool: DaemonPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prom: Prometheus
) -> None:
    """Two prometheus2 units, two certificates; after one departs its certificate gets 403.

    Every prometheus2 unit reads every request (the interface has no way to
    address one), so both servers are configured from all of them, as each
    unit's charm does: two jobs per LXD unit, one per certificate.
    """
    units = MetricsUnits(
        lxd_pool, tmp_path, monkeypatch, config={"mode": "standalone", "lxd-listen-metrics": True}
    )
    units.add(2)
    units.sim.settle()
    relate(units, "prometheus-manual", remote_units=(0, 1))
    _, unit_bags = published(units)
    jobs = manual_jobs(unit_bags, tmp_path / "certs-0")
    assert len(jobs) == 4, "two LXD units x two prometheus2 units"
    for name in units.sim.units:
        entries = [
            e.name for e in units.daemon(name).client().trust.entries() if e.type == "metrics"
        ]
        assert sorted(entries) == [
            f"juju-metrics-prometheus-0-{RELATION_ID}",
            f"juju-metrics-prometheus-1-{RELATION_ID}",
        ]
    second = Prometheus(tmp_path / "prometheus-1")
    try:
        prom.start(jobs)
        second.start(manual_jobs(unit_bags, tmp_path / "certs-1"))
        for server in (prom, second):
            server.wait_for(partial(all_up, server, 4), what="all four jobs up")

        # prometheus/1 departs: Juju's relation-list loses it on every LXD unit.
        for name, unit in units.sim.units.items():
            rel = unit.state.get_relation(RELATION_ID)
            assert isinstance(rel, testing.Relation)
            rel = replace(rel, remote_units_data={0: {}})
            others = {r for r in unit.state.relations if r.id != RELATION_ID}
            unit.state = replace(unit.state, relations=frozenset({*others, rel}))
            units.sim.run(
                name, units.sim.on.relation_departed(rel, remote_unit=1, departing_unit=1)
            )
        units.sim.settle()
        _, after = published(units)
        remaining = manual_jobs(after, tmp_path / "certs-0-after")
        assert len(remaining) == 2 and all("prometheus_0" in j["job_name"] for j in remaining)
        for name in units.sim.units:
            entries = [
                e.name for e in units.daemon(name).client().trust.entries() if e.type == "metrics"
            ]
            assert entries == [f"juju-metrics-prometheus-0-{RELATION_ID}"]

        # The departed unit's server keeps what it had: its own certificate is refused.
        def departed_refused() -> bool:
            health = health_by_job(second)
            return all(
                state == ("down" if "prometheus_1" in job else "up")
                for job, state in health.items()
            )

        second.wait_for(departed_refused, what="prometheus/1's certificate refused")
        refused = [t for t in second.targets() if "prometheus_1" in t["labels"]["job"]]
        assert len(refused) == 2 and all("403" in t["lastError"] for t in refused), refused
        # What the interface cannot prevent: it had read prometheus/0's request too, and
        # that certificate is still trusted (docs/interfaces/prometheus-manual.md).
        kept = [t for t in second.targets() if "prometheus_0" in t["labels"]["job"]]
        assert {t["health"] for t in kept} == {"up"}

        # The remaining unit re-reads the requests (as on relation-changed) and still scrapes.
        prom.reload(remaining)
        prom.wait_for(partial(all_up, prom, 2), what="prometheus/0 still scraping both units")
    finally:
        second.stop()


def _check_dashboard(prom: Prometheus) -> None:
    """Every dashboard query runs on real series and finds some.

    The test container has no NIC (no bridge here), so only its loopback
    has traffic, which the network panels leave out: those may be empty, as
    may a query on a series this host cannot export (`unexported_series`).
    """
    board = json.loads(dashboards.dashboard_json())
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$unit", ".*").replace("$project", ".*")
            if panel["title"] in NO_NIC_PANELS or any(n in expr for n in unexported_series()):
                prom.query(expr)  # Prometheus accepts it
            else:
                prom.wait_for(partial(prom.query, expr), timeout=20, what=expr)


def _check_capture(prom: Prometheus) -> None:
    """The metric names LXD 5.0.2 exports (with one container running) are the captured ones.

    Less the ones this host's kernel cannot give LXD (`unexported_series`).
    """
    names = prom.wait_for(
        lambda: {n for n in prom.label_values("__name__") if n.startswith("lxd_")} or None,
        what="lxd_* series",
    )
    captured = {
        line.split()[2]
        for line in CAPTURE.read_text().splitlines()
        if line.startswith("# TYPE lxd_")
    }
    assert names == captured - unexported_series()
