"""A notebook cell as code that runs once per item on a worker.

The cell keeps notebook semantics: it runs as module-level code in a fresh namespace per item,
so functions and classes defined in the cell see its other names exactly as they would in the
notebook. The loop variable is assigned first; the last expression, if any, is the item's value.
"""

from __future__ import annotations

import ast
import copy
import dis
import hashlib
import linecache
import types
from dataclasses import dataclass
from typing import Any

from .errors import EXPRESSION_FUNCTION, VALUES_FUNCTION, SpecError

#: Name the item is bound to before the loop target is unpacked from it.
ITEM_NAME = "__ipydistribute_item__"

# Bytecodes that read a name from the module namespace (3.10 to 3.13).
_GLOBAL_LOADS = frozenset(
    {"LOAD_NAME", "LOAD_GLOBAL", "LOAD_FROM_DICT_OR_GLOBALS", "LOAD_CLASSDEREF", "DELETE_NAME"}
)


def parse_target(text: str) -> ast.expr:
    """Check the loop variable of ``VAR in ITERABLE``: a name or a (nested) tuple of names."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise SpecError(f"{text.strip()!r} is not a loop variable: write a name, or names like `i, row`") from None

    def valid(n: ast.expr) -> bool:
        if isinstance(n, ast.Name):
            return True
        if isinstance(n, ast.Starred):
            return valid(n.value)
        if isinstance(n, (ast.Tuple, ast.List)):
            return bool(n.elts) and all(valid(e) for e in n.elts)
        return False

    if not valid(node):
        raise SpecError(f"{text.strip()!r} is not a loop variable: write a name, or names like `i, row`")
    return node


def target_names(target: ast.expr | None) -> frozenset[str]:
    if target is None:
        return frozenset()
    return frozenset(n.id for n in ast.walk(target) if isinstance(n, ast.Name))


def _read_names(code: types.CodeType) -> set[str]:
    names = {i.argval for i in dis.get_instructions(code) if i.opname in _GLOBAL_LOADS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _read_names(const)
    return {n for n in names if isinstance(n, str)}


@dataclass(frozen=True)
class CellCode:
    """The cell's source, checked and analysed on the client; compiled again on each worker."""

    source: str
    filename: str
    target: str | None
    has_value: bool
    read_names: frozenset[str]
    token: str

    @classmethod
    def from_source(cls, source: str, filename: str, target: str | None = None) -> CellCode:
        """Check ``source`` (raises ``SyntaxError`` with the cell's own line) and analyse it."""
        tree = ast.parse(source, filename=filename, mode="exec")
        if target is not None:
            parse_target(target)
        has_value = bool(tree.body) and isinstance(tree.body[-1], ast.Expr)
        body, value = _split(tree, has_value)
        read = _read_names(compile(body, filename, "exec"))
        if value is not None:
            read |= _read_names(compile(value, filename, "eval"))
        read -= target_names(parse_target(target)) if target else set()
        token = hashlib.sha1(f"{filename}\0{target}\0{source}".encode()).hexdigest()[:16]
        return cls(source, filename, target, has_value, frozenset(read), token)

    def register_source(self) -> None:
        """Make the cell's lines known to ``linecache``, for tracebacks and pdb's ``list``."""
        lines = [line + "\n" for line in self.source.splitlines()]
        linecache.cache[self.filename] = (len(self.source), None, lines, self.filename)

    def compile(self) -> CompiledCell:
        tree = ast.parse(self.source, filename=self.filename, mode="exec")
        body, value = _split(tree, self.has_value)
        assign = None
        if self.target is not None:
            assign = compile(f"{self.target.strip()} = {ITEM_NAME}", "<%%distribute line>", "exec")
        expression = values = None
        if value is not None and not body.body:
            expression = _expression_function(value, self.target, self.filename)
            values = _values_function(value, self.target, self.filename)
        return CompiledCell(
            assign=assign,
            body=compile(body, self.filename, "exec"),
            value=compile(value, self.filename, "eval") if value is not None else None,
            expression=expression,
            values=values,
        )


