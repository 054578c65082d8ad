"""Each decision of the lxd interface models, one wrong answer each (whole messages)."""

from __future__ import annotations

import json

import pytest

from lxd_common.interfaces.lxd import InterfaceError, Node, ProviderData


def _refusal(bag: dict[str, str]) -> str:
    with pytest.raises(InterfaceError) as info:
        ProviderData.from_databag(bag)
    return str(info.value)


NODE = {"name": "m1", "endpoint": "10.0.0.1"}


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ("{}", "nodes must be a JSON list, not a object"),
        ('"x"', "nodes must be a JSON list, not a string"),
        ("true", "nodes must be a JSON list, not a boolean"),
        ("null", "nodes must be a JSON list, not a null"),
        ("1", "nodes must be a JSON list, not a number"),
        ("[[]]", "each node must be a JSON object, not a list"),
        ("[true]", "each node must be a JSON object, not a boolean"),
        ('[{"name": "", "endpoint": "10.0.0.1"}]', "a node has no name"),
        ('[{"name": 7, "endpoint": "10.0.0.1"}]', "a node has no name"),
        ('[{"endpoint": "10.0.0.1"}]', "a node has no name"),
    ],
)
def test_each_malformed_node_list_is_named_exactly(nodes: str, message: str) -> None:
    assert _refusal({"version": "1.0", "nodes": nodes}) == message


@pytest.mark.parametrize("errors", ['{"app/0": 1}', '{"app/0": ["x"]}', '["app/0"]', '"app/0"'])
def test_errors_must_map_unit_names_to_messages(errors: str) -> None:
    bag = {"version": "1.0", "nodes": json.dumps([NODE]), "errors": errors}
    assert _refusal(bag) == "errors must be a JSON object of unit names to messages"


def test_errors_that_are_not_json_are_named() -> None:
    bag = {"version": "1.0", "nodes": json.dumps([NODE]), "errors": "{nope"}
    assert _refusal(bag) == "errors is not valid JSON"


def test_nodes_are_written_in_one_order_whatever_the_key_order() -> None:
    node = Node.from_json(NODE)
    written = json.loads(ProviderData((node,)).to_databag()["nodes"])
    assert list(written[0]) == sorted(written[0]), "the same nodes must write the same text"
