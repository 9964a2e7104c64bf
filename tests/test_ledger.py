"""The ledger and the batch loop without a cluster: bookkeeping, per-item retries, folding."""

from __future__ import annotations

import threading

import pytest

from ipydistribute.core.cellfunc import CellCode
from ipydistribute.core.errors import ItemError
from ipydistribute.core.keys import new_token
from ipydistribute.core.ledger import Ledger
from ipydistribute.core.options import RunOptions
from ipydistribute.core.run import make_payload
from ipydistribute.core.task import Batch, BatchResult, Partial, run_batch

pytestmark = pytest.mark.fast  # no cluster, kernel or browser: `make test-fast`


def test_ledger_counts_items_once_and_knows_which_are_open():
    ledger = Ledger()
    ledger.add("a", "map", 0, 3, first_item=10)
    ledger.add("b", "map", 3, 2, first_item=13)
    ledger.add("r", "reduce")
    assert ledger.in_flight() == 3 and ledger.open_items() == [0, 1, 2, 3, 4]
    ledger.ended("a", "finished")
    ledger.ended("a", "finished")  # a second report of the same end changes nothing
    ledger.ended("r", "finished")
    assert ledger.items_done == 3 and ledger.tasks_done == 2 and ledger.open_items() == [3, 4]
    ledger.ended("b", "error")
    assert ledger.tasks_failed == 1 and ledger.in_flight() == 0 and ledger.items_done == 3


def test_ledger_gives_values_in_item_order_whatever_order_they_come_home():
    ledger = Ledger()
    for key, start in (("a", 0), ("b", 2), ("c", 4)):
        ledger.add(key, "map", start, 2)
    for key, start in (("c", 4), ("a", 0), ("b", 2)):
        ledger.ended(key, "finished")
        ledger.home(key, BatchResult(start, [start, start + 1], [], 0.0, "w"))
    assert [v for r in ledger.results_in_order() for v in r.values] == [0, 1, 2, 3, 4, 5]
    done = threading.Event()
    done.set()
    assert [e.key for e in ledger.arrivals(done)] == ["c", "a", "b"]


def test_cancel_open_marks_only_unfinished_tasks():
    ledger = Ledger()
    ledger.add("a", "map", 0, 1)
    ledger.add("b", "map", 1, 1)
    ledger.ended("a", "finished")
    assert [e.key for e in ledger.cancel_open()] == ["b"]
    assert ledger.in_flight() == 0 and ledger.items_done == 1


def _payload(source: str, target: str | None = "x", **options) -> object:
    opts = RunOptions(**options)
    cell = CellCode.from_source(source, "<cell test>", target)
    return make_payload("test", new_token(), cell=cell, options=opts, topic=None)


def _flaky_cell(tmp_path) -> str:
    # Fails the first time each odd item runs; logs every execution.
    return (f"import os\nopen(os.path.join({str(tmp_path)!r}, f'{{x}}.log'), 'a').write('.')\n"
            f"marker = os.path.join({str(tmp_path)!r}, f'{{x}}.failed')\n"
            "if x % 2 and not os.path.exists(marker):\n"
            "    open(marker, 'w').close()\n"
            "    raise ValueError(x)\n"
            "x * 10")


def test_a_failing_item_is_retried_alone_inside_its_batch(tmp_path):
    result = run_batch(Batch(0, list(range(6))), _payload(_flaky_cell(tmp_path), retries=1))
    assert isinstance(result, BatchResult) and result.values == [0, 10, 20, 30, 40, 50] and not result.failures
    runs = {int(p.stem): len(p.read_text()) for p in tmp_path.glob("*.log")}
    assert runs == {0: 1, 1: 2, 2: 1, 3: 2, 4: 1, 5: 2}  # succeeded items ran once, failed ones twice


def test_without_retries_the_first_failure_is_raised(tmp_path):
    with pytest.raises(ItemError) as info:
        run_batch(Batch(0, list(range(6))), _payload(_flaky_cell(tmp_path)))
    assert info.value.failure.index == 1


def test_retries_used_up_leave_a_skipped_item(tmp_path):
    cell = "if x == 2:\n    raise ValueError('always')\nx"
    result = run_batch(Batch(0, list(range(4))), _payload(cell, retries=3, on_error="skip"))
    assert isinstance(result, BatchResult)
    assert result.values == [0, 1, 3] and [f.index for f in result.failures] == [2]


def test_a_reducing_batch_folds_large_values_as_it_goes():
    import live_objects

    cell = "import live_objects\nlive_objects.Tracked(x)"
    payload = _payload(cell, reduce=lambda values: live_objects.Tracked(sum(v.value for v in values)))
    live_objects.reset()
    result = run_batch(Batch(0, list(range(20))), payload)
    assert isinstance(result, Partial) and result.count == 20 and result.value.value == sum(range(20))
    # 16 MiB of values per fold: 2 new values, the running value and the reducer's new one
    assert live_objects.peak <= 4, live_objects.peak


def test_fold_keeps_order_for_an_associative_reducer_that_does_not_commute():
    payload = _payload("str(x)", reduce=lambda parts: "".join(parts))
    result = run_batch(Batch(0, list(range(20))), payload)
    assert isinstance(result, Partial) and result.value == "".join(str(i) for i in range(20))
