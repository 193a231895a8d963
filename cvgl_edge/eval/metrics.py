"""Retrieval metrics for cross-view geo-localisation, as the benchmarks' released evaluation code
computes them (the per-dataset rules: :mod:`cvgl_edge.eval.scoring`).

rank = 1 + number of gallery items strictly more similar than the best true match (ties count
in the query's favour); R@K = fraction of queries with rank <= K; R@1% uses the scoring's K
for the gallery size; AP is computed over all true matches (University-1652 has several per
query) with true matches placed before equally similar false ones, by the scoring's rule
(trapezoid or mean precision); the VIGOR hit rate counts a query when no reference other than
its positive and semi-positives scores above the positive.

Why positives are index lists, not a query x gallery mask: VIGOR's same-area test has ~50k
queries against ~90k tiles, a 4.5 GB boolean mask; the lists hold one to a few dozen entries
per query. Why numpy: the deployment install (exported encoders, no PyTorch) scores too;
torch tensors are accepted and read as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cvgl_edge.descriptors import as_array, check_finite  # noqa: F401 - check_finite: this module's API too
from cvgl_edge.eval.scoring import DEFAULT_SCORING, Scoring
from cvgl_edge.views import GROUND_TO_SATELLITE, SATELLITE_TO_GROUND

RECALL_KS: tuple[int, ...] = (1, 5, 10)
#: similarities held at once (query chunk x gallery): bounds memory on large galleries
CHUNK_ELEMENTS = 1 << 23

Positives = Sequence[Sequence[int]] | np.ndarray | None


def one_percent_k(gallery_size: int, scoring: Scoring = DEFAULT_SCORING) -> int:
    """K used by the R@1% metric for a gallery of this size under ``scoring``."""
    return scoring.one_percent_k(gallery_size)


def padded_indices(
    positives: Positives, n_query: int, n_gallery: int, what: str = "true gallery match", required: bool = True
) -> np.ndarray:
    """(n_query, P) int64 array of gallery indices per query, padded with -1, each row without repeats.

    Accepts None (query i matches gallery item i), a boolean (n_query, n_gallery) mask, or one
    index list per query.  ``required``: every query needs at least one index (ValueError).
    """
    if positives is None:
        if n_query != n_gallery:
            raise ValueError("positives must be given when query and gallery sizes differ")
        return np.arange(n_query, dtype=np.int64)[:, None]
    if isinstance(positives, np.ndarray) and positives.dtype == bool:
        if positives.shape != (n_query, n_gallery):
            raise ValueError(f"{what} mask has shape {positives.shape}, expected {(n_query, n_gallery)}")
        rows = [np.flatnonzero(row) for row in positives]
    else:
        rows = [np.unique(np.asarray(list(idx), dtype=np.int64).reshape(-1)) for idx in positives]
    if len(rows) != n_query:
        raise ValueError(f"{len(rows)} {what} lists for {n_query} queries")
    width = max((len(r) for r in rows), default=0)
    out = np.full((n_query, max(width, 1)), -1, dtype=np.int64)
    for q, idx in enumerate(rows):
        if len(idx) == 0:
            if required:
                raise ValueError(f"every query needs at least one {what}")
            continue
        if idx.min() < 0 or idx.max() >= n_gallery:
            raise ValueError(f"{what} index out of range for a gallery of {n_gallery}")
        out[q, : len(idx)] = idx
    return out


def _gathered(sims: np.ndarray, index: np.ndarray) -> np.ndarray:
    """sims at the padded indices; -inf at padding."""
    values = np.take_along_axis(sims, np.maximum(index, 0), axis=1)
    return np.where(index < 0, -np.inf, values)


def retrieval_metrics(
    query: Any,
    gallery: Any,
    positives: Positives = None,
    ks: Sequence[int] = RECALL_KS,
    chunk: int | None = None,
    semi_positives: Positives = None,
    scoring: Scoring = DEFAULT_SCORING,
    gallery_size: int | None = None,
) -> dict[str, float]:
    """R@K, R@1%, mAP (all in percent) and median rank for L2-normalised descriptors.

    ``positives`` lists the true gallery indices of each query (or a boolean mask); None means
    query i matches gallery item i.  ``semi_positives`` (VIGOR): gallery items that also cover
    the query; they rank as negatives for R@K and add ``hit_rate``.  ``scoring`` names the
    benchmark script whose rules apply; ``gallery_size`` is the G of its R@1% when the ranked
    gallery is smaller than the benchmark's (University-1652 junk images removed before ranking).
    """
    query = as_array(query)
    gallery = as_array(gallery)
    check_finite(query, "query")
    check_finite(gallery, "gallery")
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    if n_query == 0 or n_gallery == 0:
        raise ValueError("empty query or gallery")
    pos = padded_indices(positives, n_query, n_gallery, required=not scoring.unmatched_are_misses)
    semi = None if semi_positives is None else padded_indices(semi_positives, n_query, n_gallery,
                                                              "semi-positive", False)
    chunk = chunk or max(1, min(1024, CHUNK_ELEMENTS // n_gallery))
    ranks = np.empty(n_query, dtype=np.int64)
    aps = np.empty(n_query, dtype=np.float64)
    hits = np.empty(n_query, dtype=bool)
    for start in range(0, n_query, chunk):
        stop = min(start + chunk, n_query)
        sims = query[start:stop] @ gallery.T
        pos_sims = _gathered(sims, pos[start:stop])
        best_true = pos_sims.max(axis=1, keepdims=True)
        above = (sims > best_true).sum(axis=1)  # a query without a true match: every item is above
        ranks[start:stop] = 1 + above
        aps[start:stop] = _average_precisions(sims, pos_sims, ranks[start:stop], scoring.trapezoid_ap)
        if semi is not None:
            semi_above = (_gathered(sims, semi[start:stop]) > best_true).sum(axis=1)
            hits[start:stop] = above - semi_above == 0
    k_one_percent = one_percent_k(gallery_size if gallery_size is not None else n_gallery, scoring)
    matched = (pos >= 0).any(axis=1)  # a query without a true match is a miss at every K
    metrics = {f"R@{k}": 100.0 * float(np.mean(matched & (ranks <= k))) for k in ks}
    metrics["R@1%"] = 100.0 * float(np.mean(matched & (ranks <= k_one_percent)))
    metrics["mAP"] = 100.0 * float(aps.mean())
    metrics["median_rank"] = float(np.median(ranks))
    if semi is not None:
        metrics["hit_rate"] = 100.0 * float(hits.mean())
    return metrics


def _average_precisions(sims: np.ndarray, pos_sims: np.ndarray, ranks: np.ndarray, trapezoid: bool) -> np.ndarray:
    """AP per row; 0 for a row without true matches."""
    counts = np.isfinite(pos_sims).sum(axis=1)
    out = np.zeros(len(ranks), dtype=np.float64)
    single = counts == 1  # one true match at rank r: 1/r, or by the trapezoid rule 1 at r = 1 else 1/(2r)
    rank = ranks[single].astype(np.float64)
    out[single] = np.where(rank == 1, 1.0, 0.5 / rank) if trapezoid else 1.0 / rank
    for row in np.flatnonzero(counts > 1):
        out[row] = average_precision(sims[row], pos_sims[row][np.isfinite(pos_sims[row])], trapezoid)
    return out


def average_precision(sims: np.ndarray, true_sims: np.ndarray, trapezoid: bool) -> float:
    """AP of one ranking from its similarities and those of its true matches.

    The i-th best true match (0-based) sits at 0-based row r_i = i + (false matches strictly more
    similar); precision_i = (i + 1) / (r_i + 1). Mean precision: AP = mean(precision_i).
    Trapezoid (Market-1501 / University-1652): AP = mean((old_i + precision_i) / 2) with
    old_i = i / r_i, or 1 when r_i = 0.
    """
    ordered = np.sort(true_sims)[::-1]
    ascending = np.sort(sims)
    greater_all = len(sims) - np.searchsorted(ascending, ordered, side="right")
    greater_true = len(ordered) - np.searchsorted(np.sort(true_sims), ordered, side="right")
    i = np.arange(len(ordered), dtype=np.float64)
    rows = i + (greater_all - greater_true)
    precision = (i + 1) / (rows + 1)
    if not trapezoid:
        return float(precision.mean())
    old = np.divide(i, rows, out=np.ones_like(i), where=rows > 0)
    return float(((old + precision) / 2).mean())


def cross_view_metrics(ground: Any, satellite: Any, scoring: Scoring = DEFAULT_SCORING) -> dict[str, dict[str, float]]:
    """Metrics in both directions for paired descriptors (row i of each is one place)."""
    return {
        GROUND_TO_SATELLITE: retrieval_metrics(ground, satellite, scoring=scoring),
        SATELLITE_TO_GROUND: retrieval_metrics(satellite, ground, scoring=scoring),
    }
