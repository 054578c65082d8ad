"""lxd v1 interface tests, provider side (pytest-interface-tester).

A provider, given a requirer's client certificates, publishes every LXD
server (and which certificates LXD trusts) in its app bag and in its unit
bag. Only classes are imported here: the tester collects every function of
this module as a test.
"""

from __future__ import annotations

import json

from interface_tester import Tester
from scenario import Relation, State

#: A throwaway self-signed client certificate (public; nobody holds its key).
CERT = """-----BEGIN CERTIFICATE-----
MIIBojCCAUegAwIBAgIUWka0zq1W4xNfQTkpe1ENmmnOoVcwCgYIKoZIzj0EAwIw
JTEjMCEGA1UEAwwabHhkLWNoYXJtcy1pbnRlcmZhY2VzLXRlc3QwIBcNMjYxMjAx
MDk1MTQ3WhgPMjEyNjExMDcwOTUxNDdaMCUxIzAhBgNVBAMMGmx4ZC1jaGFybXMt
aW50ZXJmYWNlcy10ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyRmOYYqj
5ZbgFDfWh0mRi4OuFVMqIO+WGLrTMgRcBeuIALS4uTbykttc+K8Aagl4UU1/y/S6
nt96zgHkvXbCGaNTMFEwHQYDVR0OBBYEFNrEIzdKr2iXxqIdLru+eBxmyrEUMB8G
A1UdIwQYMBaAFNrEIzdKr2iXxqIdLru+eBxmyrEUMA8GA1UdEwEB/wQFMAMBAf8w
CgYIKoZIzj0EAwIDSQAwRgIhAJJ6v/gqph4+gktWsXJU7/5qGhLuuPfPN7lK6w76
D9DYAiEAtCYNYX0ZkTDP3P4KPXpwXx2tgFUoa1WtREnVSHtiwa0=
-----END CERTIFICATE-----
"""


def test_provider_publishes_nodes_for_a_request() -> None:
    """The certificates a requirer unit sends are trusted and the nodes published."""
    request = {"client_certificates": json.dumps([CERT])}
    relation = Relation(endpoint="api", interface="lxd", remote_units_data={0: request})
    tester = Tester(State(leader=True, relations=[relation]))
    tester.run("api-relation-changed")
    tester.assert_schema_valid()


def test_provider_publishes_nodes_before_any_request() -> None:
    """Where LXD is does not wait for certificates."""
    relation = Relation(endpoint="api", interface="lxd", remote_units_data={0: {}})
    tester = Tester(State(leader=True, relations=[relation]))
    tester.run("api-relation-joined")
    tester.assert_schema_valid()
