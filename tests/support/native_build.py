"""Native builds for the tests: the CUDA kernel built for the CPU (HIP-CPU) and the plugin driver.

Settings, filled by ``.ci/run`` from the third-party folder beside the clone. A user's clone
has none of them: the tests that need one skip and say which.

  CVGL_TENSORRT_INCLUDE_DIRS  TensorRT include folders, os.pathsep-separated (CI: 10.3, 10.16, 11.1)
  CVGL_HIP_CPU_ROOT           a HIP-CPU checkout (include/, src/include/, external/half/)
  CVGL_HIPIFY_PERL            hipify-perl (CUDA -> HIP source translation)
  CVGL_SCAN_KERNEL_SOURCE     the .cu file built for the CPU; default export/csrc/selective_scan_kernel.cu
                              (benchmarks/scan_cpu_mutations.py points it at deliberately broken copies)

The CPU build runs the very .cu file: hipify-perl translates it (and its header) at test time,
``export/hip_cpu/include`` fills what HIP-CPU lacks (bf16, the ``*_sync`` shuffles), and g++
compiles it with HIP-CPU into a shared library with the kernel's C ABI plus
``cvgl_emulation_synchronize``. Builds are cached by the hash of the sources, the HIP-CPU folder
and the compiler under pytest's temp root, so parallel workers share one build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cvgl_edge.export.plugin.toolchain import (
    NATIVE_SOURCES, TensorRTHeaders, cuda_include_dir, find_nvcc, read_tensorrt_headers,
)
from tests.support.paths import REPO_ROOT, TESTS

ROOT = REPO_ROOT
CSRC = NATIVE_SOURCES / "csrc"
PLUGIN = NATIVE_SOURCES / "plugin"
HIP_BRIDGE = NATIVE_SOURCES / "hip_cpu"
KERNEL_SOURCE = CSRC / "selective_scan_kernel.cu"
KERNEL_HEADER = CSRC / "selective_scan.cuh"
PLUGIN_DRIVER = TESTS / "native" / "plugin_driver.cpp"
CPU_KERNEL_LIB = "libcvgl_scan_cpu.so"

ENV_TENSORRT = "CVGL_TENSORRT_INCLUDE_DIRS"
ENV_HIP_CPU = "CVGL_HIP_CPU_ROOT"
ENV_HIPIFY = "CVGL_HIPIFY_PERL"
ENV_KERNEL = "CVGL_SCAN_KERNEL_SOURCE"
_TBB_HEADERS = (Path("/usr/include/tbb/tbb.h"), Path("/usr/include/oneapi/tbb.h"))


@dataclass(frozen=True)
class HipCpu:
    """A HIP-CPU checkout and the hipify-perl script that feeds it."""

    root: Path
    hipify: Path

    def include_flags(self) -> list[str]:
        return [f"-I{self.root / 'include'}", f"-I{self.root / 'src' / 'include'}",
                f"-I{self.root / 'external' / 'half'}"]


def tensorrt_header_sets() -> list[TensorRTHeaders]:
    """The TensorRT include folders named by CVGL_TENSORRT_INCLUDE_DIRS that hold NvInfer.h."""
    folders = [Path(p) for p in os.environ.get(ENV_TENSORRT, "").split(os.pathsep) if p.strip()]
    return [h for h in (read_tensorrt_headers(f) for f in folders) if h is not None]


def tensorrt_missing_reason() -> str | None:
    if tensorrt_header_sets():
        return None
    return (f"no TensorRT headers: set {ENV_TENSORRT} to TensorRT include folders "
            "(.ci/run sets it from the third-party folder beside the clone)")


def hip_cpu() -> HipCpu | None:
    root, hipify = os.environ.get(ENV_HIP_CPU), os.environ.get(ENV_HIPIFY)
    if not root or not hipify:
        return None
    found = HipCpu(Path(root), Path(hipify))
    if not (found.root / "include" / "hip" / "hip_runtime.h").is_file() or not found.hipify.is_file():
        return None
    return found


def hip_cpu_missing_reason() -> str | None:
    """Why the CPU emulation cannot be built here, or None when it can."""
    if hip_cpu() is None:
        return (f"no HIP-CPU: set {ENV_HIP_CPU} (a HIP-CPU checkout) and {ENV_HIPIFY} (hipify-perl); "
                ".ci/run sets both from the third-party folder beside the clone")
    if not any(p.is_file() for p in _TBB_HEADERS):
        return "HIP-CPU needs TBB: apt-get install -y libtbb-dev"
    for tool in ("g++", "perl"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


def kernel_source() -> Path:
    return Path(os.environ.get(ENV_KERNEL) or KERNEL_SOURCE)


def _digest(*paths: Path, extra: str = "") -> str:
    sha = hashlib.sha256(extra.encode())
    for path in paths:
        sha.update(path.name.encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()[:16]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def _hipify(hip: HipCpu, source: Path, target: Path) -> None:
    out = _run(["perl", str(hip.hipify), "-hip-kernel-execution-syntax", str(source)])
    target.write_text(out.stdout)


def build_cpu_kernel(out_dir: Path, source: Path | None = None) -> Path:
    """Translate ``source`` (default: the kernel) with hipify-perl and compile it for the CPU."""
    hip = hip_cpu()
    assert hip is not None, hip_cpu_missing_reason()
    source = Path(source or kernel_source())
    out_dir.mkdir(parents=True, exist_ok=True)
    _hipify(hip, KERNEL_HEADER, out_dir / KERNEL_HEADER.name)  # included as "selective_scan.cuh"
    _hipify(hip, source, out_dir / "selective_scan_kernel.hip.cpp")
    library = out_dir / CPU_KERNEL_LIB
    _run(["g++", "-std=c++17", "-O2", "-fPIC", "-shared", "-pthread", "-w",
          f"-I{out_dir}", f"-I{HIP_BRIDGE / 'include'}", *hip.include_flags(),
          str(out_dir / "selective_scan_kernel.hip.cpp"), str(HIP_BRIDGE / "synchronize.cpp"),
          "-o", str(library), "-ltbb"], timeout=600)
    return library


def cached_cpu_kernel(cache_root: Path, source: Path | None = None) -> Path:
    """``build_cpu_kernel`` once per source content under ``cache_root`` (safe across xdist workers:
    each builds in a private folder and renames it into place; a lost race keeps the winner's)."""
    source = Path(source or kernel_source())
    hip = hip_cpu()
    toolchain = f"{hip.root if hip else ''}|{_run(['g++', '--version']).stdout.splitlines()[0]}"
    key = _digest(source, KERNEL_HEADER, HIP_BRIDGE / "include" / "cuda_bf16.h", HIP_BRIDGE / "synchronize.cpp",
                  extra=toolchain)
    final = cache_root / f"cpu-kernel-{key}"
    if not (final / CPU_KERNEL_LIB).is_file():
        cache_root.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root))
        build_cpu_kernel(private, source)
        try:
            os.rename(private, final)
        except OSError:  # another worker finished first
            shutil.rmtree(private, ignore_errors=True)
    return final / CPU_KERNEL_LIB


