"""Benchmark record -> ratios, headline rows, rich tables, markdown and the PNG plot."""

import io

import pytest
from rich.console import Console

from cvgl_edge.bench.record import SCHEMA, add_ratios, summarize
from cvgl_edge.bench.report import markdown, rich_tables


def _stats(p50):
    return {"n": 5, "p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.2, "mean_ms": p50, "std_ms": 0.1 * p50,
            "min_ms": p50 * 0.9, "max_ms": p50 * 1.3}


def _cell(variant, branch, batch, p50):
    return {"variant": variant, "branch": branch, "batch": batch, "runs": 5, "encoder_ms": _stats(p50),
            "h2d_ms": _stats(0.01), "d2h_ms": _stats(0.01), "total_ms": _stats(p50 + 0.02),
            "per_item_p50_ms": p50 / batch, "throughput_per_s": batch / (p50 / 1e3), "memory": {"peak_rss_mb": 500.0},
            "nonfinite_runs": 0}


def _variant(name, scale):
    backend, precision = name.split()
    cells = [_cell(name, b, n, scale * ms) for b, base in (("ground", 10.0), ("satellite", 8.0))
             for n, ms in ((1, base), (4, 3 * base))]
    return {"name": name, "backend": backend, "precision": precision, "cells": cells, "load_rss_mb": 12.0,
            "accuracy": {"R@1": 42.0, "R@5": 80.0, "R@10": 90.0, "R@1%": 42.0, "mAP": 50.0,
                         "cosine_vs_first": {"ground": {"min": 0.999, "mean": 0.9995},
                                             "satellite": {"min": 0.998, "mean": 0.999}}}}


def make_record():
    record = {
        "schema": SCHEMA, "command": "cvgl-edge bench x.pt", "date": "2026-11-22T00:00:00",
        "machine": {"cpu_model": "Test CPU", "usable_cores": 2, "os": "Linux", "python": "3.11",
                    "versions": {"torch": "2.13"}, "load_average_before": [1.0, 1.0, 1.0],
                    "load_average_after": [1.1, 1.0, 1.0]},
        "model": {"name": "geossm-nano", "checkpoint": None, "random_weights": True, "model_sha256": "ab" * 32,
                  "input_sizes": {"ground": [32, 128], "satellite": [64, 64]}, "descriptor_dim": 128},
        "settings": {"device": "cpu", "batch_sizes": [1, 4], "timing": "test timing"},
        "cost": {"params_total": 2_000_000, "flop_convention": "2 FLOPs per multiply-add",
                 "branches": {"ground": {"params": 1_000_000, "flops": 3_000_000_000},
                              "satellite": {"params": 1_000_000, "flops": 2_000_000_000}}},
        "variants": [_variant("torch fp32", 1.0), _variant("onnxruntime int8", 0.5)],
        "skipped": [{"variant": "tensorrt fp32", "reason": "TensorRT engines need a CUDA GPU; none here"}],
        "accuracy_set": {"data": "synthetic", "split": "val", "pairs": 20, "polar": False, "chance_r1": 5.0},
        "anchors": [{"method": "GeoSSM (Vision Mamba)", "params_m": 35.24, "gflops": 11.0, "ms_per_query": 114.0,
                     "hardware": "4x NVIDIA GeForce RTX 4090", "source": "paper", "kind": "published"}],
        "estimates": [{"kind": "estimate (roofline)", "device": "orin-nano", "precision": "fp32", "view": "ground",
                       "ms_per_query": 1.5, "bound": "memory"}],
    }
    summarize(record)
    return record


def test_ratios_compare_each_cell_with_the_first_variant():
    record = make_record()
    first, second = record["variants"]
    assert all(c["speedup_vs_first"] == 1.0 for c in first["cells"])
    assert all(c["speedup_vs_first"] == pytest.approx(2.0) for c in second["cells"])
    assert all(c["throughput_vs_first"] == pytest.approx(2.0) for c in second["cells"])
    lonely = [{"name": "x", "cells": [_cell("x", "ground", 1, 1.0)]},
              {"name": "y", "cells": [_cell("y", "ground", 2, 1.0)]}]
    add_ratios(lonely)
    assert "speedup_vs_first" not in lonely[1]["cells"][0]  # no matching cell in the reference


def test_headline_row_per_query_and_per_tile():
    row = make_record()["summary"][1]
    assert row["variant"] == "onnxruntime int8" and row["query_batch"] == 1
    assert row["query_p50_ms"] == pytest.approx(5.0) and row["tile_p50_ms"] == pytest.approx(4.0)
    assert row["queries_per_s"] == pytest.approx(4 / 0.015) and row["queries_per_s_batch"] == 4
    assert row["params_total_m"] == 2.0 and row["gflops_per_query"] == 3.0 and row["gflops_per_tile"] == 2.0
    assert row["R@1"] == 42.0 and row["peak_rss_mb"] == 500.0 and row["query_speedup_vs_first"] == 2.0


def test_markdown_and_tables_show_every_part():
    record = make_record()
    text = markdown(record, "plot.png")
    for fragment in ("# cvgl-edge bench: geossm-nano on cpu", "`cvgl-edge bench x.pt`", "## Summary",
                     "GeoSSM (paper)", "4x NVIDIA GeForce RTX 4090", "## Latency per batch", "onnxruntime int8",
                     "![latency and throughput against batch size](plot.png)", "Skipped tensorrt fp32",
                     "random (seeded preset) weights", "## Estimates (roofline, not measured)",
                     "2 FLOPs per multiply-add"):
        assert fragment in text, fragment
    out = io.StringIO()
    console = Console(file=out, width=200)
    for table in rich_tables(record, wide=True):  # --wide: the markdown's columns
        console.print(table)
    screen = out.getvalue()
    for fragment in ("ms/query p50 / p90 / p99", "GeoSSM (paper)", "ESTIMATES", "R@1", "pre-processing" if
                     record.get("preprocess") else "accuracy on 20 synthetic val pairs"):
        assert fragment in screen, fragment
    out = io.StringIO()
    console = Console(file=out, width=80)
    for table in rich_tables(record):  # default: compact tables (tests/cli/test_tables_80_columns.py)
        console.print(table)
    screen = out.getvalue()
    for fragment in ("query p50", "GeoSSM (paper)", "ESTIMATES", "R@1", "accuracy on 20 synthetic val pairs"):
        assert fragment in screen, fragment


def test_plot_is_a_png(tmp_path):
    from cvgl_edge.bench.plot import plot_record

    path = plot_record(make_record(), tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
