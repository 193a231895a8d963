"""Peak memory of benchmark steps: host RSS (Linux ``VmHWM``) and, on CUDA, GPU memory.

Why reset the high-water mark per step: variants run interleaved in one process, so the
lifetime peak would mix them. Linux lets a process reset its own peak RSS by writing
"5" to ``/proc/self/clear_refs`` (kernel >= 4.0); where that is not possible the peak
is the process's peak since start and is labelled so (``peak_scope``).

GPU figures (CUDA only, not run here): ``torch.cuda.max_memory_allocated`` covers the
PyTorch caching allocator only; ``torch.cuda.mem_get_info`` gives device-wide use, which
also sees ONNX Runtime's arena and TensorRT's activation memory (and other processes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def rss_mb() -> float | None:
    """Current resident set size of this process (MB), or None where unknown."""
    kib = _status_kib("VmRSS")
    if kib is None:
        try:
            import psutil

            return psutil.Process().memory_info().rss / 1e6
        except Exception:  # noqa: BLE001 - memory figures are best effort
            return None
    return kib * 1024 / 1e6


def peak_rss_mb() -> float | None:
    """Peak resident set size (MB) since start or since the last ``reset_peak_rss``."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux: KiB
    return kib * 1024 / 1e6


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark to the current RSS; False where unsupported."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class MemoryProbe:
    """Peak memory of one step: ``begin()`` before, ``end()`` after (dict of MB figures)."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.resettable = reset_peak_rss()
        self.peak_scope = "per step (VmHWM reset)" if self.resettable else "process lifetime"

    def begin(self) -> None:
        if self.resettable:
            reset_peak_rss()
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()

    def end(self) -> dict[str, float]:
        figures: dict[str, float] = {}
        peak = peak_rss_mb()
        if peak is not None:
            figures["peak_rss_mb"] = round(peak, 1)
        if self.cuda:
            figures.update(gpu_memory_mb())
        return figures


def gpu_memory_mb() -> dict[str, float]:
    """PyTorch's peak allocation and device-wide memory in use (MB); CUDA only."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return {
        "gpu_torch_peak_mb": round(torch.cuda.max_memory_allocated() / 1e6, 1),
        "gpu_device_used_mb": round((total - free) / 1e6, 1),
    }


def merge_peaks(into: dict[str, Any], figures: dict[str, float]) -> None:
    """Keep the maximum of each figure over a cell's runs."""
    for key, value in figures.items():
        into[key] = max(value, into.get(key, value))
