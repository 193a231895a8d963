"""Bidirectional soft-margin triplet loss (SAFA / LRFR style), with optional semi-hard mining.

Per anchor a_i with positive s_p = s_ii and negatives s_n = s_ij (j != i), s = cosine:

    l(i, n) = log(1 + exp(alpha * (s_n - s_p))),  alpha = 10

computed for rows (a->b, e.g. ground->satellite) and columns (b->a) and averaged.

Mining (``mining``):
- ``all``: mean of l over every (anchor, negative) pair (the SAFA form; the old default).
- ``semihard``: one negative per anchor, FaceNet's semi-hard rule written for similarities:
  the most similar negative that is still *less* similar than the positive
  (max s_n subject to s_n < s_p); when no negative is below the positive (every negative
  already beats it), the least similar of them is used instead, so a collapsed batch gets a
  moderate, not the hardest, negative. The choice is made on detached similarities; the
  gradient flows through s_n and s_p of the chosen pair. This is LRFR's "semitriple loss"
  (seed 002 III-A), registered as ``triplet-semihard``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.losses._checks import off_diagonal_mask, similarity_matrix

MINING = ("all", "semihard")


def soft_triplet_from_similarity(sim: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """One direction, every negative: anchors are rows, positives on the diagonal."""
    mask = off_diagonal_mask(sim.shape[0], sim.device)
    diff = sim - sim.diagonal().unsqueeze(1)
    return F.softplus(alpha * diff)[mask].mean()


def semihard_negatives(sim: torch.Tensor) -> torch.Tensor:
    """Column index of each row's semi-hard negative (see the module docstring)."""
    with torch.no_grad():
        s = sim.detach()
        negative = off_diagonal_mask(s.shape[0], s.device)
        below = negative & (s < s.diagonal().unsqueeze(1))
        inf = torch.finfo(s.dtype).max
        closest_below = s.masked_fill(~below, -inf).argmax(dim=1)
        easiest_above = s.masked_fill(~negative, inf).argmin(dim=1)
        return torch.where(below.any(dim=1), closest_below, easiest_above)


def semihard_triplet_from_similarity(sim: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """One direction, one semi-hard negative per anchor."""
    rows = torch.arange(sim.shape[0], device=sim.device)
    s_n = sim[rows, semihard_negatives(sim)]
    return F.softplus(alpha * (s_n - sim.diagonal())).mean()


class SoftTripletLoss(nn.Module):
    """Soft-margin triplet, both directions; ``mining`` all (every negative) or semihard."""

    def __init__(self, alpha: float = 10.0, mining: str = "all") -> None:
        super().__init__()
        if mining not in MINING:
            raise CvglError(f"unknown triplet mining {mining!r}; choose one of: {', '.join(MINING)}")
        self.alpha = float(alpha)
        self.mining = mining

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sim = similarity_matrix(a, b)
        one = semihard_triplet_from_similarity if self.mining == "semihard" else soft_triplet_from_similarity
        return 0.5 * (one(sim, self.alpha) + one(sim.t(), self.alpha))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, mining={self.mining}"


class SemiHardTripletLoss(SoftTripletLoss):
    """LRFR's loss: bidirectional soft-margin triplet (alpha 10) with semi-hard mining."""

    def __init__(self, alpha: float = 10.0) -> None:
        super().__init__(alpha=alpha, mining="semihard")
