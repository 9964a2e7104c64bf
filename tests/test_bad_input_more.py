"""More malformed and hostile input (with test_distribute_errors.py: well over 40 cases). Each one
is a clear error of one line (or the user's own SyntaxError), the namespace is unchanged, the
cluster stays usable; hostile cells (huge output, huge messages, broken repr) stay bounded."""

from __future__ import annotations

import re

import dask
import pytest
from dask_procs import Procs, wait_for_workers
from distributed import Client
from IPython.core.error import UsageError
from waiting import wait_until

from ipydistribute.core import cluster as cluster_mod
from ipydistribute.core import identity
from ipydistribute.core.errors import CellError
from ipydistribute.core.run import Run
from ipydistribute.kernel_magics.syntax import CellSyntaxError

HOSTILE = """
class BadIter:
    def __iter__(self):
        raise RuntimeError('no iterating me')
class BadLen:
    def __len__(self):
        raise RuntimeError('no len')
    def __iter__(self):
        return iter([1, 2])
class FlakySized:
    def __len__(self):
        return 10
    def __iter__(self):
        for i in range(10):
            if i == 5:
                raise OSError('disk gone at 5')
            yield i
class BadRepr:
    def __repr__(self):
        raise RuntimeError('repr broken')
"""

MORE_BAD_LINES = [
    ("x in range(3) --gpu 1e309", "--gpu must be more than 0 (and finite), not 1e309"),
    ("x in range(3) --resources GPU=1e400", "--resources takes NAME=AMOUNT"),
    ("x in range(3) --batch 1e3", "--batch takes a number"),
    ("x in range(3) --batch 0x10", "--batch takes a number"),
    ("x in range(3) --batch -5", "--batch must be at least 1"),
    ("x in range(3) --batch", "argument --batch: expected one argument"),
    ("x in range(3) --retries 1.5", "--retries takes a whole number"),
    ("x in range(3) --retries 2**70", "--retries takes a whole number"),
    ("x in range(3) --workers ,,,", "--workers is empty"),
    ("x in range(3) --out for", "is not a variable name"),
    ("x in range(3) --name ünïcode", "--name 'ünïcode'"),
    ("x in range(3) --on-error", "argument --on-error: expected one argument"),
    ("x in range(3) --view", "argument --view: expected one argument"),
    ("x in range(3) --reduce sum --on-error collect", "--on-error collect keeps errors"),
    ("x in [1, 2] [3]", "the iterable `[1, 2] [3]` failed: IndexError"),
    ("x in range(3) extra", "is not a Python expression"),
    ("x in [] --reduce max", "fails on nothing"),
    ("x in FlakySized()", "the iterable raised after"),
]

ONCE_ENGINE_BUGS = [
    pytest.param("x in BadIter()", "no iterating me"),
    pytest.param("x in BadLen()", "no len"),
    pytest.param("x in range(10**100)", "range"),
    pytest.param("x in range(3) --workers cpu-0 --gpu", "GPU"),
]


@pytest.fixture
def hostile(ip):
    ip.run_cell(HOSTILE)
    return ip


@pytest.mark.parametrize("line, message", MORE_BAD_LINES + ONCE_ENGINE_BUGS)
def test_bad_line_is_one_usage_error_and_changes_nothing(hostile, line, message):
    ip = hostile
    ip.user_ns["untouched"] = "before"
    before = dict(ip.user_ns)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        out = "" if "--out" in line else " --out untouched"
        ip.run_cell_magic("distribute", f"{line}{out} --view none", "x")
    assert "\n" not in str(info.value)
    assert ip.user_ns["untouched"] == "before"
    assert set(ip.user_ns) == set(before)



def test_gpu_nan_is_refused_before_anything_runs(ip):
    run = None
    try:
        with pytest.raises(UsageError, match="--gpu must be more than 0"):
            run = ip.run_cell_magic("distribute", "x in range(3) --gpu nan --nowait --view none", "x")
    finally:
        if isinstance(run, Run):  # accepted by mistake: do not leave it waiting on the cluster
            run.cancel()


@pytest.mark.parametrize("cell, message", [
    ("return x", "'return' outside function"),
    ("yield x", "'yield' outside function"),
    ("await x", "'await' outside function"),
    ("if x:\nx", "expected an indented block"),
])
def test_cell_that_cannot_compile_is_a_syntax_error_and_nothing_runs(ip, client, cell, message):
    before = set(client.who_has())
    with pytest.raises(CellSyntaxError, match=re.escape(message)) as info:
        ip.run_cell_magic("distribute", "x in range(3) --out never --view none", cell)
    assert info.value.error.filename.startswith("<cell ")
    assert "never" not in ip.user_ns
    assert not set(client.who_has()) - before, "something was submitted"


def test_last_statement_not_an_expression_with_out(ip):
    with pytest.raises(UsageError, match="last line must be an expression"):
        ip.run_cell_magic("distribute", "x in range(3) --out y --view none", "y = x")
    assert "y" not in ip.user_ns


