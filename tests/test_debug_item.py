"""Debugging a failed item: ``%debug`` and ``ItemFailure.rerun()`` re-run it in the kernel."""

from __future__ import annotations

import contextlib
import io
import sys
import traceback

import pytest

from ipydistribute.core.errors import CellError, SpecError

CHECK_CELL = """\
def check(v):
    y = v * scale
    if v == 7:
        raise ValueError(f'bad {y}')
    return y
check(x)
"""


def _fail(ip, magic_line: str, cell: str) -> CellError:
    """Run a failing cell as a notebook does (the shell shows the error and keeps it as the last one)."""
    result = ip.run_cell(f"%%distribute {magic_line}\n{cell}")
    assert isinstance(result.error_in_exec, CellError), result.error_in_exec
    return result.error_in_exec


def _debug(ip, commands: list[str]) -> str:
    """``%debug`` with pdb's commands typed on stdin; returns what it printed."""
    ip.InteractiveTB.pdb = None  # a new pdb, writing to the stdout redirected here
    out = io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO("".join(c + "\n" for c in commands))
    try:
        with contextlib.redirect_stdout(out):
            ip.run_line_magic("debug", "")
    finally:
        sys.stdin = stdin
        ip.InteractiveTB.pdb = None
    return out.getvalue()


def test_debug_opens_pdb_in_the_failed_items_frame_with_the_values_captured_at_submit(ip):
    ip.run_cell("scale = 10")
    err = _fail(ip, "x in range(20)", CHECK_CELL)
    assert "%debug re-runs item #7" in "\n".join(err._render_traceback_())
    ip.run_cell("scale = 99")  # changed after the run: the re-run must not see it
    printed = _debug(ip, ["p y", "p v * 1000", "where", "q"])
    lines = printed.splitlines()
    assert lines[0].startswith("%debug: re-running item #7 (7) of cell") and "in the kernel" in lines[0]
    assert "raise ValueError(f'bad {y}')" in printed  # pdb shows the failing line of the cell
    assert "\n70\n" in printed.replace("ipdb> ", "\n") and "7000" in printed
    assert "ipydistribute/core" not in printed  # the engine's frames are not in the stack
    assert isinstance(sys.last_value, ValueError)  # the item's error is now the last one


def test_rerun_raises_the_items_exception_with_the_cells_frames(ip):
    ip.run_cell("scale = 3")
    err = _fail(ip, "x in range(20)", CHECK_CELL)
    ip.run_cell("scale = 1000")
    with pytest.raises(ValueError, match="bad 21") as info:
        err.failures[0].rerun()
    frames = traceback.extract_tb(info.value.__traceback__)
    cell_frames = [f for f in frames if f.filename.startswith("<cell ")]
    assert [f.lineno for f in cell_frames] == [6, 4]
    assert frames[-1].line == "raise ValueError(f'bad {y}')"


def test_rerun_returns_the_value_when_the_failure_does_not_happen_here(ip):
    cell = ("import threading\n"
            "if threading.current_thread() is not threading.main_thread():\n"
            "    raise RuntimeError('only in a worker thread')\nx * 2")
    err = _fail(ip, "x in range(3) --batch 1", cell)
    assert err.failures[0].rerun() == err.failures[0].index * 2
    printed = _debug(ip, ["q"])
    assert "it ran without error here" in printed and "nothing to debug" in printed
    assert "ipdb>" not in printed


def test_collected_failures_can_be_rerun_and_a_generators_cannot(ip):
    values = ip.run_cell_magic("distribute", "x in [1, 0, 2] --on-error collect", "10 // x")
    assert values[0] == 10 and values[2] == 5
    with pytest.raises(ZeroDivisionError):
        values[1].rerun()
    _fail(ip, "x in (v for v in [1, 0, 2])", "10 // x")
    with pytest.raises(SpecError, match="came from a generator"):
        sys.last_value.failures[0].rerun()
    assert "came from a generator" in _debug(ip, ["q"])


def test_rerun_uses_the_names_an_all_cell_set_up_on_the_workers(ip):
    ip.run_cell_magic("distribute", "--all --view none", "debug_test_offset = 40")
    err = _fail(ip, "x in range(4)", "assert x + debug_test_offset < 42, x + debug_test_offset\nx")
    failure = err.failures[0]  # item 2 or 3, whichever failed first on its worker
    with pytest.raises(AssertionError, match=str(failure.index + 40)):
        failure.rerun()


