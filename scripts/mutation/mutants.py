"""Make the mutants of one Python source file: one small source edit each.

Each mutant is the kind of wrong answer a slip of the keyboard gives, and a
test suite that is any good must notice it: a comparison flipped at its
boundary (``<`` to ``<=``, ``==`` to ``!=``, ``in`` to ``not in``), ``and``
swapped for ``or``, an arithmetic or set operator swapped (``|`` to ``&``), a
``not`` dropped, a condition negated, a number moved by one, ``True`` and
``False`` swapped, a string changed, or a statement (a call, a ``raise``, an
assignment, a whole ``if``) replaced by ``pass``.

The edit is made in the source text, not by regenerating the file from the
tree, so every other line keeps its number and the diff shows exactly one
change. What is never mutated, because no test could or should see it:
docstrings (of modules, classes, functions and attributes), ``...``
bodies, type annotations, ``if TYPE_CHECKING:`` blocks, ``__all__``,
logging calls, a dataclass's ``frozen=`` flag (mypy, in the static tier,
refuses assignments to a frozen dataclass), f-strings (their inner
positions are not reliable before Python 3.12), and lines marked
``# pragma: no mutate``.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
LOGGER_NAMES = frozenset({"logger", "log", "_logger", "LOGGER", "_log"})
NO_MUTATE = "pragma: no mutate"

COMPARE_SWAPS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
    ast.Lt: ("<", "<="),
    ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="),
    ast.GtE: (">=", ">"),
    ast.Is: (r"\bis\b", "is not"),
    ast.IsNot: (r"\bis\s+not\b", "is"),
    ast.In: (r"\bin\b", "not in"),
    ast.NotIn: (r"\bnot\s+in\b", "in"),
}
BINOP_SWAPS: dict[type[ast.operator], tuple[str, str]] = {
    ast.Add: ("+", "-"),
    ast.Sub: ("-", "+"),
    ast.Mult: ("*", "/"),
    ast.Div: ("/", "*"),
    ast.FloorDiv: ("//", "/"),
    ast.Mod: ("%", "*"),
    ast.Pow: ("**", "*"),
    ast.BitOr: ("|", "&"),
    ast.BitAnd: ("&", "|"),
    ast.BitXor: ("^", "|"),
    ast.LShift: ("<<", ">>"),
    ast.RShift: (">>", "<<"),
}
BOOLOP_SWAPS: dict[type[ast.boolop], tuple[str, str]] = {
    ast.And: (r"\band\b", "or"),
    ast.Or: (r"\bor\b", "and"),
}


@dataclass(frozen=True)
class Mutant:
    """One edit of a module's source.

    Attributes:
        line: the 1-based line the edit starts on.
        first_line: the first line of the edited node (a statement or expression).
        end_line: the node's last line: tests that ran any line in between see it.
        function: the enclosing function's qualified name, or ``<module>``.
        runtime: False when the edited code runs at import (module or class
            level, defaults, decorators): every test that touches the module
            can see it, not only those that execute the line.
        what: a short description (``'<' -> '<='``, ``statement deleted``).
        before: the original text of the edited line, stripped.
        previous: the nearest non-blank line above it, stripped (tells apart
            two identical lines in one function).
        after: the same line in the mutant, stripped.
        source: the whole mutated source.
        statement: the first and last line of the innermost statement holding
            the edit. Some nodes start no line event of their own (a constant
            dict key on its own line), so when no test ran the node's lines,
            the tests that ran its statement are the ones that see it.
    """

    line: int
    first_line: int
    end_line: int
    function: str
    runtime: bool
    what: str
    before: str
    after: str
    previous: str
    source: str
    statement: tuple[int, int] = (0, 0)


class _Text:
    """The source, addressable by the (line, UTF-8 column) positions `ast` gives."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col: int) -> int:
        text = self.lines[line - 1]
        return self.starts[line - 1] + len(text.encode()[:col].decode())

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _blank_comments(text: str) -> str:
    """The text with comments blanked out, same length, so searches skip them."""
    return re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), text)


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_logging_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOG_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in LOGGER_NAMES
    )


