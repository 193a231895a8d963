"""Dynamic Difficulty-Aware Loss (DDAL), GeoSSM's batch-level metric loss.

Per anchor a with positive p and in-batch negatives n_i (s = cosine similarity):

    w = softmax(gamma * s_i) over the negatives          (harder negative -> larger weight)
    L = log(1 + sum_i w_i * exp(alpha * (s_i - s_p + m)))

applied ground->satellite (rows of the similarity matrix) and satellite->ground
(columns), averaged. Computed as softplus(logsumexp(log w + alpha*(s - s_p + m))), which
never overflows.

Defaults and why:
- alpha = 10: the paper's form (alpha = 1) acts on cosines in [-1, 1], so the exponent
  varies by at most ~2 and gradients are weak; the scale 10 is what soft-margin triplet
  losses in CVGL use (SAFA, LRFR), so alpha = 10 with m = 0 is exactly a
  difficulty-weighted soft-margin triplet.
- m = 0.1: asks the positive to beat negatives by a cosine margin of 0.1 (one unit in the
  scaled exponent), so the loss keeps a gradient until pairs are clearly separated.
- gamma = 10: an inverse temperature over cosines; with 31 negatives spread over ~0.5 in
  cosine, the hardest negative gets ~e^5 times the weight of the easiest. gamma = 0 gives
  uniform weights (a mean over negatives); gamma -> inf the single hardest negative.
- detach_weights = True: the weights are "assigned" importances (like hard-negative
  mining). Differentiating through the softmax adds a term -gamma*w_i that pulls easy
  negatives *towards* the anchor (it lowers the loss by flattening the weights), which
  is not what the weighting is for; ``detach_weights=False`` keeps it for ablations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.losses._checks import off_diagonal_mask, similarity_matrix


def ddal_weights(sim: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-row softmax(gamma * s) over the off-diagonal entries; the diagonal gets 0."""
    mask = off_diagonal_mask(sim.shape[0], sim.device)
    return torch.softmax((gamma * sim).masked_fill(~mask, float("-inf")), dim=1)


def ddal_from_similarity(
    sim: torch.Tensor,
    gamma: float = 10.0,
    margin: float = 0.1,
    alpha: float = 10.0,
    detach_weights: bool = True,
) -> torch.Tensor:
    """DDAL of one direction: anchors are rows, positives on the diagonal. Returns the mean."""
    mask = off_diagonal_mask(sim.shape[0], sim.device)
    log_w = torch.log_softmax((gamma * sim).masked_fill(~mask, float("-inf")), dim=1)
    if detach_weights:
        log_w = log_w.detach()
    s_pos = sim.diagonal().unsqueeze(1)
    terms = (log_w + alpha * (sim - s_pos + margin)).masked_fill(~mask, float("-inf"))
    return F.softplus(torch.logsumexp(terms, dim=1)).mean()


def ddal_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    gamma: float = 10.0,
    margin: float = 0.1,
    alpha: float = 10.0,
    detach_weights: bool = True,
) -> torch.Tensor:
    """Symmetric DDAL for aligned L2-normalised batches a, b (B, dim)."""
    sim = similarity_matrix(a, b)
    kw = dict(gamma=gamma, margin=margin, alpha=alpha, detach_weights=detach_weights)
    return 0.5 * (ddal_from_similarity(sim, **kw) + ddal_from_similarity(sim.t(), **kw))


class DDALoss(nn.Module):
    """Module form of ``ddal_loss`` (no learnable parameters)."""

    def __init__(self, gamma: float = 10.0, margin: float = 0.1, alpha: float = 10.0,
                 detach_weights: bool = True) -> None:
        super().__init__()
        self.gamma, self.margin, self.alpha = float(gamma), float(margin), float(alpha)
        self.detach_weights = bool(detach_weights)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ddal_loss(a, b, self.gamma, self.margin, self.alpha, self.detach_weights)

    def extra_repr(self) -> str:
        return (f"gamma={self.gamma}, margin={self.margin}, alpha={self.alpha}, "
                f"detach_weights={self.detach_weights}")
