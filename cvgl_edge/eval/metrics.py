"""Retrieval metrics for cross-view geo-localisation.

rank = 1 + number of gallery items strictly more similar than the best true match
(ties count in the query's favour, as in the CVGL literature); R@K is the fraction
of queries with rank <= K; R@1% uses K = max(1, round(0.01 * gallery size)); AP is
computed over all true matches (University-1652 has several per query), with true
matches placed before equally similar false ones; "hit rate" (VIGOR) is the fraction
of queries whose top-1 is a true match or a semi-positive (a tile that also covers the
query's location).

Why positives are index lists, not a query x gallery mask: VIGOR's same-area test has
~50k queries against ~90k tiles, a 4.5 GB boolean mask; the lists hold one to a few
dozen entries per query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cvgl_edge.errors import CvglError

RECALL_KS: tuple[int, ...] = (1, 5, 10)
#: similarities held at once (query chunk x gallery): bounds memory on large galleries
CHUNK_ELEMENTS = 1 << 23

Positives = Sequence[Sequence[int]] | np.ndarray | None


def check_finite(descriptors: torch.Tensor | np.ndarray, what: str) -> None:
    """CvglError when descriptors hold NaN/inf. Why here, where every metric starts: NaN
    similarities rank every query first, so NaN weights used to score R@1 = 100 %. (Index
    builds call it too: a NaN tile would be everyone's nearest neighbour.)"""
    values = descriptors.detach().cpu().numpy() if isinstance(descriptors, torch.Tensor) else np.asarray(descriptors)
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise CvglError(f"{bad} non-finite values in the {what} descriptors (the model's weights or the images "
                        "hold NaN/inf): retrieval metrics on them would be meaningless")


def one_percent_k(gallery_size: int) -> int:
    """K used by the R@1% metric for a gallery of this size."""
    return max(1, int(round(0.01 * gallery_size)))


def padded_indices(
    positives: Positives, n_query: int, n_gallery: int, what: str = "true gallery match", required: bool = True
) -> torch.Tensor:
    """(n_query, P) long tensor of gallery indices per query, padded with -1.

    Accepts None (query i matches gallery item i), a boolean (n_query, n_gallery) mask, or one
    index list per query.  ``required``: every query needs at least one index (ValueError).
    """
    if positives is None:
        if n_query != n_gallery:
            raise ValueError("positives must be given when query and gallery sizes differ")
        return torch.arange(n_query, dtype=torch.long).unsqueeze(1)
    if isinstance(positives, np.ndarray) and positives.dtype == bool:
        if positives.shape != (n_query, n_gallery):
            raise ValueError(f"{what} mask has shape {positives.shape}, expected {(n_query, n_gallery)}")
        rows = [np.flatnonzero(row) for row in positives]
    else:
        rows = [np.asarray(list(idx), dtype=np.int64).reshape(-1) for idx in positives]
    if len(rows) != n_query:
        raise ValueError(f"{len(rows)} {what} lists for {n_query} queries")
    width = max((len(r) for r in rows), default=0)
    out = torch.full((n_query, max(width, 1)), -1, dtype=torch.long)
    for q, idx in enumerate(rows):
        if len(idx) == 0:
            if required:
                raise ValueError(f"every query needs at least one {what}")
            continue
        if idx.min() < 0 or idx.max() >= n_gallery:
            raise ValueError(f"{what} index out of range for a gallery of {n_gallery}")
        out[q, : len(idx)] = torch.from_numpy(idx)
    return out


def _gathered(sims: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """sims at the padded indices; -inf at padding."""
    values = torch.gather(sims, 1, index.clamp(min=0))
    return values.masked_fill(index < 0, float("-inf"))


def retrieval_metrics(
    query: torch.Tensor,
    gallery: torch.Tensor,
    positives: Positives = None,
    ks: Sequence[int] = RECALL_KS,
    chunk: int | None = None,
    semi_positives: Positives = None,
) -> dict[str, float]:
    """R@K, R@1%, mAP (all in percent) and median rank for L2-normalised descriptors.

    ``positives`` lists the true gallery indices of each query (or a boolean mask); None means
    query i matches gallery item i.  ``semi_positives`` (VIGOR): gallery items that also cover
    the query; they rank as negatives for R@K and add ``hit_rate`` (top-1 is true or semi).
    """
    query = query.float()
    gallery = gallery.float()
    check_finite(query, "query")
    check_finite(gallery, "gallery")
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    if n_query == 0 or n_gallery == 0:
        raise ValueError("empty query or gallery")
    pos = padded_indices(positives, n_query, n_gallery)
    semi = None
    if semi_positives is not None:
        semi = torch.cat([pos, padded_indices(semi_positives, n_query, n_gallery, "semi-positive", False)], dim=1)
    chunk = chunk or max(1, min(1024, CHUNK_ELEMENTS // n_gallery))
    ranks = torch.empty(n_query, dtype=torch.long)
    aps = torch.empty(n_query, dtype=torch.float64)
    hits = torch.empty(n_query, dtype=torch.bool)
    for start in range(0, n_query, chunk):
        stop = min(start + chunk, n_query)
        sims = query[start:stop] @ gallery.T
        pos_sims = _gathered(sims, pos[start:stop])
        best_true = pos_sims.max(dim=1, keepdim=True).values
        ranks[start:stop] = 1 + (sims > best_true).sum(dim=1)
        if pos.shape[1] == 1:  # one true match: AP = 1 / rank
            aps[start:stop] = 1.0 / ranks[start:stop].double()
        else:
            aps[start:stop] = _average_precision(sims, pos_sims)
        if semi is not None:
            best_near = _gathered(sims, semi[start:stop]).max(dim=1).values
            hits[start:stop] = best_near >= sims.max(dim=1).values
    metrics = {f"R@{k}": 100.0 * float((ranks <= k).double().mean()) for k in ks}
    metrics["R@1%"] = 100.0 * float((ranks <= one_percent_k(n_gallery)).double().mean())
    metrics["mAP"] = 100.0 * float(aps.mean())
    metrics["median_rank"] = float(ranks.double().median())
    if semi is not None:
        metrics["hit_rate"] = 100.0 * float(hits.double().mean())
    return metrics


def _average_precision(sims: torch.Tensor, pos_sims: torch.Tensor) -> torch.Tensor:
    """AP per row from the similarities of its true matches (-inf = padding), without sorting indices.

    The k-th best true match sits at position k + (false matches strictly more similar), so its
    precision is k / that position; AP is the mean over the row's true matches.
    """
    n_gallery = sims.shape[1]
    valid = torch.isfinite(pos_sims)
    ordered = pos_sims.sort(dim=1, descending=True).values
    valid_sorted = torch.isfinite(ordered)
    ascending = sims.sort(dim=1).values
    greater_all = n_gallery - torch.searchsorted(ascending, ordered.clamp(min=-2.0).contiguous(), right=True)
    greater_true = (ordered.unsqueeze(1) > ordered.unsqueeze(2)).sum(dim=2)  # true matches strictly better
    false_before = greater_all - greater_true
    k = torch.arange(1, ordered.shape[1] + 1, dtype=torch.float64).expand_as(ordered)
    precision = (k / (k + false_before.double())).masked_fill(~valid_sorted, 0.0)
    return precision.sum(dim=1) / valid.sum(dim=1).double()


def cross_view_metrics(
    ground: torch.Tensor, satellite: torch.Tensor
) -> dict[str, dict[str, float]]:
    """Metrics in both directions for paired descriptors (row i of each is one place)."""
    return {
        "ground->satellite": retrieval_metrics(ground, satellite),
        "satellite->ground": retrieval_metrics(satellite, ground),
    }
