"""`lxd_charm.fan.fan_address` where Juju gives no binding at all (test_fan.py covers the rest).

ops builds a binding for every endpoint in the metadata, so a model
answering ``None`` is only reachable with a model that does not know the
endpoint; the function promises None then, not an AttributeError, and this
holds it to that with a stand-in for the one method it calls.
"""

from __future__ import annotations

from typing import Any, cast

import ops

from lxd_charm.fan import BINDING, fan_address


class NoBindings:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_binding(self, name: str) -> Any:
        self.asked.append(name)
        return None


def test_a_model_without_the_fan_binding_has_no_fan_address() -> None:
    model = NoBindings()
    assert fan_address(cast(ops.Model, model)) is None
    assert model.asked == [BINDING] == ["fan"]
