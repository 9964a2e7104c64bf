"""A run hears of each of its tasks' ends from the client's report stream (core/ended.py), and of
those that ended without a message (cancelled by this client) from a sweep."""

from __future__ import annotations

import threading
from typing import Any

from waiting import wait_until

from ipydistribute.core import ended

#: A task that stays pending without holding a worker thread: no worker has this resource (a
#: sleeping task, once cancelled, would still hold its thread until its sleep ended).
NEVER_RUNS = {"resources": {"ended-test-absent": 1}}


class Heard:
    """What the callback was told: (key, status) per call, from the client's event loop."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, future: Any) -> None:
        with self._lock:
            self.calls.append((future.key, future.status))

    def keys(self) -> list[str]:
        with self._lock:
            return [key for key, _ in self.calls]


def _settled(client: Any, heard: Heard, marker: str) -> None:
    """Wait until the loop ran everything asked of it so far: a finished future watched now is
    reported only after the earlier callbacks on the loop."""
    done = client.submit(abs, -1, key=marker)
    done.result()
    ended.when_ended(client, [done], heard)
    wait_until(lambda: marker in heard.keys(), 30, f"{marker} reported")


def test_finished_and_erred_futures_are_reported_once_each(client):
    heard = Heard()
    fine = client.submit(abs, -3, key="ended-fine")
    failing = client.submit(int, "not a number", key="ended-failing")
    ended.when_ended(client, [fine, failing], heard)
    wait_until(lambda: len(heard.keys()) >= 2, 60, "both futures reported")
    handler = client._stream_handlers["key-in-memory"]
    _settled(client, heard, "ended-marker-1")
    assert client._stream_handlers["key-in-memory"] is handler  # the client's handlers are followed once
    assert sorted(heard.calls) == [("ended-failing", "error"), ("ended-fine", "finished"),
                                   ("ended-marker-1", "finished")]


def test_a_future_cancelled_here_is_reported_by_a_sweep(client):
    heard = Heard()
    pending = client.submit(abs, -1, key="ended-pending", pure=False, **NEVER_RUNS)
    ended.when_ended(client, [pending], heard)
    client.cancel([pending], force=True)
    wait_until(lambda: pending.status == "cancelled", 30, "the cancel")
    ended.sweep(client)
    wait_until(lambda: "ended-pending" in heard.keys(), 30, "the cancelled future reported")
    assert heard.calls == [("ended-pending", "cancelled")]


def test_forgotten_futures_are_never_reported(client):
    heard = Heard()
    pending = client.submit(abs, -1, key="ended-forgotten", pure=False, **NEVER_RUNS)
    ended.when_ended(client, [pending], heard)
    ended.forget(client, [pending.key])
    client.cancel([pending], force=True)
    ended.sweep(client)
    _settled(client, heard, "ended-marker-2")
    assert heard.keys() == ["ended-marker-2"]


def test_the_futures_of_a_closed_client_are_reported_by_a_sweep(client):
    from distributed import Client

    heard = Heard()
    other = Client(client.scheduler.address, set_as_default=False, timeout=30)
    pending = other.submit(abs, -1, key="ended-closed", pure=False, **NEVER_RUNS)
    ended.when_ended(other, [pending], heard)
    other.close()
    ended.sweep(other)
    wait_until(lambda: "ended-closed" in heard.keys(), 30, "the closed client's future reported")
    assert heard.calls == [("ended-closed", "cancelled")]


def test_a_failing_callback_does_not_cost_the_other_futures_their_report(client):
    heard = Heard()

    def fails_for_the_first(future: Any) -> None:
        if future.key == "ended-first":
            raise RuntimeError("a run's callback failed")
        heard(future)

    futures = [client.submit(abs, -1, key="ended-first"), client.submit(abs, -2, key="ended-second")]
    client.gather(futures)
    ended.when_ended(client, futures, fails_for_the_first)  # both ended: reported in one pass, in order
    wait_until(lambda: "ended-second" in heard.keys(), 30, "the second future reported")
    assert heard.calls == [("ended-second", "finished")]
