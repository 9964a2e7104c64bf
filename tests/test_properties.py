"""Property tests for the parts that take user text: whatever is typed, the only exceptions are
the ones the notebook shows as one clear line (SpecError / UsageError) or as the user's own
SyntaxError, never an internal crash (IndexError, RecursionError, ValueError, AttributeError...)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from ipydistribute.core.cellfunc import CellCode, parse_target
from ipydistribute.core.errors import SpecError
from ipydistribute.core.options import OPTIONS
from ipydistribute.kernel_magics.distribute import DistributeMagics
from ipydistribute.kernel_magics.parse import (
    parse_batch,
    parse_comprehension,
    parse_loop,
    parse_options,
    parse_resources,
    split_options,
)

ALLOWED = (SpecError, UsageError, SyntaxError)
SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of real magic lines, shuffled together: finds more than uniform random text does.
FRAGMENTS = [
    "x", "i, row", "*rest", "in", " in ", "range(3)", "items", "for", " for ", "if", "--", "-", "--out",
    "--batch", "--reduce", "sum", "--gpu", "--resources", "GPU=1", "--workers", "cpu-0,", "--keep",
    "--nowait", "--retries", "-1", "0", "1e309", "10**100", "(", ")", "[", "]", "{", "}", "'", '"',
    "'''", "\\", "#", "\n", "\t", " ", ",", "=", ":", "lambda", "λ", "ünïcode", "\x00", "\ufeff",
    "async", "await", "yield", ";", "%%distribute", "!", "$x", "@", "...", "f'{x}'", "b'\\xff'",
]
line_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join),
)
cell_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS + ["x\n", "y = x\n", "def f():\n", "    return x\n",
                                          "class C:\n", "    pass\n", "x +", "(x\n"]),
             max_size=20).map("".join),
)

pytestmark = pytest.mark.fast  # no cluster, kernel or browser: `make test-fast`


def _parse_line(line: str, cell: bool) -> None:
    """What %%distribute does with its line before it touches the namespace or the cluster."""
    head, option_text = split_options(line)
    args = parse_options(DistributeMagics.distribute, option_text)
    parse_loop(head) if cell else parse_comprehension(head)
    for option in OPTIONS:
        if option.keyword not in ("reduce", "checkpoint", "view"):  # evaluated, written, configured: not parsing
            option.from_text(getattr(args, option.keyword))


@SETTINGS
@given(line_text, st.booleans())
@example("x in range(3", True)
@example("x in range(3) --out 'unclosed", True)
@example("x in (" * 200, True)
@example("x in [" + "(" * 1000, True)
@example("\x00 in items", True)
@example("x in items --batch 99999999999999999999999999", True)
@example("x for x in " + "[" * 300 + "]" * 300, False)
@example("x in items # a comment --out y", True)
def test_magic_line_parser_raises_only_usage_errors(line, cell):
    try:
        _parse_line(line, cell)
    except ALLOWED:
        pass


@pytest.mark.parametrize("line", ["x in range(3) --out 'unclosed", 'x in items --name "a'])
def test_unclosed_quote_in_options_is_a_usage_error(line):
    with pytest.raises(ALLOWED):
        _parse_line(line, True)


@SETTINGS
@given(cell_text, st.one_of(st.none(), st.sampled_from(["x", "i, row", "a, *b", "x["])))
@example("x +", "x")
@example("\x00", "x")
@example("(" * 300, None)
@example("x = (" + "[" * 2000 + "]" * 2000 + ")\nx", "x")
@example("return x", "x")
@example("yield x", "x")
@example("await x", "x")
@example("\tx\n y", None)
@example("def f():\nreturn 1", None)
def test_cell_transformation_raises_only_syntax_or_usage_errors(source, target):
    try:
        code = CellCode.from_source(source, "<cell prop>", target)
    except ALLOWED:
        return
    compiled = code.compile()  # what each worker does must not fail where the kernel succeeded
    assert compiled.body is not None


@SETTINGS
@given(st.text(max_size=40))
def test_loop_target_checks_raise_only_usage_errors(text):
    try:
        parse_target(text)
    except ALLOWED:
        pass


@SETTINGS
@given(st.text(max_size=60))
@example("GPU=nan")
@example("GPU=inf")
@example("=1")
@example(",,,")
def test_resources_and_batch_raise_only_usage_errors(text):
    for parse in (parse_resources, parse_batch):
        try:
            parse(text)
        except ALLOWED:
            pass


def test_resources_reject_nan_and_infinity():
    for text in ("GPU=nan", "GPU=inf"):
        with pytest.raises(SpecError):
            parse_resources(text)


@SETTINGS
@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12))
def test_unicode_identifiers_round_trip_as_loop_variables(name):
    assume(name.isidentifier())
    assume(name not in {"in", "for", "if", "is", "or", "and", "not", "None", "True", "False"})
    assume(not __import__("keyword").iskeyword(name))
    spec = parse_loop(f"{name} in range(3)")
    assert spec.iterable == "range(3)"
    code = CellCode.from_source(name, "<cell prop>", spec.target)
    assert code.has_value
    namespace: dict = {}
    assert code.compile().run(namespace, 2) == 2
