"""Runs every side in its own process, then writes the table and checks the targets."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import work
from .report import as_json, markdown, target_lines
from .spec import WORKLOADS, Measure, Recorder, Settings, read_measures

ROOT = Path(__file__).resolve().parent.parent
#: Optional peers, installed by the ``bench`` extra, and the workloads they take part in.
PEERS = {"ray": ("ray", "bench.side_ray"), "ipyparallel": ("ipyparallel", "bench.side_ipp")}
COLD_SYSTEMS = [
    ("dask", "LocalCluster + Client, first client.submit", "localcluster"),
    ("ipydistribute", "%%distribute (shell already running)", "ipydistribute-magic"),
    ("ipydistribute", "distribute(f, [3])", "ipydistribute-api"),
    ("multiprocessing", "Pool(cores).apply(f, x)", "multiprocessing"),
    ("ray", "ray.init() + ray.get(f.remote(x))", "ray"),
    ("ipyparallel", "ipp.Cluster(n).start_and_connect_sync() + apply_sync", "ipyparallel"),
]
INSTALL = "pip install -e '.[bench]'"


def machine_info() -> dict[str, Any]:
    import psutil

    versions = []
    for name in (
        "ipydistribute",
        "dask",
        "distributed",
        "ray",
        "ipyparallel",
        "numpy",
        "ipykernel",
        "ipython",
    ):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cores": os.cpu_count(),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "versions": ", ".join(versions),
        "commit": commit,
        "load average at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def run_side(module: str, settings: Settings, out: str, timeout: float) -> str:
    """Run one side; returns an error text ('' when it finished)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    print(f"- {module}", flush=True)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, settings.to_json(), out],
            cwd=ROOT,
            env=env,
            timeout=timeout,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except subprocess.TimeoutExpired:
        return f"{module} did not finish within {timeout:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("  ")]
    if lines:
        print("\n".join(lines), flush=True)
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-1:] or [""]
        return f"{module} exited with {proc.returncode}: {tail[0][:160]}"
    return ""


def run_cold(settings: Settings, rec: Recorder, available: dict[str, bool], timeout: float) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    repeats = settings.slow_repeats
    for system, form, name in COLD_SYSTEMS:
        if system in PEERS and not available[system]:
            continue
        measure = Measure("cold", system, form, items=1)
        for _ in range(repeats):
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "bench.cold", name, str(settings.cores)],
                    cwd=ROOT,
                    env=env,
                    timeout=timeout,
                    capture_output=True,
                    text=True,
                )
            except subprocess.TimeoutExpired:
                measure.error = f"no result within {timeout:.0f} s"
                break
            found = [line for line in proc.stdout.splitlines() if line.startswith("COLD ")]
            if not found:
                last = (proc.stderr.strip().splitlines() or [""])[-1][:160]
                measure.error = f"exited with {proc.returncode}: {last}"
                break
            measure.times.append(float(found[0].split()[1]))
        rec.add(measure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a reduced run (under 3 minutes)")
    parser.add_argument("--smoke", action="store_true",
                        help="every form once on a few items: checks the harness, measures nothing")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with 1 when a target is missed (2 when the benchmark itself fails)",
    )
    parser.add_argument(
        "--out",
        help="folder for RESULTS.md and results.json "
        "(default: bench/ for a full run, a temporary folder for --quick)",
    )
    parser.add_argument(
        "--only", help="comma-separated sides: local,dask,ray,ipyparallel,cold,view"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out_dir = (
        Path(args.out)
        if args.out
        else (
            Path(tempfile.gettempdir()) / "ipydistribute-bench-quick"
            if args.quick
            else ROOT / "bench"
        )
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    args.quick = args.quick or args.smoke
    settings = Settings.make(args.quick, cores, work.calibrate(20e-6), work.calibrate(0.25), smoke=args.smoke)
    machine = machine_info()
    machine["spin loop counts"] = (
        f"{settings.spin_small} (about 20 us), {settings.spin_big} (about 0.25 s)"
    )
    print(
        f"Benchmark ({'quick' if args.quick else 'full'}), {cores} cores; results in {out_dir}",
        flush=True,
    )

    measures_path = str(out_dir / "measures.jsonl")
    if os.path.exists(measures_path):
        os.remove(measures_path)
    rec = Recorder(measures_path)
    available = {
        name: importlib.util.find_spec(module) is not None for name, (module, _) in PEERS.items()
    }
    sides = ["bench.side_local", "bench.side_dask"] + [
        side for name, (_, side) in PEERS.items() if available[name]
    ]
    # bench/bench_view.py is the standalone message-size study; the table's view row comes from here.
    view_side = "bench.side_view"
    chosen = set(args.only.split(",")) if args.only else None
    timeout = 400 if args.quick else 900
    for side in sides + [view_side]:
        short = (
            side.removeprefix("bench.side_")
            .replace("ipp", "ipyparallel")
            .removeprefix("bench.bench_")
        )
        if chosen is not None and short not in chosen:
            continue
        error = run_side(side, settings, measures_path, timeout)
        if error:
            rec.add(Measure("-", short, "the whole side", error=error))
    for name, available_now in available.items():
        if not available_now:
            for workload in WORKLOADS:
                if workload not in ("view",):
                    rec.add(
                        Measure(
                            workload,
                            name,
                            "-",
                            error=f"missing: {name} is not installed ({INSTALL})",
                        )
                    )
    if chosen is None or "cold" in chosen:
        print("- bench.cold", flush=True)
        run_cold(settings, rec, available, timeout=120)

    from .targets import check

    measures = read_measures(measures_path)
    targets = check(measures, settings)
    elapsed = time.perf_counter() - started
    text = markdown(machine, settings, measures, targets, elapsed)
    (out_dir / "RESULTS.md").write_text(text)
    (out_dir / "results.json").write_text(as_json(machine, settings, measures, targets))
    print(text)
    print("\n".join(target_lines(targets)))
    crashed = any(m.workload == "-" for m in measures)
    if crashed:
        return 2
    if args.check and any(t.passed is False for t in targets):
        return 1
    return 0
