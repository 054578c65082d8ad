"""Scrape jobs for LXD's `/1.0/metrics`, as the `prometheus_scrape` interface carries them.

Pure functions, no `ops` and no LXD: given where each unit serves metrics
and which certificate it presents, decide the jobs the leader publishes.
The wire format is docs/interfaces/prometheus_scrape.md.

Two choices differ from the upstream LXD charm on purpose:

- Standalone units each present their own self-signed server certificate,
  so each gets its own job whose `tls_config` verifies exactly that
  certificate (`ca_file` = the certificate, `server_name` = its DNS name),
  instead of turning verification off.
- The client certificate in `tls_config` is a `metrics`-type LXD trust
  entry: the interface puts its private key into relation data, so what
  leaks with it can read metrics and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

METRICS_PATH: Final = "/1.0/metrics"
TRUST_PREFIX: Final = "juju-metrics-"
"""Trust entries this relation makes are `juju-metrics-<scraping app>-<relation id>`."""
ADDRESS_KEY: Final = "metrics-address"
CERTIFICATE_KEY: Final = "metrics-certificate"
"""Peer unit bag keys: where this unit serves metrics, and the certificate it presents."""
SECRETS_KEY: Final = "metrics-endpoint-secrets"
"""Peer application bag key: relation id -> id of the secret holding that scraper's key."""
UNIT_SECRETS_KEY: Final = "prometheus-manual-secrets"
"""Peer application bag key: `<relation id>:<remote unit>` -> id of that unit's key's secret."""


class NoListenerError(Exception):
    """Neither listener that serves `/1.0/metrics` is switched on."""


def metrics_address(listeners: Mapping[str, str]) -> str:
    """Where this unit serves metrics: the metrics listener, else the HTTPS API.

    LXD answers `/1.0/metrics` on both; the dedicated listener is preferred
    because operators put it on a monitoring network.

    Raises:
        NoListenerError: neither is on; the message says which option to set.
    """
    address = listeners.get("metrics") or listeners.get("https")
    if not address:
        raise NoListenerError(
            "scrapers cannot reach LXD: set lxd-listen-metrics=true (or lxd-listen-https=true)"
        )
    return address


def host_of(address: str) -> str:
    """The host part of `host:port` (IPv6 in brackets loses them)."""
    host = address.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def trust_name(remote_app: str, relation_id: int) -> str:
    """The trust entry for one related scraping application."""
    return f"{TRUST_PREFIX}{remote_app}-{relation_id}"


def unit_trust_name(remote_unit: str, relation_id: int) -> str:
    """The trust entry for one related scraping unit (`prometheus-manual`).

    `prometheus2/1` on relation 40 is `juju-metrics-prometheus2-1-40`: the
    tail is still the relation id, so `relation_of` reads both kinds.
    """
    return f"{TRUST_PREFIX}{remote_unit.replace('/', '-')}-{relation_id}"


