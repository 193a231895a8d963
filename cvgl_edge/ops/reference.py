"""Step-by-step reference selective scan: slow, obviously correct, used for parity."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    reverse: bool = False,
) -> torch.Tensor:
    """Mamba selective scan. u, delta, z: (B, Dc, L); A: (Dc, N); B, C: (B, N, L).

    Computed in fp32 (fp64 when an input is fp64, so gradcheck can use it).
    """
    dtype_in = u.dtype
    work = torch.float64 if any(
        t is not None and t.dtype == torch.float64 for t in (u, delta, A, B, C, D, z, delta_bias)
    ) else torch.float32
    u, delta, B, C = u.to(work), delta.to(work), B.to(work), C.to(work)
    A = A.to(work)
    if delta_bias is not None:
        delta = delta + delta_bias.to(work)[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, channels, length = u.shape
    h = u.new_zeros(batch, channels, A.shape[1])
    ys = [None] * length
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        dA = torch.exp(delta[:, :, t, None] * A)
        dBu = delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        h = dA * h + dBu
        ys[t] = (h * C[:, None, :, t]).sum(-1)
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D.to(work)[None, :, None] * u
    if z is not None:
        y = y * F.silu(z.to(work))
    return y.to(dtype_in)
