"""What the benchmark runs: the workloads, their sizes in a full and a quick run, the shared
settings every side receives, and how a side records a measurement."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: Workload ids, in the order of the table.
WORKLOADS = {
    "tiny": "1. 10,000 tiny tasks (x*x), summed",
    "cpu": "2. 16 CPU-bound items of 0.25 s",
    "small": "3. 200,000 items of 20 us, summed",
    "tree": "4. tree reduction of 1,000 NumPy arrays of 1 MiB",
    "cold": "5. cold start to the first result",
    "view": "6. notebook cell: full live view against none",
    "sumsq": "7. sum of squares of a shipped list of 1,000,000 ints",
    "records": "8. 16 items that each build 300,000 records (dicts holding a tuple)",
}


@dataclass
class Settings:
    """Sizes and repetitions of one run; sent to every side as JSON."""

    quick: bool
    cores: int
    spin_small: int  # loop count of about 20 us
    spin_big: int  # loop count of about 0.25 s
    repeats: int = 5
    slow_repeats: int = 3  # for forms that take seconds per repetition
    tiny_items: int = 10_000  # workload 1 with auto batching
    tiny_items_per_task: int = 10_000  # workload 1 with one task per item
    cpu_items: int = 16
    small_items: int = 200_000
    small_items_per_task: int = 5_000  # subset measured for the one-task-per-item peers
    tree_arrays: int = 1_000
    sumsq_items: int = 1_000_000
    view_items: int = 40
    view_item_seconds: float = 0.05
    records_items: int = 16
    records_per_item: int = 300_000  # about 60 ms in a fresh process

    @classmethod
    def make(cls, quick: bool, cores: int, spin_small: int, spin_big: int, smoke: bool = False) -> Settings:
        settings = cls(quick=quick or smoke, cores=cores, spin_small=spin_small, spin_big=spin_big)
        if smoke:  # every form once on a few items: the harness works (tests/test_bench.py)
            settings.repeats = settings.slow_repeats = 1
            settings.tiny_items, settings.tiny_items_per_task = 1_000, 200
            settings.cpu_items, settings.small_items, settings.small_items_per_task = 4, 5_000, 200
            settings.tree_arrays, settings.sumsq_items, settings.view_items = 20, 100_000, 8
            settings.records_items, settings.records_per_item = 4, 20_000
        elif quick:
            settings.repeats = 2
            settings.slow_repeats = 1
            settings.tiny_items_per_task = 1_000
            settings.cpu_items = 8
            settings.small_items = 50_000
            settings.small_items_per_task = 1_000
            settings.tree_arrays = 200
            settings.view_items = 20
        return settings

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))


@dataclass
class Measure:
    """Times of one form of one system on one workload (seconds, one per repetition)."""

    workload: str
    system: str  # ipydistribute, dask, ray, ipyparallel, multiprocessing, serial...
    form: str  # how it is written, e.g. "%%distribute --batch 1"
    times: list[float] = field(default_factory=list)
    items: int = 0  # items actually run per repetition
    scale: float = 1.0  # factor applied to the times (a subset measured for a slow form)
    note: str = ""
    error: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) * self.scale if self.times else None

    @property
    def spread(self) -> tuple[float, float] | None:
        return (min(self.times) * self.scale, max(self.times) * self.scale) if self.times else None


#: Start of the form of a serial loop timed in a side's own process, in turn with its forms.
SAME_RUN = "in turn with the cluster: "


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of ``fn()`` (for the scripts that time forms in turn outside a Recorder)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Recorder:
    """Collects the measures of one side; writes them as JSON lines for the runner."""

    def __init__(self, path: str | None):
        self.path = path
        self.measures: list[Measure] = []

    def time(
        self,
        workload: str,
        system: str,
        form: str,
        fn: Callable[[], Any],
        repeats: int,
        *,
        items: int = 0,
        scale: float = 1.0,
        note: str = "",
        check: Callable[[Any], bool] | None = None,
        setup: Callable[[], Any] | None = None,
    ) -> Measure:
        """Run ``fn`` ``repeats`` times (``setup`` before each, untimed); failures are recorded."""
        measure = Measure(workload, system, form, items=items, scale=scale, note=note)
        try:
            for _ in range(repeats):
                if setup is not None:
                    setup()
                started = time.perf_counter()
                value = fn()
                measure.times.append(time.perf_counter() - started)
                if check is not None and not check(value):
                    raise AssertionError(f"wrong result: {str(value)[:80]}")
        except Exception as exc:  # a failing peer is reported in the table, not fatal
            measure.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                :200
            ]
        self.add(measure)
        return measure

    def compare(
        self,
        workload: str,
        forms: list[tuple[str, str, Callable[[], Any]]],
        repeats: int,
        *,
        items: int = 0,
        scale: float = 1.0,
        check: Callable[[Any], bool] | None = None,
        settle: Callable[[], Any] | None = None,
    ) -> list[Measure]:
        """Time several forms ``(system, form, fn)`` in turn, repetition by repetition, so that
        the machine's drift (other processes) falls on all of them alike. ``settle`` runs
        (untimed) before each form: a notebook's cells do not start while the last one's
        tasks are still being forgotten."""
        measures = [
            Measure(workload, system, form, items=items, scale=scale) for system, form, _ in forms
        ]
        for _ in range(repeats):
            for measure, (_, _, fn) in zip(measures, forms, strict=False):
                if measure.error:
                    continue
                try:
                    if settle is not None:
                        settle()
                    started = time.perf_counter()
                    value = fn()
                    measure.times.append(time.perf_counter() - started)
                    if check is not None and not check(value):
                        raise AssertionError(f"wrong result: {str(value)[:80]}")
                except Exception as exc:  # reported in the table, not fatal
                    measure.error = (
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                            :200
                        ]
                    )
        for measure in measures:
            self.add(measure)
        return measures

    def add(self, measure: Measure) -> None:
        self.measures.append(measure)
        shown = f"{measure.median:.4f} s" if measure.median is not None else measure.error
        print(f"  {measure.workload:6} {measure.system:16} {measure.form:40} {shown}", flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(asdict(measure)) + "\n")


def read_measures(path: str) -> list[Measure]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [Measure(**json.loads(line)) for line in f if line.strip()]


def side_main(run: Callable[[Settings, Recorder], None]) -> None:
    """Entry point of a side: ``python -m bench.side_X SETTINGS_JSON OUT_PATH``."""
    import sys

    settings = Settings.from_json(sys.argv[1])
    run(settings, Recorder(sys.argv[2]))


def small_items(settings: Settings, count: int | None = None) -> list[tuple[int, int]]:
    """The items of workload 3: ``(index, loop count of about 20 us)``."""
    return [
        (i, settings.spin_small) for i in range(settings.small_items if count is None else count)
    ]


def big_items(settings: Settings) -> list[tuple[int, int]]:
    """The items of workload 2: ``(index, loop count of about 0.25 s)``."""
    return [(i, settings.spin_big) for i in range(settings.cpu_items)]


def record_items(settings: Settings) -> list[tuple[int, int]]:
    """The items of workload 8: ``(index, records to build)``."""
    return [(i, settings.records_per_item) for i in range(settings.records_items)]


def chunks(items: list[Any], count: int) -> list[list[Any]]:
    """``items`` cut into ``count`` consecutive chunks (for the peers that batch by hand)."""
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]
