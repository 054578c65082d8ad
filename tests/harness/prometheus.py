"""A real Prometheus (Debian's package) on loopback, configured the way a COS consumer does.

`consumer_jobs` turns what a `prometheus_scrape` provider published (its
application bag's `scrape_jobs` and `scrape_metadata`, its units' bags) into
Prometheus scrape configs as the consuming charm does: only the keys the
interface allows, job names prefixed with the provider's topology, targets
that belong to a unit split into a job per unit labelled with it, and the
`tls_config` file contents written to files. `Prometheus` runs the server
on that configuration and answers through its HTTP API, so a test asserts
what Prometheus itself saw.

    prom = Prometheus(tmp_path)
    prom.start(consumer_jobs(app_bag, unit_bags, tmp_path / "certs"))
    prom.wait_for(lambda: prom.targets_up() == 3)
    prom.query('lxd_procs_total{name="c1"}')
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

APT_PACKAGE = "prometheus"
INSTALL_HINT = "Prometheus is not installed: apt-get install -y prometheus (scripts/dev does it)"
ALLOWED_KEYS = frozenset(
    {
        "job_name",
        "metrics_path",
        "static_configs",
        "scrape_interval",
        "scrape_timeout",
        "proxy_url",
        "relabel_configs",
        "metric_relabel_configs",
        "sample_limit",
        "label_limit",
        "label_name_length_limit",
        "label_value_length_limit",
        "scheme",
        "basic_auth",
        "tls_config",
        "authorization",
        "params",
    }
)
"""The scrape job keys the interface lets a provider set (anything else is dropped)."""
SCRAPE_INTERVAL = "1s"


def missing() -> str | None:
    """None when `prometheus` and `promtool` are here, else what to install."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return None
    return INSTALL_HINT


def consumer_jobs(
    app_bag: Mapping[str, str],
    unit_bags: Mapping[str, Mapping[str, str]],
    certs: Path,
) -> list[dict[str, Any]]:
    """Scrape configs from one provider's relation data, as the consuming side builds them."""
    jobs = json.loads(app_bag.get("scrape_jobs") or "[]")
    meta: dict[str, str] = json.loads(app_bag.get("scrape_metadata") or "{}")
    topology = {
        "juju_model": meta.get("model", ""),
        "juju_model_uuid": meta.get("model_uuid", ""),
        "juju_application": meta.get("application", ""),
        "juju_charm": meta.get("charm_name", ""),
    }
    prefix = "juju_{}_{}_{}_prometheus_scrape".format(
        topology["juju_model"], topology["juju_model_uuid"][:7], topology["juju_application"]
    )
    unit_of_host = {
        bag["prometheus_scrape_unit_address"]: bag.get("prometheus_scrape_unit_name") or unit
        for unit, bag in unit_bags.items()
        if bag.get("prometheus_scrape_unit_address")
    }
    certs.mkdir(parents=True, exist_ok=True)
    result = []
    for raw in jobs:
        job = {key: value for key, value in raw.items() if key in ALLOWED_KEYS}
        job["job_name"] = f"{prefix}_{job['job_name']}" if job.get("job_name") else prefix
        job["scrape_interval"] = SCRAPE_INTERVAL
        job["scrape_timeout"] = SCRAPE_INTERVAL
        _files_for_tls(job, certs)
        result += _split_by_unit(job, unit_of_host, topology)
    return result


def manual_jobs(unit_bags: Mapping[str, Mapping[str, str]], certs: Path) -> list[dict[str, Any]]:
    """Scrape configs from `prometheus-manual` requests, as prometheus2 builds them.

    Each `request_*` value carries `job_data` (the job), `ca_cert` (written to
    a file whose name replaces `tls_config.ca_file`) and the client
    certificate and key (written to files, named in `cert_file`/`key_file`).
    """
    certs.mkdir(parents=True, exist_ok=True)
    jobs = []
    for unit, bag in sorted(unit_bags.items()):
        for key, value in sorted(bag.items()):
            if not key.startswith("request_"):
                continue
            request = json.loads(value)
            job = dict(request["job_data"])
            job["job_name"] = f"{request['job_name']}-{request['request_id']}"
            job["scrape_interval"] = job["scrape_timeout"] = SCRAPE_INTERVAL
            tls = dict(job.get("tls_config") or {})
            stem = certs / request["request_id"]
            for field, content in (
                ("ca_file", request.get("ca_cert")),
                ("cert_file", request.get("client_cert")),
                ("key_file", request.get("client_key")),
            ):
                if content:
                    path = stem.with_suffix(f".{field}")
                    path.write_text(content)
                    path.chmod(0o600)
                    tls[field] = str(path)
            job["tls_config"] = tls
            job["static_configs"] = [
                {**static, "labels": {"juju_unit": unit}} for static in job["static_configs"]
            ]
            jobs.append(job)
    return jobs


