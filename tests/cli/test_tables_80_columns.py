"""Every table and help page the CLI prints reads in an 80-column terminal (an SSH session on a Jetson).

Each table is built by the code path its command uses, from fabricated but realistic records (no
GPU, no data), rendered with ``Console(width=80)`` and checked cell by cell: no '…' that is not in
the data, and every cell's text present in its column (whole words, or, for the few columns that
may fold a long path, the same characters in order).
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from cvgl_edge.bench.anchors import anchor_rows
from cvgl_edge.bench.record import SCHEMA, summarize
from cvgl_edge.bench.report import CELL_COLUMNS, SUMMARY_COLUMNS, markdown, rich_tables

WIDTH = 80
ELLIPSIS = "…"


# ---------------------------------------------------------------- rendering and checks

def render(table: Table, width: int = WIDTH) -> str:
    console = Console(width=width, record=True, force_terminal=False, color_system=None, file=io.StringIO())
    console.print(table)
    return console.export_text()


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def column_slices(text: str, columns: int) -> list[list[str]]:
    """Each column's text, line by line, cut at the table's vertical rules (header and body)."""
    lines = text.splitlines()
    top = next(line for line in lines if line[:1] in "┏┌╭")
    cuts = [i for i, char in enumerate(top) if char in "┏┳┓┌┬┐╭╮"]
    assert len(cuts) == columns + 1, top
    out: list[list[str]] = [[] for _ in range(columns)]
    for line in lines:
        if line[:1] not in "┃│":
            continue
        for i in range(columns):
            out[i].append(line[cuts[i] + 1:cuts[i + 1]].strip())
    return out


def assert_fits(table: Table, width: int = WIDTH, may_fold: tuple[str, ...] = ()) -> str:
    """Render ``table`` at ``width`` and fail on any cut cell; returns the text.

    Every line fits; no '…' unless the data has one; every word of every header and cell is a
    whole word of its column (so nothing was cut or broken mid-word), except in the ``may_fold``
    columns (long paths), whose text must still be there in order when the lines are joined.
    """
    text = render(table, width)
    assert max(len(line) for line in text.splitlines()) <= width, text
    headers = [str(column.header) for column in table.columns]
    cells = [[str(cell) for cell in column._cells] for column in table.columns]
    shown = [[header] if table.show_header else [] for header in headers]
    data = " ".join(headers + [cell for column in cells for cell in column])
    if ELLIPSIS not in data:
        assert ELLIPSIS not in text, f"a cell was cut:\n{text}"
    for piece in (table.title, table.caption):
        if piece:
            assert _squash(str(piece)) in _squash(text), f"title/caption cut: {piece!r}\n{text}"
    slices = column_slices(text, len(table.columns))
    for header, heading, column, lines in zip(headers, shown, cells, slices):
        joined = _squash("".join(lines))
        words = {word for line in lines for word in line.split()}
        for value in [*heading, *column]:
            assert _squash(value) in joined, f"{value!r} missing from column {header!r}:\n{text}"
            if header not in may_fold:
                for word in value.split():
                    assert word in words, f"{word!r} of {value!r} broken in column {header!r}:\n{text}"
    return text


# ---------------------------------------------------------------- fabricated bench records

def _stats(p50: float) -> dict:
    return {"n": 200, "p50_ms": p50, "p90_ms": p50 * 1.13, "p99_ms": p50 * 1.41, "mean_ms": p50 * 1.02,
            "std_ms": 0.07 * p50, "min_ms": p50 * 0.9, "max_ms": p50 * 1.6}


def _cell(name: str, branch: str, batch: int, p50: float) -> dict:
    return {"variant": name, "branch": branch, "batch": batch, "runs": 200, "encoder_ms": _stats(p50),
            "h2d_ms": _stats(0.183), "d2h_ms": _stats(0.021), "total_ms": _stats(p50 + 0.2),
            "per_item_p50_ms": p50 / batch, "throughput_per_s": batch / (p50 / 1e3),
            "memory": {"peak_rss_mb": 3187.4, "gpu_device_used_mb": 2045.0}, "nonfinite_runs": 0}


def _variant(name: str, scale: float, batches: tuple[int, ...], jetson: bool) -> dict:
    backend, precision = name.split()
    cells = [_cell(name, branch, n, scale * base * (1 + 0.6 * (n - 1)))
             for branch, base in (("ground", 23.7), ("satellite", 17.9)) for n in batches]
    variant = {"name": name, "backend": backend, "precision": precision, "cells": cells, "load_rss_mb": 410.0,
               "accuracy": {"R@1": 31.0 + scale, "R@5": 62.0, "R@10": 75.0, "R@1%": 31.0, "mAP": 40.2,
                            "cosine_vs_first": {"ground": {"min": 0.99871, "mean": 0.9995},
                                                "satellite": {"min": 0.99812, "mean": 0.999}}}}
    if jetson:
        variant["power"] = [{"branch": branch, "batch": batches[0], "seconds": 5.0, "items": 211,
                             "summary": {"mean_power_w": 14.37, "energy_per_query_j": 0.3412, "peak_ram_mb": 5123.0,
                                         "mean_gpu_load_percent": 87.25}} for branch in ("ground", "satellite")]
    return variant


def _per_image(p50: float) -> dict:
    return {"decode": _stats(p50), "resize": _stats(p50 / 4), "normalize": _stats(p50 / 3),
            "total": _stats(p50 * 1.6)}


def bench_record(device: str) -> dict:
    """A record as `cvgl-edge bench` writes it: a CPU run (slow, big numbers) or a Jetson run
    (four variants, three batch sizes, power, the published anchors and roofline estimates)."""
    jetson = device == "jetson"
    batches = (1, 8, 32) if jetson else (1, 4)
    names = ("torch fp32", "onnxruntime fp32", "tensorrt fp16", "tensorrt int8") if jetson else \
        ("torch fp32", "onnxruntime int8")
    scales = (1.0, 1.3, 0.21, 0.12) if jetson else (40.0, 22.0)  # CPU: seconds per batch of 4
    record = {
        "schema": SCHEMA, "command": f"cvgl-edge bench runs/train/best.pt --device {device}",
        "date": "2026-11-22T00:00:00",
        "machine": {"cpu_model": "ARMv8 Processor rev 1 (v8l)", "usable_cores": 6, "os": "Linux", "python": "3.10",
                    "versions": {"torch": "2.5.0"}, "load_average_before": [0.5, 0.4, 0.3],
                    "load_average_after": [1.2, 0.6, 0.4]},
        "model": {"name": "geossm-small", "checkpoint": "runs/train/best.pt", "random_weights": not jetson,
                  "model_sha256": "ab" * 32, "input_sizes": {"ground": [128, 512], "satellite": [256, 256]},
                  "descriptor_dim": 512},
        "settings": {"device": device, "batch_sizes": list(batches), "timing": "interleaved"},
        "cost": {"params_total": 35_240_000, "flop_convention": "2 FLOPs per multiply-add",
                 "branches": {"ground": {"params": 17_620_000, "flops": 11_020_000_000},
                              "satellite": {"params": 17_620_000, "flops": 10_950_000_000}}},
        "preprocess": {"ground": {"frame_hw": [832, 1664], "input_hw": [128, 512], "per_image": _per_image(12.41)},
                       "satellite": {"frame_hw": [750, 750], "input_hw": [256, 256], "per_image": _per_image(6.2)}},
        "variants": [_variant(name, scale, batches, jetson) for name, scale in zip(names, scales)],
        "skipped": [] if jetson else [{"variant": "tensorrt fp32", "reason": "TensorRT engines need a CUDA GPU"}],
        "accuracy_set": {"data": "cvusa", "split": "val", "pairs": 1000, "polar": False, "chance_r1": 0.1},
        "anchors": anchor_rows(),
        "estimates": [{"kind": "estimate (roofline)", "device": dev, "precision": prec, "view": view,
                       "ms_per_query": 12.3, "bound": "compute"}
                      for dev in ("orin-nano", "agx-orin") for prec in ("fp32", "int8")
                      for view in ("ground", "satellite")],
    }
    summarize(record)
    return record


# ---------------------------------------------------------------- bench

@pytest.mark.parametrize("device", ["cpu", "jetson"])
def test_bench_default_tables_fit_80_columns(device):
    record = bench_record(device)
    tables = rich_tables(record)
    titles = " ".join(str(t.title) for t in tables)
    for part in ("encoder latency per batch", "pre-processing", "accuracy on 1000 cvusa val pairs",
                 "published figures", "ESTIMATES"):
        assert part in titles
    assert ("power (tegrastats)" in titles) == (device == "jetson")
    for table in tables:
        assert_fits(table)
    latency = next(t for t in tables if str(t.title).startswith("encoder latency"))
    assert [str(c.header) for c in latency.columns] == ["variant", "branch", "batch", "p50", "p90", "items/s",
                                                        "x first"]


def test_bench_default_tables_show_the_headline_figures():
    record = bench_record("jetson")
    text = "".join(render(t) for t in rich_tables(record))
    fp16 = "│ tensorrt fp16    │ ground    │     1 │ 4.98 │ 5.62 │     201 │    4.76 │"  # p50, p90, items/s, x first
    for figure in (fp16, "35.2 M params", "11.0 GFLOPs/query", "GeoDTR (paper)", "420.64", "0.99871 / 0.99812",
                   "832x1664", "14.4", "0.341", "orin-nano", "--wide"):
        assert figure in text, figure


@pytest.mark.parametrize("device", ["cpu", "jetson"])
def test_bench_wide_tables_have_every_column_and_fold_rather_than_cut(device):
    record = bench_record(device)
    wide = rich_tables(record, wide=True)
    assert [str(c.header) for c in wide[0].columns] == list(SUMMARY_COLUMNS)
    assert [str(c.header) for c in wide[1].columns] == list(CELL_COLUMNS)
    for table in wide:
        assert_fits(table, width=160)  # a wide terminal: every cell on one line, whole
        assert_fits(table, may_fold=tuple(str(c.header) for c in table.columns))  # 80: folded, never '…'


def test_bench_markdown_keeps_every_column():
    text = markdown(bench_record("jetson"))
    assert "| " + " | ".join(SUMMARY_COLUMNS) + " |" in text
    assert "| " + " | ".join(CELL_COLUMNS) + " |" in text
    assert "| tensorrt int8 | ground | 1 | 200 |" in text and "GeoDTR (paper)" in text


def test_the_old_latency_table_would_fail():
    """The check itself: the 13-column table the issue reported is caught."""
    old = Table(title="encoder latency per batch")
    for column in CELL_COLUMNS:
        old.add_column(column, justify="right")
    old.add_row("onnxruntime int8", "satellite", "32", "200", "1,234", "1,400", "1,700", "1,250±86.4",
                "38.6", "25.9", "0.204", "8.33", "3,187")
    with pytest.raises(AssertionError):
        assert_fits(old)


# ---------------------------------------------------------------- eval / train / demo metrics

@pytest.mark.parametrize("directions, extra", [
    (("ground->satellite", "satellite->ground"), {}),
    (("drone->satellite", "satellite->drone"), {}),
    (("ground->satellite",), {"hit_rate": 67.25}),  # VIGOR
])
def test_metrics_tables_fit(directions, extra):
    from cvgl_edge.eval.report import metrics_table

    metrics = {d: {"R@1": 95.83, "R@5": 99.12, "R@10": 99.61, "R@1%": 99.9, "mAP": 100.0, **extra}
               for d in directions}
    title = ("runs/train/best.pt on university1652:/data/University-Release (test, 37855 queries) with "
             "onnxruntime (CPUExecutionProvider)")
    text = assert_fits(metrics_table(metrics, title))
    assert "100.00" in text and ("hit rate" in text) == bool(extra)


def test_distil_comparison_table_fits():
    from cvgl_edge.train.distil_report import comparison_table

    rows = [{"model": "teacher (geossm-small)", "R@1": 91.25, "R@5": 97.5, "R@1%": 99.0, "params": 35_240_000,
             "gflops_per_query": 11.02, "cpu_ms_per_query": 412.3},
            {"model": "student (geossm-nano, distilled)", "R@1": 84.5, "R@5": 95.25, "R@1%": 98.5,
             "params": 2_410_000, "gflops_per_query": 0.812, "cpu_ms_per_query": 38.7}]
    assert_fits(comparison_table(rows, "teacher vs distilled student after 3000 steps (val, 2000 pairs)"))


# ---------------------------------------------------------------- export, verify, plugin

def _verify_record(precision: str) -> dict:
    from dataclasses import asdict

    from cvgl_edge.export.verify import THRESHOLDS

    recall = {"R@1": 92.5, "R@5": 98.0, "R@1%": 99.5}
    return {"artifact": "exports/geossm-small-satellite.int8.onnx", "precision": precision, "view": "satellite",
            "runtime": "onnxruntime (CPUExecutionProvider)", "pairs": 200, "data": "synthetic-drone:2000",
            "split": "val", "direction": "ground->satellite",
            "descriptors": {"cosine_min": 0.9812345, "cosine_mean": 0.9954321, "max_abs_err": 3.2e-2,
                            "polygraphy": {"passed": False, "atol": 5e-2, "rtol": 5e-1}},
            "recall": {"pytorch": recall, "artifact": {k: v - 1.5 for k, v in recall.items()},
                       "drop": {k: 1.5 for k in recall}},
            "thresholds": asdict(THRESHOLDS[precision])}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_verify_table_fits(precision):
    from cvgl_edge.export.verify import verify_table

    text = assert_fits(verify_table(_verify_record(precision)))
    assert "0.9812345" in text and "-1.50" in text


def test_plugin_tables_fit(tmp_path, monkeypatch):
    from cvgl_edge.export.plugin.cache import PluginBuild, build_folder, plugins_dir
    from cvgl_edge.cli.plugin import _table

    monkeypatch.setenv("CVGL_EDGE_CACHE", str(tmp_path / "home" / "jetson" / ".cache" / "cvgl-edge"))

    def build(library: str) -> PluginBuild:
        return PluginBuild(library=library, tensorrt_version="10.3.0.30", tensorrt_include="/usr/include",
                           architectures=(87,), cuda_version="12.6", sources_sha256="ab" * 32,
                           cvgl_edge_version="0.1.0", built_at="2026-11-22T10:04:31+00:00")

    cached = build(str(build_folder("10.3.0.30", (87,)) / "libcvgl_trt_plugins.so"))
    text = assert_fits(_table([cached], f"plugins in {plugins_dir()}", under=plugins_dir()))
    assert "trt10.3-sm87/libcvgl_trt_plugins.so" in text and "2026-11-22" in text
    elsewhere = build("/opt/nvidia/custom-builds/tensorrt-10.3/plugins/selective-scan/libcvgl_trt_plugins.so")
    assert_fits(_table([elsewhere, cached], "plugin built"), may_fold=("library",))


# ---------------------------------------------------------------- models, doctor, autopilot-params

def test_models_table_fits():
    from cvgl_edge.cli.info import models_table
    from cvgl_edge.models import list_models

    rows = [{"name": name, "ground_size": [128, 512], "satellite_size": [256, 256], "descriptor_dim": 1024,
             "params_m": 123.45} for name in list_models()]
    text = assert_fits(models_table(rows))
    assert "vimgeo-small" in text and "128x512" in text


def test_doctor_table_fits():
    from cvgl_edge.doctor import environment_report, environment_table

    report = environment_report()
    report["platform"] = "Linux-5.15.148-tegra-aarch64-with-glibc2.35"
    report["gpu"] = "Orin (nvgpu)"
    report["tensorrt plugin (cvgl-edge plugin build)"] = (
        "TensorRT 10.3 sm_87: /home/jetson/.cache/cvgl-edge/plugins/trt10.3-sm87/libcvgl_trt_plugins.so; "
        "TensorRT 8.6 sm_87: /home/jetson/.cache/cvgl-edge/plugins/trt8.6-sm87/libcvgl_trt_plugins.so")
    assert_fits(environment_table(report), may_fold=("entry", "value"))


@pytest.mark.parametrize("autopilot, messages", [
    ("ardupilot", "gps_input"), ("ardupilot", "vision_position_estimate,odometry"), ("px4", "hil_gps"),
    ("px4", "odometry"),
])
def test_autopilot_params_table_fits(autopilot, messages):
    from cvgl_edge.localize.autopilot import parameters_for, parse_messages, profile
    from cvgl_edge.cli.localize import autopilot_params_table

    chosen = profile(autopilot)
    chosen_messages = parse_messages(messages, chosen)
    params = parameters_for(chosen, chosen_messages)
    assert params
    assert_fits(autopilot_params_table(chosen.name, chosen_messages, params))


# ---------------------------------------------------------------- --help

COMMAND_GROUPS = ("train", "distil", "eval", "demo", "export", "verify", "models", "doctor", "bench", "localize",
                  "autopilot-params", "index", "plugin")
HELP_PAGES = [[], *([c] for c in COMMAND_GROUPS), ["index", "build"], ["index", "info"], ["index", "set"],
              ["index", "mission"], ["plugin", "build"], ["plugin", "list"]]


def _help(args: list[str]) -> str:
    from cvgl_edge.cli import app

    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(WIDTH)}, terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def _command_list(text: str) -> list[str]:
    """The lines of the help's command list (click's 'Commands:' or a rich 'Commands' panel)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^\s*(╭─ )?Commands\b", line)), None)
    listing: list[str] = []
    for line in [] if start is None else lines[start + 1:]:
        if not line.strip() or line.startswith("╰"):
            break
        listing.append(line.strip("│").rstrip())
    return listing


