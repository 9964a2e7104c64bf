"""Mistakes and failures: one-line usage errors that change nothing, and clear remote errors."""

from __future__ import annotations

import threading

import pytest
from IPython.core.error import UsageError
from waiting import wait_until

from ipydistribute.core.errors import CellError
from ipydistribute.kernel_magics.syntax import CellSyntaxError

BAD_LINES = [
    ("x range(3)", "missing `in`"),
    ("x in range(3", "unbalanced brackets"),
    ("x in range(3) --bogus 1", "unrecognized arguments"),
    ("x in range(3) --batch 0", "--batch must be at least 1"),
    ("x in range(3) --batch lots", "--batch takes a number"),
    ("x in range(3) --gpu many", "--gpu takes a number"),
    ("x in range(3) --gpu -1", "--gpu must be more than 0"),
    ("x in range(3) --reduce 42", "not a callable"),
    ("x in range(3) --reduce no_such_name", "--reduce `no_such_name` failed: NameError"),
    ("x in no_such_items", "the iterable `no_such_items` failed: NameError"),
    ("x in 42", "cannot be iterated"),
    ("x in 'abc'", "once per character"),
    ("x + 1 in range(3)", "is not a loop variable"),
    ("x in range(3) --out 1abc", "is not a variable name"),
    ("x in range(3) --on-error ignore", "--on-error must be one of"),
    ("x in range(3) --retries -2", "--retries must be between 0 and 1000"),
    ("x in range(3) --resources GPU", "--resources takes NAME=AMOUNT"),
    ("x in range(3) --resources NOPE=1", "no worker offers NOPE=1"),
    ("x in range(3) --workers nobody", "no worker matches --workers nobody"),
    ("x in range(3) --view fancy", "--view takes"),
    ("x in range(3) --name 9lives", "--name '9lives'"),
    ("x in range(3) --all", "--all runs the cell once per worker"),
    ("x in  ", "missing the iterable"),
    (" in range(3)", "missing the loop variable"),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_bad_magic_line_is_one_usage_error_and_changes_nothing(ip, line, message):
    ip.user_ns["untouched"] = "before"
    before = dict(ip.user_ns)
    with pytest.raises(UsageError, match=_re(message)) as info:
        ip.run_cell_magic("distribute", line + " --out untouched" if "--out" not in line else line, "x")
    assert "\n" not in str(info.value)
    assert ip.user_ns["untouched"] == "before"
    assert set(ip.user_ns) == set(before)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_reduce_needs_a_last_expression(ip):
    with pytest.raises(UsageError, match="last line must be an expression"):
        ip.run_cell_magic("distribute", "x in range(3) --reduce sum", "y = x")


def test_line_magic_errors(ip):
    with pytest.raises(UsageError, match="missing `for"):
        ip.run_line_magic("distribute", "x * 2")
    with pytest.raises(UsageError, match="without `if`"):
        ip.run_line_magic("distribute", "x for x in range(4) if x")


def test_syntax_error_points_at_the_cell_line_before_submitting(ip, client):
    before = set(client.who_has())
    with pytest.raises(CellSyntaxError) as info:
        ip.run_cell_magic("distribute", "x in range(3)", "y = 1\ny = (x +\n")
    assert info.value.error.filename.startswith("<cell ")
    assert info.value.error.lineno in (2, 3)
    shown = "\n".join(info.value._render_traceback_())  # as IPython shows a plain cell's
    assert "SyntaxError" in shown and "y = (x +" in shown
    assert "ipydistribute" not in shown and "Traceback" not in shown
    assert set(client.who_has()) == before


def test_unpicklable_capture_names_the_variable(ip, tmp_path):
    ip.user_ns["lock"] = threading.Lock()
    with pytest.raises(UsageError, match=r"cannot send `lock` \(a _thread.lock\)"):
        ip.run_cell_magic("distribute", "x in range(3)", "lock\nx")


def test_unpicklable_item_is_named_and_nothing_is_left_running(ip, client):
    items = list(range(3000))
    items[2500] = threading.Lock()
    ip.user_ns["items"] = items
    message = r"item 2,500 \(<unlocked _thread.lock object.*, a _thread.lock\) cannot be sent"
    with pytest.raises(UsageError, match=message):
        ip.run_cell_magic("distribute", "x in items --out result --view none", "x")
    assert "result" not in ip.user_ns
    wait_until(lambda: client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0, 10,
               "the probe tasks already sent released")


def test_task_error_shows_item_worker_and_cell_frames(ip):
    cell = "def check(v):\n    if v == 7:\n        raise ValueError(f'bad value {v}')\n    return v\ncheck(x)"
    with pytest.raises(CellError) as info:
        ip.run_cell_magic("distribute", "x in range(20) --out result", cell)
    err = info.value
    failure = err.failures[0]
    assert failure.index == 7 and failure.item == "7"
    assert failure.exc_type == "ValueError" and failure.message == "bad value 7"
    assert failure.worker.startswith("tcp://127.0.0.1:")
    assert isinstance(err.exceptions[0], ValueError)
    text = "\n".join(err._render_traceback_())
    assert "line 3, in check" in text and "raise ValueError(f'bad value {v}')" in text
    assert "line 5" in text and "check(x)" in text
    assert "ipydistribute/core" not in text  # the engine's frames are not shown
    assert "result" not in ip.user_ns


def test_many_failures_show_the_first_few_and_a_count(ip):
    with pytest.raises(CellError) as info:
        ip.run_cell_magic("distribute", "x in range(40) --batch 1 --on-error raise", "1 / 0")
    lines = info.value._render_traceback_()
    assert lines[0].startswith("CellError:")
    assert sum(line.startswith("ZeroDivisionError in item") for line in lines) <= 3


def test_failed_reducer_is_reported(ip):
    ip.run_cell("def picky(values):\n    raise RuntimeError('cannot add these')\n")
    with pytest.raises(CellError, match="cannot add these"):
        ip.run_cell_magic("distribute", "x in range(10) --reduce picky", "x")


def test_error_in_unpacking_the_loop_variable(ip):
    with pytest.raises(CellError, match="unpack"):
        ip.run_cell_magic("distribute", "a, b in [1, 2]", "a")


def test_cluster_still_usable_after_errors(ip):
    with pytest.raises(CellError):
        ip.run_cell_magic("distribute", "x in range(5)", "1 / 0")
    assert ip.run_cell_magic("distribute", "x in range(5)", "x") == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("reducer", ["statistics.fmean", "statistics.median", "len", "np.mean"])
def test_reducers_known_not_to_be_associative_are_refused(ip, reducer):
    ip.run_cell("import statistics\nimport numpy as np")
    with pytest.raises(UsageError, match="is not associative"):
        ip.run_cell_magic("distribute", f"x in range(10) --reduce {reducer} --out mean", "x")
    assert "mean" not in ip.user_ns


def test_iterable_that_raises_half_way_stores_nothing(ip):
    ip.run_cell("def flaky():\n    for i in range(50):\n        if i == 30:\n"
                "            raise IOError('disk gone')\n        yield i\n")
    with pytest.raises(UsageError, match=r"the iterable raised after .* OSError: disk gone"):
        ip.run_cell_magic("distribute", "x in flaky() --out got --batch 10", "x")
    assert "got" not in ip.user_ns


def test_result_too_large_suggests_keep(ip):
    import dask

    with dask.config.set({"ipydistribute.result-limit": "1MiB"}):
        with pytest.raises(UsageError, match="more than the 1.00 MiB ipydistribute.result-limit.*--keep"):
            ip.run_cell_magic("distribute", "x in range(4) --out big", "b'x' * 600_000")
    assert "big" not in ip.user_ns
