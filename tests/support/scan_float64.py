"""An independent float64 reference of the selective scan, and a numpy caller of the kernel's C ABI.

The reference is independent of cvgl_edge.ops on purpose: the kernel, the PyTorch op and the ONNX
body are each checked against this one loop, written from the contract in selective_scan.cuh. The
caller uses the package's own ctypes mirror of the C struct (cvgl_edge.ops.native_cuda), so the
kernel tests check the very struct the ``native`` scan backend fills.
Inputs are drawn in float64, rounded once to their storage dtype (fp32, fp16 or bf16 bit
patterns in uint16), and the reference reads the rounded values, so the only differences a
correct kernel may show are its fp32 arithmetic and the rounding of the output.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cvgl_edge.ops import native_cuda

DTYPE_CODES = {"fp32": native_cuda.FP32, "fp16": native_cuda.FP16, "bf16": native_cuda.BF16}
#: Unit roundoff of each storage dtype: the most a correct result loses when stored.
ROUNDOFF = {"fp32": 2.0**-24, "fp16": 2.0**-11, "bf16": 2.0**-8}
#: fp32 arithmetic allowance, in units of fp32 roundoff times the case's largest |output|.
#: Measured max under HIP-CPU: about 2 (see benchmarks/results/scan_cpu_emulation_*.md).
ARITHMETIC_ULPS = 64
SENTINEL = 7777.0  # written around strided views; must survive the scan bit for bit


@dataclass(frozen=True)
class ScanCase:
    """One scan configuration. ``pad`` > 0 makes u, delta, z and out channel views of wider
    buffers (and B, C state views), so strides differ from the contiguous ones."""

    batch: int
    dim: int
    dstate: int
    seqlen: int
    dtype: str = "fp32"
    param_dtype: str = "fp32"
    reverse: bool = False
    softplus: bool = True
    has_D: bool = True
    has_z: bool = True
    has_bias: bool = True
    pad: int = 0

    @property
    def name(self) -> str:
        flags = "".join(c for c, on in zip("sDzb", (self.softplus, self.has_D, self.has_z, self.has_bias)) if on)
        return (f"{self.dtype}-p{self.param_dtype}-{'rev' if self.reverse else 'fwd'}-{flags or 'none'}-"
                f"b{self.batch}c{self.dim}n{self.dstate}l{self.seqlen}" + (f"-pad{self.pad}" if self.pad else ""))


# ----------------------------------------------------------------------------- storage dtypes
def to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """float -> bf16 bit patterns, round to nearest even (finite inputs)."""
    word = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    word = word + 0x7FFF + ((word >> 16) & 1)
    return (word >> 16).astype(np.uint16)


def store(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "fp32":
        return values.astype(np.float32)
    if dtype == "fp16":
        return values.astype(np.float16)
    return to_bf16_bits(values)


def load(stored: np.ndarray, dtype: str) -> np.ndarray:
    """Storage -> float64, exactly."""
    if dtype == "bf16":
        return (stored.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return stored.astype(np.float64)


# ----------------------------------------------------------------------------- inputs
@dataclass
class ScanTensors:
    """Stored buffers (what the kernel reads and writes) and the views of them the scan covers."""

    buffers: dict[str, np.ndarray]
    views: dict[str, np.ndarray]


def _buffer(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, scale: float = 1.0,
            shift: float = 0.0) -> np.ndarray:
    return store(rng.standard_normal(shape) * scale + shift, dtype)


def make_inputs(case: ScanCase, seed: int = 0) -> ScanTensors:
    """Mamba-like values: softplus(delta + bias) around 0.3, A = -(0.5..8), B, C, u, z, D ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    b, c, n, length, pad = case.batch, case.dim, case.dstate, case.seqlen, case.pad
    wide, wide_n = (b, c + 2 * pad, length), (b, n + pad, length)
    delta_shift = -1.0 if case.softplus else 0.0
    buffers = {
        "u": _buffer(rng, wide, case.dtype),
        "delta": _buffer(rng, wide, case.dtype, 0.5, delta_shift),
        "z": _buffer(rng, wide, case.dtype),
        "B": _buffer(rng, wide_n, case.dtype),
        "C": _buffer(rng, wide_n, case.dtype),
        "A": store(-rng.uniform(0.5, 8.0, (c, n)), case.param_dtype),
        "D": _buffer(rng, (c,), case.param_dtype),
        "delta_bias": _buffer(rng, (c,), case.param_dtype, 0.5),
        "out": store(np.full(wide, SENTINEL), case.dtype),
    }
    if not case.softplus:  # without softplus the step must be positive already, as in a real model
        buffers["delta"] = store(np.abs(load(buffers["delta"], case.dtype)) * 0.6, case.dtype)
        buffers["delta_bias"] = store(np.abs(load(buffers["delta_bias"], case.param_dtype)) * 0.1, case.param_dtype)
    channels, states = slice(pad, pad + c), slice(0, n)
    views = {k: buffers[k][:, channels] for k in ("u", "delta", "z", "out")}
    views |= {k: buffers[k][:, states] for k in ("B", "C")}
    views |= {k: buffers[k] for k in ("A", "D", "delta_bias")}
    return ScanTensors(buffers, views)


