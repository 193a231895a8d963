"""RMSNorm as used by Vision Mamba (weight only, no bias).

Kept as our own tiny module (rather than ``torch.nn.RMSNorm``) so the statistics are
always computed in fp32 even when activations are fp16/bf16: the Vim residual stream is
fp32 and its norm must not lose precision on the edge export path. ``out_dtype`` lets
the caller feed the fp32 residual directly and get the mixer's dtype back: in an FP16
export (cvgl_edge.export.onnx.fp16) that is exactly one fp32 island per norm (mean of
squares, rsqrt, weight) with one Cast to fp16 at its exit.
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight, computed in fp32, returned in ``out_dtype``
    (default: x's dtype)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(out_dtype or x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
