"""Finding the machine's GPUs through NVML, and saying why when there are none.

Also a worker preload (``dask worker --preload ipydistribute.core.gpus``, used by every
embedded worker): it tells the scheduler whether the worker's GPU is real or simulated, so every
view can say which.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any

#: Set to "1" in a worker that declares a GPU resource without having a GPU (teaching).
SIMULATED_ENV = "IPYDISTRIBUTE_SIMULATED_GPU"
#: The key of this worker's facts in the scheduler's worker info (Dask's ``startup_information``).
WORKER_INFO_KEY = "ipydistribute"


class GPUState(enum.Enum):
    """Why GPUs are (not) available: shown to users instead of a silent zero."""

    AVAILABLE = "GPUs found through NVML"
    NVML_NOT_INSTALLED = "NVML is not installed: `pip install nvidia-ml-py` (or `ipydistribute[gpu]`)"
    NO_DRIVER = "NVML found no NVIDIA driver on this machine"
    NO_GPU = "the NVIDIA driver reports no GPU"
    DISABLED = "GPU workers were turned off (--gpus none)"


@dataclass(frozen=True)
class GPUInfo:
    index: int
    name: str
    memory_total: int


def detect_gpus() -> tuple[GPUState, list[GPUInfo]]:
    """The machine's NVIDIA GPUs, and the reason when the list is empty."""
    try:
        import pynvml
    except ImportError:
        return GPUState.NVML_NOT_INSTALLED, []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return GPUState.NO_DRIVER, []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(GPUInfo(index, name.decode() if isinstance(name, bytes) else str(name), int(memory)))
    finally:
        pynvml.nvmlShutdown()
    return (GPUState.AVAILABLE if gpus else GPUState.NO_GPU), gpus


def is_simulated() -> bool:
    """Whether this process is a worker whose GPU resource is simulated."""
    return os.environ.get(SIMULATED_ENV) == "1"


def simulated_gpu(facts: dict[str, Any] | None, name: str) -> bool:
    """Whether a worker's GPU resource is simulated: its facts (:func:`worker_facts`) say so;
    a worker without them (started without the preload) by its name, ``simgpu-N``.

    Runs on the scheduler too (core/scheduler_plugin.py), so this module imports only the
    standard library."""
    if facts and "simulated_gpu" in facts:
        return bool(facts["simulated_gpu"])
    return name.startswith("simgpu-")


def worker_facts(worker: Any) -> dict[str, Any]:
    """What the scheduler learns about a worker when it registers (Dask startup information)."""
    return {"simulated_gpu": is_simulated(), "pid": os.getpid()}


def dask_setup(worker: Any) -> None:
    """Dask preload hook, run in each worker before it registers with the scheduler."""
    worker.startup_information[WORKER_INFO_KEY] = worker_facts