def test_debug_after_a_failed_python_api_call(ip):
    ip.run_cell("import ipydistribute\n"
                "def risky(v):\n"
                "    half = v / 2\n"
                "    return 1 / (v - 3)\n")
    result = ip.run_cell("ipydistribute.distribute(risky, range(6))")
    assert isinstance(result.error_in_exec, CellError)
    printed = _debug(ip, ["p half", "p v", "q"])
    assert printed.splitlines()[0].startswith("%debug: re-running item #3 (3) of distribute")
    assert "\n1.5\n" in printed.replace("ipdb> ", "\n") and "\n3\n" in printed.replace("ipdb> ", "\n")


def test_debug_of_any_other_error_is_ipythons(ip):
    ip.run_cell("def plain(a):\n    b = a + 1\n    return b / 0\nplain(41)")
    printed = _debug(ip, ["p b", "q"])
    assert "re-running" not in printed
    assert "\n42\n" in printed.replace("ipdb> ", "\n")


def test_unloading_gives_debug_back_to_ipython(ip):
    from IPython.core.magics import ExecutionMagics

    from ipydistribute.core.errors import ItemFailure
    from ipydistribute.core.replay import ItemReplay
    from ipydistribute.core.task import Payload
    from ipydistribute.kernel_magics.debug_magic import DebugMagics, install_debug, uninstall_debug

    magics = ip.magics_manager.magics
    assert isinstance(magics["line"]["debug"].__self__, DebugMagics)
    install_debug(ip)  # loading twice keeps IPython's as the fallback
    assert isinstance(magics["line"]["debug"].__self__.ipython_debug.__self__, ExecutionMagics)
    failure = ItemFailure(1, "2", "tcp://w", "ValueError", "bad")
    replay = ItemReplay(None, Payload(token="0badf00d", label="cell1"), [1, 2], "map")
    assert replay.hint(failure) == "%debug re-runs item #1 here in the kernel and opens pdb at its failing line."
    uninstall_debug(ip)
    try:
        assert isinstance(magics["line"]["debug"].__self__, ExecutionMagics)
        assert isinstance(magics["cell"]["debug"].__self__, ExecutionMagics)
        assert replay.hint(failure).startswith("After `%load_ext ipydistribute`, %debug re-runs item #1")
    finally:
        install_debug(ip)


def test_a_failure_from_elsewhere_says_it_cannot_be_rerun():
    import pickle

    from ipydistribute.core.errors import ItemFailure

    failure = pickle.loads(pickle.dumps(ItemFailure(3, "3", "tcp://w", "ValueError", "bad")))
    with pytest.raises(SpecError, match="cannot be re-run here"):
        failure.rerun()


def test_rerun_of_another_failure_then_debug_opens_pdb_there(ip):
    ip.run_cell("values = %distribute 100 // (x - 2) // (x - 4) for x in range(6) --on-error collect")
    failures = [v for v in ip.user_ns["values"] if not isinstance(v, int)]
    assert [f.index for f in failures] == [2, 4]
    result = ip.run_cell("values[4].rerun()")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    printed = _debug(ip, ["p x", "q"])
    assert "re-running" not in printed  # IPython's own %debug, on the re-run's error
    assert "\n4\n" in printed.replace("ipdb> ", "\n")


def test_an_item_kept_on_the_cluster_is_fetched_for_the_rerun(ip):
    ip.run_cell_magic("distribute", "x in range(6) --keep --out kept_squares --view none", "x * x")
    err = _fail(ip, "y in kept_squares --view none", "assert y != 16, f'y is {y}'\ny")
    assert err.failures[0].index == 4
    with pytest.raises(AssertionError, match="y is 16"):
        err.failures[0].rerun()


def test_a_name_set_up_with_all_that_cannot_travel_is_named(ip):
    ip.run_cell_magic("distribute", "--all --view none", "import threading\ndebug_test_lock = threading.Lock()")
    _fail(ip, "x in range(3) --view none", "with debug_test_lock:\n    1 / (x - 1)")
    printed = _debug(ip, ["q"])
    assert "here it raised NameError, not ZeroDivisionError" in printed
    assert "`debug_test_lock` was set up on the workers with --all" in printed


def test_an_input_changed_since_the_run_is_said_when_rerun(ip):
    ip.user_ns["grid"] = [1, 2, 0, 4]
    err = _fail(ip, "g in grid --view none", "10 / g")
    ip.user_ns["grid"][2] = 5
    with pytest.warns(RuntimeWarning, match=r"item #2 of the input is now 5; it was 0 when it failed"):
        assert err.failures[0].rerun() == 2.0
    del ip.user_ns["grid"][1:]
    with pytest.raises(SpecError, match=r"item #2 is no longer in the input \(it has 1 items now\)"):
        err.failures[0].rerun()