def _files_for_tls(job: dict[str, Any], certs: Path) -> None:
    """Relation data carries file contents; Prometheus wants file names."""
    tls = dict(job.get("tls_config") or {})
    for key, suffix in (("ca_file", "ca.crt"), ("cert_file", "client.crt"), ("key_file", "key")):
        if tls.get(key):
            path = certs / f"{job['job_name']}-{suffix}"
            path.write_text(tls[key])
            path.chmod(0o600)
            tls[key] = str(path)
    if tls:
        job["tls_config"] = tls


def _split_by_unit(
    job: dict[str, Any], unit_of_host: Mapping[str, str], topology: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One job per unit whose address a target names, labelled with the unit."""
    per_unit: dict[str, list[str]] = {}
    unmatched: list[str] = []
    for static in job.get("static_configs") or []:
        for target in static.get("targets") or []:
            host = urllib.parse.urlsplit(f"//{target}").hostname or ""
            if host in unit_of_host:
                per_unit.setdefault(unit_of_host[host], []).append(target)
            else:
                unmatched.append(target)
    jobs = []
    for unit, targets in sorted(per_unit.items()):
        labels = {**topology, "juju_unit": unit}
        instance = "_".join(
            labels[k] for k in ("juju_model", "juju_model_uuid", "juju_application")
        )
        jobs.append(
            {
                **job,
                "job_name": f"{job['job_name']}-{unit.rsplit('/', 1)[-1]}",
                "static_configs": [{"targets": targets, "labels": labels}],
                "relabel_configs": [
                    *job.get("relabel_configs", []),
                    {"target_label": "instance", "replacement": f"{instance}_{unit}"},
                ],
            }
        )
    if unmatched:
        jobs.append({**job, "static_configs": [{"targets": unmatched, "labels": dict(topology)}]})
    return jobs


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class Prometheus:
    """One Prometheus server on loopback, its data under ``root``; stop it with `stop`."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host
        self.port = _free_port(host)
        self.config = root / "prometheus.yml"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_config(self, jobs: list[dict[str, Any]], rule_files: Sequence[Path] = ()) -> None:
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "scrape_configs": jobs,
            "rule_files": [str(path) for path in rule_files],
        }
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        check = subprocess.run(
            ["promtool", "check", "config", str(self.config)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"promtool refused the configuration: {check.stdout}{check.stderr}")

    def start(self, jobs: list[dict[str, Any]], rule_files: Sequence[Path] = ()) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_config(jobs, rule_files)
        log = (self.root / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_for(self._ready, timeout=30, what="Prometheus to be ready")

    def reload(self, jobs: list[dict[str, Any]]) -> None:
        self.write_config(jobs)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310  (http on loopback)
        with _opener().open(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the HTTP API ---------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with _opener().open(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {body}")
        return body["data"]

    def targets(self) -> list[dict[str, Any]]:
        """The active targets, each with its `labels`, `health` and `lastError`."""
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: each item's `metric` labels and `value`."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def label_values(self, label: str) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values")
        return values

    def wait_for(
        self, condition: Callable[[], Any], timeout: float = 60, what: str = "a condition"
    ) -> Any:
        """Poll ``condition`` until it returns something true; that is returned."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.root / "prometheus.log").read_text()[-2000:]
                raise RuntimeError(f"Prometheus exited: {log}")
            try:
                last = condition()
            except OSError:
                last = None
            if last:
                return last
            time.sleep(0.5)
        raise TimeoutError(
            f"timed out waiting for {what}; last: {last!r}; targets: {self._safe()}"
        )

    def _ready(self) -> bool:
        with _opener().open(f"{self.url}/-/ready", timeout=5) as response:
            return bool(response.status == 200)

    def _safe(self) -> Any:
        try:
            return [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
        except (OSError, RuntimeError):
            return "unknown"


def _opener() -> urllib.request.OpenerDirector:
    """No proxy: the server is on loopback whatever the environment says."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller checks the result."""
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
