"""`lxd_common.projects`: the names LXD refuses, and lists of names as operators type them."""

from __future__ import annotations

import pytest

from lxd_common import projects


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "a b",
        "a_b",
        "a'b",
        'a"b',
        "a\tb",
        "a\nb",
        "a\x00b",
        "a\x1fb",
        "a\x7fb",
        "*",
        ".",
        "..",
    ],
)
def test_names_lxd_refuses_are_invalid(name: str) -> None:
    assert projects.invalid(name) is True


@pytest.mark.parametrize("name", ["default", "team-a", "a.b", "...", "x*", "Ünïcode", "a~b"])
def test_other_names_are_valid(name: str) -> None:
    assert projects.invalid(name) is False


def test_split_keeps_valid_names_in_order_without_blanks_or_repeats() -> None:
    assert projects.split(" b, a ,,b, c ,a") == (["b", "a", "c"], [])


def test_split_sets_invalid_names_apart_once_each_in_order() -> None:
    assert projects.split("ok,a b,x_y,ok,a b,..,next") == (["ok", "next"], ["a b", "x_y", ".."])


def test_split_of_nothing_is_nothing() -> None:
    assert projects.split("") == ([], [])
    assert projects.split(" , ,") == ([], [])
