"""SALAD: optimal-transport aggregation of local features into one global descriptor (seed 002, II-B).

Local features t_1..t_n (n = h*w positions, C channels):

- feature MLP F(t) = W2 ReLU(W1 t + b1) + b2 (1x1 convs): C -> hidden -> d (d = 64), eq. 5;
- score MLP S(t), same form: C -> hidden -> m cluster scores (m = 128), eq. 6;
- a learnable dustbin score z appended as column m+1 (eq. 7): S_bar (n, m+1);
- the assignment P_bar solves the entropic OT problem with row marginals mu = 1_n (every
  feature is distributed completely) and column marginals kappa = [1_m, n - m] (each cluster
  receives mass 1, the dustbin the rest), eq. 8, by ``iterations`` log-domain Sinkhorn steps;
- the dustbin column is dropped (P = P_bar[:, :m]) and V[j, k] = sum_i P[i, j] F(t_i)[k], eq. 9.

As in SALAD, V is L2-normalised per cluster, flattened (m*d = 8192 for the paper) and
L2-normalised again (the caller does the last step). The flattened order is the SALAD
reference's, feature-major (entry k*m + j is feature k of cluster j), so a model given SALAD's
weights gives SALAD's descriptors; ``order="cluster-major"`` (entry j*d + k) is what cvgl-edge
wrote before 0.2, kept so older checkpoints keep matching the tile indexes built from them.
(Retrieval is the same either way: one fixed permutation of both sides.) The Sinkhorn and the aggregation run in
fp32 whatever the activation dtype (an fp32 island in FP16 exports): log-sum-exp over
hundreds of positions loses too much in fp16.

Sinkhorn (log domain, K = S_bar): repeat { v = log kappa - LSE_rows(K + u); u = log mu - LSE_cols(K + v) },
log P_bar = K + u + v. The row update comes last, so every feature's assignment sums to
exactly 1 after any number of iterations; the column sums approach kappa as iterations grow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError


def log_sinkhorn(scores: torch.Tensor, log_mu: torch.Tensor, log_kappa: torch.Tensor,
                 iterations: int) -> torch.Tensor:
    """log P for scores (B, n, k): rows sum to exp(log_mu) (n,), columns approach exp(log_kappa) (k,)."""
    u = torch.zeros_like(scores[:, :, 0])  # (B, n)
    v = torch.zeros_like(scores[:, 0, :])  # (B, k)
    for _ in range(iterations):
        v = log_kappa - torch.logsumexp(scores + u.unsqueeze(2), dim=1)
        u = log_mu - torch.logsumexp(scores + v.unsqueeze(1), dim=2)
    return scores + u.unsqueeze(2) + v.unsqueeze(1)


#: flatten orders of V (d, m): the SALAD reference's, and cvgl-edge's before 0.2
ORDERS = ("feature-major", "cluster-major")


def _mlp(channels: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.Dropout(dropout), nn.ReLU(), nn.Conv2d(hidden, out, 1))


class SALAD(nn.Module):
    """(B, C, h, w) features -> (B, clusters * cluster_dim) aggregated descriptor (not yet L2-normalised)."""

    fp32_parameters = ("dustbin",)  # the FP16 export keeps the dustbin score in fp32 (Sinkhorn input)

    def __init__(self, channels: int, clusters: int = 128, cluster_dim: int = 64, hidden: int = 512,
                 iterations: int = 3, dropout: float = 0.0, order: str = "feature-major") -> None:
        super().__init__()
        if min(clusters, cluster_dim, hidden, iterations) < 1:
            raise CvglError("SALAD clusters, cluster_dim, hidden and iterations must all be >= 1")
        if order not in ORDERS:
            raise CvglError(f"SALAD order must be one of {', '.join(ORDERS)}, got {order!r}")
        self.order = order
        self.clusters, self.cluster_dim, self.iterations = clusters, cluster_dim, iterations
        self.features = _mlp(channels, hidden, cluster_dim, dropout)
        self.scores = _mlp(channels, hidden, clusters, dropout)
        self.dustbin = nn.Parameter(torch.tensor(1.0))
        self._init_biases()

    @torch.no_grad()
    def _init_biases(self) -> None:
        """Zero MLP biases: with PyTorch's default (uniform) biases and the small activations of a
        freshly initialised backbone, F(t) is nearly the same constant at every position and all
        images get almost the same descriptor (measured: cosine 0.9998 between random images);
        without them the descriptor depends on the input from the first step."""
        for conv in (m for m in self.modules() if isinstance(m, nn.Conv2d)):
            nn.init.zeros_(conv.bias)

    @property
    def output_dim(self) -> int:
        return self.clusters * self.cluster_dim

    def assignment(self, x: torch.Tensor) -> torch.Tensor:
        """P_bar (B, n, clusters + 1) in fp32: each row sums to 1, the last column is the dustbin."""
        scores = self.scores(x).flatten(2).transpose(1, 2).float()  # (B, n, m)
        b, n, m = scores.shape
        if n <= m:
            raise CvglError(f"SALAD needs more feature positions ({n}) than clusters ({m}): "
                            "use larger images or fewer salad_clusters")
        dustbin = self.dustbin.float().expand(b, n, 1)
        scores = torch.cat([scores, dustbin], dim=2)
        log_mu = scores.new_zeros(n)
        log_kappa = torch.cat([scores.new_zeros(m), scores.new_full((1,), math.log(n - m))])
        return log_sinkhorn(scores, log_mu, log_kappa, self.iterations).exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.assignment(x)[:, :, :-1]  # drop the dustbin: (B, n, m)
        f = self.features(x).flatten(2).float()  # (B, d, n)
        v = torch.bmm(f, p)  # (B, d, m): V[k, j] = sum_i F(t_i)[k] P[i, j]
        v = F.normalize(v, dim=1)  # intra-normalisation: one unit vector per cluster
        if self.order == "cluster-major":
            v = v.transpose(1, 2)
        return v.flatten(1)  # (B, d * m)

    def extra_repr(self) -> str:
        return (f"clusters={self.clusters}, cluster_dim={self.cluster_dim}, iterations={self.iterations}, "
                f"order={self.order}")
