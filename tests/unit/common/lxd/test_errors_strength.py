"""`lxd_common.errors`, one wrong answer each: what an operator reads of a long list.

Written for the mutants test_errors.py let through (docs/mutation.md): the
five names shown of a member's instances and of a pool's volumes are tested
at the boundary (five shown whole, six cut after the fifth), and a pool that
is in use keeps its name for the caller.
"""

from __future__ import annotations

import pytest

from lxd_common.errors import MemberHasInstancesError, StoragePoolInUseError


def test_a_member_with_six_instances_shows_five_and_says_there_are_more() -> None:
    names = [f"c{i}" for i in range(6)]
    assert str(MemberHasInstancesError("m2", names)) == (
        "member 'm2' still holds 6 instance(s) (c0, c1, c2, c3, c4, ...); "
        "move or delete them before removing the member"
    )


@pytest.mark.parametrize(
    ("volumes", "shown"),
    [
        (["custom/a", "custom/b"], "custom/a, custom/b"),
        (
            [f"custom/v{i}" for i in range(5)],
            "custom/v0, custom/v1, custom/v2, custom/v3, custom/v4",
        ),
        (
            [f"custom/v{i}" for i in range(6)],
            "custom/v0, custom/v1, custom/v2, custom/v3, custom/v4, ...",
        ),
    ],
    ids=["two", "five", "six"],
)
def test_a_pool_in_use_names_up_to_five_volumes_and_counts_all(
    volumes: list[str], shown: str
) -> None:
    error = StoragePoolInUseError("p1", volumes)
    assert str(error) == (
        f"storage pool 'p1' still holds {len(volumes)} volume(s) ({shown}); "
        "move or delete them first"
    )
    assert (error.pool, error.volumes) == ("p1", volumes)