def test_captured_generator_cannot_be_sent(ip):
    ip.run_cell("gen = (i for i in range(3))")
    with pytest.raises(UsageError, match=r"cannot send `gen` \(a generator\)"):
        ip.run_cell_magic("distribute", "x in range(3) --view none", "next(gen) + x")


def test_empty_iterable_gives_an_empty_list(ip):
    assert ip.run_cell_magic("distribute", "x in [] --out nothing --view none", "x") is None
    assert ip.user_ns["nothing"] == []
    assert ip.run_cell_magic("distribute", "x in iter([]) --reduce sum --view none", "x") == 0


def test_unicode_names_work(ip, capsys):
    value = ip.run_cell_magic("distribute", "ñ in range(3) --out résultat --view none --batch 1",
                              "print('café ☕', ñ)\nñ * 2")
    assert value is None and ip.user_ns["résultat"] == [0, 2, 4]
    assert "café ☕ 2" in capsys.readouterr().out


def test_item_with_a_broken_repr_still_gives_a_clear_error(ip):
    ip.run_cell(HOSTILE)
    with pytest.raises(CellError) as info:
        ip.run_cell_magic("distribute", "x in [BadRepr()] --view none", "1 / 0")
    assert "repr failed" in str(info.value) and "ZeroDivisionError" in str(info.value)


def test_huge_exception_message_is_shortened(ip):
    with pytest.raises(CellError) as info:
        ip.run_cell_magic("distribute", "x in range(2) --view none", "raise ValueError('m' * 10_000_000)")
    text = "\n".join(info.value._render_traceback_())
    assert "ValueError" in text and len(text) < 10_000
    assert len(str(info.value)) < 1_000


def test_exception_that_cannot_be_pickled_is_still_reported(ip):
    cell = ("import threading\nclass Locked(Exception):\n    def __init__(self):\n"
            "        super().__init__('holding a lock')\n        self.lock = threading.Lock()\nraise Locked()")
    with pytest.raises(CellError, match="holding a lock") as info:
        ip.run_cell_magic("distribute", "x in range(2) --view none", cell)
    assert info.value.failures[0].exc_type == "Locked"


def test_many_megabytes_of_print_are_capped(ip, capsys):
    value = ip.run_cell_magic("distribute", "x in range(4) --batch 1 --view none",
                              "print('z' * 5_000_000)\nx")
    assert value == [0, 1, 2, 3]
    captured = capsys.readouterr()
    assert len(captured.out) < 1_000_000, f"{len(captured.out):,} characters reached the notebook"


def test_reduced_result_too_large_suggests_keep(ip):
    ip.run_cell("def concat(values):\n    return b''.join(values)\n")
    with dask.config.set({"ipydistribute.result-limit": "1MiB"}):
        with pytest.raises(UsageError, match="result-limit.*--keep"):
            ip.run_cell_magic("distribute", "x in range(4) --reduce concat --out big --view none",
                              "b'x' * 600_000")
    assert "big" not in ip.user_ns
    assert ip.run_cell_magic("distribute", "x in range(3) --view none", "x") == [0, 1, 2]


# --- hostile cells that would damage a shared cluster: on a cluster of their own ---------------

@pytest.fixture(scope="module")
def hostile_procs(tmp_path_factory: pytest.TempPathFactory):
    """A scheduler and one worker of separate processes, started once for the hostile cells."""
    procs = Procs(tmp_path_factory.mktemp("hostile"))
    try:
        procs.start_scheduler()
        procs.start_worker("h1")
        client = Client(procs.address, set_as_default=False, timeout=60)
        try:
            yield client
        finally:
            client.close()
    finally:
        procs.close()


@pytest.fixture
def own_cluster(ip, hostile_procs: Client):
    """The hostile cells' cluster as the current one, its worker up (the session's is put back)."""
    client = hostile_procs
    previous = cluster_mod.chosen()
    wait_for_workers(client, 1)
    cluster_mod.use(cluster_mod.ClusterHandle(client, None, "remote"))
    try:
        yield ip, client
    finally:
        cluster_mod.use(previous)


@pytest.mark.slow
def test_sys_exit_in_a_cell_is_an_item_error_not_a_dead_worker(own_cluster):
    ip, client = own_cluster
    pid = client.run(lambda: __import__("os").getpid())
    run = ip.run_cell_magic("distribute", "x in range(2) --nowait --view none", "import sys\nsys.exit(3)")
    try:
        with pytest.raises(CellError, match="SystemExit"):
            run.result(timeout=60)
    finally:
        run.cancel()
    assert client.run(lambda: __import__("os").getpid()) == pid, "the worker process was restarted"


@pytest.mark.slow
def test_huge_retries_is_refused(own_cluster):
    ip, client = own_cluster
    run = None
    try:
        run = ip.run_cell_magic("distribute", "x in range(3) --retries 99999999999999999999 --nowait --view none", "x")
        if isinstance(run, Run):
            run.result(timeout=15)
        raise AssertionError("--retries 99999999999999999999 was accepted")
    except UsageError:
        pass
    finally:
        if isinstance(run, Run):
            run.cancel()
    wait_until(lambda: identity.workers(client), 30, "the cluster's workers back")
