"""Native export side (export/): the CUDA kernel compiles for every target arch, its C ABI
matches the ctypes mirror, and the TensorRT plugin compiles where TensorRT headers exist.

Compile-only: no GPU is needed (nvcc is enough); skipped with a reason when nvcc is absent.
The kernel's numerical parity runs on a GPU in tests/test_native_gpu.py.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "export" / "csrc"
PLUGIN = ROOT / "export" / "plugin"
ARCHS = ("sm_75", "sm_86", "sm_87", "sm_89")

sys.path.insert(0, str(ROOT / "export" / "torch_binding"))
import scan_ctypes  # noqa: E402

NVCC = scan_ctypes.find_nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (PATH, /usr/local/bin, /usr/local/cuda/bin)")


def _cuda_include() -> Path | None:
    if NVCC is None:
        return None
    # /usr/local/bin/nvcc may be a wrapper script: ask nvcc for its own prefix
    out = subprocess.run([NVCC, "--dryrun", "--version"], capture_output=True, text=True)
    for line in (out.stdout + out.stderr).splitlines():
        if "TOP=" in line:
            top = Path(line.split("TOP=", 1)[1].strip())
            if (top / "include" / "cuda_runtime_api.h").exists():
                return top / "include"
    for cand in (Path("/usr/local/cuda/include"), Path(NVCC).resolve().parent.parent / "include"):
        if (cand / "cuda_runtime_api.h").exists():
            return cand
    return None


def _tensorrt_include() -> Path | None:
    cands = [Path(os.environ["TENSORRT_ROOT"]) / "include"] if os.environ.get("TENSORRT_ROOT") else []
    cands += [Path("/usr/include/x86_64-linux-gnu"), Path("/usr/include/aarch64-linux-gnu"), Path("/usr/include")]
    return next((c for c in cands if (c / "NvInfer.h").exists()), None)


@needs_nvcc
def test_kernel_compiles_for_all_target_archs(tmp_path):
    obj = tmp_path / "selective_scan_kernel.o"
    cmd = [NVCC, "-c", "-O3", "-std=c++17"]
    for arch in ARCHS:
        cmd += ["-gencode", f"arch=compute_{arch[3:]},code={arch}"]
    cmd += [str(CSRC / "selective_scan_kernel.cu"), "-o", str(obj)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert obj.exists() and obj.stat().st_size > 0
    cuobjdump = shutil.which("cuobjdump") or (
        str(Path(NVCC).resolve().parent / "cuobjdump") if (Path(NVCC).resolve().parent / "cuobjdump").exists() else None
    )
    if cuobjdump:
        listing = subprocess.run([cuobjdump, "--list-elf", str(obj)], capture_output=True, text=True).stdout
        for arch in ARCHS:
            assert arch in listing, listing


@needs_nvcc
def test_header_is_plain_c_and_cxx(tmp_path):
    """selective_scan.cuh has no device code: a host C and C++ compiler accept it."""
    inc = _cuda_include()
    if inc is None:
        pytest.skip("CUDA include directory not found")
    src = tmp_path / "use.c"
    src.write_text('#include "selective_scan.cuh"\nint f(void){SelectiveScanParams p; p.dtype = CVGL_SCAN_FP16; return p.dtype;}\n')
    for compiler, extra in (("cc", ["-std=c99"]), ("c++", ["-x", "c++", "-std=c++17"])):
        if shutil.which(compiler) is None:
            continue
        res = subprocess.run([compiler, *extra, "-Wall", "-Werror", "-fsyntax-only", f"-I{CSRC}", f"-I{inc}", str(src)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


@needs_nvcc
def test_c_abi_through_ctypes_without_gpu(tmp_path):
    """The ctypes mirror has the C struct's size, and argument checks need no GPU."""
    lib = scan_ctypes.build_library(tmp_path, archs=("sm_86",))
    native = scan_ctypes.NativeScan(lib)
    p = scan_ctypes.SelectiveScanParams()
    p.abi_version, p.batch, p.dim, p.dstate, p.seqlen = scan_ctypes.ABI_VERSION, 1, 8, 16, 4
    assert native.forward_raw(p) == -1  # NULL pointers, checked before any CUDA call
    p.dstate = 17
    assert native.forward_raw(p) == -2
    p.dstate, p.dtype = 16, 7
    assert native.forward_raw(p) == -3
    p.dtype, p.seqlen = scan_ctypes.FP32, 0
    assert native.forward_raw(p) == 0  # empty scan: nothing launched
    assert "dstate" in native.error_string(-2)

    inc = _cuda_include()
    if inc is not None and shutil.which("cc"):
        probe = tmp_path / "size.c"
        probe.write_text('#include "selective_scan.cuh"\n#include <stdio.h>\n'
                         'int main(void){printf("%zu", sizeof(SelectiveScanParams)); return 0;}\n')
        exe = tmp_path / "size"
        subprocess.run(["cc", f"-I{CSRC}", f"-I{inc}", str(probe), "-o", str(exe)], check=True)
        size = int(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
        assert size == ctypes.sizeof(scan_ctypes.SelectiveScanParams)


@needs_nvcc
def test_plugin_compiles_against_tensorrt(tmp_path):
    trt_inc = _tensorrt_include()
    if trt_inc is None:
        pytest.skip("TensorRT headers (NvInfer.h) not found: set TENSORRT_ROOT; "
                    "the tensorrt_rtx wheel ships no C++ headers")
    cuda_inc = _cuda_include()
    res = subprocess.run(
        ["c++", "-std=c++17", "-fsyntax-only", "-Wall", f"-I{trt_inc}", f"-I{cuda_inc}", f"-I{CSRC}", f"-I{PLUGIN}",
         str(PLUGIN / "selective_scan_plugin.cpp")],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
