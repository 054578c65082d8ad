"""lxd-https v1 interface tests, requirer side (pytest-interface-tester).

A requirer sends its request in its unit bag when the relation joins, and
keeps it there once the provider has answered. Only classes are imported
here: the tester collects every function of this module as a test.
"""

from __future__ import annotations

from interface_tester import Tester
from scenario import Relation, State

#: A throwaway self-signed certificate (public; nobody holds its key).
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

#: LXD's fingerprint of CERT (openssl x509 -noout -fingerprint -sha256).
FINGERPRINT = "e3a9561200b6341fc1b19bb33c34e19f483db5f84a3f389ba63784a19879d7f0"


def test_requirer_sends_its_request_on_joining() -> None:
    """The request is in the requirer's unit bag from the first hook."""
    tester = Tester(State(relations=[Relation(endpoint="lxd", interface="lxd-https")]))
    tester.run("lxd-relation-joined")
    tester.assert_schema_valid()


def test_requirer_keeps_its_request_once_answered() -> None:
    """A provider's answer changes nothing the requirer sends (nor adds app data)."""
    answer = {
        "version": "1.0",
        "certificate": CERT,
        "certificate_fingerprint": FINGERPRINT,
        "addresses": "10.0.0.9:8443,[2001:db8::9]:8443",
    }
    relation = Relation(endpoint="lxd", interface="lxd-https", remote_app_data=answer)
    tester = Tester(State(relations=[relation]))
    tester.run("lxd-relation-changed")
    tester.assert_schema_valid()
