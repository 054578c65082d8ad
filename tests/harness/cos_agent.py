"""The consuming side of `cos_agent`, as the agents on the machine read it (a test model).

No consumer of the interface is installable here: no grafana-agent or
opentelemetry-collector package is reachable, and neither `cosl` (1.11.3)
nor any `charmlibs-interfaces-*` package on PyPI ships the cos_agent
requirer; it lives in the agents' own charm library, which this repository
does not vendor. So this module restates, in its own words, what they
check and do with the principal's unit bag, read from:

- the interface's schema in charm-relation-interfaces
  (`interfaces/cos_agent/v0/schema.py`, commit 4cf84d19): `config` is JSON
  with five required fields; each dashboard must LZMA+base64-decode to JSON;
- the requirer's databag model and `metrics_jobs` in the agents' charm
  library (`charms.grafana_agent.v0.cos_agent`, LIBPATCH 23, as shipped in
  opentelemetry-collector-operator 0357b4b2): optional `subordinate`,
  `include_log_files`, `tracing_protocols`; a job of the old short form
  (`job_name`, `path`, `port`) becomes a localhost job; every other job is
  kept AS IS, with the principal unit's topology added to each
  `static_configs` entry's labels (model, model_uuid, application, unit;
  not the charm name); log slots must read `snap:slot`;
- the two agents' charms (grafana-agent-operator de1252e7, src/grafana_agent.py;
  opentelemetry-collector-operator 0357b4b2, src/charm.py): both hand
  `metrics_jobs` to their scraper's `scrape_configs` unchanged. Neither
  writes `tls_config` contents to files for cos-agent jobs, so contents
  must travel in Prometheus' inline keys (`ca`, `cert`, `key`).

    config = read_config(unit_bag)           # AgentRefusedError where the agent refuses
    jobs = scrape_configs(config, topology)  # what the agent gives its scraper
"""

from __future__ import annotations

import base64
import copy
import json
import lzma
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

KEY = "config"
"""The unit bag key the principal writes (the interface nests everything under it)."""


class AgentRefusedError(ValueError):
    """The agent would not use this data (it logs a validation error and ignores it)."""


class AgentConfig(pydantic.BaseModel):
    """The `config` object: what the schema requires and the requirer's model accepts."""

    model_config = pydantic.ConfigDict(extra="ignore")

    metrics_alert_rules: dict[str, Any]
    log_alert_rules: dict[str, Any]
    dashboards: list[str]
    metrics_scrape_jobs: list[dict[str, Any]]
    log_slots: list[str]
    subordinate: bool | None = None
    include_log_files: list[str] | None = None
    tracing_protocols: list[str] | None = None

    @pydantic.field_validator("dashboards")
    @classmethod
    def _dashboards_decode(cls, value: list[str]) -> list[str]:
        for encoded in value:
            json.loads(lzma.decompress(base64.b64decode(encoded.encode())).decode())
        return value


def read_config(bag: Mapping[str, str]) -> AgentConfig:
    """The principal's `config`, validated as the agent validates it.

    Raises:
        AgentRefusedError: missing, not JSON, or not of the interface's shape.
    """
    raw = bag.get(KEY)
    if not raw:
        raise AgentRefusedError(f"no {KEY!r} in the unit bag")
    try:
        return AgentConfig.model_validate(json.loads(raw))
    except (json.JSONDecodeError, pydantic.ValidationError, ValueError) as e:
        raise AgentRefusedError(str(e)) from e


def scrape_configs(config: AgentConfig, topology: Mapping[str, str]) -> list[dict[str, Any]]:
    """The jobs as the agent hands them to its scraper.

    `topology`: the principal unit's `model`, `model_uuid`, `application`
    and `unit`, which the agent adds as `juju_*` labels.
    """
    labels = {f"juju_{key}": value for key, value in topology.items() if value}
    jobs = []
    for raw in config.metrics_scrape_jobs:
        job = copy.deepcopy(raw)
        if {"path", "port", "job_name"} <= set(job):
            job = {
                "job_name": job["job_name"],
                "metrics_path": job["path"],
                "static_configs": [{"targets": [f"localhost:{job['port']}"]}],
                "tls_config": {"insecure_skip_verify": True},
            }
        for static in job.get("static_configs", []):
            static["labels"] = {**static.get("labels", {}), **labels}
        jobs.append(job)
    return jobs


def log_slots(config: AgentConfig) -> list[tuple[str, str]]:
    """The snap slots the agent connects its log plug to (`snap:slot`; others are skipped)."""
    parts = (slot.partition(":") for slot in config.log_slots if ":" in slot)
    return [(owner, name) for owner, _, name in parts]


INLINE_TO_FILE = {"ca": "ca_file", "cert": "cert_file", "key": "key_file"}


def for_older_prometheus(jobs: list[dict[str, Any]], certs: Path) -> list[dict[str, Any]]:
    """The same jobs with inline TLS contents moved to files, for Debian's Prometheus 2.42.

    Not something an agent does: Prometheus 2.42 (Debian 12's, the one this
    machine has) predates the inline `ca`/`cert`/`key` keys the agents'
    scrapers read, and refuses them ("field ca not found"). Everything
    else in the job is left as the agent gave it.
    """
    certs.mkdir(parents=True, exist_ok=True)
    out = []
    for job in jobs:
        job = copy.deepcopy(job)
        tls = job.get("tls_config") or {}
        for inline, file_key in INLINE_TO_FILE.items():
            if inline in tls:
                path = certs / f"{job['job_name']}.{inline}"
                path.write_text(tls.pop(inline))
                path.chmod(0o600)
                tls[file_key] = str(path)
        out.append(job)
    return out