# ----------------------------------------------------------------------------- the reference
def reference(case: ScanCase, tensors: ScanTensors) -> np.ndarray:
    """float64 scan of the stored inputs, (batch, dim, seqlen)."""
    v = {k: load(x, case.dtype if k not in ("A", "D", "delta_bias") else case.param_dtype)
         for k, x in tensors.views.items() if k != "out"}
    dt = v["delta"] + (v["delta_bias"][None, :, None] if case.has_bias else 0.0)
    if case.softplus:
        dt = np.where(dt > 20.0, dt, np.log1p(np.exp(np.minimum(dt, 20.0))))
    h = np.zeros((case.batch, case.dim, case.dstate))
    y = np.zeros((case.batch, case.dim, case.seqlen))
    steps = range(case.seqlen - 1, -1, -1) if case.reverse else range(case.seqlen)
    for t in steps:
        step = dt[:, :, t, None]
        h = np.exp(step * v["A"][None]) * h + step * v["B"][:, None, :, t] * v["u"][:, :, t, None]
        y[:, :, t] = np.einsum("bcn,bn->bc", h, v["C"][:, :, t])
    if case.has_D:
        y = y + v["D"][None, :, None] * v["u"]
    if case.has_z:
        y = y * v["z"] / (1.0 + np.exp(-v["z"]))
    return y


def tolerance(case: ScanCase, ref: np.ndarray) -> np.ndarray:
    """Per-element bound: the output's rounding plus an fp32-arithmetic allowance."""
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    return ROUNDOFF[case.dtype] * np.abs(ref) + ARITHMETIC_ULPS * ROUNDOFF["fp32"] * scale


def scaled_error(case: ScanCase, got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref|, the figure the reports quote per dtype."""
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(got - ref).max()) / scale


# ----------------------------------------------------------------------------- the C ABI
def params_for(case: ScanCase, tensors: ScanTensors) -> native_cuda.SelectiveScanParams:
    """SelectiveScanParams over the views' pointers and element strides (the ctypes mirror)."""
    p = native_cuda.SelectiveScanParams()
    p.abi_version = native_cuda.ABI_VERSION
    p.dtype, p.param_dtype = DTYPE_CODES[case.dtype], DTYPE_CODES[case.param_dtype]
    p.batch, p.dim, p.dstate, p.seqlen = case.batch, case.dim, case.dstate, case.seqlen
    p.direction, p.delta_softplus = int(case.reverse), int(case.softplus)
    p.has_D, p.has_z, p.has_delta_bias = int(case.has_D), int(case.has_z), int(case.has_bias)
    for name, view in tensors.views.items():
        setattr(p, name, view.ctypes.data)
        if view.ndim == 3:
            assert view.strides[2] == view.itemsize, "the seqlen axis must be contiguous"
            inner = "dstate" if name in ("B", "C") else "dim"
            setattr(p, f"{name}_batch_stride", view.strides[0] // view.itemsize)
            setattr(p, f"{name}_{inner}_stride", view.strides[1] // view.itemsize)
    if not case.has_D:
        p.D = None
    if not case.has_z:
        p.z = None
    if not case.has_bias:
        p.delta_bias = None
    return p


class CpuKernel:
    """The kernel library built for the CPU (native_build.build_cpu_kernel), called synchronously."""

    def __init__(self, library: Path) -> None:
        self.native = native_cuda.NativeScan(library)
        self.native.lib.cvgl_emulation_synchronize.restype = ctypes.c_int

    def forward(self, params: native_cuda.SelectiveScanParams | None) -> int:
        if params is None:
            return self.native.lib.cvgl_selective_scan_forward(None, None)
        rc = self.native.forward_raw(params)
        sync = self.native.lib.cvgl_emulation_synchronize()
        assert sync == 0, f"hipDeviceSynchronize returned {sync}"
        return rc

    def error_string(self, code: int) -> str:
        return self.native.error_string(code)

    def run(self, case: ScanCase, tensors: ScanTensors) -> np.ndarray:
        """Scan ``tensors`` in place; returns the output view as float64."""
        rc = self.forward(params_for(case, tensors))
        assert rc == 0, f"{case.name}: {self.error_string(rc)} ({rc})"
        return load(tensors.views["out"], case.dtype)


def with_flags(case: ScanCase, flags: str) -> ScanCase:
    """``case`` with softplus/D/z/bias switched by the letters present in ``flags`` ("sDzb")."""
    return replace(case, softplus="s" in flags, has_D="D" in flags, has_z="z" in flags, has_bias="b" in flags)