def cuda_include() -> Path | None:
    nvcc = find_nvcc()
    return cuda_include_dir(nvcc) if nvcc else None


def plugin_compile_flags(headers: TensorRTHeaders) -> list[str]:
    """Our sources with every warning as an error; TensorRT and CUDA headers as system headers."""
    cuda = cuda_include()
    assert cuda is not None, "CUDA headers not found (nvcc's toolkit include/)"
    return ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-isystem", str(headers.include), "-isystem", str(cuda),
            f"-I{CSRC}", f"-I{PLUGIN}"]


def build_plugin_driver(out_dir: Path, headers: TensorRTHeaders, kernel_lib: Path) -> Path:
    """tests/native/plugin_driver.cpp + the real plugin source, linked to the CPU-built kernel
    (no libnvinfer, no CUDA runtime: the plugin calls only the kernel's C ABI)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / f"plugin_driver_trt{headers.version}"
    _run(["g++", *plugin_compile_flags(headers), "-O1", str(PLUGIN_DRIVER), str(PLUGIN / "selective_scan_plugin.cpp"),
          "-o", str(exe), f"-L{kernel_lib.parent}", "-lcvgl_scan_cpu", f"-Wl,-rpath,{kernel_lib.parent}",
          "-ltbb", "-pthread"], timeout=600)
    return exe
