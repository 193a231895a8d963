"""KL consistency loss between the two retrieval directions (VimGeo, seed 001 section 4.4.3).

VimGeo adds a Kullback-Leibler term to InfoNCE and Dice (its ablation: InfoNCE + Dice + KL
is best; KL alone does not train a retrieval model, 3.46 R@1). Our definition, for an aligned
batch with s = a @ b^T (cosines):

    P_i = softmax(scale * s[i, :])     pair i seen from view a: which b matches a_i
    Q_i = softmax(scale * s[:, i])     pair i seen from view b: which a matches b_i
    L   = mean_i (KL(P_i || Q_i) + KL(Q_i || P_i)) / 2

Both distributions are over the same B candidate indices, and for a perfect model both are
one-hot on i, so L = 0 there. It asks the two views to agree on how pair i relates to every
other pair (mutual learning between the branches), which helps once InfoNCE has made the
diagonal dominant; on its own it is minimised by a symmetric similarity matrix, hence the
collapse in the ablation. ``scale`` is a fixed inverse temperature (default 1/0.07).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.losses._checks import similarity_matrix


def symmetric_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Mean over rows of (KL(p||q) + KL(q||p)) / 2, from row-wise log-probabilities."""
    kl_pq = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    kl_qp = (log_q.exp() * (log_q - log_p)).sum(dim=1)
    return 0.5 * (kl_pq + kl_qp).mean()


class KLLoss(nn.Module):
    """Symmetric KL between the a->b and b->a match distributions of each pair (no parameters)."""

    def __init__(self, scale: float = 1 / 0.07) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = self.scale * similarity_matrix(a, b)
        return symmetric_kl(F.log_softmax(logits, dim=1), F.log_softmax(logits.t(), dim=1))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
