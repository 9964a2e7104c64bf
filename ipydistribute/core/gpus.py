"""Finding the machine's GPUs through NVML, and saying why when there are none."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
