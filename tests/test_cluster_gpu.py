"""Real GPU work on the auto-detected GPU worker (skipped without an NVIDIA GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ipydistribute.core.gpus import detect_gpus

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.gpu
@pytest.mark.slow
def test_a_gpu_cell_runs_on_the_gpu_worker_and_its_metrics_are_reported() -> None:
    state, gpus = detect_gpus()
    if not gpus:
        pytest.skip(f"no NVIDIA GPU here: {state.value}")
    # its own process: the check starts its own embedded cluster
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if "skipped" in report:
        pytest.skip(report["skipped"])
    assert report["ok"], report
    assert done.returncode == 0, done.stderr[-2000:]
