"""Readouts: turn backbone tokens into one global descriptor per image (before L2 norm).

``cga`` is GeoSSM's parameter-free Channel Group Aggregation; ``cls`` and ``mean`` are the
baselines used in the paper's ablation. All readouts are parameter-free.
"""

from __future__ import annotations

import torch
from torch import nn

from cvgl_edge.errors import CvglError

READOUTS = ("cga", "cls", "mean")


class CGAReadout(nn.Module):
    """Channel Group Aggregation: (B, N, C) patch tokens -> mean over C/G channels -> (B, N*G).

    Keeps one value per (token, channel group), so spatial layout survives, unlike a global
    mean; the cls token is not included (6144 = 256 tokens x 24 groups for Vim-S).
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def output_dim(self, num_patches: int, embed_dim: int) -> int:
        return num_patches * self.groups

    def forward(self, patches: torch.Tensor, cls: torch.Tensor | None) -> torch.Tensor:
        b, n, c = patches.shape
        if c % self.groups:
            raise CvglError(f"CGA: {c} channels cannot be split into {self.groups} equal groups")
        return patches.float().reshape(b, n, self.groups, c // self.groups).mean(-1).reshape(b, -1)


class ClsReadout(nn.Module):
    """The (middle) cls token as the descriptor."""

    def output_dim(self, num_patches: int, embed_dim: int) -> int:
        return embed_dim

    def forward(self, patches: torch.Tensor, cls: torch.Tensor | None) -> torch.Tensor:
        if cls is None:
            raise CvglError("the 'cls' readout needs a backbone with a cls token (cls_token=True)")
        return cls.float()


class MeanReadout(nn.Module):
    """Global average over patch tokens (the usual pooling baseline)."""

    def output_dim(self, num_patches: int, embed_dim: int) -> int:
        return embed_dim

    def forward(self, patches: torch.Tensor, cls: torch.Tensor | None) -> torch.Tensor:
        return patches.float().mean(dim=1)


def build_readout(kind: str, cga_groups: int = 24) -> nn.Module:
    """Readout by name: 'cga', 'cls' or 'mean'."""
    if kind == "cga":
        return CGAReadout(cga_groups)
    if kind == "cls":
        return ClsReadout()
    if kind == "mean":
        return MeanReadout()
    raise CvglError(f"unknown readout {kind!r}; choose one of: {', '.join(READOUTS)}")
