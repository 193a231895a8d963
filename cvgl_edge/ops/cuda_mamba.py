"""CUDA scan through the mamba_ssm package's fused kernels.

Forward: mamba_ssm's documented entry point
``mamba_ssm.ops.selective_scan_interface.selective_scan_fn(u, delta, A, B, C, D, z,
delta_bias, delta_softplus)``. Backward: the compiled extension behind it,
``selective_scan_cuda.fwd`` / ``selective_scan_cuda.bwd`` (the calls mamba_ssm's own
autograd function makes); the forward is recomputed inside the backward because the
custom op's forward does not keep the kernel's chunk states. When that extension
module cannot be imported the backward falls back to the chunked PyTorch backward on
the GPU (correct, slower). mamba_ssm is an optional extra (``pip install
cvgl-edge[cuda]``), imported lazily. Its kernel has no reverse flag, so reverse scans
flip the time axis around it. Not run on this project's CPU machines: see
tests/ops/test_gpu.py.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Callable

import torch

from cvgl_edge.ops import chunked
from cvgl_edge.ops.common import ScanGrads, flip_time

_fn: Callable[..., torch.Tensor] | None = None
_checked = False


def scan_fn() -> Callable[..., torch.Tensor] | None:
    """mamba_ssm's selective_scan_fn, or None when mamba_ssm is not importable."""
    global _fn, _checked
    if not _checked:
        _checked = True
        if importlib.util.find_spec("mamba_ssm") is not None:
            try:
                module = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
                _fn = module.selective_scan_fn
            except Exception:  # a broken install (ABI mismatch) counts as absent
                _fn = None
    return _fn


def is_available() -> bool:
    """True when mamba_ssm imports and a CUDA device is present."""
    return torch.cuda.is_available() and scan_fn() is not None


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
    """Scan with mamba_ssm's kernel; returns (B, Dc, L) in u's dtype."""
    fn = scan_fn()
    assert fn is not None, "cuda_mamba.forward called without mamba_ssm"
    if reverse:
        u, delta, B, C, z = map(flip_time, (u, delta, B, C, z))
    # The kernel wants delta, B, C (and z) in u's dtype, and A, D, delta_bias in fp32.
    f32, act = torch.float32, u.dtype
    with torch.no_grad():
        out = fn(
            u.contiguous(),
            delta.to(act).contiguous(),
            A.to(f32).contiguous(),
            B.to(act).contiguous(),
            C.to(act).contiguous(),
            None if D is None else D.to(f32).contiguous(),
            None if z is None else z.to(act).contiguous(),
            None if delta_bias is None else delta_bias.to(f32).contiguous(),
            delta_softplus,
        )
    return flip_time(out) if reverse else out


def _extension():
    """mamba_ssm's compiled ``selective_scan_cuda`` module, or None."""
    try:
        return importlib.import_module("selective_scan_cuda")
    except Exception:
        return None


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
):
    """Gradients with mamba_ssm's fused backward kernel (chunked fallback)."""

    ext = _extension()
    if ext is None:
        return chunked.backward(grad, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse)
    if reverse:
        grad, u, delta, B, C, z = map(flip_time, (grad, u, delta, B, C, z))
    f32, act = torch.float32, u.dtype
    args = (
        u.contiguous(),
        delta.to(act).contiguous(),
        A.to(f32).contiguous(),
        # the extension takes variable B/C grouped: (batch, groups=1, N, L)
        B.to(act).unsqueeze(1).contiguous(),
        C.to(act).unsqueeze(1).contiguous(),
        None if D is None else D.to(f32).contiguous(),
        None if z is None else z.to(act).contiguous(),
        None if delta_bias is None else delta_bias.to(f32).contiguous(),
    )
    out, states, *_ = ext.fwd(*args, delta_softplus)
    du, ddelta, dA, dB, dC, dD, ddelta_bias, *rest = ext.bwd(
        *args, grad.to(act).contiguous(), states, out, None, delta_softplus, False
    )
    dz = rest[0] if z is not None else None
    dB, dC = dB.squeeze(1), dC.squeeze(1)
    if reverse:
        du, ddelta, dB, dC, dz = map(flip_time, (du, ddelta, dB, dC, dz))
    return ScanGrads(
        du, ddelta, dA, dB, dC,
        dD if D is not None else None,
        dz,
        ddelta_bias if delta_bias is not None else None,
    )
