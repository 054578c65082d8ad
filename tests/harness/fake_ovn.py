"""Fakes for the OVN relations' unit tests: LXD's API extensions, and OVN's answers.

`OvnFakeLxd` is `FakeLxd` with the API extensions LXD lists, refusing the
OVN TLS server keys unless it has `ovn_ssl_config`, in the words LXD 5.0.2
uses ("cannot set 'network.ovn.ca_cert' to 'x': unknown key").
`FakeProbes` stands in for `lxd_charm.ovn.probe_northbound` (the unit tier
does no network I/O): each address answers what the test says; the real
probe meets real ovsdb-servers in tests/functional/test_ovn.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxd_charm import ovn
from lxd_common.errors import LxdApiError
from tests.harness.fake_lxd import FakeLxd

LXD_5_0_EXTENSIONS = ("network_type_ovn", "network_ovn_acl", "cluster_ovn_chassis")
"""A few of the extensions Debian's LXD 5.0.2 lists, OVN's among them (not ovn_ssl_config)."""


class OvnFakeLxd(FakeLxd):
    """`FakeLxd` listing API extensions and knowing which server keys exist."""

    def __init__(self, extensions: tuple[str, ...] = LXD_5_0_EXTENSIONS) -> None:
        super().__init__()
        self.api_extensions = list(extensions)

    def server_info(self) -> dict[str, Any]:
        info = super().server_info()
        info["api_extensions"] = list(self.api_extensions)
        return info

    def set_server_config(
        self, values: Mapping[str, str | None], *, current: Mapping[str, str] | None = None
    ) -> list[str]:
        if ovn.SSL_CONFIG_EXTENSION not in self.api_extensions:
            for key, value in values.items():
                if key in ovn.SSL_SERVER_KEYS.values() and value:
                    raise LxdApiError(
                        f"LXD refused setting server config {key}: "
                        f"cannot set '{key}' to '{value[:10]}': unknown key",
                        400,
                    )
        return super().set_server_config(values, current=current)


@dataclass
class FakeProbes:
    """What each northbound address answers; unknown addresses are reachable."""

    answers: dict[str, tuple[ovn.ProbeKind, str]] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, address: str, material: ovn.TlsMaterial, timeout: float = 0.0) -> ovn.Probe:
        self.asked.append((address, material.source))
        kind, detail = self.answers.get(address, ("reachable", ""))
        return ovn.Probe(ovn.northbound_target(address), kind, detail)
