"""``cvgl-edge plugin build``: compile the SelectiveScan TensorRT plugin for this machine's GPU.

Why a command and not only CMake instructions: a Jetson user needs the right architecture
(Orin: sm_87), the right TensorRT headers (JetPack 6: 10.3 in /usr/include/aarch64-linux-gnu)
and the library where ``export --format engine`` will find it. The plan checks every input
first (nvcc, CMake >= 3.18, headers, an architecture this nvcc supports) and fails in one line
naming what to install; the build then runs export/CMakeLists.txt (warnings as errors off, the
plugin target only) in a scratch folder, under a lock, and places the library and its
``build.json`` atomically in the cache (plugin.cache).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cvgl_edge
from cvgl_edge.errors import CvglError
from cvgl_edge.export.plugin.cache import (
    LIBRARY_NAME,
    MANIFEST_NAME,
    PluginBuild,
    build_folder,
    cache_root,
    sources_sha256,
)
from cvgl_edge.export.plugin.toolchain import (
    TensorRTHeaders,
    architecture,
    cuda_root,
    find_cmake,
    find_nvcc,
    find_tensorrt_headers,
    gpu_compute_capability,
    native_sources,
    nvcc_architectures,
    nvcc_version,
)
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.locks import exclusive_lock

MIN_CMAKE = (3, 18)
NVCC_HINT = ("install the CUDA toolkit (JetPack: `sudo apt install cuda-toolkit-12-6`; x86-64: NVIDIA's CUDA "
             "packages) or pass --nvcc /usr/local/cuda/bin/nvcc")
CMAKE_HINT = "`sudo apt install cmake` or `pip install cmake` (3.18 or newer)"


@dataclass(frozen=True)
class BuildPlan:
    """Everything a plugin build needs, checked before it starts."""

    sources: Path
    nvcc: Path
    cuda_version: str
    cmake: Path
    headers: TensorRTHeaders
    architectures: tuple[int, ...]

    @property
    def folder(self) -> Path:
        return build_folder(self.headers.version, self.architectures)


def _nvcc(given: Path | None) -> Path:
    if given is not None:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            raise CvglError(f"--nvcc {given}: not an executable file")
        return Path(given)
    found = find_nvcc()
    if found is None:
        raise CvglError(f"nvcc not found: {NVCC_HINT}")
    return found


def _cmake() -> Path:
    cmake = find_cmake()
    if cmake is None:
        raise CvglError(f"cmake not found: {CMAKE_HINT}")
    out = subprocess.run([str(cmake), "--version"], capture_output=True, text=True)
    found = re.search(r"version (\d+)\.(\d+)", out.stdout)
    if not found or (int(found.group(1)), int(found.group(2))) < MIN_CMAKE:
        raise CvglError(f"{cmake} is too old ({out.stdout.splitlines()[:1]}): {CMAKE_HINT}")
    return cmake


def _architectures(requested: list[int] | None, nvcc: Path, cuda: str) -> tuple[int, ...]:
    if requested:
        archs = tuple(sorted(set(requested)))
    else:
        capability = gpu_compute_capability()
        if capability is None:
            raise CvglError("no GPU found to pick the architecture from: pass --arch (87 Jetson Orin, 86 RTX 30, "
                            "89 RTX 40, 90 H100/H200, 120 RTX 50; several: --arch 87 --arch 90)")
        archs = (architecture(capability),)
    supported = nvcc_architectures(nvcc)
    unsupported = [a for a in archs if a not in supported]
    if unsupported:
        raise CvglError(f"--arch {unsupported[0]}: {nvcc} (CUDA {cuda}) compiles for "
                        f"{', '.join(map(str, supported))} only")
    return archs


def plan_build(tensorrt_root: Path | None = None, architectures: list[int] | None = None,
               nvcc: Path | None = None) -> BuildPlan:
    """Find and check every input of a build; CvglError naming the first one missing."""
    sources = native_sources()
    compiler = _nvcc(nvcc)
    cmake = _cmake()
    headers = find_tensorrt_headers(tensorrt_root)
    cuda = nvcc_version(compiler)
    return BuildPlan(sources, compiler, cuda, cmake, headers, _architectures(architectures, compiler, cuda))


def _step(name: str, cmd: list[str], log: Path) -> None:
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n")
        handle.flush()
        result = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()
                 if line.strip() and not line.startswith("$ ")]
        errors = [line for line in lines if re.search(r"\berror\b", line, re.IGNORECASE)] or lines[-1:]
        raise CvglError(f"plugin build failed at {name}: {errors[0][:300] if errors else 'no output'}; full log: {log}")


def run_build(plan: BuildPlan, jobs: int | None = None) -> PluginBuild:
    """Configure and build the plugin target, then place the library and its manifest in the cache."""
    folder = plan.folder
    scratch = cache_root() / "build" / folder.name
    with exclusive_lock(folder.parent / f".{folder.name}.lock"):
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        log = scratch / "build.log"
        _step("CMake configure", [
            str(plan.cmake), "-S", str(plan.sources), "-B", str(scratch), "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_CUDA_COMPILER={plan.nvcc}", f"-DCUDAToolkit_ROOT={cuda_root(plan.nvcc)}",
            f"-DTENSORRT_INCLUDE_DIR={plan.headers.include}", "-DCVGL_REQUIRE_TENSORRT=ON",
            f"-DCMAKE_CUDA_ARCHITECTURES={';'.join(map(str, plan.architectures))}"], log)
        _step("the build", [str(plan.cmake), "--build", str(scratch), "--target", "cvgl_trt_plugins",
                            "-j", str(jobs or os.cpu_count() or 2)], log)
        library = folder / LIBRARY_NAME
        atomic_write(library, lambda tmp: shutil.copyfile(scratch / LIBRARY_NAME, tmp))
        build = PluginBuild(
            library=str(library), tensorrt_version=plan.headers.version, tensorrt_include=str(plan.headers.include),
            architectures=plan.architectures, cuda_version=plan.cuda_version,
            sources_sha256=sources_sha256(plan.sources), cvgl_edge_version=cvgl_edge.__version__,
            built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        atomic_write_json(build.to_json(), folder / MANIFEST_NAME)
        shutil.rmtree(scratch, ignore_errors=True)
    return build
