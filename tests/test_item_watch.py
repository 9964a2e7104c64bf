"""The worker side of stopping items and of --timeout, called directly in this process (no
cluster): a real batch loop in a real thread, stopped by a real asynchronous exception."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import cloudpickle
import pytest

from ipydistribute.core.errors import ItemFailure
from ipydistribute.core.item_watch import ItemStopped, stop_run_items
from ipydistribute.core.keys import new_token
from ipydistribute.core.task import Batch, Payload, run_batch


def _spin(seconds: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        pass


#: set by an item as it starts (module level: functions of this module are pickled by reference)
STARTED = threading.Event()


def _spinning_item(x: int) -> int:
    STARTED.set()
    _spin(60)
    return x


def _sleeping_item(x: int) -> int:
    STARTED.set()
    time.sleep(2)
    return x


def _payload(func: Callable[[Any], Any], **fields: Any) -> Payload:
    return Payload(token=new_token(), label="watch", func=cloudpickle.dumps(func), **fields)


def _in_thread(payload: Payload, items: list[Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(run_batch(Batch(0, items), payload)), daemon=True)
    thread.start()
    return thread, out


def test_a_stop_interrupts_an_item_in_python_code_and_reports_it():
    STARTED.clear()
    payload = _payload(_spinning_item)
    thread, out = _in_thread(payload, [5, 6])
    assert STARTED.wait(30)
    report = asyncio.run(stop_run_items(payload.token, 1.0))
    assert report["interrupted"] == [(0, "5")] and report["stuck"] == []
    thread.join(30)
    assert not thread.is_alive() and out[0].values == []  # the item was stopped, the next never ran


def test_an_item_in_c_code_is_reported_stuck_and_stops_when_the_call_returns():
    STARTED.clear()
    payload = _payload(_sleeping_item)
    thread, out = _in_thread(payload, [1, 2, 3])
    assert STARTED.wait(30)
    report = asyncio.run(stop_run_items(payload.token, 0.3))
    assert report["stuck"] == [(0, "1")] and report["interrupted"] == []
    thread.join(30)
    assert not thread.is_alive() and len(out[0].values) <= 1  # stopped when sleep returned: 2 and 3 never ran


def test_a_batch_of_a_stopped_run_stops_as_it_starts():
    payload = _payload(lambda x: _spin(60))
    asyncio.run(stop_run_items(payload.token, 0.1))
    begun = time.monotonic()
    with pytest.raises(ItemStopped):
        run_batch(Batch(0, [1, 2]), payload)
    assert time.monotonic() - begun < 30  # not 120 s of items


def test_a_python_item_past_its_timeout_becomes_its_failure_and_the_batch_goes_on():
    payload = _payload(lambda x: _spin(60) if x == 1 else x, timeout=0.3, on_error="collect")
    result = run_batch(Batch(0, [0, 1, 2]), payload)
    assert result.values[0] == 0 and result.values[2] == 2
    failure = result.values[1]
    assert isinstance(failure, ItemFailure) and failure.exc_type == "ItemTimeout"
    assert failure.message.startswith("item #1 (1) ran longer than --timeout 0.3 s: stopped after ")


def test_an_item_that_catches_the_timeout_gets_it_again():
    def stubborn(x: int) -> int:
        caught = 0
        while caught < 3:
            try:
                _spin(60)
            except TimeoutError:
                caught += 1
        _spin(60)
        return x

    result = run_batch(Batch(0, [7]), _payload(stubborn, timeout=0.2, on_error="collect"))
    assert isinstance(result.values[0], ItemFailure) and result.values[0].exc_type == "ItemTimeout"
