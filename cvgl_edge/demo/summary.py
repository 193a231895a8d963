"""The demo's closing summary: what was trained, how well, what was exported and how the loop did.

Written for someone who has never seen the project: each line says what a number means
(R@1 against chance, error in metres against the truth) and where the files are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvgl_edge.demo.settings import DemoSettings
from cvgl_edge.views import GROUND_TO_SATELLITE


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def _train_line(n: int, title: str, rec: dict[str, Any], what: str) -> list[str]:
    untrained = (rec.get("untrained") or {}).get(GROUND_TO_SATELLITE, {}).get("R@1")
    return [f"{n}. {title}: {rec.get('model')} ({rec.get('params', 0) / 1e6:.2f} M parameters), "
            f"{rec.get('steps')} steps on {rec.get('train_pairs')} synthetic {what} pairs "
            f"in {rec.get('train_seconds')} s.",
            f"   Top-1 retrieval (R@1) on {rec.get('val_pairs')} held-out pairs: {_pct(rec.get('R@1'))} "
            f"(untrained {_pct(untrained)}, chance {_pct(rec.get('chance_r1'))}); R@5 {_pct(rec.get('R@5'))}."]


def summary_lines(record: dict[str, Any], settings: DemoSettings) -> list[str]:
    """Plain-text lines (also stored in metrics.json under ``summary``)."""
    out = Path(settings.out)
    lines = [f"Demo finished in {record.get('total_seconds', 0):.0f} s; everything is under {out}/"]
    lines += _train_line(1, "Ground->satellite model (street panorama -> satellite tile)", record,
                         "panorama/tile" + (" (polar tiles)" if record.get("polar") else ""))
    n = 2
    if "drone" in record:
        lines += _train_line(n, "Drone-view model for the localisation loop (drone frame -> map tile)",
                             record["drone"], "mission-like drone-frame/tile")
        n += 1
    if "export" in record:
        lines.append(f"{n}. Exported to ONNX fp32 and verified against the PyTorch checkpoints "
                     f"(ONNX Runtime, {settings.verify_pairs} held-out pairs each):")
        for f in record["export"]["files"]:
            drop = f"R@1 drop {f['r1_drop']:+.1f} pt, " if f.get("r1_drop") is not None else ""
            cos = f"descriptor cosine min {f['cosine_min']:.6f}" if f.get("cosine_min") is not None else ""
            lines.append(f"   {str(f.get('verification', '?')).upper():7s} {f['file']} ({f['model']} model, "
                         f"{f['branch']} branch; {drop}{cos})")
        n += 1
    if "localize" in record:
        loc, ix, ms = record["localize"], record.get("index", {}), record.get("mission", {})
        ev = loc.get("eval", {})
        km = ms.get("map_px", 0) * ms.get("metres_per_px", 1.0) / 1000.0
        lines += [f"{n}. Localisation loop: a {ms.get('frames')}-frame drone flight over a {km:.1f} km x {km:.1f} km "
                  f"synthetic map no training pair came from "
                  f"({ix.get('tiles')} tiles of {ix.get('tile_size_m', 0):.0f} m), "
                  f"backend {loc.get('backend')}:",
                  f"   position error median {ev.get('median_error_m')} m, p90 {ev.get('p90_error_m')} m "
                  f"(against the true track); {100 * (ev.get('fix_rate') or 0):.0f}% of frames with a position; "
                  f"{loc.get('fps')} frames/s on this machine "
                  f"(encode p50 {loc.get('latency_ms', {}).get('encode', {}).get('p50')} ms per frame).",
                  f"   Fixes: {loc.get('out')}; trajectory plot: {ev.get('plot')}"]
        sim = ev.get("similarity", {})
        if "suggested_min_similarity" in sim:
            lines.append(f"   Suggested --min-similarity {sim['suggested_min_similarity']} (gives 'no fix' instead of "
                         f"weak matches; keeps {100 * sim['correct_kept']:.0f}% of correct, "
                         f"{100 * sim['wrong_kept']:.0f}% of wrong best matches).")
    lines.append(f"Numbers: {out / 'metrics.json'}; next: README 'Localisation loop' to run it on your own map.")
    return lines
