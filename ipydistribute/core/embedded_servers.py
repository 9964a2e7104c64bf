"""The embedded cluster's scheduler and nannies, which run inside the kernel process.

Each Dask server ticks its event-loop monitor every 20 ms, samples its process's CPU, memory,
network and disk every 500 ms and shifts its counters every 5 s; the scheduler also looks for
idleness twice every 250 ms and its dashboard pings and sweeps its sessions every 500 ms. In the
embedded cluster the scheduler and every nanny are servers of the kernel's own process, on the
kernel's event loop: three servers measured the same loop and the same process. Each wake-up of
that loop takes the GIL from the notebook's own code: with Dask's settings an idle 2-worker
cluster slowed a serial loop in the kernel 12.6% (the loop used 40-55 ms of CPU a second, and the
notebook's thread ran slower between the wake-ups). So here the scheduler alone measures the loop
and the process, less often, and the callbacks that only matter to Dask's own timeouts and to an
open dashboard run once a second or less; the nannies keep only their memory watch (every 100 ms,
which ends a worker that outgrows its limit), as Dask sets it. The worker processes tick every
200 ms and sample every 2 s (``ipydistribute.embedded-worker-config``).

Dask's batched streams hold a message for a while after the previous one (the scheduler 5 ms to
a worker and 2 ms to a client, a worker 2 ms to the scheduler, a client 10 ms) to send fewer,
larger messages over a network. Between processes of one machine that hold is the larger cost:
with Dask's default of queuing the scheduler sends a worker its next task only when one ends,
so each short task waited out the holds. Here the streams between the scheduler and its workers,
and the client's to the scheduler, send at once (what piles up while a write is under way still
goes out together). The scheduler's reports to the kernel's client go at once too, except while
a run of many tasks is on (``hold_reports``): Dask's 2 ms hold then gathers the reports of many
short tasks into fewer messages (2,000 one-item tasks whose values come home: 4.5% faster with
it), while a cell of a few tasks waits out the hold at each report it needs (100 items, values
home: 10% slower with it).

A worker still waits a round trip through the kernel's loop for each queued task, since Dask
keeps about one task ready behind each running one: here a worker thread holds about 5 ms of
a run's tasks when they are shorter than that (``EmbeddedScheduler._saturate_for``).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import dask
from distributed import Nanny, Scheduler
from distributed.scheduler import TaskState

from .keys import parse_key

#: Milliseconds between the scheduler's periodic callbacks of these names (Dask: tick 20,
#: monitor 500, idle-timeout and no-workers-timeout 250, which check timeouts of whole seconds).
SCHEDULER_INTERVALS_MS = {"tick": 1000.0, "monitor": 2000.0, "idle-timeout": 1000.0, "no-workers-timeout": 1000.0}
#: The nannies' periodic callbacks that measure the event loop and the process, which the
#: scheduler already measures: not started.
NANNY_DROPPED = ("tick", "ticks", "monitor", "shift_counters")
#: Seconds a batched stream of the embedded cluster holds a message after its previous one.
STREAM_SEND_INTERVAL = 0.0
#: Seconds the scheduler holds its reports to a client while that client has a run of many
#: tasks on (Dask's hold for every client stream), and how many map tasks make a run "many".
MANY_TASKS_REPORT_HOLD = 0.002
MANY_TASKS = 64
#: Seconds of a run's work each worker thread holds ready behind the task it runs, when the run's
#: tasks are shorter than that (Dask holds 1.1 tasks a thread), and the most tasks a thread so holds.
READY_WORK_SECONDS = 0.005
MAX_SATURATION = 64.0
#: The scheduler's dashboard (Bokeh's defaults are 37 s and 17 s; Dask sets 500 ms each).
DASHBOARD_TIMERS = {"keep_alive_milliseconds": 5000, "check_unused_sessions_milliseconds": 5000}


class _SendingAtOnce(dict):  # type: ignore[type-arg]
    """The scheduler's streams to its workers, or to its clients: each sends at once. Dask
    creates a stream per worker or client with its interval fixed in code, and stores it here."""

    def __setitem__(self, address: str, stream: Any) -> None:
        stream.interval = STREAM_SEND_INTERVAL
        super().__setitem__(address, stream)


class EmbeddedScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any):
        key = "distributed.scheduler.dashboard.bokeh-application"
        with dask.config.set({key: {**dask.config.get(key, default={}), **DASHBOARD_TIMERS}}):
            super().__init__(*args, **kwargs)
        self.stream_comms = _SendingAtOnce(self.stream_comms)  # type: ignore[has-type]
        self.client_comms = _SendingAtOnce(self.client_comms)  # type: ignore[has-type]
        self._report_holds: dict[str, int] = {}  # client id -> runs of many tasks on
        self._report_holds_lock = threading.Lock()
        self._configured_saturation: float = self.WORKER_SATURATION  # type: ignore[has-type]
        for name, milliseconds in SCHEDULER_INTERVALS_MS.items():
            callback = self.periodic_callbacks.get(name)
            if callback is not None:
                callback.callback_time = milliseconds

    def hold_reports(self, client_id: str, hold: bool) -> None:
        """Hold the reports to client ``client_id`` like Dask (``MANY_TASKS_REPORT_HOLD``), or let
        go of one hold (``hold=False``): holds of several runs overlap, and the last one to go
        sends the reports at once again."""
        with self._report_holds_lock:
            holds = self._report_holds[client_id] = self._report_holds.get(client_id, 0) + (1 if hold else -1)
            stream = self.client_comms.get(client_id)
            if stream is not None:  # a float set from another thread: the stream reads it per send
                stream.interval = MANY_TASKS_REPORT_HOLD if holds > 0 else STREAM_SEND_INTERVAL

    def stimulus_queue_slots_maybe_opened(self, *, stimulus_id: str) -> None:
        # Called after every task's end, before queued tasks go to workers with free slots.
        self._saturate_for(self.queued.peek() if self.queued else None)
        super().stimulus_queue_slots_maybe_opened(stimulus_id=stimulus_id)

    def _saturate_for(self, task: TaskState | None) -> None:
        """Let the workers hold ``READY_WORK_SECONDS`` of a run's short tasks per thread.

        Dask sends a queued task to a worker when one of its threads frees up, and keeps about
        one task ready behind each running one (``worker-saturation`` 1.1): a task shorter than
        the round trip from its end to the next task's arrival leaves its thread waiting. 2,000
        one-item tasks took 1.2x hand-written Dask, almost all of it in that wait. Here the
        factor follows the average duration Dask keeps for the next queued task's prefix, in
        powers of two, while that task is a run's (core/keys.py); other tasks, a run's tasks not
        timed yet and an empty queue have the configured factor.
        """
        factor = configured = self._configured_saturation
        if task is not None and task.prefix.duration_average >= 0 and parse_key(task.key) is not None:
            ratio = READY_WORK_SECONDS / max(task.prefix.duration_average, 1e-6)
            factor = max(configured, min(MAX_SATURATION, 2.0 ** math.floor(math.log2(max(ratio, 1.0)))))
        if factor != self.WORKER_SATURATION:  # type: ignore[has-type]
            self.WORKER_SATURATION = factor
            for worker in self.running:  # which workers have free slots depends on the factor
                self.check_idle_saturated(worker)


class EmbeddedNanny(Nanny):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name in NANNY_DROPPED:
            self.periodic_callbacks.pop(name, None)


def end_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker, if this process started one.

    A nanny starts its worker with the ``spawn`` method, which starts the tracker: a child of
    the kernel that ignores SIGINT and SIGTERM and ends only when the kernel closes its pipe.
    ipykernel, asked to shut down, sends SIGTERM to its children and checks again after 0.01,
    0.03, 0.1, 0.3, 1 and 3 s: the tracker outlived all of them, and jupyter_client ended the
    kernel with SIGTERM after 2.5 s. Closing the pipe makes the tracker clean up and exit now
    (a later spawn starts a new one)."""
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    if getattr(tracker, "_fd", None) is not None:
        tracker._stop()  # type: ignore[attr-defined]  # private, in every Python since 3.8
