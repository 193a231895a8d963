"""Retrieval metrics for cross-view geo-localisation.

rank = 1 + number of gallery items strictly more similar than the best true match
(ties count in the query's favour, as in the CVGL literature); R@K is the fraction
of queries with rank <= K; R@1% uses K = max(1, round(0.01 * gallery size)); AP is
computed over all true matches (University-1652 has several per query).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

RECALL_KS: tuple[int, ...] = (1, 5, 10)


def one_percent_k(gallery_size: int) -> int:
    """K used by the R@1% metric for a gallery of this size."""
    return max(1, int(round(0.01 * gallery_size)))


def _positive_mask(
    positives: Sequence[Sequence[int]] | np.ndarray | None, n_query: int, n_gallery: int
) -> torch.Tensor:
    if positives is None:
        if n_query != n_gallery:
            raise ValueError("positives must be given when query and gallery sizes differ")
        return torch.eye(n_query, dtype=torch.bool)
    if isinstance(positives, np.ndarray) and positives.dtype == bool:
        return torch.from_numpy(positives)
    mask = torch.zeros(n_query, n_gallery, dtype=torch.bool)
    for q, idx in enumerate(positives):
        mask[q, list(idx)] = True
    return mask


def retrieval_metrics(
    query: torch.Tensor,
    gallery: torch.Tensor,
    positives: Sequence[Sequence[int]] | np.ndarray | None = None,
    ks: Sequence[int] = RECALL_KS,
    chunk: int = 1024,
) -> dict[str, float]:
    """R@K, R@1% and mAP (all in percent) for L2-normalised descriptors.

    ``positives`` lists the true gallery indices of each query; None means query i
    matches gallery item i.
    """
    query = query.float()
    gallery = gallery.float()
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    if n_query == 0 or n_gallery == 0:
        raise ValueError("empty query or gallery")
    mask = _positive_mask(positives, n_query, n_gallery)
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every query needs at least one true gallery match")
    ranks = torch.empty(n_query, dtype=torch.long)
    aps = torch.empty(n_query, dtype=torch.float64)
    for start in range(0, n_query, chunk):
        sims = query[start : start + chunk] @ gallery.T
        pos = mask[start : start + chunk]
        best_true = sims.masked_fill(~pos, float("-inf")).max(dim=1, keepdim=True).values
        ranks[start : start + chunk] = 1 + ((sims > best_true) & ~pos).sum(dim=1)
        aps[start : start + chunk] = _average_precision(sims, pos)
    metrics = {f"R@{k}": 100.0 * float((ranks <= k).double().mean()) for k in ks}
    metrics["R@1%"] = 100.0 * float((ranks <= one_percent_k(n_gallery)).double().mean())
    metrics["mAP"] = 100.0 * float(aps.mean())
    metrics["median_rank"] = float(ranks.double().median())
    return metrics


def _average_precision(sims: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """AP per row: mean of precision at the rank of each true match."""
    order = sims.argsort(dim=1, descending=True)
    hits = torch.gather(pos, 1, order).double()
    cum_hits = hits.cumsum(dim=1)
    positions = torch.arange(1, sims.shape[1] + 1, dtype=torch.float64)
    precision_at_hit = (cum_hits / positions) * hits
    return precision_at_hit.sum(dim=1) / hits.sum(dim=1)


def cross_view_metrics(
    ground: torch.Tensor, satellite: torch.Tensor
) -> dict[str, dict[str, float]]:
    """Metrics in both directions for paired descriptors (row i of each is one place)."""
    return {
        "ground->satellite": retrieval_metrics(ground, satellite),
        "satellite->ground": retrieval_metrics(satellite, ground),
    }
