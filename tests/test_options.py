"""The one table of options (core/options.py) against what it produces: the magic's arguments,
distribute()'s keywords, RunOptions and the doc. No cluster: every check here runs before one is
needed."""

from __future__ import annotations

import dataclasses
import inspect
import math
from pathlib import Path

import pytest
from IPython.core.error import UsageError

import ipydistribute
from ipydistribute.core import options as table
from ipydistribute.core.errors import SpecError
from ipydistribute.kernel_magics.distribute import DistributeMagics
from ipydistribute.kernel_magics.parse import parse_options

pytestmark = pytest.mark.fast  # no cluster, kernel or browser: `make test-fast`

DOC = Path(__file__).parent.parent / "docs" / "distribute.md"


def test_the_docs_options_table_is_the_one_the_table_makes():
    assert table.markdown_table() in DOC.read_text(), (
        "docs/distribute.md's options table is out of step: paste ipydistribute.core.options.markdown_table()")


def test_the_magic_has_an_argument_for_each_option_and_no_other():
    parser = DistributeMagics.distribute.parser
    flags = {s for action in parser._actions for s in action.option_strings if s.startswith("--")}
    assert flags == {option.flag for option in table.OPTIONS}
    for option in table.OPTIONS:
        assert option.help.split(" ")[0] in parser.format_help()


def test_distribute_takes_the_tables_python_options_with_their_defaults():
    signature = inspect.signature(ipydistribute.distribute)
    keywords = {n: p for n, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}
    python = {o.keyword: o for o in table.OPTIONS if o.scope != "cell"}
    assert set(keywords) == set(python) | {"wait"}
    for name, option in python.items():  # the same default once checked ("auto" is None, 0 is 0.0)
        check = option.check or (lambda v: v)
        assert check(keywords[name].default) == check(option.default), name


def test_run_options_has_a_field_for_each_run_option_with_the_tables_default():
    fields = {f.name: f for f in dataclasses.fields(table.RunOptions)}
    made = table.RunOptions()
    for option in table.OPTIONS:
        assert (option.scope == "run") == (option.keyword in fields), option.keyword
        if option.scope == "run":
            check = option.check or (lambda v: v)
            assert getattr(made, option.keyword) == check(option.default), option.keyword


BAD_VALUES = [
    ("gpu", float("nan"), "nan"), ("gpu", -1, "-1"), ("gpu", math.inf, "inf"),
    ("batch", 0, "0"), ("batch", "many", "many"), ("batch", 2.5, "2.5"),
    ("retries", -2, "-2"), ("timeout", 0, "0"), ("timeout", "2", None),
    ("on_error", "ignore", "ignore"), ("resources", {"GPU": float("nan")}, "GPU=nan"),
    ("workers", [], ",,,"), ("seed", -1, "-1"), ("name", "9lives", "9lives"),
]


@pytest.mark.parametrize("keyword, value, text", BAD_VALUES)
def test_a_bad_value_is_refused_by_the_api_and_the_magic_alike(keyword, value, text):
    flag = table.BY_KEYWORD[keyword].flag
    with pytest.raises(SpecError) as from_python:
        ipydistribute.distribute(abs, range(3), **{keyword: value})
    assert flag in str(from_python.value) and "\n" not in str(from_python.value)
    if text is not None:
        args = parse_options(DistributeMagics.distribute, f"{flag} {text}")
        with pytest.raises(SpecError) as from_magic:
            table.BY_KEYWORD[keyword].from_text(getattr(args, keyword))
        assert flag in str(from_magic.value)


def test_the_magic_refuses_a_nan_gpu_before_it_needs_a_cluster(_ipython):
    _ipython.extension_manager.load_extension("ipydistribute")
    with pytest.raises(UsageError, match="--gpu must be more than 0"):
        _ipython.run_cell_magic("distribute", "x in range(3) --gpu nan", "x")


def test_collect_with_a_reducer_is_refused_whoever_makes_the_options():
    with pytest.raises(SpecError, match="--on-error collect keeps errors"):
        table.RunOptions(reduce=sum, on_error="collect")


def test_the_checks_normalise_the_values_both_entries_give():
    made = table.make_run_options({"batch": "auto", "gpu": 1, "resources": {"MEMORY": 4}, "workers": ("a",)})
    assert (made.batch, made.gpu, made.resources, made.workers) == (None, 1.0, {"MEMORY": 4.0}, ["a"])
    args = parse_options(DistributeMagics.distribute, "--batch 12 --gpu --resources MEMORY=4 --workers a,b")
    values = {o.keyword: o.from_text(getattr(args, o.keyword)) for o in table.OPTIONS}
    made = table.make_run_options(values)
    assert (made.batch, made.gpu, made.resources, made.workers) == (12, 1.0, {"MEMORY": 4.0}, ["a", "b"])
