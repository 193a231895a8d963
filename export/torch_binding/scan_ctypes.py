"""PyTorch access to the native selective-scan kernel through its C ABI (ctypes).

Why ctypes rather than torch.utils.cpp_extension: the kernel already has a C ABI
(export/csrc/selective_scan.cuh), and a ctypes binding needs neither CUDA-enabled torch
headers nor a C++ toolchain matching torch's ABI: only nvcc. ``build_library`` compiles
``selective_scan_kernel.cu`` into a shared library (static cudart); ``selective_scan_native``
fills ``SelectiveScanParams`` from tensors and enqueues on torch's current CUDA stream.
Used by tests/native/test_gpu.py for parity with cvgl_edge.ops.selective_scan_reference.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

from cvgl_edge.export.plugin import toolchain as native_toolchain

CSRC = Path(__file__).resolve().parent.parent / "csrc"
KERNEL_SOURCE = CSRC / "selective_scan_kernel.cu"
ABI_VERSION = 1
FP32, FP16, BF16 = 0, 1, 2


class SelectiveScanParams(ctypes.Structure):
    """Mirror of the C struct in selective_scan.cuh (same field order and types)."""

    _fields_ = [
        ("abi_version", ctypes.c_int32),
        ("dtype", ctypes.c_int32),
        ("batch", ctypes.c_int32),
        ("dim", ctypes.c_int32),
        ("dstate", ctypes.c_int32),
        ("seqlen", ctypes.c_int32),
        ("direction", ctypes.c_int32),
        ("delta_softplus", ctypes.c_int32),
        ("has_D", ctypes.c_int32),
        ("has_z", ctypes.c_int32),
        ("has_delta_bias", ctypes.c_int32),
        ("param_dtype", ctypes.c_int32),
        ("u", ctypes.c_void_p), ("u_batch_stride", ctypes.c_int64), ("u_dim_stride", ctypes.c_int64),
        ("delta", ctypes.c_void_p), ("delta_batch_stride", ctypes.c_int64), ("delta_dim_stride", ctypes.c_int64),
        ("z", ctypes.c_void_p), ("z_batch_stride", ctypes.c_int64), ("z_dim_stride", ctypes.c_int64),
        ("B", ctypes.c_void_p), ("B_batch_stride", ctypes.c_int64), ("B_dstate_stride", ctypes.c_int64),
        ("C", ctypes.c_void_p), ("C_batch_stride", ctypes.c_int64), ("C_dstate_stride", ctypes.c_int64),
        ("out", ctypes.c_void_p), ("out_batch_stride", ctypes.c_int64), ("out_dim_stride", ctypes.c_int64),
        ("A", ctypes.c_void_p),
        ("D", ctypes.c_void_p),
        ("delta_bias", ctypes.c_void_p),
    ]


def find_nvcc() -> str | None:
    found = native_toolchain.find_nvcc()
    return str(found) if found else None


def build_library(out_dir: str | Path, archs: tuple[str, ...] | None = None) -> Path:
    """Compile the kernel into ``out_dir/libcvgl_scan.so`` and return its path.

    ``archs``: e.g. ("sm_90",); default: the current GPU's arch when torch sees one, else sm_86.
    """
    nvcc = find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (PATH, /usr/local/bin, /usr/local/cuda/bin)")
    if archs is None:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            archs = (f"sm_{major}{minor}",)
        else:
            archs = ("sm_86",)
    out = Path(out_dir) / "libcvgl_scan.so"
    cmd = [nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-cudart", "static"]
    for arch in archs:
        num = arch.removeprefix("sm_")
        cmd += ["-gencode", f"arch=compute_{num},code={arch}"]
    cmd += [str(KERNEL_SOURCE), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


class NativeScan:
    def __init__(self, library: str | Path):
        self.lib = ctypes.CDLL(str(library))
        self.lib.cvgl_selective_scan_forward.argtypes = [ctypes.POINTER(SelectiveScanParams), ctypes.c_void_p]
        self.lib.cvgl_selective_scan_forward.restype = ctypes.c_int
        self.lib.cvgl_selective_scan_error_string.argtypes = [ctypes.c_int]
        self.lib.cvgl_selective_scan_error_string.restype = ctypes.c_char_p

    def forward_raw(self, params: SelectiveScanParams, stream: int = 0) -> int:
        return self.lib.cvgl_selective_scan_forward(ctypes.byref(params), ctypes.c_void_p(stream))

    def error_string(self, code: int) -> str:
        return self.lib.cvgl_selective_scan_error_string(code).decode()

    def __call__(self, u, delta, A, B, C, D=None, z=None, delta_bias=None,
                 delta_softplus=False, reverse=False):
        """Same signature and result as cvgl_edge.ops.selective_scan_reference (CUDA tensors)."""
        import torch

        codes = {torch.float32: FP32, torch.float16: FP16, torch.bfloat16: BF16}
        dtype = u.dtype
        if dtype not in codes:
            raise TypeError(f"unsupported dtype {dtype}")
        u, delta, B, C = (t.to(dtype).contiguous() for t in (u, delta, B, C))
        z = None if z is None else z.to(dtype).contiguous()
        A = A.float().contiguous()
        D = None if D is None else D.float().contiguous()
        delta_bias = None if delta_bias is None else delta_bias.float().contiguous()
        out = torch.empty_like(u)
        batch, dim, seqlen = u.shape
        dstate = A.shape[1]
        p = SelectiveScanParams()
        p.abi_version, p.dtype, p.param_dtype = ABI_VERSION, codes[dtype], FP32
        p.batch, p.dim, p.dstate, p.seqlen = batch, dim, dstate, seqlen
        p.direction, p.delta_softplus = int(reverse), int(delta_softplus)
        p.has_D, p.has_z, p.has_delta_bias = int(D is not None), int(z is not None), int(delta_bias is not None)
        for name in ("u", "delta", "z", "out"):
            setattr(p, f"{name}_batch_stride", dim * seqlen)
            setattr(p, f"{name}_dim_stride", seqlen)
        for name in ("B", "C"):
            setattr(p, f"{name}_batch_stride", dstate * seqlen)
            setattr(p, f"{name}_dstate_stride", seqlen)
        for name, t in (("u", u), ("delta", delta), ("z", z), ("B", B), ("C", C), ("out", out),
                        ("A", A), ("D", D), ("delta_bias", delta_bias)):
            setattr(p, name, None if t is None else t.data_ptr())
        stream = torch.cuda.current_stream(u.device).cuda_stream
        rc = self.forward_raw(p, stream)
        if rc != 0:
            raise RuntimeError(f"cvgl_selective_scan_forward: {self.error_string(rc)} ({rc})")
        return out
