"""lxd-https v1 interface tests, provider side (pytest-interface-tester).

A provider, given a requirer's request, answers in its unit bag (standalone)
or app bag (clustered) with what `ProviderSchema` describes. Only classes are
imported here: the tester collects every function of this module as a test.
"""

from __future__ import annotations

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


def test_provider_answers_a_request() -> None:
    """An unrestricted request is trusted and answered."""
    request = {"version": "1.0", "certificate": CERT, "autoremove": "true"}
    relation = Relation(
        endpoint="lxd-https", interface="lxd-https", remote_units_data={0: request}
    )
    tester = Tester(State(relations=[relation]))
    tester.run("lxd-https-relation-changed")
    tester.assert_schema_valid()


def test_provider_answers_a_restricted_request() -> None:
    """A request for one project is trusted (restricted to it) and answered."""
    request = {"version": "1.0", "certificate": CERT, "projects": "default"}
    relation = Relation(
        endpoint="lxd-https", interface="lxd-https", remote_units_data={0: request}
    )
    tester = Tester(State(relations=[relation]))
    tester.run("lxd-https-relation-changed")
    tester.assert_schema_valid()
