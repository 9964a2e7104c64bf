"""The results as a Markdown table (bench/RESULTS.md) and as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .spec import WORKLOADS, Measure, Settings
from .targets import Target

#: The form each workload's ratios are relative to.
REFERENCE = {
    "tiny": "%%distribute --reduce sum",
    "cpu": "%%distribute",
    "small": "%%distribute",
    "tree": "%%distribute",
    "cold": "%%distribute",
    "view": "%%distribute --view none",
    "sumsq": "%%distribute",
    "records": "%%distribute",
}


def reference(measures: list[Measure], workload: str) -> Measure | None:
    for m in measures:
        if (
            m.workload == workload
            and m.system == "ipydistribute"
            and m.form.startswith(REFERENCE[workload])
            and m.median
        ):
            return m
    return None


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table(measures: list[Measure]) -> list[str]:
    lines = []
    for workload, title in WORKLOADS.items():
        rows = [m for m in measures if m.workload == workload]
        if not rows:
            continue
        ref = reference(measures, workload)
        lines += [
            "",
            f"### {title}",
            "",
            f"Ratio: median / median of `{ref.form if ref else REFERENCE[workload]}`, same run.",
            "",
            "| system | written as | median | spread (min–max) | runs | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for m in rows:
            form = m.form.replace("|", "\\|")
            if m.error:
                lines.append(f"| {m.system} | `{form}` | {m.error.replace('|', '/')} | | | |")
                continue
            low, high = m.spread or (None, None)
            ratio = f"{m.median / ref.median:.2f}x" if ref and ref.median and m.median else "–"
            scaled = f" (×{m.scale:g}: {m.items:,} items measured)" if m.scale != 1 else ""
            note = f" — {m.note}" if m.note else ""
            lines.append(
                f"| {m.system} | `{form}`{scaled}{note} | {_seconds(m.median)} | "
                f"{_seconds(low)}–{_seconds(high)} | "
                f"{len(m.times)} | {ratio} |"
            )
    return lines


def target_lines(targets: list[Target]) -> list[str]:
    lines = ["| target | what | measured | limit | verdict |", "|---|---|---|---|---|"]
    for t in targets:
        value = (
            "–" if t.value is None else (f"{t.value:.3f} s" if t.unit == "s" else f"{t.value:.2f}x")
        )
        bound = (">= " if t.higher_is_better else "<= ") + (
            f"{t.limit:g} s" if t.unit == "s" else f"{t.limit:g}x"
        )
        detail = f" ({t.detail})" if t.detail else ""
        lines.append(f"| {t.name} | {t.text}{detail} | {value} | {bound} | {t.verdict} |")
    return lines


def markdown(
    machine: dict[str, Any],
    settings: Settings,
    measures: list[Measure],
    targets: list[Target],
    elapsed: float,
) -> str:
    mode = "quick (reduced)" if settings.quick else "full"
    lines = [
        "# Benchmark results",
        "",
        f"`python -m bench{' --quick' if settings.quick else ''}` ({mode} run, {elapsed:.0f} s). "
        "Each system ran in its own process; ratios compare systems measured in the same run. "
        "Reproduce with `make bench`.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines += ["", "## Targets", ""] + target_lines(targets)
    lines += ["", "## Workloads"] + table(measures)
    lines += [
        "",
        "Times scaled from a subset (×N) are forms with one task per item, whose cost per item "
        "is constant; measuring them in full would take minutes per repetition.",
        "",
    ]
    return "\n".join(lines)


def as_json(
    machine: dict[str, Any], settings: Settings, measures: list[Measure], targets: list[Target]
) -> str:
    return json.dumps(
        {
            "machine": machine,
            "settings": asdict(settings),
            "measures": [dict(asdict(m), median=m.median, spread=m.spread) for m in measures],
            "targets": [dict(asdict(t), passed=t.passed) for t in targets],
        },
        indent=1,
    )
