"""Before/after of the metrics change on one fabricated dataset per protocol.

"before": the rules cvgl-edge used up to 0.1 (R@1% K = max(1, round(0.01 G)) everywhere, AP as
mean precision, VIGOR hit = top-1 is the positive or a semi-positive); "after": each benchmark
script's rules (cvgl_edge.eval.scoring). The descriptors are fabricated at the benchmarks' real
gallery sizes (queries subsampled where the full set would take minutes on 2 cores): true
matches are noisy copies of their tile, so the figures are mid-range rather than 0 or 100.

    python benchmarks/metrics_parity.py [--out benchmarks/results/metrics_parity_<date>.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvgl_edge.eval.metrics import retrieval_metrics
from cvgl_edge.eval.scoring import SCORINGS, Scoring, k_rounded_percent

DIM = 32
OLD = Scoring("cvgl-edge 0.1", "cvgl-edge before 0.2", k_rounded_percent, "max(1, round(0.01 * G))")


@dataclass
class Fabricated:
    name: str
    query: np.ndarray
    gallery: np.ndarray
    positives: list[np.ndarray] | None
    semi: list[np.ndarray] | None = None
    gallery_total: int | None = None
    note: str = ""


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def noisy(rng: np.random.Generator, base: np.ndarray, sigma: float) -> np.ndarray:
    return unit(base + sigma * rng.standard_normal(base.shape) / np.sqrt(DIM))


def paired(rng: np.random.Generator, name: str, pairs: int, sigma: float) -> Fabricated:
    tiles = unit(rng.standard_normal((pairs, DIM)))
    return Fabricated(name, noisy(rng, tiles, sigma), tiles, None, note=f"{pairs} pairs")


def university(rng: np.random.Generator, junk: bool) -> list[Fabricated]:
    classes, distractors, per_class = 701, 250, 54
    tiles = unit(rng.standard_normal((classes + distractors, DIM)))
    drone_query = noisy(rng, np.repeat(tiles[:classes], per_class, axis=0), 1.4)
    d2s_pos = [np.array([c]) for c in range(classes) for _ in range(per_class)]
    drone_gallery = noisy(rng, np.repeat(tiles, per_class, axis=0), 1.4)
    s2d_pos = [np.arange(c * per_class, (c + 1) * per_class) for c in range(classes)]
    if junk:  # Sample4Geo: distractor classes are junk, removed from the ranking, counted in G
        return [Fabricated("University-1652 drone->satellite (sample4geo)", drone_query, tiles[:classes], d2s_pos,
                           gallery_total=classes + distractors, note="37855 queries, 701 ranked of 951"),
                Fabricated("University-1652 satellite->drone (sample4geo)", tiles[:classes],
                           drone_gallery[: classes * per_class], s2d_pos, gallery_total=len(drone_gallery),
                           note="701 queries, 37854 ranked of 51354")]
    return [Fabricated("University-1652 drone->satellite (official)", drone_query, tiles, d2s_pos,
                       note="37855 queries, 951 tiles"),
            Fabricated("University-1652 satellite->drone (official)", tiles[:classes], drone_gallery, s2d_pos,
                       note="701 queries, 51354 drone photos")]


def vigor(rng: np.random.Generator, tiles_total: int, queries: int, name: str) -> Fabricated:
    """Tiles in groups of 4 around one place (positive + 3 semi-positives); panoramas near the positive."""
    groups = tiles_total // 4
    places = unit(rng.standard_normal((groups, DIM)))
    tiles = noisy(rng, np.repeat(places, 4, axis=0), 0.8)
    picked = rng.choice(groups, size=queries, replace=False)
    which = rng.integers(0, 4, size=queries)
    positive = picked * 4 + which
    query = noisy(rng, tiles[positive], 1.2)
    semi = [np.array([g * 4 + k for k in range(4) if k != w]) for g, w in zip(picked, which)]
    return Fabricated(name, query, tiles, [np.array([p]) for p in positive], semi,
                      note=f"{queries} panoramas (subsampled), {len(tiles)} tiles")


def old_hit_rate(item: Fabricated) -> float:
    """The 0.1 rule: top-1 is the positive or a semi-positive."""
    hits = 0
    for start in range(0, len(item.query), 512):
        top = np.argmax(item.query[start:start + 512] @ item.gallery.T, axis=1)
        for i, t in enumerate(top, start):
            hits += t in item.positives[i] or t in item.semi[i]
    return 100.0 * hits / len(item.query)


def compare(item: Fabricated, scoring: Scoring) -> dict[str, object]:
    start = time.perf_counter()
    before = retrieval_metrics(item.query, item.gallery, item.positives, semi_positives=item.semi, scoring=OLD)
    if item.semi is not None:
        before["hit_rate"] = old_hit_rate(item)
    after = retrieval_metrics(item.query, item.gallery, item.positives, semi_positives=item.semi, scoring=scoring,
                              gallery_size=item.gallery_total)
    g = item.gallery_total or len(item.gallery)
    keys = [k for k in ("R@1", "R@5", "R@10", "R@1%", "mAP", "hit_rate") if k in after]
    return {"dataset": item.name, "scoring": scoring.name, "note": item.note, "gallery_size": g,
            "k_before": OLD.one_percent_k(g), "k_after": scoring.one_percent_k(g),
            "before": {k: round(before[k], 3) for k in keys}, "after": {k: round(after[k], 3) for k in keys},
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(f"benchmarks/results/metrics_parity_{time.strftime('%Y%m%d')}"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cvusa = paired(rng, "CVUSA val", 8884, 1.1)
    cvact = paired(rng, "CVACT val", 8884, 1.1)
    same = vigor(rng, 90618, 5000, "VIGOR same-area")
    cross = vigor(rng, 45452, 5000, "VIGOR cross-area")  # Chicago + SanFrancisco tiles (approx.)
    plan = [(cvusa, SCORINGS[("cvusa", "official")]), (cvusa, SCORINGS[("cvusa", "sample4geo")]),
            (cvact, SCORINGS[("cvact", "official")]), (cvact, SCORINGS[("cvact", "sample4geo")])]
    plan += [(item, SCORINGS[("university1652", "official")]) for item in university(rng, junk=False)]
    plan += [(item, SCORINGS[("university1652", "sample4geo")]) for item in university(rng, junk=True)]
    plan += [(same, SCORINGS[("vigor", "official")]), (same, SCORINGS[("vigor", "sample4geo")]),
             (cross, SCORINGS[("vigor", "official")]), (cross, SCORINGS[("vigor", "sample4geo")])]
    rows = []
    for item, scoring in plan:
        rows.append(compare(item, scoring))
        print(json.dumps(rows[-1]))
    record = {"command": "python benchmarks/metrics_parity.py", "machine": platform.platform(),
              "python": platform.python_version(), "numpy": np.__version__, "seed": args.seed, "dim": DIM,
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    lines = ["| dataset | scoring | G | K before/after | metric: before -> after |", "|---|---|---|---|---|"]
    for row in rows:
        changes = ", ".join(f"{k} {row['before'][k]:.2f} -> {row['after'][k]:.2f}" for k in row["after"])
        lines.append(f"| {row['dataset']} | {row['scoring']} | {row['gallery_size']} | "
                     f"{row['k_before']}/{row['k_after']} | {changes} |")
    args.out.with_suffix(".md").write_text(
        f"# Metrics before/after (fabricated descriptors)\n\n{record['machine']}, numpy {np.__version__}; "
        f"`{record['command']}`\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
