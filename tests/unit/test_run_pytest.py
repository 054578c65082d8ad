"""The tier runner: a tier's directories run unless the arguments name tests themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_pytest", REPO / "tests" / "run_pytest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_options_alone_keep_the_whole_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    args = runner().pytest_args(["--tier", "tests/functional", "-q", "-k", "fan"])
    assert args == ["tests/functional", "-q", "-k", "fan"]


def test_a_named_file_or_test_replaces_the_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    pytest_args = runner().pytest_args
    named = ["--tier", "tests/unit", "--tier", "extra", "tests/unit/test_readme.py", "-q"]
    assert pytest_args(named) == ["tests/unit/test_readme.py", "-q"]
    one_test = ["--tier", "tests/unit", "tests/unit/test_readme.py::test_x"]
    assert pytest_args(one_test) == ["tests/unit/test_readme.py::test_x"]


def test_a_word_that_is_no_path_keeps_the_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    # The value of -k is not a path: the tier still runs, filtered.
    assert runner().pytest_args(["--tier", "tests/unit", "-k", "readme"]) == [
        "tests/unit",
        "-k",
        "readme",
    ]
