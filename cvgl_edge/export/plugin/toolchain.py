"""Where the native build inputs are: the sources, nvcc, CMake, and the TensorRT headers.

Why one module: ``cvgl-edge plugin build`` and the native tests look for the same tools in
the same places, and a missing one must be named in one line with what to install. JetPack
puts the TensorRT headers in ``/usr/include/aarch64-linux-gnu`` (``libnvinfer-dev``), x86-64
Debian packages in ``/usr/include/x86_64-linux-gnu``, tar installs in ``<root>/include``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cvgl_edge.errors import CvglError
from cvgl_edge.export.tensorrt.gpu_facts import gpu_facts

# NATIVE_SOURCES, find_nvcc and cuda_root live in the core layer (the scan backend in ops builds the
# kernel with the same nvcc); re-exported here under their old names.
from cvgl_edge.native_tools import NATIVE_SOURCES as NATIVE_SOURCES
from cvgl_edge.native_tools import cuda_root as cuda_root
from cvgl_edge.native_tools import find_nvcc as find_nvcc

#: System include folders that hold NvInfer.h after a Debian/JetPack package install.
SYSTEM_TENSORRT_INCLUDES = (Path("/usr/include/aarch64-linux-gnu"), Path("/usr/include/x86_64-linux-gnu"),
                            Path("/usr/include"))
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class TensorRTHeaders:
    """A folder holding NvInfer.h and the TensorRT version its NvInferVersion.h declares."""

    include: Path
    version: str



def major_minor(version: str) -> str:
    """"10.3.0.30" -> "10.3": a plugin built against one TensorRT's headers serves its patch releases."""
    return ".".join(version.split(".")[:2])


def architecture(compute_capability: str) -> int:
    """"8.7" -> 87, the number nvcc and CMake use (sm_87)."""
    major, minor = compute_capability.split(".")[:2]
    return int(major) * 10 + int(minor)


def native_sources() -> Path:
    """The export/ folder with CMakeLists.txt; CvglError when cvgl-edge was installed without it."""
    if not (NATIVE_SOURCES / "CMakeLists.txt").is_file():
        raise CvglError(f"the native sources are not at {NATIVE_SOURCES} (cvgl-edge installed from a wheel?): "
                        "clone the repository and `pip install -e .` in it")
    return NATIVE_SOURCES


def find_cmake() -> Path | None:
    found = shutil.which("cmake")
    return Path(found) if found else None


def cuda_include_dir(nvcc: Path) -> Path | None:
    include = cuda_root(nvcc) / "include"
    return include if (include / "cuda_runtime_api.h").is_file() else None


def nvcc_architectures(nvcc: Path) -> tuple[int, ...]:
    """The real architectures this nvcc compiles for (``--list-gpu-arch``: compute_75 ... -> 75 ...)."""
    out = subprocess.run([str(nvcc), "--list-gpu-arch"], capture_output=True, text=True)
    return tuple(sorted({int(m) for m in re.findall(r"compute_(\d+)", out.stdout)}))


def read_tensorrt_headers(include: Path) -> TensorRTHeaders | None:
    """``include`` as TensorRT headers, or None when it holds no NvInfer.h.

    NvInferVersion.h defines NV_TENSORRT_MAJOR as a number (10.3) or as another macro
    (TRT_MAJOR_ENTERPRISE in 10.16 and 11.x); both are resolved.
    """
    include = Path(include)
    if not (include / "NvInfer.h").is_file():
        return None
    version_file = include / "NvInferVersion.h"
    defines = dict(_DEFINE.findall(version_file.read_text())) if version_file.is_file() else {}

    def value(name: str) -> str:
        seen = name
        for _ in range(4):
            seen = defines.get(seen, seen)
            if seen.isdigit():
                return seen
        return "?"

    version = ".".join(value(f"NV_TENSORRT_{part}") for part in ("MAJOR", "MINOR", "PATCH"))
    return TensorRTHeaders(include, version)


def find_tensorrt_headers(root: Path | None = None) -> TensorRTHeaders:
    """The TensorRT headers under ``root`` (its ``include/`` or itself), else $TENSORRT_ROOT, else the
    system folders; CvglError naming what to install when none holds NvInfer.h."""
    if root is not None:
        for candidate in (Path(root) / "include", Path(root)):
            headers = read_tensorrt_headers(candidate)
            if headers is not None:
                return headers
        raise CvglError(f"--tensorrt-root {root}: no NvInfer.h in {root}/include or {root}")
    candidates = [Path(os.environ["TENSORRT_ROOT"]) / "include"] if os.environ.get("TENSORRT_ROOT") else []
    for candidate in (*candidates, *SYSTEM_TENSORRT_INCLUDES):
        headers = read_tensorrt_headers(candidate)
        if headers is not None:
            return headers
    raise CvglError("TensorRT headers (NvInfer.h) not found: on JetPack `sudo apt install libnvinfer-dev`; "
                    "with a TensorRT tar install pass --tensorrt-root /path/to/TensorRT-10.x")


def nvcc_version(nvcc: Path) -> str:
    """``nvcc --version`` -> "12.6" (the CUDA release); "?" when it cannot tell."""
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True)
    found = re.search(r"release (\d+\.\d+)", out.stdout)
    return found.group(1) if found else "?"


def _nvidia_smi_capability() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True, text=True)
    first = out.stdout.strip().splitlines()[:1]
    return first[0].strip() if out.returncode == 0 and first and re.fullmatch(r"\d+\.\d+", first[0].strip()) else None


def _jetson_capability() -> str | None:
    """Jetson modules have no nvidia-smi query for this; the device tree names the SoC (Orin: tegra234)."""
    compatible = Path("/proc/device-tree/compatible")
    if compatible.is_file() and b"nvidia,tegra234" in compatible.read_bytes():
        return "8.7"
    return None


def gpu_compute_capability() -> str | None:
    """This machine's GPU as "8.7": CUDA (torch or cuda-python), else nvidia-smi, else a Jetson's device tree."""
    from_cuda = gpu_facts()
    if from_cuda:
        return from_cuda["compute_capability"]
    return _nvidia_smi_capability() or _jetson_capability()