def _is_dataclass_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "dataclass") or (
        isinstance(func, ast.Attribute) and func.attr == "dataclass"
    )


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


class _Collector:
    """Walks the tree, noting each edit as (start, end, replacement, what, node)."""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.edits: list[tuple[int, int, str, str, ast.AST, str, bool, tuple[int, int]]] = []
        self.statement_lines: tuple[int, int] = (0, 0)
        self.scope: list[str] = []
        self.function: str = "<module>"
        self.runtime = False

    # --- recording -------------------------------------------------------
    def _edit(self, start: int, end: int, new: str, what: str, node: ast.AST) -> None:
        self.edits.append(
            (start, end, new, what, node, self.function, self.runtime, self.statement_lines)
        )

    def _operator(
        self, left: ast.AST, right: ast.AST, pattern: str, new: str, node: ast.AST
    ) -> None:
        """Replace the operator found between two operands (outside comments)."""
        gap_start, gap_end = self.text.end(left), self.text.start(right)
        gap = self.text.source[gap_start:gap_end]
        regex = pattern if pattern.startswith("\\b") else re.escape(pattern)
        match = re.search(regex, _blank_comments(gap))
        if match is None:
            return
        old = match.group()
        self._edit(
            gap_start + match.start(), gap_start + match.end(), new, f"{old!r} -> {new!r}", node
        )

    # --- walking ---------------------------------------------------------
    def statements(self, body: list[ast.stmt]) -> None:
        for index, stmt in enumerate(body):
            if index == 0 and _is_docstring(stmt):
                continue
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        saved = self.statement_lines
        self.statement_lines = (stmt.lineno, stmt.end_lineno or stmt.lineno)
        try:
            self._statement(stmt)
        finally:
            self.statement_lines = saved

    def _statement(self, stmt: ast.stmt) -> None:
        if _is_type_checking(stmt):
            return
        line_text = self.text.lines[stmt.lineno - 1]
        if NO_MUTATE in line_text:
            return
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(stmt)
            return
        if isinstance(stmt, ast.ClassDef):
            for decorator in stmt.decorator_list:
                self.expression(decorator)
            for base in stmt.bases:
                self.expression(base)
            self.scope.append(stmt.name)
            self.statements(stmt.body)
            self.scope.pop()
            return
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
        ):
            return
        if isinstance(stmt, ast.Expr) and (
            _is_logging_call(stmt.value)
            or _is_docstring(stmt)  # an attribute's docstring, after the attribute
            or (isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis)
        ):
            return
        if (
            self.runtime
            and isinstance(
                stmt,
                (
                    ast.Expr,
                    ast.Raise,
                    ast.Assign,
                    ast.AugAssign,
                    ast.AnnAssign,
                    ast.Continue,
                    ast.Break,
                    ast.If,
                    ast.For,
                    ast.While,
                    ast.Delete,
                    ast.With,
                ),
            )
            and not (isinstance(stmt, ast.AnnAssign) and stmt.value is None)
        ):
            self._edit(
                self.text.start(stmt), self.text.end(stmt), "pass", "statement deleted", stmt
            )
        if (
            self.runtime
            and isinstance(stmt, ast.Return)
            and stmt.value is not None
            and not (isinstance(stmt.value, ast.Constant) and stmt.value.value is None)
        ):
            self._edit(
                self.text.start(stmt.value),
                self.text.end(stmt.value),
                "None",
                "return value -> None",
                stmt,
            )
        # conditions
        if isinstance(stmt, (ast.If, ast.While)):
            self._negate(stmt.test)
        for field, value in ast.iter_fields(stmt):
            if field in {"annotation", "returns", "type_comment"}:
                continue
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    self.statements_no_doc(value)
                else:
                    for item in value:
                        if isinstance(item, ast.AST):
                            self.node(item)
            elif isinstance(value, ast.AST):
                self.node(value)

    def statements_no_doc(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt)

    def _function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in fn.decorator_list:
            self.expression(decorator)
        for default in [*fn.args.defaults, *fn.args.kw_defaults]:
            if default is not None:
                self.expression(default)
        saved = (self.function, self.runtime)
        self.scope.append(fn.name)
        self.function, self.runtime = ".".join(self.scope), True
        self.statements(fn.body)
        self.scope.pop()
        self.function, self.runtime = saved

    def node(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr):
            self.expression(node)
        elif isinstance(node, ast.ExceptHandler):
            if node.type is not None:
                self.expression(node.type)
            self.statements_no_doc(node.body)
        elif isinstance(node, ast.comprehension):
            self.expression(node.iter)
            for condition in node.ifs:
                self._negate(condition)
                self.expression(condition)
        elif isinstance(node, (ast.withitem, ast.keyword, ast.arguments, ast.match_case)):
            for child in ast.iter_child_nodes(node):
                self.node(child)
        elif isinstance(node, ast.stmt):
            self.statement(node)

    def _negate(self, test: ast.expr) -> None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return  # dropping the `not` is the same mutant
        start, end = self.text.start(test), self.text.end(test)
        self._edit(start, end, f"not ({self.text.source[start:end]})", "condition negated", test)

    def expression(self, node: ast.expr) -> None:
        if isinstance(node, ast.JoinedStr) or _is_logging_call(node):
            return
        if NO_MUTATE in self.text.lines[node.lineno - 1]:
            return
        if isinstance(node, ast.Call) and _is_dataclass_call(node):
            # frozen=: mypy refuses assignments to a frozen dataclass's fields, so the
            # static tier checks that flag; the other arguments are mutated as usual.
            for argument in [*node.args, *(k.value for k in node.keywords if k.arg != "frozen")]:
                self.expression(argument)
            return
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for index, op in enumerate(node.ops):
                pattern, new = COMPARE_SWAPS[type(op)]
                self._operator(operands[index], operands[index + 1], pattern, new, node)
        elif isinstance(node, ast.BoolOp):
            pattern, new = BOOLOP_SWAPS[type(node.op)]
            for left, right in zip(node.values, node.values[1:], strict=False):
                self._operator(left, right, pattern, new, node)
        elif isinstance(node, ast.BinOp):
            swap = BINOP_SWAPS.get(type(node.op))
            if swap is not None:
                self._operator(node.left, node.right, swap[0], swap[1], node)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            self._edit(
                self.text.start(node),
                self.text.start(node.operand),
                "",
                "unary operator dropped",
                node,
            )
        elif isinstance(node, ast.IfExp):
            self._negate(node.test)
        elif isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, ast.Lambda):
            saved = self.runtime
            self.runtime = True
            self.expression(node.body)
            self.runtime = saved
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.AST):
                self.node(child)

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        start, end = self.text.start(node), self.text.end(node)
        if isinstance(value, bool):
            self._edit(start, end, repr(not value), f"{value!r} -> {not value!r}", node)
        elif isinstance(value, int | float):
            new = value + 1
            self._edit(start, end, repr(new), f"{value!r} -> {new!r}", node)
        elif isinstance(value, str):
            new_text = repr(f"XX{value}XX")
            self._edit(start, end, new_text, "string changed", node)


def mutants_of(source: str) -> Iterator[Mutant]:
    """Every mutant of this source, in source order; each one parses."""
    tree = ast.parse(source)
    text = _Text(source)
    collector = _Collector(text)
    collector.statements(tree.body)
    seen: set[str] = set()
    for start, end, new, what, node, function, runtime, statement in sorted(
        collector.edits, key=lambda e: (e[0], e[1])
    ):
        mutated = source[:start] + new + source[end:]
        if mutated in seen:
            continue
        try:
            compile(mutated, "<mutant>", "exec", flags=ast.PyCF_ONLY_AST)
        except SyntaxError:
            continue
        seen.add(mutated)
        line = bisect.bisect_right(text.starts, start)
        first = min(line, node.lineno)  # type: ignore[attr-defined]
        end_line = max(line, node.end_lineno)  # type: ignore[attr-defined]
        before = text.lines[line - 1].strip()
        after = mutated.splitlines()[line - 1].strip()
        above = [t.strip() for t in text.lines[: line - 1] if t.strip()]
        previous = above[-1] if above else ""
        yield Mutant(
            line,
            first,
            end_line,
            function,
            runtime,
            what,
            before,
            after,
            previous,
            mutated,
            statement,
        )
