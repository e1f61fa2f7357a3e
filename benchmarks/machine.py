"""What machine a benchmark ran on, measured where it runs (never typed in).

`machine_info()` is the `machine`/`gpu` part of every benchmark's JSON: the CPU model and core
count, the load average when the benchmark started (the machine may be shared: a load near or
above the core count means other work competed for the CPUs), and the GPU torch sees, if any.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str:
    """Name of the first CUDA device torch sees, or "none"."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def machine_info() -> dict[str, Any]:
    """{"machine": "<cores>-core CPU (<model>), load <1-min load> at start", "gpu": ..., "cpu_cores": ..., "load1": ...}."""
    cores = os.cpu_count() or 0
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    load = f", load {load1:.1f} at start" if load1 is not None else ""
    return {"machine": f"{cores}-core CPU ({cpu_model()}){load}", "gpu": gpu_name(), "cpu_cores": cores, "load1": load1}
