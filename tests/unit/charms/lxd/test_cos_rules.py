"""The alert rules shipped in the charm, checked and tested by promtool.

The series are shaped like what real LXD 5.0.2 exports (the capture in
tests/data) after a COS consumer has labelled them with the Juju topology.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import lxd_charm.cos

RULES = Path(lxd_charm.cos.__file__).parent / "alert_rules.yaml"
CAPTURE = Path(__file__).parents[3] / "data" / "lxd-5.0.2-metrics.txt"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus"
)
TOPOLOGY = 'juju_model="m",juju_model_uuid="u",juju_application="lxd",juju_charm="lxd"'


def captured_names() -> set[str]:
    """The metric names real LXD 5.0.2 exported (tests/data)."""
    return set(re.findall(r"^# TYPE (lxd_\w+)", CAPTURE.read_text(), re.MULTILINE))


def metric_names(expr: str) -> set[str]:
    """The lxd_* metric names an expression reads."""
    return set(re.findall(r"\blxd_\w+", expr))


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_rules_read_only_metrics_real_lxd_exports() -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert used, "the rules read LXD's own series"
    assert used <= captured_names()


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def unit(n: int) -> str:
    return f'{TOPOLOGY},juju_unit="lxd/{n}",instance="m_u_lxd_lxd/{n}",job="lxd"'


def instance(name: str, kind: str = "container") -> str:
    return f'{unit(1)},name="{name}",project="default",type="{kind}"'


def disk(name: str) -> str:
    return f'{unit(1)},name="{name}",project="default",device="",fstype="ext4",mountpoint="/"'


TESTS = {
    "evaluation_interval": "1m",
    "tests": [
        {
            "name": "one member down of three: member offline, LXD still reachable",
            "interval": "1m",
            "input_series": [
                {"series": f"up{{{unit(0)}}}", "values": "1x15"},
                {"series": f"up{{{unit(1)}}}", "values": "1 1 0x13"},
                {"series": f"up{{{unit(2)}}}", "values": "1x15"},
            ],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "LXDMemberOffline", "exp_alerts": []},
                {
                    "eval_time": "10m",
                    "alertname": "LXDMemberOffline",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "juju_model": "m",
                                "juju_model_uuid": "u",
                                "juju_application": "lxd",
                                "juju_charm": "lxd",
                                "juju_unit": "lxd/1",
                                "instance": "m_u_lxd_lxd/1",
                                "job": "lxd",
                            },
                            "exp_annotations": {
                                "summary": "LXD on lxd/1 does not answer",
                                "description": "m_u_lxd_lxd/1 has not answered for 5 minutes "
                                "while other servers of lxd do.",
                            },
                        }
                    ],
                },
                {"eval_time": "10m", "alertname": "LXDUnreachable", "exp_alerts": []},
            ],
        },
        {
            "name": "every member down: LXD unreachable",
            "interval": "1m",
            "input_series": [
                {"series": f"up{{{unit(0)}}}", "values": "0x15"},
                {"series": f"up{{{unit(1)}}}", "values": "0x15"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "LXDUnreachable",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "critical",
                                "juju_model": "m",
                                "juju_model_uuid": "u",
                                "juju_application": "lxd",
                            },
                            "exp_annotations": {
                                "summary": "No LXD server of lxd answers on its metrics listener",
                                "description": "Every scrape of lxd in model m has failed "
                                "for 5 minutes.",
                            },
                        }
                    ],
                },
                {"eval_time": "10m", "alertname": "LXDMemberOffline", "exp_alerts": []},
            ],
        },
        {
            "name": "a root disk with 5% free: pool nearly full; 50% free: quiet",
            "interval": "1m",
            "input_series": [
                {"series": f"lxd_filesystem_avail_bytes{{{disk('full')}}}", "values": "5x20"},
                {"series": f"lxd_filesystem_size_bytes{{{disk('full')}}}", "values": "100x20"},
                {"series": f"lxd_filesystem_avail_bytes{{{disk('roomy')}}}", "values": "50x20"},
                {"series": f"lxd_filesystem_size_bytes{{{disk('roomy')}}}", "values": "100x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "LXDStoragePoolNearlyFull", "exp_alerts": []},
                {
                    "eval_time": "15m",
                    "alertname": "LXDStoragePoolNearlyFull",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "juju_model": "m",
                                "juju_model_uuid": "u",
                                "juju_application": "lxd",
                                "juju_charm": "lxd",
                                "juju_unit": "lxd/1",
                                "instance": "m_u_lxd_lxd/1",
                                "job": "lxd",
                                "name": "full",
                                "project": "default",
                                "fstype": "ext4",
                                "mountpoint": "/",
                            },
                            "exp_annotations": {
                                "summary": "Less than 10% free where full keeps its root disk",
                                "description": "Instance full (project default) on lxd/1 has "
                                "5% of its root disk free; the storage pool behind it is "
                                "nearly full.",
                            },
                        }
                    ],
                },
            ],
        },
        {
            "name": "a container without processes fails; a VM's zero is not a container's",
            "interval": "1m",
            "input_series": [
                {"series": f"lxd_procs_total{{{instance('dead')}}}", "values": "2 0x15"},
                {"series": f"lxd_procs_total{{{instance('alive')}}}", "values": "3x15"},
                {
                    "series": f"lxd_procs_total{{{instance('vm', 'virtual-machine')}}}",
                    "values": "0x15",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "LXDInstanceFailing",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "juju_model": "m",
                                "juju_model_uuid": "u",
                                "juju_application": "lxd",
                                "juju_charm": "lxd",
                                "juju_unit": "lxd/1",
                                "instance": "m_u_lxd_lxd/1",
                                "job": "lxd",
                                "name": "dead",
                                "project": "default",
                                "type": "container",
                            },
                            "exp_annotations": {
                                "summary": "Container dead runs no process",
                                "description": "Container dead (project default) on lxd/1 is "
                                "running but has had no process for 5 minutes: its init has "
                                "died.",
                            },
                        }
                    ],
                }
            ],
        },
    ],
}


@needs_promtool
def test_promtool_test_rules_on_series_shaped_like_real_lxds(tmp_path: Path) -> None:
    spec = {"rule_files": [str(RULES)], **TESTS}
    path = tmp_path / "rules_test.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
