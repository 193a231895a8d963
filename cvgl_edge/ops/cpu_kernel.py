"""The compiled C++ CPU scan: JIT build on first use, then ctypes calls.

The kernel (csrc/selective_scan_cpu.cpp) has a C ABI and no torch headers, so the
build takes seconds. It is built with ``torch.utils.cpp_extension.load`` the first time
a scan needs it, never at import. If the build fails (no compiler, say) one warning is
logged and ``is_available()`` stays False, so the dispatcher falls back to ``chunked``;
``CVGL_DISABLE_CPP=1`` skips the build. A fresh build takes ~2-4 s on a 2-core machine,
loading a cached one ~0.2 s.

Python applies delta_bias and softplus (vectorised torch ops) before the call and the
softplus chain rule after the backward call; the kernel scans step sizes dt directly.

Build cache: ``$CVGL_EXTENSIONS_DIR`` or ``$TORCH_EXTENSIONS_DIR`` if set, else
``~/.cache/cvgl_edge/torch_extensions``. The library name carries a hash of the CPU's
feature flags because it is compiled with ``-march=native``: a cache shared between
different machines then never serves one machine's binary to another.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
from pathlib import Path

import torch

from cvgl_edge.ops.build_once import BuildOnce
from cvgl_edge.ops.common import ScanGrads, compute_dtype, softplus_grad, step_sizes

log = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "csrc" / "selective_scan_cpu.cpp"
ABI_VERSION = 2



def _cpu_tag() -> str:
    """Short hash of the machine's CPU features, so -march=native binaries never mix."""
    flags = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags += line
                break
    except OSError:
        pass
    return hashlib.sha1(flags.encode()).hexdigest()[:8]


