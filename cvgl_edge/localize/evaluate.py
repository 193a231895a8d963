"""Evaluate a loop run against ground truth: errors in metres, fix rate, fps, latency; a plot.

Truth is a mission's ``truth.csv`` (frame -> lat/lon). The error of a frame is the
horizontal distance from its reported position to the point its camera centre saw
(``view_lat/view_lon``; the drone's own position for nadir frames). Frames without a
position count against the fix rate, not the error statistics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.data.geomap import GeoMap, latlon_to_local
from cvgl_edge.io import atomic_write
from cvgl_edge.timing import percentile


def fix_errors(records: list[dict[str, Any]], truth: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Per-frame errors (metres) and their summary."""
    errors, fixed, frames = [], 0, 0
    measured = 0
    for rec in records:
        gt = truth.get(int(rec["frame"]))
        if gt is None:
            continue
        frames += 1
        if rec.get("lat") is None:
            rec["error_m"] = None
            continue
        fixed += 1
        measured += rec.get("status") == "fix"
        east, north = latlon_to_local(rec["lat"], rec["lon"], (gt.get("view_lat", gt["lat"]),
                                                             gt.get("view_lon", gt["lon"])))
        rec["error_m"] = float(math.hypot(float(east), float(north)))
        errors.append(rec["error_m"])
    summary: dict[str, Any] = {"frames": frames, "with_position": fixed, "with_measurement": measured,
                               "fix_rate": round(fixed / frames, 4) if frames else None,
                               "measurement_rate": round(measured / frames, 4) if frames else None}
    if errors:
        summary.update({"median_error_m": round(percentile(errors, 50), 2), "p90_error_m": round(percentile(errors, 90), 2),
                        "mean_error_m": round(float(np.mean(errors)), 2), "max_error_m": round(max(errors), 2)})
    return summary


def split_by_map(records: list[dict[str, Any]], truth: dict[int, dict[str, float]], mission: Any,
                 margin_px: float) -> dict[str, Any]:
    """On-map errors and fix rate; off-map frames given "no fix" vs given a (necessarily wrong) position.

    ``mission`` is a :class:`~cvgl_edge.data.mission.SyntheticMission`. On the map means
    the viewed point lies at least ``margin_px`` inside it; frames nearer the edge than that
    (but on it) are counted in neither group (``edge_frames``). ``on_map_errors_m`` lists the
    on-map frames' errors, for pooling flights.
    """
    inside = [dict(r) for r in records if mission.inside_map(r["frame"], margin_px)]
    outside = [r for r in records if not mission.inside_map(r["frame"])]
    edge = len(records) - len(inside) - len(outside)
    wrong = [r for r in outside if r["lat"] is not None]
    off = fix_errors([dict(r) for r in wrong], truth) if wrong else {}
    on_map = fix_errors(inside, truth)                          # also adds error_m to each record
    return {"on_map": on_map, "on_map_errors_m": [r["error_m"] for r in inside if r.get("error_m") is not None],
            "off_map": {"frames": len(outside), "no_fix": len(outside) - len(wrong), "with_position": len(wrong),
                        "with_measurement": sum(r["status"] == "fix" for r in wrong),
                        "no_fix_share": round((len(outside) - len(wrong)) / len(outside), 4) if outside else None,
                        "wrong_fix_median_error_m": off.get("median_error_m")},
            "edge_frames": edge}


def plot_trajectory(path: str | Path, geomap: GeoMap, records: list[dict[str, Any]],
                    truth: dict[int, dict[str, float]] | None = None, title: str = "") -> Path:
    """PNG: the map, the true track and the fixes coloured by confidence (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
    ax.imshow(geomap.image, interpolation="bilinear")
    h, w = geomap.shape
    if truth:
        frames = sorted(truth)
        r, c = geomap.latlon_to_pixel([truth[f].get("view_lat", truth[f]["lat"]) for f in frames],
                                      [truth[f].get("view_lon", truth[f]["lon"]) for f in frames])
        ax.plot(c, r, "-", color="white", lw=2.5, label="truth")
        ax.plot(c, r, "-", color="black", lw=1.0)
    pos = [rec for rec in records if rec.get("lat") is not None]
    if pos:
        r, c = geomap.latlon_to_pixel([p["lat"] for p in pos], [p["lon"] for p in pos])
        conf = [p.get("confidence", 0.0) for p in pos]
        marks = ax.scatter(c, r, c=conf, cmap="plasma", vmin=0, vmax=1, s=14, label="fixes", zorder=3)
        fig.colorbar(marks, ax=ax, fraction=0.046, pad=0.04, label="confidence")
    ax.set_xlim(-0.02 * w, 1.02 * w)
    ax.set_ylim(1.02 * h, -0.02 * h)
    ax.set_title(title or "localisation loop")
    ax.legend(loc="lower right")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)


def similarity_split(records: list[dict[str, Any]], truth: dict[int, dict[str, float]], tile_lat: np.ndarray,
                     tile_lon: np.ndarray, radius_m: float) -> dict[str, Any]:
    """Cosine of the best candidate for correct vs wrong matches, and a suggested ``min_similarity``.

    A frame's best tile is *correct* when its centre lies within ``radius_m`` (half a tile)
    of the point the camera saw; frames off the map can only give wrong ones. The
    suggestion maximises (correct kept) - (wrong kept), i.e. Youden's J over the observed
    values; it is only as good as the flight it was measured on (use one with an exit).
    """
    right, wrong = [], []
    for rec in records:
        gt, tile, sim = truth.get(int(rec["frame"])), int(rec.get("tile", -1)), rec.get("similarity")
        if gt is None or tile < 0 or sim is None:
            continue
        east, north = latlon_to_local(tile_lat[tile], tile_lon[tile], (gt.get("view_lat", gt["lat"]),
                                                                       gt.get("view_lon", gt["lon"])))
        (right if math.hypot(float(east), float(north)) <= radius_m else wrong).append(float(sim))
    out: dict[str, Any] = {"radius_m": round(radius_m, 2), "correct": len(right), "wrong": len(wrong)}
    for name, values in (("correct", right), ("wrong", wrong)):
        if values:
            out[f"{name}_similarity"] = {q: round(percentile(values, p), 4)
                                         for q, p in (("p5", 5), ("p50", 50), ("p95", 95))}
    if right and wrong:
        r, w = np.sort(right), np.sort(wrong)
        best = max((float(np.mean(r >= c) - np.mean(w >= c)), c) for c in np.concatenate([r, w]))
        c = best[1]
        out.update({"suggested_min_similarity": round(c, 4),
                    "correct_kept": round(float(np.mean(r >= c)), 4), "wrong_kept": round(float(np.mean(w >= c)), 4)})
    return out
