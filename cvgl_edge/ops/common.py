"""Shared pieces of every scan backend: argument checks, dtypes, step sizes, flips.

The checks live here (not in each backend) so every backend rejects the same bad
input with the same ``CvglError`` message.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from cvgl_edge.errors import CvglError


class ScanGrads(NamedTuple):
    """Gradients of one scan, one per tensor input (None where the input was None)."""

    du: torch.Tensor
    ddelta: torch.Tensor
    dA: torch.Tensor
    dB: torch.Tensor
    dC: torch.Tensor
    dD: torch.Tensor | None
    dz: torch.Tensor | None
    ddelta_bias: torch.Tensor | None


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """fp32, or fp64 when any input is fp64 (so gradcheck can run in double)."""
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def check_scan_args(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
) -> None:
    """Raise CvglError when shapes do not follow the Mamba layout."""
    if u.dim() != 3:
        raise CvglError(f"selective_scan: u must be (batch, channels, length), got {tuple(u.shape)}")
    batch, channels, length = u.shape
    if A.dim() != 2 or A.shape[0] != channels:
        raise CvglError(f"selective_scan: A must be ({channels}, N), got {tuple(A.shape)}")
    if u.numel() == 0 or A.shape[1] == 0:
        raise CvglError(f"selective_scan: empty input, u {tuple(u.shape)}, A {tuple(A.shape)}")
    nstate = A.shape[1]
    expected = {
        "delta": (delta, (batch, channels, length)),
        "B": (B, (batch, nstate, length)),
        "C": (C, (batch, nstate, length)),
        "z": (z, (batch, channels, length)),
        "D": (D, (channels,)),
        "delta_bias": (delta_bias, (channels,)),
    }
    for name, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise CvglError(
                f"selective_scan: {name} must have shape {shape}, got {tuple(tensor.shape)}"
            )
    for name, tensor in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C)):
        if not tensor.is_floating_point():
            raise CvglError(f"selective_scan: {name} must be a floating-point tensor")
    devices = {t.device for t in (u, delta, A, B, C, D, z, delta_bias) if t is not None}
    if len(devices) > 1:
        raise CvglError(f"selective_scan: all tensors must be on one device, got {devices}")


def step_sizes(
    delta: torch.Tensor, delta_bias: torch.Tensor | None, softplus: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (raw, dt): raw = delta + bias, dt = softplus(raw) or raw (compute dtype)."""
    raw = delta if delta_bias is None else delta + delta_bias[None, :, None]
    return raw, (F.softplus(raw) if softplus else raw)


def softplus_grad(raw: torch.Tensor) -> torch.Tensor:
    """d softplus / d raw with torch's threshold (linear above 20)."""
    return torch.where(raw > 20.0, torch.ones_like(raw), torch.sigmoid(raw))


def flip_time(t: torch.Tensor | None) -> torch.Tensor | None:
    """Flip a (..., L) tensor along its last (time) axis; None passes through."""
    return None if t is None else torch.flip(t, dims=(-1,))


def cast_grads(grads: ScanGrads, like: tuple[torch.Tensor | None, ...]) -> ScanGrads:
    """Cast each gradient to the dtype of the input it belongs to."""
    return ScanGrads(
        *(None if g is None or ref is None else g.to(ref.dtype) for g, ref in zip(grads, like))
    )