def relation_of(entry_name: str) -> int | None:
    """The relation id a trust entry of ours was made for; None if it is not ours."""
    if not entry_name.startswith(TRUST_PREFIX):
        return None
    tail = entry_name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def server_name(certificate_pem: str) -> str | None:
    """The first DNS name a server certificate is valid for, to verify it by.

    LXD's certificates name the host (and 127.0.0.1, ::1), never the address
    scrapers connect to, so verification has to be told which name to expect.
    """
    # Imported here: only hooks with a metrics relation pay for X.509 parsing.
    from cryptography import x509

    from lxd_common.certs import load_certificate

    cert = load_certificate(certificate_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    names = san.get_values_for_type(x509.DNSName)
    return names[0] if names else None


@dataclass(frozen=True)
class Target:
    """One unit's metrics listener and the certificate it presents there."""

    unit: str
    address: str
    certificate: str


@dataclass(frozen=True)
class ClientCertificate:
    """The metrics-only client certificate a scraping application authenticates with."""

    certificate: str
    private_key: str


def _tls(server_certificate: str, client: ClientCertificate, *, inline: bool) -> dict[str, str]:
    """Verify the server by its certificate, and present the client's.

    `inline` names the contents as Prometheus reads them inline (`ca`,
    `cert`, `key`): what the cos-agent consumers need, because they pass
    jobs to their scraper unchanged. Otherwise the `*_file` keys carry the
    contents, which prometheus_scrape consumers write to files.
    """
    keys = ("ca", "cert", "key") if inline else ("ca_file", "cert_file", "key_file")
    tls = dict(
        zip(keys, (server_certificate, client.certificate, client.private_key), strict=True)
    )
    name = server_name(server_certificate)
    if name:
        tls["server_name"] = name
    return tls


def scrape_jobs(
    app: str,
    targets: Sequence[Target],
    client: ClientCertificate,
    *,
    clustered: bool,
    inline: bool = False,
) -> list[dict[str, Any]]:
    """The jobs to publish: one over the whole cluster, or one per standalone unit.

    A cluster presents one certificate on every member, so one job verifies
    them all; standalone units present one each. `inline`: see `_tls`.
    """
    ordered = sorted(targets, key=lambda t: _unit_number(t.unit))
    if not ordered:
        return []
    base: dict[str, Any] = {"metrics_path": METRICS_PATH, "scheme": "https"}
    if clustered:
        return [
            {
                **base,
                "job_name": app,
                "static_configs": [{"targets": [t.address for t in ordered]}],
                "tls_config": _tls(ordered[0].certificate, client, inline=inline),
            }
        ]
    return [
        {
            **base,
            "job_name": target.unit.replace("/", "-"),
            "static_configs": [{"targets": [target.address]}],
            "tls_config": _tls(target.certificate, client, inline=inline),
        }
        for target in ordered
    ]


def manual_request(
    request_id: str,
    job_name: str,
    addresses: Sequence[str],
    server_certificate: str,
    client: ClientCertificate,
) -> tuple[str, str]:
    """A `prometheus-manual` job request: its unit bag key, and the JSON value.

    prometheus2 writes `ca_cert` to a file and puts its name where
    `tls_config.ca_file` says, so the server certificate is verified here
    too; the client certificate and key travel as the upstream charm sends
    them (`client_cert`, `client_key`).
    """
    tls = {"ca_file": "__ca_file__"}
    name = server_name(server_certificate)
    if name:
        tls["server_name"] = name
    request = {
        "request_id": request_id,
        "job_name": job_name,
        "job_data": {
            "metrics_path": METRICS_PATH,
            "scheme": "https",
            "static_configs": [{"targets": list(addresses)}],
            "tls_config": tls,
        },
        "ca_cert": server_certificate,
        "client_cert": client.certificate,
        "client_key": client.private_key,
    }
    return f"request_{request_id}", json.dumps(request, sort_keys=True)


def targets_from_peers(bags: Mapping[str, Mapping[str, str]]) -> tuple[list[Target], list[str]]:
    """Each unit's target from its peer bag; also the units whose bag is not usable yet."""
    targets, missing = [], []
    for unit, bag in sorted(bags.items()):
        address, certificate = bag.get(ADDRESS_KEY, ""), bag.get(CERTIFICATE_KEY, "")
        if address and "BEGIN CERTIFICATE" in certificate:
            targets.append(Target(unit, address, certificate))
        else:
            missing.append(unit)
    return targets, missing


def secret_ids(raw: str | None) -> dict[int, str]:
    """The peer application bag's record of secrets; anything malformed counts as none."""
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {int(k): str(v) for k, v in data.items() if str(k).isdigit() and isinstance(v, str)}


def dump_secret_ids(ids: Mapping[int, str]) -> str:
    """The record for the peer application bag; empty (the key removed) when none is left."""
    return json.dumps({str(k): v for k, v in sorted(ids.items())}, sort_keys=True) if ids else ""


def unit_secret_ids(raw: str | None) -> dict[tuple[int, str], str]:
    """The peer application bag's record of per-unit secrets; malformed entries count as none."""
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    ids: dict[tuple[int, str], str] = {}
    for key, value in data.items():
        relation, _, unit = str(key).partition(":")
        if relation.isdigit() and "/" in unit and isinstance(value, str) and value:
            ids[int(relation), unit] = value
    return ids


def dump_unit_secret_ids(ids: Mapping[tuple[int, str], str]) -> str:
    """The per-unit record for the peer application bag; empty when none is left."""
    if not ids:
        return ""
    return json.dumps({f"{rel}:{unit}": v for (rel, unit), v in sorted(ids.items())})


def alert_rules() -> dict[str, Any]:
    """The alert rules shipped with the charm, as the interface's `alert_rules` object."""
    import yaml  # here: only hooks with a metrics relation pay for it

    text = resources.files(__package__).joinpath("alert_rules.yaml").read_text()
    rules: dict[str, Any] = yaml.safe_load(text)
    return rules


def topology(model: str, model_uuid: str, app: str, unit: str, charm: str) -> dict[str, str]:
    """`scrape_metadata`: the Juju topology consumers label every series with."""
    return {
        "model": model,
        "model_uuid": model_uuid,
        "application": app,
        "unit": unit,
        "charm_name": charm,
    }


def _unit_number(unit: str) -> int:
    tail = unit.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def stale_entries(names: Iterable[tuple[str, str]], live: Iterable[int]) -> list[str]:
    """Of (name, fingerprint) trust entries, the fingerprints made for relations now gone."""
    alive = set(live)
    return [
        fp for name, fp in names if (rel := relation_of(name)) is not None and rel not in alive
    ]
