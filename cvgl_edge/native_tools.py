"""Where the native sources and nvcc are: shared by the scan backend (ops) and the plugin build (export).

Why a core-layer module: ``cvgl_edge.ops`` builds the CUDA scan kernel for PyTorch and
``cvgl_edge.export.plugin`` builds the TensorRT plugin from the same folder with the same nvcc;
ops sits below export, so the look-ups live here, below both. Only the standard library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: The repository's native folder (kernel, plugin, CMakeLists.txt); present in a clone or an
#: editable install (``pip install -e .``), which is how the README installs cvgl-edge.
NATIVE_SOURCES = Path(__file__).resolve().parents[1] / "export"
#: The selective-scan kernel and its C ABI header (the header is part of what the kernel is).
SCAN_KERNEL_SOURCE = NATIVE_SOURCES / "csrc" / "selective_scan_kernel.cu"
SCAN_KERNEL_HEADER = NATIVE_SOURCES / "csrc" / "selective_scan.cuh"
NVCC_CANDIDATES = ("/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc")


def find_nvcc() -> Path | None:
    """nvcc on PATH, under $CUDA_HOME, or in the usual toolkit places."""
    found = shutil.which("nvcc")
    candidates = [found] if found else []
    if os.environ.get("CUDA_HOME"):
        candidates.append(str(Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc"))
    candidates += NVCC_CANDIDATES
    return next((Path(c) for c in candidates if c and os.access(c, os.X_OK)), None)


def cuda_root(nvcc: Path) -> Path:
    """The toolkit folder of ``nvcc``; asks nvcc itself, since /usr/local/bin/nvcc may be a wrapper."""
    out = subprocess.run([str(nvcc), "--dryrun", "-E", "-x", "cu", os.devnull], capture_output=True, text=True)
    for line in (out.stdout + out.stderr).splitlines():
        if "TOP=" in line:
            return Path(line.split("TOP=", 1)[1].strip()).resolve()
    return nvcc.resolve().parent.parent


def nvcc_version_text(nvcc: Path) -> str:
    """``nvcc --version`` as printed (release and build); "" when it cannot run."""
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()
