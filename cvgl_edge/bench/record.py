"""The benchmark record (the JSON a run writes) and the figures derived from it.

Schema ``cvgl-edge.bench/1`` (documented in benchmarks/README.md): ``command``, ``date``,
``machine``, ``model``, ``settings``, ``cost``, ``preprocess``, ``variants`` (each with its
encoders, accuracy and one row per branch x batch size), ``skipped``, ``summary`` (one
headline row per variant), ``anchors`` and ``estimates``. Ratios compare every variant
with the first one run (the reference), cell by cell.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "cvgl-edge.bench/1"


def add_ratios(variants: list[dict[str, Any]]) -> None:
    """``speedup_vs_first`` (reference p50 / this p50: > 1 is faster) and
    ``throughput_vs_first`` on every cell that the first variant also ran."""
    if not variants:
        return
    reference = {(c["branch"], c["batch"]): c for c in variants[0]["cells"]}
    for variant in variants:
        for cell in variant["cells"]:
            ref = reference.get((cell["branch"], cell["batch"]))
            if ref is None:
                continue
            p50, ref_p50 = cell["encoder_ms"]["p50_ms"], ref["encoder_ms"]["p50_ms"]
            cell["speedup_vs_first"] = round(ref_p50 / p50, 3) if p50 > 0 else None
            ref_tp = ref["throughput_per_s"]
            cell["throughput_vs_first"] = round(cell["throughput_per_s"] / ref_tp, 3) if ref_tp else None


def _cell(variant: dict[str, Any], branch: str, batch: int | None = None) -> dict[str, Any] | None:
    """The variant's cell for ``branch`` at ``batch`` (default: its smallest batch)."""
    cells = sorted((c for c in variant["cells"] if c["branch"] == branch), key=lambda c: c["batch"])
    if batch is not None:
        cells = [c for c in cells if c["batch"] == batch]
    return cells[0] if cells else None


def _best_throughput(variant: dict[str, Any], branch: str) -> tuple[float | None, int | None]:
    cells = [c for c in variant["cells"] if c["branch"] == branch]
    if not cells:
        return None, None
    best = max(cells, key=lambda c: c["throughput_per_s"])
    return best["throughput_per_s"], best["batch"]


def _per_item(cell: dict[str, Any] | None, key: str) -> float | None:
    return round(cell["encoder_ms"][key] / cell["batch"], 3) if cell else None


def variant_summary(variant: dict[str, Any], cost: dict[str, Any]) -> dict[str, Any]:
    """The headline row: Params, FLOPs, ms per query (ground) and per tile (satellite)
    at the smallest batch, best throughput, peak memory and R@1."""
    query, tile = _cell(variant, "ground"), _cell(variant, "satellite")
    query_tp, query_tp_batch = _best_throughput(variant, "ground")
    tile_tp, tile_tp_batch = _best_throughput(variant, "satellite")
    memory = [c["memory"] for c in variant["cells"]]
    accuracy = variant.get("accuracy") or {}
    row: dict[str, Any] = {
        "variant": variant["name"], "backend": variant["backend"], "precision": variant["precision"],
        "params_total_m": round(cost["params_total"] / 1e6, 3) if cost.get("params_total") else None,
        "params_ground_m": _cost_figure(cost, "ground", "params", 1e6),
        "params_satellite_m": _cost_figure(cost, "satellite", "params", 1e6),
        "gflops_per_query": _cost_figure(cost, "ground", "flops", 1e9),
        "gflops_per_tile": _cost_figure(cost, "satellite", "flops", 1e9),
        "query_batch": query["batch"] if query else None,
        "query_p50_ms": _per_item(query, "p50_ms"), "query_p90_ms": _per_item(query, "p90_ms"),
        "query_p99_ms": _per_item(query, "p99_ms"),
        "query_speedup_vs_first": query.get("speedup_vs_first") if query else None,
        "queries_per_s": query_tp, "queries_per_s_batch": query_tp_batch,
        "tile_batch": tile["batch"] if tile else None,
        "tile_p50_ms": _per_item(tile, "p50_ms"), "tile_p90_ms": _per_item(tile, "p90_ms"),
        "tile_p99_ms": _per_item(tile, "p99_ms"),
        "tiles_per_s": tile_tp, "tiles_per_s_batch": tile_tp_batch,
        "peak_rss_mb": max((m["peak_rss_mb"] for m in memory if "peak_rss_mb" in m), default=None),
        "gpu_device_used_mb": max((m["gpu_device_used_mb"] for m in memory if "gpu_device_used_mb" in m),
                                  default=None),
        "load_rss_mb": variant.get("load_rss_mb"),
        "R@1": accuracy.get("R@1"), "R@5": accuracy.get("R@5"),
    }
    power = variant.get("power") or {}
    if power:
        row["power"] = power
    return row


def _cost_figure(cost: dict[str, Any], view: str, key: str, unit: float) -> float | None:
    branch = (cost.get("branches") or {}).get(view)
    if not branch or branch.get(key) is None:
        return None
    return round(branch[key] / unit, 3)


def summarize(record: dict[str, Any]) -> None:
    """Fill ``record['summary']`` (and the cell ratios) from the variants."""
    add_ratios(record["variants"])
    record["summary"] = [variant_summary(v, record.get("cost") or {}) for v in record["variants"]]
