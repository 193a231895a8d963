"""Which released evaluation code each dataset's numbers follow, and that code's formulas.

Why a table: published CVGL tables come from each benchmark's own evaluation script, and
those scripts disagree on details that move the figures (the K of R@1%, the AP rule, what
counts as a VIGOR hit). ``cvgl-edge eval`` reports what the named script prints for the
same descriptors, so a number here can sit next to a number in a paper. ``official``
follows the dataset authors' code; ``sample4geo`` follows Sample4Geo's.

Common to every entry: rank = 1 + (gallery items strictly more similar than the best true
match), i.e. ties count in the query's favour, as the scripts' strict ``<`` / ``>`` counts
do (University-1652's script leaves the order of exactly equal scores to numpy's sort);
R@K = fraction of queries with rank <= K. Per entry (G = gallery size):

========================  =====================  ==========  ================================
scoring                   K of R@1%              AP rule     source
========================  =====================  ==========  ================================
synthetic                 max(1, round(G/100))   step        cvgl-edge (not a benchmark)
cvusa/cvact official      int(G*0.01) + 1        (step)      CVACT authors' validate(); SAFA
cvusa/cvact sample4geo    G // 100               (step)      Sample4Geo cvusa_and_cvact.py
university1652 (both)     round(G*0.01) + 1      trapezoid   University1652-Baseline / S4G
vigor official            int(G*0.01) + 1        (step)      VIGOR train_SAFA.py validate_top
vigor sample4geo          G // 100               (step)      Sample4Geo evaluate/vigor.py
========================  =====================  ==========  ================================

"(step)": the script reports no AP; cvgl-edge adds the mean precision at each true match
(= 1/rank for one match). The trapezoid rule (Market-1501's): true matches at 0-based rows
r_0 < r_1 < ..., AP = mean_i ((i / r_i, or 1 when r_i = 0) + (i + 1) / (r_i + 1)) / 2.
University-1652's G counts every gallery image, the distractor ("junk") images that
Sample4Geo removes from the ranking included. VIGOR hit: no reference other than the
positive and its semi-positives scores above the positive (both VIGOR scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cvgl_edge.data.layout import resolve_spec
from cvgl_edge.data.protocol import VARIANTS
from cvgl_edge.data.registry import dataset_kind
from cvgl_edge.errors import CvglError


def k_round_plus_one(gallery_size: int) -> int:
    """University-1652: CMC at index round(G * 0.01) (Python's round, ties to even) is R@(that + 1)."""
    return round(gallery_size * 0.01) + 1


def k_int_plus_one(gallery_size: int) -> int:
    """CVACT authors / SAFA / VIGOR: a query counts when fewer than int(G * 0.01) + 1 items beat it."""
    return int(gallery_size * 0.01) + 1


def k_floor_hundredth(gallery_size: int) -> int:
    """Sample4Geo: fewer than G // 100 items beat the query (so R@1% is 0 for galleries under 100)."""
    return gallery_size // 100


def k_rounded_percent(gallery_size: int) -> int:
    """cvgl-edge's own rule for the synthetic data: the nearest whole 1 %, at least 1."""
    return max(1, int(round(0.01 * gallery_size)))


@dataclass(frozen=True)
class Scoring:
    """How one released evaluation script turns rankings into numbers."""

    name: str
    source: str
    one_percent_k: Callable[[int], int]
    one_percent_rule: str
    trapezoid_ap: bool = False
    #: queries without a true match: misses that stay in the denominator (University-1652's
    #: script skips them but divides by every query), else refused as a data error
    unmatched_are_misses: bool = False

    def describe(self, gallery_size: int) -> dict[str, object]:
        """JSON-ready record entry: which rules produced the numbers, and K for this gallery."""
        return {"name": self.name, "source": self.source, "one_percent_rule": self.one_percent_rule,
                "one_percent_k": self.one_percent_k(gallery_size),
                "ap_rule": "trapezoid" if self.trapezoid_ap else "mean precision"}


SAFA_RULE = "int(0.01 * G) + 1"
SAMPLE4GEO_RULE = "G // 100"
_CVUSA_OFFICIAL = "CVACT authors' (Liu & Li, CVPR 2019) validate(); the same rule in SAFA and CVM-Net"
_SAMPLE4GEO_PAIRED = "Sample4Geo sample4geo/evaluate/cvusa_and_cvact.py calculate_scores"
_UNIVERSITY = "University1652-Baseline evaluate_gpu.py (compute_mAP)"
_UNIVERSITY_S4G = "Sample4Geo sample4geo/evaluate/university.py (distractor classes labelled -1, removed as junk)"

#: (dataset, variant) -> scoring; one line per benchmark script
SCORINGS: dict[tuple[str, str], Scoring] = {
    ("synthetic", "official"): Scoring("synthetic", "cvgl-edge (not a benchmark)", k_rounded_percent,
                                       "max(1, round(0.01 * G))"),
    ("cvusa", "official"): Scoring("cvusa-official", _CVUSA_OFFICIAL, k_int_plus_one, SAFA_RULE),
    ("cvusa", "sample4geo"): Scoring("cvusa-sample4geo", _SAMPLE4GEO_PAIRED, k_floor_hundredth, SAMPLE4GEO_RULE),
    ("cvact", "official"): Scoring("cvact-official", _CVUSA_OFFICIAL, k_int_plus_one, SAFA_RULE),
    ("cvact", "sample4geo"): Scoring("cvact-sample4geo", _SAMPLE4GEO_PAIRED, k_floor_hundredth, SAMPLE4GEO_RULE),
    ("university1652", "official"): Scoring("university1652-official", _UNIVERSITY, k_round_plus_one,
                                            "round(0.01 * G) + 1", trapezoid_ap=True, unmatched_are_misses=True),
    ("university1652", "sample4geo"): Scoring("university1652-sample4geo", _UNIVERSITY_S4G, k_round_plus_one,
                                              "round(0.01 * G) + 1, G with the junk images",
                                              trapezoid_ap=True, unmatched_are_misses=True),
    ("vigor", "official"): Scoring("vigor-official", "VIGOR train_SAFA.py validate_top", k_int_plus_one, SAFA_RULE),
    ("vigor", "sample4geo"): Scoring("vigor-sample4geo", "Sample4Geo sample4geo/evaluate/vigor.py calculate_scores",
                                     k_floor_hundredth, SAMPLE4GEO_RULE),
}
#: what a bare ``retrieval_metrics`` call uses (no dataset named)
DEFAULT_SCORING = SCORINGS[("synthetic", "official")]

def dataset_family(data: str) -> str:
    """The scoring family of a data spec (its registry entry's): synthetic, cvusa, cvact,
    university1652 or vigor."""
    return dataset_kind(resolve_spec(data).partition(":")[0], data).scoring_family


def scoring_for(data: str, variant: str = "official") -> Scoring:
    """The scoring of ``data`` under ``variant``; CvglError (one line) for a pair that has none."""
    if variant not in VARIANTS:
        raise CvglError(f"unknown protocol variant {variant!r} (valid: {', '.join(VARIANTS)})")
    family = dataset_family(data)
    scoring = SCORINGS.get((family, variant))
    if scoring is None:
        valid = sorted({f for f, v in SCORINGS if v == variant})
        raise CvglError(f"the {variant} protocol applies to {', '.join(valid)}; {family} data has "
                        f"{', '.join(v for f, v in SCORINGS if f == family) or 'no scoring'}")
    return scoring
