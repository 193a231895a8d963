"""Stochastic depth: drop a whole residual branch per sample during training."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the branch for a random subset of samples, rescaling survivors by 1/keep."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
