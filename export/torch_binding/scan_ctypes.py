"""Old import path of the ctypes binding over the kernel's C ABI; the binding is cvgl_edge.ops.native_cuda.

Kept so that scripts which put this folder on sys.path and ``import scan_ctypes``
(benchmarks/scan_gpu.py) keep working: every name is the package's own object.
"""

from __future__ import annotations

from cvgl_edge import native_tools
from cvgl_edge.ops.native_cuda import (
    ABI_VERSION,
    BF16,
    FP16,
    FP32,
    Launcher,
    NativeScan,
    SelectiveScanParams,
    build_library,
)

CSRC = native_tools.SCAN_KERNEL_SOURCE.parent
KERNEL_SOURCE = native_tools.SCAN_KERNEL_SOURCE


def find_nvcc() -> str | None:
    """nvcc's path as a string (this module's old return type), or None."""
    found = native_tools.find_nvcc()
    return str(found) if found else None


__all__ = ["ABI_VERSION", "BF16", "CSRC", "FP16", "FP32", "KERNEL_SOURCE", "Launcher", "NativeScan",
           "SelectiveScanParams", "build_library", "find_nvcc"]
