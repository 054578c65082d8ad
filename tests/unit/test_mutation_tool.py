"""The mutation tool's own decisions: which edits it makes, and which it must not."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from scripts.mutation.__main__ import (
    MODULES,
    Equivalent,
    _shard,
    _tests_for,
    in_functions,
    load_equivalents,
    resolve,
)
from scripts.mutation.mutants import mutants_of
from scripts.mutation.runner import Coverage, answering_file

SOURCE = textwrap.dedent(
    '''\
    """Module docstring."""
    import logging
    from dataclasses import dataclass

    logger = logging.getLogger(__name__)
    __all__ = ["decide"]


    @dataclass(frozen=True)
    class Answer:
        """Class docstring."""

        value: int = 0
        """Attribute docstring."""


    def decide(a: int, b: int, names: set[str]) -> str:
        """Function docstring."""
        logger.info("deciding %s", a)
        if a < b and "x" in names:
            return "low"
        return f"{a}"
    '''
)


def _edits() -> list[tuple[int, str, str, str]]:
    return [(m.line, m.what, m.before, m.after) for m in mutants_of(SOURCE)]


def test_each_mutant_is_one_edit_that_parses_and_keeps_the_other_lines() -> None:
    lines = SOURCE.splitlines()
    for mutant in mutants_of(SOURCE):
        ast.parse(mutant.source)
        new = mutant.source.splitlines()
        assert new[: mutant.line - 1] == lines[: mutant.line - 1], mutant.what
        if mutant.what != "statement deleted":  # a deleted `if` takes its body along
            changed = [i + 1 for i, (a, b) in enumerate(zip(lines, new, strict=True)) if a != b]
            assert changed == [mutant.line], mutant.what


IF = 'if a < b and "x" in names:'


def test_the_decisions_are_mutated() -> None:
    edits = _edits()
    for expected in [
        (20, "'<' -> '<='", IF, 'if a <= b and "x" in names:'),
        (20, "'and' -> 'or'", IF, 'if a < b or "x" in names:'),
        (20, "'in' -> 'not in'", IF, 'if a < b and "x" not in names:'),
        (20, "condition negated", IF, 'if not (a < b and "x" in names):'),
        (20, "statement deleted", IF, "pass"),
        (21, "return value -> None", 'return "low"', "return None"),
        (13, "0 -> 1", "value: int = 0", "value: int = 1"),
    ]:
        assert expected in edits


def test_docstrings_logging_annotations_all_and_frozen_are_left_alone() -> None:
    mutated_lines = {line for line, *_ in _edits()}
    # docstrings (module, class, attribute, function), the logger, __all__, frozen=, the log call
    assert mutated_lines.isdisjoint({1, 5, 6, 9, 11, 14, 18, 19})
    assert not [e for e in _edits() if "str]" in e[3]], "annotations are not mutated"
    on_the_f_string = [what for line, what, _, _ in _edits() if line == 22]
    assert on_the_f_string == ["return value -> None"], "f-strings are not mutated inside"


def test_an_equivalent_names_one_mutant_by_its_text() -> None:
    [low] = [m for m in mutants_of(SOURCE) if m.what == "return value -> None" and m.line == 21]
    entry = Equivalent("x.py", "decide", 'return "low"', "return None", "reason")
    assert entry.matches("x.py", low)
    assert not entry.matches("y.py", low)
    placed = Equivalent("x.py", "decide", 'return "low"', "return None", "r", previous="nope")
    assert not placed.matches("x.py", low)


def test_every_listed_equivalent_matches_a_mutant_and_gives_a_reason() -> None:
    entries = load_equivalents()
    for module in {entry.module for entry in entries}:
        mutants = list(mutants_of(resolve(module)[2].read_text()))
        for entry in (e for e in entries if e.module == module):
            assert entry.reason.strip()
            assert any(entry.matches(module, m) for m in mutants), entry


def test_every_default_module_exists() -> None:
    for module in MODULES:
        assert Path(resolve(module)[2]).is_file()


def test_the_shards_of_ci_cover_every_module_once() -> None:
    count = 4
    shards = [list(MODULES)[index - 1 :: count] for index in range(1, count + 1)]
    assert sorted(m for shard in shards for m in shard) == sorted(MODULES)
    assert len(set(MODULES)) == len(MODULES)
    assert _shard("2/4") == (2, 4)


@pytest.mark.parametrize("text", ["0/4", "5/4", "4", "a/b", "-1/4", "1/"])
def test_a_shard_outside_one_to_n_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        _shard(text)
    assert str(info.value) == f"--shard takes K/N with 1 <= K <= N, not {text!r}"


def test_a_charms_top_level_module_is_named_by_its_path_and_the_bare_name_is_refused() -> None:
    repo = Path(__file__).resolve().parents[2]
    for charm in ("lxd", "lxd-integrator"):
        shown, dotted, path = resolve(f"charms/{charm}/src/charm.py")
        assert (shown, dotted, path) == (
            f"charms/{charm}/src/charm.py",
            "charm",
            repo / "charms" / charm / "src" / "charm.py",
        )
    assert resolve("lxd_charm/actions.py")[0] == "lxd_charm/actions.py"
    with pytest.raises(SystemExit) as info:
        resolve("charm.py")
    assert str(info.value) == (
        "'charm.py' names more than one module (charms/lxd/src/charm.py, "
        "charms/lxd-integrator/src/charm.py): give its path from the repository root"
    )


def test_an_import_by_file_location_gets_the_mutant_and_only_inside(tmp_path: Path) -> None:
    module = tmp_path / "charm.py"
    module.write_text("ANSWER = 1\n")
    other = tmp_path / "other.py"
    other.write_text("ANSWER = 3\n")

    def load(path: Path, name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded

    with answering_file(module, "ANSWER = 2\n"):
        mutated = load(module, "some_charm_main")
        untouched = load(other, "other_main")
    assert (mutated.ANSWER, mutated.__file__) == (2, str(module))
    assert untouched.ANSWER == 3
    assert load(module, "some_charm_main").ANSWER == 1


def test_a_node_without_a_line_event_runs_the_tests_of_its_statement() -> None:
    source = 'def build(a: int) -> dict[str, int]:\n    return {\n        "key": a,\n    }\n'
    [key] = [m for m in mutants_of(source) if m.what == "string changed"]
    assert (key.line, key.first_line, key.end_line, key.statement) == (3, 3, 3, (2, 4))
    coverage = Coverage()
    coverage.lines["t.py::test_build"] = {1, 2}  # a dict display's key line starts no event
    coverage.lines["t.py::test_other"] = {1}
    assert _tests_for(key, coverage) == ["t.py::test_build"]
    coverage.lines["t.py::test_key"] = {3}
    assert _tests_for(key, coverage) == ["t.py::test_key"], "the node's own lines come first"


def test_function_keeps_the_named_function_and_a_classes_methods_only() -> None:
    source = (
        "def lone(a: int) -> bool:\n    return a > 1\n\n\n"
        "class Charm:\n    def on_start(self, a: int) -> bool:\n        return a < 2\n\n"
        "    def on_stop(self, a: int) -> bool:\n        return a == 3\n"
    )
    mutants = list(mutants_of(source))

    def kept(*names: str) -> set[str]:
        return {m.function for m in mutants if in_functions(m, names)}

    assert kept() == {"lone", "Charm.on_start", "Charm.on_stop"}
    assert kept("Charm.on_start") == {"Charm.on_start"}
    assert kept("Charm") == {"Charm.on_start", "Charm.on_stop"}
    assert kept("Char", "lon") == set(), "a prefix of a name is not the name"
