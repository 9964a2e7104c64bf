"""``--reduce`` takes a Python expression up to the next option, as users write it: unquoted
lambdas in the cell and the line magic, on the real cluster."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from IPython.core.error import UsageError

WORDS = ["a b a", "b c", "a", "c c c", "d"]


def word_count() -> Counter[str]:
    return sum((Counter(line.split()) for line in WORDS), Counter())


def test_an_unquoted_lambda_reducer_merges_counters_in_the_cell_magic(ip: Any) -> None:
    ip.user_ns.update(Counter=Counter, lines=WORDS)
    value = ip.run_cell_magic("distribute", "line in lines --reduce lambda cs: sum(cs, Counter()) --view none",
                              "Counter(line.split())")
    assert value == word_count()


def test_an_unquoted_lambda_reducer_before_other_options_in_the_line_magic(ip: Any) -> None:
    ip.user_ns["Counter"] = Counter
    ip.run_line_magic("distribute", "Counter(w.split()) for w in " + repr(WORDS)
                      + " --reduce lambda cs: sum(cs, Counter()) --out counts --batch 2 --view none")
    assert ip.user_ns["counts"] == word_count()


def test_a_lambda_with_brackets_and_keywords_and_the_quoted_form_still_work(ip: Any) -> None:
    pairs = [(i, (i * 7) % 5) for i in range(12)]
    ip.user_ns["pairs"] = pairs
    best = ip.run_cell_magic("distribute", "p in pairs --reduce lambda ps: max(ps, key=lambda q: (q[1], -q[0])) "
                             "--batch 3 --view none", "p")
    assert best == max(pairs, key=lambda q: (q[1], -q[0]))
    quoted = ip.run_cell_magic("distribute", 'p in pairs --view none --reduce "lambda ps: [q for q in ps][-1]"', "p")
    assert quoted == pairs[-1]


@pytest.mark.parametrize("line, says", [
    ("x in range(3) --reduce lambda cs sum(cs)", "--reduce `lambda cs sum(cs)` is not a Python expression"),
    ("x in range(3) --reduce --out y", "--reduce needs a callable"),
])
def test_a_reducer_that_does_not_parse_says_how_to_write_one(ip: Any, line: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("distribute", line, "x")
    message = str(info.value)
    assert says in message and "--reduce lambda cs: sum(cs, Counter())" in message
    assert "y" not in ip.user_ns
