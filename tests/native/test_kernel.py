"""Native export side (export/) compiled as users and CI build it; no GPU needed.

- the kernel compiles with nvcc for every architecture CMake builds by default;
- its C ABI header is plain C and C++, and the ctypes mirror has the struct's size;
- the plugin compiles against every TensorRT header set with warnings as errors in our files;
- the CMake project builds the plugin library against each set: it exports only TensorRT's two
  entry points and needs no libnvinfer.

Skipped with the reason when nvcc, CMake or the TensorRT headers are absent (the headers come
from CVGL_TENSORRT_INCLUDE_DIRS, which .ci/run sets; a user's clone has none). The kernel's
numbers are checked on the CPU in test_kernel_cpu.py and on a GPU in test_gpu.py.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.export.plugin.toolchain import (
    NATIVE_SOURCES, find_cmake, find_nvcc, find_tensorrt_headers, nvcc_architectures,
)
from cvgl_edge.ops import native_cuda
from tests.support import native_build

NVCC = find_nvcc()
#: What the project claims (export/CMakeLists.txt's default with nvcc >= 13.0): Turing, A100,
#: RTX 30, Orin, RTX 40, H100/H200, B200, Thor, RTX 50.
CLAIMED_ARCHS = (75, 80, 86, 87, 89, 90, 100, 110, 120)
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (PATH, $CUDA_HOME, /usr/local/cuda)")
needs_cmake = pytest.mark.skipif(find_cmake() is None, reason="cmake not found")
needs_headers = pytest.mark.skipif(native_build.tensorrt_missing_reason() is not None,
                                   reason=str(native_build.tensorrt_missing_reason()))
HEADER_SETS = native_build.tensorrt_header_sets()


def _configure(build: Path, *options: str) -> subprocess.CompletedProcess:
    cuda = native_build.cuda_include()
    cmd = [str(find_cmake()), "-S", str(NATIVE_SOURCES), "-B", str(build), f"-DCMAKE_CUDA_COMPILER={NVCC}"]
    if cuda is not None:
        cmd.append(f"-DCUDAToolkit_ROOT={cuda.parent}")
    return subprocess.run([*cmd, *options], capture_output=True, text=True, timeout=300)


@needs_nvcc
@needs_cmake
def test_cmake_default_architectures_are_the_claimed_ones(tmp_path):
    run = _configure(tmp_path / "build")
    assert run.returncode == 0, run.stdout + run.stderr
    listed = re.search(r"cvgl: CUDA (\S+), architectures (\S+)", run.stdout)
    assert listed, run.stdout
    version, archs = listed.group(1), tuple(int(a) for a in listed.group(2).split(";"))
    if tuple(int(x) for x in version.split(".")[:2]) >= (13, 0):
        assert sorted(archs) == sorted(CLAIMED_ARCHS)
    assert {87, 90} <= set(archs)  # Orin and H100/H200 on every supported CUDA


@needs_nvcc
def test_kernel_compiles_for_every_claimed_arch(tmp_path):
    supported = set(nvcc_architectures(NVCC))
    archs = [a for a in CLAIMED_ARCHS if a in supported]
    assert {75, 80, 86, 87, 89, 90} <= set(archs), f"nvcc lacks a base architecture: {sorted(supported)}"
    obj = tmp_path / "selective_scan_kernel.o"
    cmd = [str(NVCC), "-c", "-O3", "-std=c++17", "-Werror=all-warnings"]
    for arch in archs:
        cmd += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    res = subprocess.run([*cmd, str(native_build.KERNEL_SOURCE), "-o", str(obj)], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    cuobjdump = Path(NVCC).resolve().parent / "cuobjdump"
    cuobjdump = shutil.which("cuobjdump") or (str(cuobjdump) if cuobjdump.exists() else None)
    if cuobjdump:
        listing = subprocess.run([cuobjdump, "--list-elf", str(obj)], capture_output=True, text=True).stdout
        for arch in archs:
            assert f"sm_{arch}" in listing, listing


@needs_nvcc
def test_header_is_plain_c_and_cxx(tmp_path):
    """selective_scan.cuh has no device code: a host C and C++ compiler accept it."""
    inc = native_build.cuda_include()
    if inc is None:
        pytest.skip("CUDA include directory not found")
    src = tmp_path / "use.c"
    src.write_text('#include "selective_scan.cuh"\nint f(void){SelectiveScanParams p; p.dtype = CVGL_SCAN_FP16; return p.dtype;}\n')
    for compiler, extra in (("cc", ["-std=c99"]), ("c++", ["-x", "c++", "-std=c++17"])):
        if shutil.which(compiler) is None:
            continue
        res = subprocess.run([compiler, *extra, "-Wall", "-Werror", "-fsyntax-only", f"-I{native_build.CSRC}",
                              f"-I{inc}", str(src)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


@needs_nvcc
def test_c_abi_through_ctypes_without_gpu(tmp_path):
    """The ctypes mirror has the C struct's size, and argument checks need no GPU."""
    lib = native_cuda.build_library(tmp_path, archs=("sm_86",))
    native = native_cuda.NativeScan(lib)
    p = native_cuda.SelectiveScanParams()
    p.abi_version, p.batch, p.dim, p.dstate, p.seqlen = native_cuda.ABI_VERSION, 1, 8, 16, 4
    assert native.forward_raw(p) == -1  # NULL pointers, checked before any CUDA call
    p.dstate = 17
    assert native.forward_raw(p) == -2
    p.dstate, p.dtype = 16, 7
    assert native.forward_raw(p) == -3
    p.dtype, p.seqlen = native_cuda.FP32, 0
    assert native.forward_raw(p) == 0  # empty scan: nothing launched
    assert "dstate" in native.error_string(-2)

    inc = native_build.cuda_include()
    if inc is not None and shutil.which("cc"):
        probe = tmp_path / "size.c"
        probe.write_text('#include "selective_scan.cuh"\n#include <stdio.h>\n'
                         'int main(void){printf("%zu", sizeof(SelectiveScanParams)); return 0;}\n')
        exe = tmp_path / "size"
        subprocess.run(["cc", f"-I{native_build.CSRC}", f"-I{inc}", str(probe), "-o", str(exe)], check=True)
        size = int(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
        assert size == ctypes.sizeof(native_cuda.SelectiveScanParams)


@needs_nvcc
@needs_headers
@pytest.mark.parametrize("headers", HEADER_SETS, ids=lambda h: f"trt{h.version}")
def test_plugin_compiles_against_tensorrt_headers_with_warnings_as_errors(headers):
    res = subprocess.run(["c++", *native_build.plugin_compile_flags(headers), "-Wshadow", "-fsyntax-only",
                          str(native_build.PLUGIN / "selective_scan_plugin.cpp")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def _exported(library: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.split()[1:2] in (["T"], ["W"], ["D"], ["B"])}


def _needed(library: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)


@needs_nvcc
@needs_cmake
@needs_headers
@pytest.mark.parametrize("headers", HEADER_SETS, ids=lambda h: f"trt{h.version}")
def test_cmake_builds_the_plugin_library_against_headers_only(headers, tmp_path):
    """Warnings are errors; the library exports TensorRT's two entry points and nothing of the
    kernel's C ABI (no clash with libcvgl_scan.so), and links no libnvinfer (so one build loads
    into any TensorRT whose headers it matches; --no-undefined proves nothing is missing)."""
    build = tmp_path / "build"
    run = _configure(build, f"-DTENSORRT_INCLUDE_DIR={headers.include}", "-DCVGL_REQUIRE_TENSORRT=ON",
                     "-DCVGL_WARNINGS_AS_ERRORS=ON", "-DCMAKE_CUDA_ARCHITECTURES=87")
    assert run.returncode == 0, run.stdout + run.stderr
    made = subprocess.run([str(find_cmake()), "--build", str(build), "-j2"], capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout[-4000:] + made.stderr[-4000:]
    plugin = build / "libcvgl_trt_plugins.so"
    assert _exported(plugin) == {"getCreators", "setLoggerFinder"}
    assert not any("nvinfer" in lib for lib in _needed(plugin)), _needed(plugin)
    assert "cvgl_selective_scan_forward" in _exported(build / "libcvgl_scan.so")  # the ctypes library keeps its ABI


@needs_nvcc
@needs_cmake
def test_cmake_without_headers_builds_the_kernel_or_fails_when_the_plugin_is_required(tmp_path):
    try:
        pytest.skip(f"this machine has TensorRT headers in {find_tensorrt_headers().include}")
    except CvglError:
        pass
    optional = _configure(tmp_path / "a", "-DCMAKE_CUDA_ARCHITECTURES=87")
    required = _configure(tmp_path / "b", "-DCVGL_REQUIRE_TENSORRT=ON", "-DCMAKE_CUDA_ARCHITECTURES=87")
    assert optional.returncode == 0 and "skipping the cvgl_trt_plugins" in optional.stdout
    assert required.returncode != 0 and "TensorRT headers (NvInfer.h) not found" in required.stderr
