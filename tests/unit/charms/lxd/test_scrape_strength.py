"""`lxd_charm.cos.scrape`'s pure decisions, each answer whole (the hook tests drive the rest).

The jobs, trust names and bag records are compared entire, so a key
renamed, an order changed or an entry dropped fails here in milliseconds.
"""

from __future__ import annotations

import datetime
import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lxd_charm.cos import scrape


def server_certificate(*dns: str) -> str:
    """A server certificate naming ``dns`` in its SAN (none: no SAN extension at all)."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root@lxd0")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if dns:
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        sans += [x509.DNSName(d) for d in dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA384())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


NAMED = server_certificate("lxd0", "lxd0.example")
UNNAMED = server_certificate()
CLIENT = scrape.ClientCertificate(certificate="CLIENT-CERT", private_key="CLIENT-KEY")


def test_the_names_of_the_interface() -> None:
    assert scrape.METRICS_PATH == "/1.0/metrics"
    assert scrape.TRUST_PREFIX == "juju-metrics-"
    assert (scrape.ADDRESS_KEY, scrape.CERTIFICATE_KEY) == (
        "metrics-address",
        "metrics-certificate",
    )
    assert scrape.SECRETS_KEY == "metrics-endpoint-secrets"
    assert scrape.UNIT_SECRETS_KEY == "prometheus-manual-secrets"


# --- addresses and names -----------------------------------------------------------


def test_the_metrics_listener_is_preferred_then_https() -> None:
    both = {"metrics": "10.0.0.1:9100", "https": "10.0.0.1:8443"}
    assert scrape.metrics_address(both) == "10.0.0.1:9100"
    assert scrape.metrics_address({"https": "10.0.0.1:8443", "metrics": ""}) == "10.0.0.1:8443"


def test_no_listener_says_which_option_to_set() -> None:
    with pytest.raises(scrape.NoListenerError) as caught:
        scrape.metrics_address({"cluster": "10.0.0.1:8443", "https": ""})
    assert str(caught.value) == (
        "scrapers cannot reach LXD: set lxd-listen-metrics=true (or lxd-listen-https=true)"
    )


@pytest.mark.parametrize(
    ("address", "host"),
    [("10.0.0.1:9100", "10.0.0.1"), ("[fd00::1]:9100", "fd00::1"), ("lxd0:8443", "lxd0")],
)
def test_host_of(address: str, host: str) -> None:
    assert scrape.host_of(address) == host


def test_trust_names_and_the_relation_they_belong_to() -> None:
    assert scrape.trust_name("prometheus", 7) == "juju-metrics-prometheus-7"
    assert scrape.unit_trust_name("prometheus2/1", 40) == "juju-metrics-prometheus2-1-40"
    assert scrape.relation_of("juju-metrics-prometheus-7") == 7
    assert scrape.relation_of("juju-metrics-prometheus2-1-40") == 40
    assert scrape.relation_of("juju-metrics-prometheus-x") is None
    assert scrape.relation_of("juju-https-prometheus-7") is None
    assert scrape.relation_of("x-juju-metrics-prometheus-7") is None


def test_stale_entries_are_ours_for_relations_gone() -> None:
    names = [
        ("juju-metrics-prometheus-7", "fp7"),
        ("juju-metrics-prometheus-8", "fp8"),
        ("juju-metrics-prometheus-x", "fpx"),
        ("juju-https-app-9", "fp9"),
        ("juju-metrics-prometheus2-1-9", "fp9u"),
    ]
    assert scrape.stale_entries(names, [7]) == ["fp8", "fp9u"]
    assert scrape.stale_entries(names, iter([7, 8, 9])) == []


def test_server_name_is_the_first_dns_name_or_none() -> None:
    assert scrape.server_name(NAMED) == "lxd0"
    assert scrape.server_name(UNNAMED) is None


def test_a_san_of_addresses_only_has_no_server_name() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lxd0")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA384())
    )
    assert scrape.server_name(cert.public_bytes(serialization.Encoding.PEM).decode()) is None


# --- jobs ----------------------------------------------------------------------------


def test_no_targets_no_jobs() -> None:
    assert scrape.scrape_jobs("lxd", [], CLIENT, clustered=True) == []
    assert scrape.scrape_jobs("lxd", [], CLIENT, clustered=False) == []


def test_a_cluster_is_one_job_over_every_member_in_unit_order() -> None:
    targets = [
        scrape.Target("lxd/10", "10.0.0.10:9100", NAMED),
        scrape.Target("lxd/2", "10.0.0.2:9100", NAMED),
        scrape.Target("lxd/x", "10.0.0.99:9100", UNNAMED),
    ]
    assert scrape.scrape_jobs("lxd", targets, CLIENT, clustered=True) == [
        {
            "metrics_path": "/1.0/metrics",
            "scheme": "https",
            "job_name": "lxd",
            "static_configs": [{"targets": ["10.0.0.99:9100", "10.0.0.2:9100", "10.0.0.10:9100"]}],
            "tls_config": {
                "ca_file": UNNAMED,
                "cert_file": "CLIENT-CERT",
                "key_file": "CLIENT-KEY",
            },
        }
    ]


def test_standalone_units_get_a_job_each_verifying_their_own_certificate() -> None:
    other = server_certificate("lxd1")
    targets = [
        scrape.Target("lxd/1", "[fd00::1]:8443", other),
        scrape.Target("lxd/0", "10.0.0.1:8443", NAMED),
    ]
    jobs = scrape.scrape_jobs("lxd", targets, CLIENT, clustered=False, inline=True)
    assert jobs == [
        {
            "metrics_path": "/1.0/metrics",
            "scheme": "https",
            "job_name": "lxd-0",
            "static_configs": [{"targets": ["10.0.0.1:8443"]}],
            "tls_config": {
                "ca": NAMED,
                "cert": "CLIENT-CERT",
                "key": "CLIENT-KEY",
                "server_name": "lxd0",
            },
        },
        {
            "metrics_path": "/1.0/metrics",
            "scheme": "https",
            "job_name": "lxd-1",
            "static_configs": [{"targets": ["[fd00::1]:8443"]}],
            "tls_config": {
                "ca": other,
                "cert": "CLIENT-CERT",
                "key": "CLIENT-KEY",
                "server_name": "lxd1",
            },
        },
    ]


def test_a_manual_request_is_its_key_and_sorted_json() -> None:
    key, value = scrape.manual_request(
        "abc", "lxd-metrics", ("10.0.0.1:9100", "10.0.0.2:9100"), NAMED, CLIENT
    )
    assert key == "request_abc"
    request = json.loads(value)
    assert value == json.dumps(request, sort_keys=True)
    assert request == {
        "request_id": "abc",
        "job_name": "lxd-metrics",
        "job_data": {
            "metrics_path": "/1.0/metrics",
            "scheme": "https",
            "static_configs": [{"targets": ["10.0.0.1:9100", "10.0.0.2:9100"]}],
            "tls_config": {"ca_file": "__ca_file__", "server_name": "lxd0"},
        },
        "ca_cert": NAMED,
        "client_cert": "CLIENT-CERT",
        "client_key": "CLIENT-KEY",
    }
    _, unnamed = scrape.manual_request("r", "j", ["a:1"], UNNAMED, CLIENT)
    assert json.loads(unnamed)["job_data"]["tls_config"] == {"ca_file": "__ca_file__"}


# --- bags -----------------------------------------------------------------------------


def test_targets_from_peers_and_the_units_not_ready() -> None:
    bags = {
        "lxd/2": {"metrics-address": "10.0.0.2:9100", "metrics-certificate": NAMED},
        "lxd/0": {"metrics-address": "10.0.0.1:9100", "metrics-certificate": NAMED},
        "lxd/1": {"metrics-address": "10.0.0.3:9100", "metrics-certificate": "garbage"},
        "lxd/3": {"metrics-certificate": NAMED},
        "lxd/4": {},
    }
    targets, missing = scrape.targets_from_peers(bags)
    assert targets == [
        scrape.Target("lxd/0", "10.0.0.1:9100", NAMED),
        scrape.Target("lxd/2", "10.0.0.2:9100", NAMED),
    ]
    assert missing == ["lxd/1", "lxd/3", "lxd/4"]


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        (None, {}),
        ("", {}),
        ("{not json", {}),
        ("[1]", {}),
        (
            '{"7": "secret:a", "x": "secret:b", "8": 9, "9": "secret:c"}',
            {7: "secret:a", 9: "secret:c"},
        ),
    ],
)
def test_secret_ids(raw: str | None, ids: dict[int, str]) -> None:
    assert scrape.secret_ids(raw) == ids


def test_secret_ids_round_trip_sorted_and_empty_when_none() -> None:
    text = scrape.dump_secret_ids({9: "secret:c", 7: "secret:a"})
    assert text == '{"7": "secret:a", "9": "secret:c"}'
    assert scrape.secret_ids(text) == {7: "secret:a", 9: "secret:c"}
    assert scrape.dump_secret_ids({}) == ""


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        (None, {}),
        ("", {}),
        ("{not json", {}),
        ('["7:p/0"]', {}),
        (
            json.dumps(
                {
                    "7:prometheus2/0": "secret:a",
                    "x:prometheus2/0": "secret:b",
                    "8:prometheus2": "secret:c",
                    "9:prometheus2/1": "",
                    "10:prometheus2/1": 5,
                    "11": "secret:d",
                    "12:p/3": "secret:e",
                }
            ),
            {(7, "prometheus2/0"): "secret:a", (12, "p/3"): "secret:e"},
        ),
    ],
)
def test_unit_secret_ids(raw: str | None, ids: dict[tuple[int, str], str]) -> None:
    assert scrape.unit_secret_ids(raw) == ids


def test_unit_secret_ids_round_trip_sorted_and_empty_when_none() -> None:
    text = scrape.dump_unit_secret_ids({(9, "p/1"): "secret:b", (7, "p/0"): "secret:a"})
    assert text == '{"7:p/0": "secret:a", "9:p/1": "secret:b"}'
    assert scrape.unit_secret_ids(text) == {(7, "p/0"): "secret:a", (9, "p/1"): "secret:b"}
    assert scrape.dump_unit_secret_ids({}) == ""


def test_topology_is_the_five_juju_labels() -> None:
    assert scrape.topology("m", "uuid", "lxd", "lxd/0", "lxd-host") == {
        "model": "m",
        "model_uuid": "uuid",
        "application": "lxd",
        "unit": "lxd/0",
        "charm_name": "lxd-host",
    }


def test_the_alert_rules_are_the_shipped_file() -> None:
    rules = scrape.alert_rules()
    assert isinstance(rules, dict)
    assert rules["groups"]


def test_unit_order_is_by_number_with_unnumbered_names_first() -> None:
    targets = [
        scrape.Target("lxd/1", "10.0.0.1:9100", NAMED),
        scrape.Target("lxd/0", "10.0.0.0:9100", NAMED),
        scrape.Target("lxd/x", "10.0.0.99:9100", NAMED),
        scrape.Target("odd", "10.0.0.98:9100", NAMED),
    ]
    [job] = scrape.scrape_jobs("lxd", targets, CLIENT, clustered=True)
    assert job["static_configs"] == [
        {"targets": ["10.0.0.99:9100", "10.0.0.98:9100", "10.0.0.0:9100", "10.0.0.1:9100"]}
    ]


def test_the_record_of_secrets_is_sorted_as_text() -> None:
    assert scrape.dump_secret_ids({9: "a", 10: "b"}) == '{"10": "b", "9": "a"}'