def _arch_flags() -> list[str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return ["-march=native"]
    if machine in ("aarch64", "arm64"):
        return ["-mcpu=native"]
    return []


def build_directory() -> Path:
    """Where the JIT build lives (created on demand)."""
    base = os.environ.get("CVGL_EXTENSIONS_DIR") or os.environ.get("TORCH_EXTENSIONS_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "cvgl_edge" / "torch_extensions"
    path = root / f"cvgl_scan_cpu_{_cpu_tag()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _declare(lib: ctypes.CDLL) -> None:
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    for suffix in ("f32", "f64"):
        fwd = getattr(lib, f"cvgl_scan_fwd_{suffix}")
        fwd.argtypes = [ptr] * 8 + [i64] * 4 + [i32] * 2
        fwd.restype = ctypes.c_int
        bwd = getattr(lib, f"cvgl_scan_bwd_{suffix}")
        bwd.argtypes = [ptr] * 15 + [i64] * 4 + [i32] * 2
        bwd.restype = ctypes.c_int


def _build() -> ctypes.CDLL:
    """Compile (or load from the cache) and bind the kernel library.

    First with OpenMP and native-CPU flags; if that fails (a compiler without OpenMP,
    such as Apple clang), once more with plain -O3 (single-threaded kernel).
    """
    from torch.utils.cpp_extension import load

    attempts = [
        (["-O3", "-fopenmp", *_arch_flags()], ["-fopenmp"]),
        (["-O3"], []),
    ]
    for i, (cflags, ldflags) in enumerate(attempts):
        try:
            path = load(
                name="cvgl_scan_cpu",
                sources=[str(SOURCE)],
                extra_cflags=cflags,
                extra_ldflags=ldflags,
                build_directory=str(build_directory()),
                is_python_module=False,
                verbose=False,
            )
            break
        except Exception as exc:
            if i == len(attempts) - 1:
                raise
            log.debug("cvgl_scan_cpu build with %s failed (%s); retrying", cflags, exc)
    lib = ctypes.CDLL(str(path))
    if lib.cvgl_scan_abi_version() != ABI_VERSION:
        raise RuntimeError("stale cvgl_scan_cpu library (ABI version mismatch)")
    _declare(lib)
    return lib


def _summarise(exc: Exception) -> str:
    """One line from a (possibly huge) build log: the first error-looking line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keys = ("error:", "not found", "no such file", "cannot")
    hits = [ln for ln in lines if any(k in ln.lower() for k in keys) and "FAILED:" not in ln]
    detail = (hits or lines or [""])[0]
    return f"{type(exc).__name__}: {detail}"[:300]


def _disabled() -> str | None:
    return "disabled by CVGL_DISABLE_CPP=1" if os.environ.get("CVGL_DISABLE_CPP") == "1" else None


#: The library of this process: built on the first scan that needs it (``LIBRARY.seconds``: how long).
LIBRARY: BuildOnce[ctypes.CDLL] = BuildOnce(
    build=_build, unavailable=_disabled, describe=_summarise,
    warning="cvgl_edge: C++ selective-scan kernel could not be built (%s); "
            "falling back to the chunked PyTorch scan.",
)


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, building it on first call; None if it cannot be built."""
    return LIBRARY.get()


def is_available() -> bool:
    """True if the C++ kernel is (or can be) built. Builds on first call."""
    return library() is not None


def failure_reason() -> str | None:
    """Why the kernel is unavailable, or None."""
    return LIBRARY.failure


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _prepare(
    dtype: torch.dtype, *tensors: torch.Tensor | None
) -> list[torch.Tensor | None]:
    return [None if t is None else t.detach().to(dtype).contiguous() for t in tensors]


def _call(fn, *args) -> None:
    if fn(*args) != 0:
        raise MemoryError("cvgl_scan_cpu: out of memory")


def _kernel_inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """Compute dtype, contiguous inputs, A transposed, and step sizes (raw, dt).

    Bias and softplus are applied here with torch's vectorised ops, so the kernel's
    per-step work is only the scan itself.
    """
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    u, delta, A, B, C, D, z, delta_bias = _prepare(dtype, u, delta, A, B, C, D, z, delta_bias)
    raw, dt = step_sizes(delta, delta_bias, delta_softplus)
    return dtype, u, raw, dt.contiguous(), A.t().contiguous(), B, C, D, z


def forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    reverse: bool,
) -> torch.Tensor:
    """Scan on the CPU with the C++ kernel; returns (B, Dc, L) in the compute dtype."""
    lib = library()
    assert lib is not None, "cpu_kernel.forward called without a built kernel"
    dtype, u, _, dt, At, B, C, D, z = _kernel_inputs(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus
    )
    batch, dim, length = u.shape
    out = torch.empty_like(u)
    fn = lib.cvgl_scan_fwd_f64 if dtype == torch.float64 else lib.cvgl_scan_fwd_f32
    _call(
        fn, *map(_ptr, (u, dt, At, B, C, D, z, out)),
        batch, dim, length, At.shape[0], int(reverse), torch.get_num_threads(),
    )
    return out


def backward(
    grad: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    reverse: bool,
) -> ScanGrads:
    """Gradients of the scan for every tensor input, in the compute dtype."""
    lib = library()
    assert lib is not None, "cpu_kernel.backward called without a built kernel"
    dtype, u, raw, dt, At, B, C, D, z = _kernel_inputs(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus
    )
    (grad,) = _prepare(dtype, grad)
    batch, dim, length = u.shape
    du, ddt = torch.empty_like(u), torch.empty_like(u)
    dA = torch.empty(dim, At.shape[0], dtype=dtype)
    dB, dC = torch.empty_like(B), torch.empty_like(C)
    dD = None if D is None else torch.empty_like(D)
    dz = None if z is None else torch.empty_like(z)
    fn = lib.cvgl_scan_bwd_f64 if dtype == torch.float64 else lib.cvgl_scan_bwd_f32
    _call(
        fn,
        *map(_ptr, (u, dt, At, B, C, D, z, grad)),
        *map(_ptr, (du, ddt, dA, dB, dC, dD, dz)),
        batch, dim, length, At.shape[0], int(reverse), torch.get_num_threads(),
    )
    ddelta = ddt * softplus_grad(raw) if delta_softplus else ddt
    dbias = None if delta_bias is None else ddelta.sum(dim=(0, 2))
    return ScanGrads(du, ddelta, dA, dB, dC, dD, dz, dbias)
