"""Splitting the magic line: ``VAR in ITERABLE`` (or ``EXPR for VAR in ITERABLE``) and options.

The Python part is free text, so it is cut with Python's tokenizer: options start at the first
``--name`` at bracket depth 0; ``in`` is the first ``in`` keyword at depth 0.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from IPython.core.magic_arguments import parse_argstring

from ..core.cellfunc import parse_target
from ..core.errors import SpecError, shorten
from ..core.options import parse_batch, parse_resources

__all__ = ["LoopSpec", "parse_batch", "parse_comprehension", "parse_loop", "parse_options", "parse_resources",
           "split_options", "take_expression_option"]


@dataclass(frozen=True)
class LoopSpec:
    target: str | None  # None: no iterable (run once, or once per worker)
    iterable: str | None
    expression: str | None = None  # the line magic's EXPR


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        return [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        message = str(exc.args[0] if exc.args else exc)
        if "string" in message:
            raise SpecError(f"unclosed quote in {text.strip()!r}: close every string you open") from None
        if "EOF" in message or "unmatched" in message or "bracket" in message:
            raise SpecError(f"unbalanced brackets in {text.strip()!r}: close every ( [ {{ you open") from None
        raise SpecError(f"cannot read the magic line ({message}): check its brackets and quotes") from None


def _outside_brackets(tokens: list[tokenize.TokenInfo], begin: int = 0) -> Iterator[tuple[int, tokenize.TokenInfo]]:
    """The tokens from ``begin`` on at bracket depth 0 (brackets themselves left out); the one
    bracket scanner of the magic line. Raises at the end when the brackets do not balance."""
    depth = 0
    for i in range(begin, len(tokens)):
        tok = tokens[i]
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif depth == 0:
            yield i, tok
    if depth != 0:
        text = tokens[0].line if tokens else ""
        raise SpecError(f"unbalanced brackets in {text.strip()!r}: close every ( [ {{ you open")


def split_options(line: str) -> tuple[str, str]:
    """``'x in range(3) --out y'`` -> ``('x in range(3)', '--out y')``."""
    tokens = _tokens(line)
    for i, tok in _outside_brackets(tokens):
        if (tok.string == "-" and i + 1 < len(tokens) and tokens[i + 1].string == "-"
                and tokens[i + 1].start[1] == tok.end[1]
                and (tok.start[1] == 0 or line[tok.start[1] - 1].isspace())):
            column = tok.start[1]
            return line[:column].strip(), line[column:].strip()
    return line.strip(), ""


def _split_in(head: str) -> tuple[str, str] | None:
    for _, tok in _outside_brackets(_tokens(head)):
        if tok.type == tokenize.NAME and tok.string == "in":
            column = tok.start[1]
            return head[:column].strip(), head[tok.end[1]:].strip()
    return None


def parse_loop(head: str) -> LoopSpec:
    """``VAR in ITERABLE`` of the cell magic."""
    if not head:
        return LoopSpec(None, None)
    parts = _split_in(head)
    if parts is None:
        raise SpecError(f"missing `in` in {head!r}: write `%%distribute x in items [options]`")
    target, iterable = parts
    if not target:
        raise SpecError("missing the loop variable before `in`: write `%%distribute x in items`")
    if not iterable:
        raise SpecError(f"missing the iterable after `{target} in`: write `%%distribute {target} in items`")
    parse_target(target)
    _check_expression(iterable, "the iterable")
    return LoopSpec(target, iterable)


def parse_comprehension(head: str) -> LoopSpec:
    """``EXPR for VAR in ITERABLE`` of the line magic."""
    if not head:
        raise SpecError("write `%distribute EXPR for x in items`, e.g. `%distribute x * x for x in range(10)`")
    try:
        node = ast.parse(f"({head}\n)", mode="eval").body
    except SyntaxError:
        raise SpecError(f"{head!r} is not `EXPR for VAR in ITERABLE`: "
                        "write it like `%distribute x * x for x in range(10)`") from None
    if not isinstance(node, ast.GeneratorExp):
        raise SpecError(f"missing `for ... in ...` in {head!r}: write `%distribute x * x for x in range(10)`")
    if len(node.generators) != 1 or node.generators[0].ifs or node.generators[0].is_async:
        raise SpecError("one `for VAR in ITERABLE` without `if` is supported: filter the iterable itself, "
                        "e.g. `for x in [v for v in items if v > 0]`")
    source = f"({head}\n)"
    gen = node.generators[0]
    def segment(node: ast.AST) -> str | None:
        return ast.get_source_segment(source, node)

    return LoopSpec(segment(gen.target), segment(gen.iter), segment(node.elt))


def _check_expression(text: str, what: str) -> None:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"{what} `{text}` is not a Python expression ({exc.msg})") from None


#: Options whose value is a Python expression, taken up to the next option, quotes optional.
EXPRESSION_OPTIONS = ("reduce",)


def _is_option_start(tokens: list[tokenize.TokenInfo], i: int, text: str) -> bool:
    """``--name`` at ``tokens[i]``: two adjacent ``-`` then a name, after a space or at the start."""
    tok = tokens[i]
    return (tok.string == "-" and i + 2 < len(tokens) and tokens[i + 1].string == "-"
            and tokens[i + 1].start[1] == tok.end[1] and tokens[i + 2].type == tokenize.NAME
            and tokens[i + 2].start[1] == tokens[i + 1].end[1]
            and (tok.start[1] == 0 or text[tok.start[1] - 1].isspace()))


def take_expression_option(text: str, name: str) -> tuple[str | None, str]:
    """``'--reduce lambda cs: sum(cs, Counter()) --out t'`` -> ``('lambda cs: ...', '--out t')``.

    The value runs to the next ``--option`` at bracket depth 0, so a lambda needs no quotes; a
    quoted value (``--reduce "lambda v: ..."``) is unquoted.
    """
    if f"--{name}" not in text:
        return None, text
    flat = " ".join(text.splitlines())
    tokens = _tokens(flat)
    starts = [i for i in range(len(tokens)) if _is_option_start(tokens, i, flat)]
    for n, i in enumerate(starts):
        after = tokens[i + 2].end[1]
        if tokens[i + 2].string != name or (after < len(flat) and not flat[after].isspace()):
            continue
        begin = tokens[i].start[1]
        value_start = tokens[i + 2].end[1]
        later = set(starts[n + 1:])
        end = next((tok.start[1] for j, tok in _outside_brackets(tokens, i + 3) if j in later), len(flat))
        value = flat[value_start:end].strip()
        value_tokens = _tokens(value) if value else []
        if len(value_tokens) == 1 and value_tokens[0].type == tokenize.STRING:
            value = str(ast.literal_eval(value))
        return value, (flat[:begin] + " " + flat[end:]).strip()
    return None, text


def check_reducer(text: str) -> str:
    """The ``--reduce`` expression, checked as Python before anything runs."""
    if not text:
        raise SpecError("--reduce needs a callable: write `--reduce sum` or `--reduce lambda cs: sum(cs, Counter())`")
    try:
        ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"--reduce `{shorten(text, 80)}` is not a Python expression ({exc.msg}): write a "
                        "callable up to the next option, e.g. `--reduce sum` or "
                        "`--reduce lambda cs: sum(cs, Counter())`") from None
    return text


def parse_options(magic: Callable[..., Any], text: str) -> Any:
    """The options of ``magic`` from ``text``; quoting mistakes become one-line errors too.

    Options in :data:`EXPRESSION_OPTIONS` are cut out first (their value is Python, not words).
    """
    expressions: dict[str, str | None] = {}
    for name in EXPRESSION_OPTIONS:
        expressions[name], text = take_expression_option(text, name)
    try:
        args = parse_argstring(magic, text)
    except ValueError as exc:  # shlex: "No closing quotation", "No escaped character"
        raise SpecError(f"cannot read the options {shorten(text, 80)!r} ({exc}): close every quote") from None
    for name, value in vars(args).items():  # IPython keeps the quotes of '--reduce "lambda v: ..."'
        if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            setattr(args, name, value[1:-1])
    for name, value in expressions.items():
        if value is not None:
            setattr(args, name, check_reducer(value) if name == "reduce" else value)
    return args
