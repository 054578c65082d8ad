"""The mode `maintenance.evacuate` hands LXD: the operator's where LXD honours it, else none.

The fake cluster (tests/harness/fake_lxd.py) evacuates as LXD 5.0.2 does,
which ignores the mode; so the call LXD receives is recorded here, around the
fake's own evacuation, to see the mode that would travel to a newer LXD.
"""

from __future__ import annotations

import pytest

from lxd_charm import maintenance
from tests.harness.fake_lxd import FakeLxd

OWNERS = {"m1": "lxd/0", "m2": "lxd/1", "m3": "lxd/2"}


def cluster(*extensions: str) -> tuple[FakeLxd, list[tuple[str, str | None]]]:
    lxd = FakeLxd()
    lxd.api_extensions.extend(extensions)
    lxd.cluster.enable("m1", "10.0.0.1:8443")
    database = lxd.cluster._database()
    for n in (2, 3):
        lxd.cluster._add_member(database, f"m{n}", f"10.0.0.{n}:8443", ["database"])
    calls: list[tuple[str, str | None]] = []
    evacuate = lxd.cluster.evacuate

    def recording(name: str, mode: str | None = None) -> None:
        calls.append((name, mode))
        evacuate(name, mode)

    lxd.cluster.evacuate = recording  # type: ignore[method-assign]
    return lxd, calls


@pytest.mark.parametrize("mode", ["auto", "stop", "migrate"])
def test_an_lxd_that_honours_modes_is_given_the_operators(mode: str) -> None:
    lxd, calls = cluster("clustering_evacuation_mode")
    got = maintenance.evacuate(lxd, "m2", mode, OWNERS)  # type: ignore[arg-type]
    assert calls == [("m2", mode)]
    assert (got["mode"], got["state"]) == (mode, "evacuated")


def test_an_lxd_that_ignores_modes_is_given_none() -> None:
    lxd, calls = cluster()
    maintenance.evacuate(lxd, "m2", "auto", OWNERS)  # type: ignore[arg-type]
    assert calls == [("m2", None)]
