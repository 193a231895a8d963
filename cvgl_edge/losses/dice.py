"""Dice loss over in-batch retrieval probabilities (VimGeo, seed 001 section 3.2).

VimGeo borrows the Dice coefficient of V-Net (Milletari et al., 2016), D = 2 sum(P G) /
(sum(P^2) + sum(G^2)), with P the model's predictions and G the ground-truth labels. For
retrieval over an aligned batch (row i of a matches row i of b) we define:

    P = softmax(scale * a @ b^T) row-wise          (query i's predicted match distribution)
    G = identity                                    (query i's true match is gallery i)
    dice_i = 2 P_ii / (sum_j P_ij^2 + 1)            (V-Net form; sum_j G_ij^2 = 1)
    L = 1 - mean_i dice_i

applied a->b (rows) and b->a (columns) and averaged. dice_i is 1 only for a one-hot
prediction on the true match; unlike cross-entropy it is bounded and does not keep pushing
confident rows, so rows with many look-alike candidates (large scenes seen at different
scales) weigh as much as easy ones: the imbalance argument the paper makes for it.
``scale`` is a fixed inverse temperature (default 1/0.07 as InfoNCE's initial value).
Gradient sign: raising s_ii raises P_ii and lowers L; raising any s_ij (j != i) lowers it.
"""

from __future__ import annotations

import torch
from torch import nn

from cvgl_edge.losses._checks import similarity_matrix


def dice_from_similarity(sim: torch.Tensor, scale: float) -> torch.Tensor:
    """One direction: rows are queries, the true match on the diagonal. Returns 1 - mean dice."""
    p = torch.softmax(scale * sim, dim=1)
    dice = 2 * p.diagonal() / (p.pow(2).sum(dim=1) + 1.0)
    return 1.0 - dice.mean()


class DiceLoss(nn.Module):
    """Symmetric retrieval Dice loss (no learnable parameters)."""

    def __init__(self, scale: float = 1 / 0.07) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sim = similarity_matrix(a, b)
        return 0.5 * (dice_from_similarity(sim, self.scale) + dice_from_similarity(sim.t(), self.scale))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
