"""Describe the machine a result was measured on (recorded with every benchmark)."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, else what platform reports."""
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(with_torch: bool = True) -> dict:
    """Host, CPU, cores, OS, Python version and, where PyTorch is installed, its version, threads and
    the GPU it sees. ``with_torch=False``: PyTorch only if something already imported it (exported
    files are benchmarked without importing it)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is None and with_torch:
        try:
            import torch
        except ImportError:  # the deployment install
            torch = None
    if torch is None:
        return info
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def load_average() -> list[float] | None:
    """1/5/15-minute load, to show whether the machine was busy during a run."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def result_stem(results: Path, benchmark: str, suffix: str = "") -> Path:
    """``results/<benchmark>_<host>_<YYYYMMDD><suffix>``: one file per machine and date."""
    import datetime as dt

    host = re.sub(r"[^A-Za-z0-9_.-]", "-", platform.node() or platform.machine())
    return Path(results) / f"{benchmark}_{host}_{dt.date.today():%Y%m%d}{suffix}"
