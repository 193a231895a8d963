"""Hand-worked cases pinning each benchmark's formulas (cvgl_edge.eval.scoring / metrics).

Every expected value is worked out by hand from the formulas in the scoring module's
docstring; the similarity matrices are written out so the rankings can be read off.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.eval.metrics import average_precision, retrieval_metrics
from cvgl_edge.eval.scoring import SCORINGS, k_floor_hundredth, k_int_plus_one, k_round_plus_one, scoring_for

UNIVERSITY = SCORINGS[("university1652", "official")]
UNIVERSITY_S4G = SCORINGS[("university1652", "sample4geo")]
VIGOR = SCORINGS[("vigor", "official")]
VIGOR_S4G = SCORINGS[("vigor", "sample4geo")]
CVUSA = SCORINGS[("cvusa", "official")]
CVUSA_S4G = SCORINGS[("cvusa", "sample4geo")]
SYNTHETIC = SCORINGS[("synthetic", "official")]


def scored(sims, positives=None, semi=None, scoring=SYNTHETIC, gallery_size=None):
    """Metrics of a written-out (query x gallery) similarity matrix: query i is the basis vector
    e_i, gallery item g is column g, so query . gallery = sims exactly."""
    sims = np.asarray(sims, dtype=np.float32)
    return retrieval_metrics(np.eye(sims.shape[0], dtype=np.float32), sims.T.copy(), positives,
                             semi_positives=semi, scoring=scoring, gallery_size=gallery_size)


@pytest.mark.parametrize(("gallery", "university", "int_plus_one", "floor"), [
    (50, 1, 1, 0),        # round(0.5) = 0 (ties to even); Sample4Geo's K is 0: nobody counts
    (99, 2, 1, 0),
    (150, 3, 2, 1),       # round(1.5) = 2
    (250, 3, 3, 2),       # round(2.5) = 2
    (951, 11, 10, 9),     # University-1652 satellite gallery
    (8884, 90, 89, 88),   # CVUSA / CVACT val
    (90618, 907, 907, 906),  # VIGOR same-area tiles: the 906 vs 907
])
def test_one_percent_k_per_script(gallery, university, int_plus_one, floor):
    assert k_round_plus_one(gallery) == university
    assert k_int_plus_one(gallery) == int_plus_one
    assert k_floor_hundredth(gallery) == floor


def test_r_at_one_percent_follows_each_script_on_a_gallery_where_they_differ():
    # 150 gallery items; query 0 ranks its match 2nd, query 1 ranks it 3rd, query 2 ranks it 1st
    sims = np.zeros((3, 150), dtype=np.float32)
    sims[0, :2] = [0.9, 0.8]          # match = item 1 (rank 2)
    sims[1, 2:5] = [0.9, 0.8, 0.7]    # match = item 4 (rank 3)
    sims[2, 5] = 0.9                  # match = item 5 (rank 1)
    positives = [[1], [4], [5]]
    assert scored(sims, positives, scoring=UNIVERSITY)["R@1%"] == 100.0   # K = 3
    assert scored(sims, positives, scoring=CVUSA)["R@1%"] == pytest.approx(200 / 3)  # K = 2
    assert scored(sims, positives, scoring=CVUSA_S4G)["R@1%"] == pytest.approx(100 / 3)  # K = 1
    assert scored(sims, positives, scoring=SYNTHETIC)["R@1%"] == pytest.approx(200 / 3)  # K = max(1, 2)
    # Sample4Geo's junk: 150 ranked, 250 in the gallery -> K = round(2.5) + 1 = 3
    assert scored(sims, positives, scoring=UNIVERSITY_S4G, gallery_size=250)["R@1%"] == 100.0
    # under 100 gallery items Sample4Geo's K is 0, so even rank 1 does not count
    assert scored(sims[:, :99], positives, scoring=VIGOR_S4G)["R@1%"] == 0.0


def test_r_at_k_ties_count_for_the_query():
    sims = [[0.5, 0.5, 0.5, 0.1]]     # the match (item 2) ties with two others
    metrics = scored(sims, [[2]])
    assert metrics["R@1"] == 100.0 and metrics["median_rank"] == 1.0


@pytest.mark.parametrize(("rank", "trapezoid", "step"), [(1, 1.0, 1.0), (2, 0.25, 0.5), (4, 0.125, 0.25)])
def test_ap_of_one_true_match(rank, trapezoid, step):
    sims = np.zeros((1, 6), dtype=np.float32)
    sims[0, : rank - 1] = 0.9         # rank-1 false matches above
    sims[0, 5] = 0.5
    assert scored(sims, [[5]], scoring=UNIVERSITY)["mAP"] == pytest.approx(100 * trapezoid)
    assert scored(sims, [[5]], scoring=SYNTHETIC)["mAP"] == pytest.approx(100 * step)


def test_ap_of_several_true_matches_by_the_trapezoid_rule():
    # ranking T F T F T (0-based rows 0, 2, 4):
    #   i=0: old 1, precision 1           -> 1
    #   i=1: old 1/2, precision 2/3       -> 7/12
    #   i=2: old 2/4, precision 3/5       -> 11/20
    sims = [[0.9, 0.8, 0.7, 0.6, 0.5]]
    assert scored(sims, [[0, 2, 4]], scoring=UNIVERSITY)["mAP"] == pytest.approx(100 * (1 + 7 / 12 + 11 / 20) / 3)
    assert scored(sims, [[0, 2, 4]], scoring=SYNTHETIC)["mAP"] == pytest.approx(100 * (1 + 2 / 3 + 3 / 5) / 3)
    # ranking F T T (rows 1, 2): i=0: old 0/1, precision 1/2 -> 1/4; i=1: old 1/2, precision 2/3 -> 7/12
    assert scored([[0.9, 0.8, 0.7]], [[1, 2]], scoring=UNIVERSITY)["mAP"] == pytest.approx(100 * (1 / 4 + 7 / 12) / 2)


def test_ap_puts_true_matches_ahead_of_equal_false_ones():
    # two true matches tie with a false one at the top, another false one below: rows 0, 1 -> AP 1
    assert scored([[0.7, 0.7, 0.7, 0.2]], [[0, 2]], scoring=UNIVERSITY)["mAP"] == 100.0
    # one false match strictly above two tied true ones: rows 1, 2 (as F T T above)
    assert average_precision(np.array([0.9, 0.7, 0.7]), np.array([0.7, 0.7]), True) == pytest.approx((1 / 4 + 7 / 12) / 2)


def test_distractor_classes_rank_as_false_matches_unless_removed_as_junk():
    # gallery: true tile (0.6), a distractor tile (0.8), another tile (0.1)
    sims = [[0.6, 0.8, 0.1]]
    official = scored(sims, [[0]], scoring=UNIVERSITY)
    assert official["R@1"] == 0.0 and official["mAP"] == pytest.approx(25.0)  # rank 2 -> (0 + 1/2) / 2
    # Sample4Geo removes the distractor before ranking, but its R@1% still sees 3 images
    removed = scored([[0.6, 0.1]], [[0]], scoring=UNIVERSITY_S4G, gallery_size=3)
    assert removed["R@1"] == 100.0 and removed["mAP"] == 100.0


def test_university_query_without_a_true_match_is_a_miss_in_the_denominator():
    sims = [[0.9, 0.1], [0.9, 0.1]]
    metrics = scored(sims, [[0], []], scoring=UNIVERSITY)
    assert metrics["R@1"] == 50.0 and metrics["R@10"] == 50.0 and metrics["mAP"] == 50.0
    with pytest.raises(ValueError, match="every query needs at least one"):
        scored(sims, [[0], []], scoring=SYNTHETIC)  # elsewhere it is a data error


@pytest.mark.parametrize("scoring", [VIGOR, VIGOR_S4G])
def test_vigor_hit_rate_allows_only_semi_positives_above_the_positive(scoring):
    # gallery: 0 positive, 1 semi-positive, 2 negative
    cases = {
        "semi > positive > negative": ([0.5, 0.9, 0.1], True),
        "semi > negative > positive": ([0.5, 0.9, 0.7], False),  # the old top-1 rule counted this
        "negative > semi > positive": ([0.5, 0.8, 0.9], False),
        "positive first": ([0.9, 0.5, 0.1], True),
        "positive ties the negative": ([0.7, 0.1, 0.7], True),
    }
    for name, (row, hit) in cases.items():
        metrics = scored([row], [[0]], semi=[[1]], scoring=scoring)
        assert metrics["hit_rate"] == (100.0 if hit else 0.0), name
    # R@1 counts the positive only
    assert scored([[0.5, 0.9, 0.1]], [[0]], semi=[[1]], scoring=scoring)["R@1"] == 0.0


def reference_metrics(sims: np.ndarray, positives: list[list[int]], k: int, trapezoid: bool) -> dict[str, float]:
    """Per query, from the formulas: sort the gallery (true matches first among equal scores),
    read off the rows of the true matches, then R@K and AP as the docstring states."""
    r1 = r_k = ap_sum = 0.0
    for q, true in enumerate(positives):
        if not true:
            continue
        is_true = np.zeros(sims.shape[1], dtype=bool)
        is_true[true] = True
        order = sorted(range(sims.shape[1]), key=lambda g: (-sims[q, g], not is_true[g]))
        rows = [row for row, g in enumerate(order) if is_true[g]]
        r1 += rows[0] < 1
        r_k += rows[0] < k
        ap = 0.0
        for i, row in enumerate(rows):
            precision = (i + 1) / (row + 1)
            old = 1.0 if row == 0 else i / row
            ap += ((old + precision) / 2 if trapezoid else precision) / len(rows)
        ap_sum += ap
    n = len(positives)
    return {"R@1": 100 * r1 / n, "R@1%": 100 * r_k / n, "mAP": 100 * ap_sum / n}


@pytest.mark.parametrize("scoring", [UNIVERSITY, SYNTHETIC])
def test_vectorised_metrics_equal_the_per_query_formulas(scoring):
    rng = np.random.default_rng(3)
    n_query, n_gallery = 40, 230
    # coarse similarities (0.1 steps) so ties between true and false matches happen
    sims = np.round(rng.uniform(-1, 1, (n_query, n_gallery)), 1).astype(np.float32)
    positives = [sorted(rng.choice(n_gallery, size=int(rng.integers(1, 6)), replace=False).tolist())
                 for _ in range(n_query)]
    if scoring.unmatched_are_misses:
        positives[7] = []
    got = retrieval_metrics(np.eye(n_query, dtype=np.float32), sims.T.copy(), positives, scoring=scoring, chunk=7)
    want = reference_metrics(sims, positives, scoring.one_percent_k(n_gallery), scoring.trapezoid_ap)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_each_dataset_and_variant_names_its_script():
    assert scoring_for("cvusa:/data/CVUSA") is CVUSA
    assert scoring_for("cvact:/data/CVACT", "sample4geo").one_percent_rule == "G // 100"
    assert scoring_for("vigor-cross:/data/VIGOR") is VIGOR
    assert scoring_for("synthetic-drone:64") is SYNTHETIC
    assert scoring_for("university1652:/data/U", "sample4geo") is UNIVERSITY_S4G
    with pytest.raises(CvglError, match="unknown protocol variant"):
        scoring_for("cvusa:/x", "strict")
    with pytest.raises(CvglError, match="synthetic data has official"):
        scoring_for("synthetic", "sample4geo")
    assert UNIVERSITY.describe(951) == {"name": "university1652-official", "source": UNIVERSITY.source,
                                        "one_percent_rule": "round(0.01 * G) + 1", "one_percent_k": 11,
                                        "ap_rule": "trapezoid"}