@pytest.mark.parametrize("args", HELP_PAGES, ids=lambda a: " ".join(a) or "top")
def test_help_fits_80_columns(args):
    text = _help(args)
    assert ELLIPSIS not in text, text
    assert max(len(line) for line in text.splitlines()) <= WIDTH, text
    listing = _command_list(text)
    assert bool(listing) == (args in ([], ["index"], ["plugin"])), text
    indent = min((len(line) - len(line.lstrip()) for line in listing), default=0)
    for line in listing:  # one line per command (none wrapped onto a second), its help never cut short
        assert not line.endswith("..."), line
        assert len(line) - len(line.lstrip()) == indent and re.match(r"^ *\S+ +\S", line), line


def test_top_level_help_names_todays_commands():
    text = _help([])
    listed = [line.split()[0] for line in _command_list(text)]
    assert sorted(listed) == sorted(COMMAND_GROUPS)
    about = text.split("Options", 1)[0].lower()
    for words in ("train", "distil", "evaluate", "export", "verify", "benchmark", "index", "localise",
                  "tensorrt", "plugin", "doctor", "demo"):
        assert words in about, words
    assert "and check the environment." not in about  # the old one-liner


def test_bench_help_offers_wide():
    text = _help(["bench"])
    assert "--wide" in text and "80 columns" in text
