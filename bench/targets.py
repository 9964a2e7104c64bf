"""The project's own targets (issues 2 and 6), checked on the measures of one run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .spec import SAME_RUN, Measure, Settings

MAGIC = "%%distribute"


@dataclass
class Target:
    """One target: the figure measured, the limit, and whether it passed (None: not measured)."""

    name: str
    text: str
    value: float | None
    limit: float
    higher_is_better: bool
    unit: str = "x"
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _find(measures: list[Measure], workload: str, system: str, form_start: str) -> Measure | None:
    for m in measures:
        if (
            m.workload == workload
            and m.system == system
            and m.form.startswith(form_start)
            and m.median
        ):
            return m
    return None


def _ratio(a: Measure | None, b: Measure | None) -> float | None:
    if a is None or b is None or not a.median or not b.median:
        return None
    return a.median / b.median


def _paired_ratio(a: Measure | None, b: Measure | None) -> float | None:
    """For two forms timed in turn in one process: the median of the ratios of each repetition's
    pair (run seconds apart, so the machine's drift between repetitions cancels out)."""
    if a is None or b is None or not a.times or len(a.times) != len(b.times) or not all(b.times):
        return _ratio(a, b)
    return statistics.median(x / y for x, y in zip(a.times, b.times, strict=True))


def check(measures: list[Measure], settings: Settings) -> list[Target]:
    """Every target, for ``%%distribute`` and for the Python API."""
    targets: list[Target] = []
    # The forms of each interface, by the start of their description in the sides.
    interfaces = {
        "": {
            "batch1": "%%distribute --batch 1",
            "auto": "%%distribute --reduce sum",
            "any": "%%distribute",
        },
        " (API)": {
            "batch1": "distribute(f, items, batch=1",
            "auto": "distribute(f, items, reduce",
            "any": "distribute(",
        },
    }

    def find(workload: str, system: str, start: str) -> Measure | None:
        return _find(measures, workload, system, start)

    for suffix, form in interfaces.items():
        start = form["any"]
        dask = find("tiny", "dask", "client.submit(sum, client.map")
        targets.append(
            Target(
                f"1a{suffix}",
                "tiny tasks, --batch 1, against hand-written Dask",
                _paired_ratio(find("tiny", "ipydistribute", form["batch1"]), dask),
                1.10,
                False,
            )
        )
        auto = find("tiny", "ipydistribute", form["auto"])
        targets.append(
            Target(
                f"1b{suffix}",
                "10,000 tiny tasks, auto batching, warm cluster",
                auto.median if auto else None,
                0.1,
                False,
                unit="s",
            )
        )
        # Speedups against the serial loop timed in turn with the cluster when there is one.
        serial_same_run = find("cpu", "serial", SAME_RUN)
        serial = serial_same_run or find("cpu", "serial", "")
        cpu = find("cpu", "ipydistribute", start)
        speedup = _paired_ratio(serial, cpu) if serial_same_run else _ratio(serial, cpu)
        ceiling = min(settings.cores, settings.cpu_items)
        targets.append(
            Target(
                f"2{suffix}",
                f"CPU-bound items, speedup over serial ({settings.cores} cores)",
                speedup,
                round(0.925 * ceiling, 3),
                True,
            )
        )
        # The speedup over multiprocessing's, both timed in turn in this process, pair by pair.
        pool_same_run = find("cpu", "multiprocessing", SAME_RUN)
        targets.append(
            Target(
                f"2-mp{suffix}",
                "CPU-bound items, against multiprocessing timed in turn",
                _paired_ratio(pool_same_run, cpu) if pool_same_run else None,
                1.0,
                True,
            )
        )
        small = find("small", "ipydistribute", start)
        targets.append(
            Target(
                f"3a{suffix}",
                "small items: speedup over serial",
                _ratio(find("small", "serial", ""), small),
                1.0,
                True,
            )
        )
        peers = [
            m
            for m in measures
            if m.workload == "small" and m.system not in ("ipydistribute", "serial") and m.median
        ]
        best = min(peers, key=lambda m: m.median or 0.0) if peers else None
        targets.append(
            Target(
                f"3b{suffix}",
                "small items: speedup over the fastest peer form",
                _ratio(best, small),
                1.0,
                True,
                detail=f"{best.system}: {best.form}" if best else "",
            )
        )
        per_task = find("small", "dask", "client.submit(sum, client.map")
        targets.append(
            Target(
                f"3c{suffix}",
                "small items: speedup over one Dask task per item",
                _ratio(per_task, small),
                10.0,
                True,
            )
        )
        cold = find("cold", "ipydistribute", start)
        targets.append(
            Target(
                f"5{suffix}",
                "cold start, against LocalCluster + Client",
                _ratio(cold, find("cold", "dask", "LocalCluster")),
                1.2,
                False,
            )
        )
        sumsq = find("sumsq", "ipydistribute", start)
        # The API calls a function per item: its serial loop calls the same function.
        same_work = SAME_RUN + ("sum(square(x)" if suffix else "sum(x * x")
        serial_sumsq = find("sumsq", "serial", same_work)
        targets.append(
            Target(
                f"7{suffix}",
                "sum of squares of 1,000,000 shipped ints, against serial",
                _paired_ratio(sumsq, serial_sumsq) if serial_sumsq else _ratio(sumsq, find("sumsq", "serial", "")),
                2.0,
                False,
            )
        )
    full = find("view", "ipydistribute", "%%distribute --view full")
    none = find("view", "ipydistribute", "%%distribute --view none")
    targets.append(
        Target("6", "notebook cell: full live view against none", _paired_ratio(full, none), 1.05, False)
    )
    return sorted(targets, key=lambda t: t.name)
