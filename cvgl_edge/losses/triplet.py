"""Bidirectional soft-margin triplet loss over all in-batch negatives (SAFA / LRFR style).

L = mean over (anchor, negative) of log(1 + exp(alpha * (s_n - s_p))), alpha = 10,
computed for rows (ground->satellite) and columns (satellite->ground) and averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.losses._checks import off_diagonal_mask, similarity_matrix


def soft_triplet_from_similarity(sim: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """One direction: anchors are rows, positives on the diagonal."""
    mask = off_diagonal_mask(sim.shape[0], sim.device)
    diff = sim - sim.diagonal().unsqueeze(1)
    return F.softplus(alpha * diff)[mask].mean()


class SoftTripletLoss(nn.Module):
    """Soft-margin triplet, both directions, every in-batch negative."""

    def __init__(self, alpha: float = 10.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sim = similarity_matrix(a, b)
        return 0.5 * (soft_triplet_from_similarity(sim, self.alpha)
                      + soft_triplet_from_similarity(sim.t(), self.alpha))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
