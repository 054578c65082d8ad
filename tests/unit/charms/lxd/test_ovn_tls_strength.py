"""`lxd_charm.ovn_tls` alone: which material wins, the chain LXD is given, every missing piece.

test_ovn_relation.py runs the relation through whole hooks; these pin each
decision of the module on its own, with stand-ins for the two things it
reads (the model's ``certificates`` relations, and the TLS library's
requirer answering `get_assigned_certificate`) and real certificates from a
test CA (`tests.harness.ovn.OvnCa`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import ops
import pytest

from lxd_charm import ovn_tls
from lxd_common.certs import reshape_pem
from lxd_common.errors import CertificateError
from tests.harness.ovn import OvnCa, legacy_answer

CA = OvnCa()
OTHER_CA = OvnCa("intermediate-ca")
CERT, KEY = CA.issue("lxd-0")


@dataclass(frozen=True)
class Named:
    name: str


@dataclass
class Relation:
    app: Named
    data: dict[Named, dict[str, str]] = field(default_factory=dict)

    @property
    def units(self) -> set[Named]:
        return {u for u in self.data if u.name.count("/")}


class Relations:
    def __init__(self, relations: list[Relation] | None) -> None:
        self.relations = relations

    def get(self, name: str) -> list[Relation] | None:
        return self.relations if name == "certificates" else None


@dataclass
class Model:
    relations: Relations


@dataclass
class Charm:
    model: Model
    unit: Named = Named("lxd/0")
    app: Named = Named("lxd")


def charm(*relations: Relation, none: bool = False) -> ops.CharmBase:
    return cast(ops.CharmBase, Charm(Model(Relations(None if none else list(relations)))))


@dataclass
class Issued:
    certificate: str
    ca: str
    chain: list[str] | None


class Requirer:
    """Answers `get_assigned_certificate` as the library does: (certificate, key) or Nones."""

    def __init__(self, issued: Issued | None, key: str | None) -> None:
        self.answer = (issued, key)
        self.asked: list[Any] = []

    def get_assigned_certificate(self, request: Any) -> tuple[Issued | None, str | None]:
        self.asked.append(request)
        return self.answer


def requirer(issued: Issued | None, key: str | None) -> Any:
    return Requirer(issued, key)


def vault(*bags: dict[str, str]) -> Relation:
    return Relation(Named("vault"), {Named(f"vault/{i}"): bag for i, bag in enumerate(bags)})


def test_nothing_is_attached_while_no_certificates_relation_exists() -> None:
    assert ovn_tls.attach(charm()) is None
    assert ovn_tls.attach(charm(none=True)) is None


def test_an_issued_certificate_gets_its_ca_and_the_chains_other_cas_once() -> None:
    leaf, ca, other = CERT.strip(), CA.pem.strip(), OTHER_CA.pem.strip()
    issued = Issued(leaf, ca, chain=[leaf, ca, other, other])
    material = ovn_tls.current_material(charm(vault({})), requirer(issued, KEY))
    assert material is not None
    assert material.ca == reshape_pem(f"{ca}\n{other}\n")
    assert (material.certificate, material.private_key) == (reshape_pem(CERT), reshape_pem(KEY))
    assert material.source == "vault (tls-certificates)"


@pytest.mark.parametrize("chain", [None, []])
def test_without_a_chain_the_ca_alone_is_given(chain: list[str] | None) -> None:
    issued = Issued(CERT.strip(), CA.pem.strip(), chain=chain)
    material = ovn_tls.current_material(charm(), requirer(issued, KEY))
    assert material is not None
    assert material.ca == reshape_pem(CA.pem)
    assert material.source == "certificates (tls-certificates)"  # no relation left to name


@pytest.mark.parametrize(
    ("issued", "key"),
    [(None, KEY), (Issued(CERT, CA.pem, None), None), (None, None)],
)
def test_half_an_answer_is_no_answer_and_the_legacy_bag_is_read(
    issued: Issued | None, key: str | None
) -> None:
    legacy = vault({}, legacy_answer(CA, CERT, KEY))
    material = ovn_tls.current_material(charm(legacy), requirer(issued, key))
    assert material is not None
    assert material.source == "vault/1"
    assert material.certificate == reshape_pem(CERT)
    assert ovn_tls.current_material(charm(), requirer(issued, key)) is None


def test_the_first_unit_by_name_with_legacy_keys_wins() -> None:
    other_cert, other_key = CA.issue("lxd-0-again")
    relation = vault({"unrelated": "x"}, legacy_answer(CA, other_cert, other_key))
    relation.data[Named("vault/2")] = legacy_answer(CA, CERT, KEY)
    material = ovn_tls.current_material(charm(relation), None)
    assert material is not None
    assert (material.source, material.certificate) == ("vault/1", reshape_pem(other_cert))


@pytest.mark.parametrize(
    ("bag", "missing"),
    [
        ({"ca": CA.pem}, "certificate and no key"),
        ({"client.cert": CERT}, "CA and no key"),
        ({"client.key": KEY}, "CA and no certificate"),
        ({"ca": CA.pem, "client.cert": CERT}, "key"),
    ],
)
def test_any_one_legacy_key_means_the_unit_answered_and_what_it_left_out_is_named(
    bag: dict[str, str], missing: str
) -> None:
    with pytest.raises(CertificateError) as info:
        ovn_tls.current_material(charm(vault(bag)), None)
    assert str(info.value) == f"vault/0 sent no {missing}"


def test_a_bag_without_legacy_keys_is_not_an_answer() -> None:
    assert (
        ovn_tls.current_material(charm(vault({"ca ": "x", "egress-subnets": "10/8"})), None)
        is None
    )


def test_the_provider_is_named_or_empty() -> None:
    assert ovn_tls.provider_name(charm(vault({}))) == "vault"
    assert ovn_tls.provider_name(charm()) == ""
    assert ovn_tls.provider_name(charm(none=True)) == ""