def _split(tree: ast.Module, has_value: bool) -> tuple[ast.Module, ast.Expression | None]:
    if not has_value:
        return tree, None
    last = tree.body[-1]
    assert isinstance(last, ast.Expr)
    body = ast.Module(body=tree.body[:-1], type_ignores=[])
    return body, ast.Expression(body=last.value)


def _expression_function(value: ast.Expression, target: str | None, filename: str) -> types.CodeType:
    """The loop over a batch for a cell that is one expression::

        def f(items, offset, append):
            for TARGET in islice(items, offset, None):
                append(EXPR)

    Such a cell cannot assign names at module level, so running it this way in a shared
    namespace is the same as running it as module code in a fresh namespace per item, and
    about 20x cheaper per item. The loop variable is a local of the loop, as in a comprehension.
    """
    names = "__ipyd_items, __ipyd_offset, __ipyd_append"
    loop_target = _loop_target(target)
    tree, function = _wrapper(f"def {EXPRESSION_FUNCTION}({names}, __ipyd_islice=__import__('itertools').islice):\n"
                              f"    for {loop_target} in __ipyd_islice(__ipyd_items, __ipyd_offset, None):\n"
                              f"        __ipyd_append(None)\n", filename)
    loop = function.body[0]
    assert isinstance(loop, ast.For)
    call = loop.body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    call.value.args = [value.body]
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec")


def _loop_target(target: str | None) -> str:
    """What the wrappers' loops assign each item to: the magic line's target, else one name."""
    return f"({target.strip()})" if target is not None else ITEM_NAME


def _wrapper(source: str, filename: str) -> tuple[ast.Module, ast.FunctionDef]:
    """The parsed wrapper function around a cell's expression, its own lines the cell's first."""
    tree = ast.parse(source, filename)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    for node in ast.walk(function):
        if isinstance(node, (ast.stmt, ast.expr, ast.arg)):
            node.lineno = node.end_lineno = 1
    return tree, function


def _values_function(value: ast.Expression, target: str | None, filename: str) -> types.CodeType:
    """The values of some items of a cell that is one expression, in one comprehension::

        def f(items):
            return [EXPR for TARGET in items]

    The interpreter appends each value itself: about 20% less per item than the loop above,
    whose ``append`` is a call. A failure loses the values made before it in the same call, so
    only runs that end at their first failure use it (core/task.py).
    """
    loop_target = _loop_target(target)
    tree, function = _wrapper(f"def {VALUES_FUNCTION}(__ipyd_items):\n"
                              f"    return [None for {loop_target} in __ipyd_items]\n", filename)
    returned = function.body[0]
    assert isinstance(returned, ast.Return) and isinstance(returned.value, ast.ListComp)
    returned.value.elt = copy.deepcopy(value.body)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec")


@dataclass
class CompiledCell:
    """The code objects of a cell, made once per worker per run."""

    assign: types.CodeType | None
    body: types.CodeType
    value: types.CodeType | None
    expression: types.CodeType | None = None  # set when the cell is a single expression
    values: types.CodeType | None = None  # ... and the comprehension form of it

    def loop(self, namespace: dict[str, Any]) -> Any:
        """The one-expression cell as a loop over a batch, reading names from ``namespace``."""
        assert self.expression is not None
        exec(self.expression, namespace)
        return namespace.pop(EXPRESSION_FUNCTION)

    def values_function(self, namespace: dict[str, Any]) -> Any:
        """The one-expression cell as a function of an iterable of items that returns their
        values, reading names from ``namespace``."""
        assert self.values is not None
        exec(self.values, namespace)
        return namespace.pop(VALUES_FUNCTION)

    def run(self, namespace: dict[str, Any], item: Any = None) -> Any:
        """Run the cell once in ``namespace`` (which it may change) and return its value."""
        __tracebackhide__ = True  # IPython's tracebacks and pdb start at the cell's own frame
        if self.assign is not None:
            namespace[ITEM_NAME] = item
            exec(self.assign, namespace)
            del namespace[ITEM_NAME]
        exec(self.body, namespace)
        return eval(self.value, namespace) if self.value is not None else None
