"""Typed access to a Scenario relation's databags, for tests.

ops-scenario declares its databag type as ``RawSecretRevisionContents =
RawDataBagContents = Mapping[str, str]``; mypy does not read a chained
assignment as a type alias, so ``relation.local_app_data`` and friends have
no usable type and every lookup in them is a type error. These functions
return the same object, typed as what it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from ops import testing


def local_app_data(relation: testing.RelationBase) -> Mapping[str, str]:
    """The relation's application databag on this side (`relation.local_app_data`)."""
    bag: Mapping[str, str] = relation.local_app_data
    return bag


def local_unit_data(relation: testing.RelationBase) -> Mapping[str, str]:
    """This unit's databag in the relation (`relation.local_unit_data`)."""
    bag: Mapping[str, str] = relation.local_unit_data
    return bag


def tracked_content(secret: testing.Secret) -> Mapping[str, str]:
    """The secret revision this unit tracks (`secret.tracked_content`)."""
    content: Mapping[str, str] = secret.tracked_content
    return content


def get_relation(state: testing.State, relation_id: int) -> testing.Relation:
    """`state.get_relation`, narrowed to a regular relation (it returns `RelationBase`).

    A test replaces the remote side's bags of what it got back, and only
    `testing.Relation` has them.
    """
    relation = state.get_relation(relation_id)
    assert isinstance(relation, testing.Relation), relation
    return relation
