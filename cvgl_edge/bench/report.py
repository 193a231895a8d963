"""Human-readable views of a benchmark record: rich tables on screen and markdown for the docs.

Both render the same record (record.py) that the JSON holds; nothing is measured here.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _fmt(value: Any, digits: int | None = None) -> str:
    """Numbers with about three significant digits (or fixed ``digits``); '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if digits is not None:
        return f"{value:,.{digits}f}"
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value) and magnitude >= 10:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def weights_note(record: dict[str, Any]) -> str:
    model = record["model"]
    if model.get("random_weights"):
        return "random (seeded preset) weights: R@1 is near chance and says nothing about the method"
    return f"trained weights from {model.get('checkpoint')}"


SUMMARY_COLUMNS = ("variant", "Params M", "GFLOPs/query", "ms/query p50 / p90 / p99", "queries/s",
                   "ms/tile p50", "peak RSS MB", "R@1 %", "x first")


def _triple(row: dict[str, Any], prefix: str) -> str:
    values = [row.get(f"{prefix}_{q}_ms") for q in ("p50", "p90", "p99")]
    return " / ".join(_fmt(v) for v in values) if values[0] is not None else "-"


def summary_rows(record: dict[str, Any]) -> list[list[str]]:
    """One row per variant: the headline figures (per query = ground, per tile = satellite)."""
    return [[row["variant"], _fmt(row.get("params_total_m")), _fmt(row.get("gflops_per_query")), _triple(row, "query"),
             _fmt(row.get("queries_per_s")), _fmt(row.get("tile_p50_ms")), _fmt(row.get("peak_rss_mb"), 0),
             _fmt(row.get("R@1"), 1), _fmt(row.get("query_speedup_vs_first"), 2)] for row in record["summary"]]


def _anchor_name(anchor: dict[str, Any]) -> str:
    return f"{str(anchor.get('method', '?')).split(' (')[0]} (paper)"


def anchor_rows(record: dict[str, Any]) -> list[list[str]]:
    """Published figures in the summary's columns (what a paper did not report: '-')."""
    rows = []
    for anchor in record.get("anchors") or []:
        ms = anchor.get("ms_per_query")
        published = [anchor.get("params_m"), anchor.get("gflops"), ms]  # verbatim, as the paper prints them
        rows.append([_anchor_name(anchor), *("-" if v is None else str(v) for v in published),
                     "-", "-", "-", _fmt(_anchor_r1(anchor), 1), "-"])
    return rows


def anchor_note(record: dict[str, Any]) -> str:
    """Which hardware each published row was measured on (grouped)."""
    groups: dict[str, list[str]] = {}
    for anchor in record.get("anchors") or []:
        groups.setdefault(anchor.get("hardware") or "hardware not stated", []).append(_anchor_name(anchor)[:-8])
    parts = [f"{', '.join(names)} on {hardware}" for hardware, names in groups.items()]
    if not parts:
        return ""
    return "Paper rows: " + "; ".join(parts) + " (published figures, real datasets; sources in the JSON)"


def _anchor_r1(anchor: dict[str, Any]) -> Any:
    for key in ("r1", "R@1", "recall_at_1"):
        if anchor.get(key) is not None:
            return anchor[key]
    return None


CELL_COLUMNS = ("variant", "branch", "batch", "runs", "p50 ms", "p90 ms", "p99 ms", "mean±std ms",
                "ms/item", "items/s", "copies ms", "x first", "peak RSS MB")


def cell_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for variant in record["variants"]:
        for c in variant["cells"]:
            e = c["encoder_ms"]
            copies = c["h2d_ms"]["p50_ms"] + c["d2h_ms"]["p50_ms"]
            rows.append([variant["name"], c["branch"], str(c["batch"]), str(c["runs"]), _fmt(e["p50_ms"]),
                         _fmt(e["p90_ms"]), _fmt(e["p99_ms"]), f"{_fmt(e['mean_ms'])}±{_fmt(e['std_ms'])}",
                         _fmt(c["per_item_p50_ms"]), _fmt(c["throughput_per_s"]), _fmt(copies),
                         _fmt(c.get("speedup_vs_first"), 2), _fmt(c["memory"].get("peak_rss_mb"), 0)])
    return rows


POWER_COLUMNS = ("variant", "branch", "batch", "mean module power W", "J/item", "peak RAM MB", "GPU load %")


def power_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for variant in record["variants"]:
        for entry in variant.get("power") or []:
            s = entry.get("summary") or {}
            rows.append([variant["name"], entry["branch"], str(entry["batch"]),
                         _fmt(s.get("mean_power_w")), _fmt(s.get("energy_per_query_j")),
                         _fmt(s.get("peak_ram_mb"), 0), _fmt(s.get("mean_gpu_load_percent"), 1)])
    return rows


PREPROCESS_COLUMNS = ("branch", "frame", "input", "decode ms", "resize ms", "normalize ms", "total p50", "total p90")


def preprocess_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for view, p in (record.get("preprocess") or {}).items():
        per = p["per_image"]
        rows.append([view, "x".join(map(str, p["frame_hw"])) + " JPEG", "x".join(map(str, p["input_hw"])),
                     _fmt(per["decode"]["p50_ms"]), _fmt(per["resize"]["p50_ms"]), _fmt(per["normalize"]["p50_ms"]),
                     _fmt(per["total"]["p50_ms"]), _fmt(per["total"]["p90_ms"])])
    return rows


ACCURACY_COLUMNS = ("variant", "R@1", "R@5", "R@10", "R@1%", "cosine vs first (min ground / satellite)")


def accuracy_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for variant in record["variants"]:
        a = variant.get("accuracy")
        if not a:
            continue
        cos = a.get("cosine_vs_first")
        agreement = f"{cos['ground']['min']:.5f} / {cos['satellite']['min']:.5f}" if cos else "(reference)"
        rows.append([variant["name"], *(_fmt(a.get(k), 1) for k in ("R@1", "R@5", "R@10", "R@1%")), agreement])
    return rows


ESTIMATE_COLUMNS = ("device", "precision", "branch", "estimate ms/item", "bound", "label")


def estimate_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for e in record.get("estimates") or []:
        ms = next((e[k] for k in ("ms_per_query", "ms", "latency_ms") if e.get(k) is not None), None)
        rows.append([str(e.get("device")), str(e.get("precision")), str(e.get("view") or e.get("branch")), _fmt(ms),
                     str(e.get("bound", "-")), str(e.get("kind", "estimate"))])
    return rows


def _table(title: str, columns: tuple[str, ...] | list[str], rows: list[list[str]],
           caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    return table


def rich_tables(record: dict[str, Any]) -> list[Table]:
    """Summary (+ published anchors), per-cell latency, pre-processing, accuracy, power, estimates."""
    model, settings = record["model"], record["settings"]
    summary = _table(
        f"{model['name']} on {settings['device']}: per query = ground branch, per tile = satellite branch "
        f"(batch {settings['batch_sizes'][0]}); x first = speedup against the first variant",
        SUMMARY_COLUMNS, summary_rows(record) + anchor_rows(record),
        caption=f"{weights_note(record)}. {anchor_note(record)}",
    )
    tables = [summary, _table("encoder latency per batch (interleaved runs; speedup = first variant's p50 / this p50)",
                              CELL_COLUMNS, cell_rows(record))]
    if record.get("preprocess"):
        tables.append(_table("pre-processing per image (host, before the encoder)", PREPROCESS_COLUMNS,
                             preprocess_rows(record)))
    if accuracy_rows(record):
        a = record["accuracy_set"]
        tables.append(_table(f"accuracy on {a['pairs']} {a['data']} {a['split']} pairs, ground->satellite "
                             f"(chance R@1 {a['chance_r1']:.1f}%)", ACCURACY_COLUMNS, accuracy_rows(record)))
    if power_rows(record):
        tables.append(_table("power (tegrastats)", POWER_COLUMNS, power_rows(record)))
    if estimate_rows(record):
        tables.append(_table("ESTIMATES (roofline, not measured)", ESTIMATE_COLUMNS, estimate_rows(record)))
    return tables


def _md_table(columns: list[str] | tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines + [""]


def markdown(record: dict[str, Any], plot_name: str | None = None) -> str:
    """The record as a markdown page (results file for benchmarks/results/)."""
    model, settings, machine = record["model"], record["settings"], record["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in (machine.get("versions") or {}).items())
    lines = [
        f"# cvgl-edge bench: {model['name']} on {settings['device']} ({record['date']})", "",
        f"- Command: `{record['command']}`",
        f"- Machine: {machine.get('cpu_model')}, {machine.get('usable_cores')} usable cores"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else "") + f"; {machine.get('os')}",
        f"- Versions: Python {machine.get('python')}, {versions}",
        f"- Load average (1/5/15 min) before / after: {machine.get('load_average_before')} / "
        f"{machine.get('load_average_after')} (the machine is shared: compare ratios, not absolute ms)",
        f"- Model: {model['name']}, {weights_note(record)}; weights sha256 {model['model_sha256'][:16]}...; "
        f"inputs ground {'x'.join(map(str, model['input_sizes']['ground']))}, satellite "
        f"{'x'.join(map(str, model['input_sizes']['satellite']))}; descriptor {model['descriptor_dim']}-d",
        f"- Timing: {settings['timing']}",
        f"- FLOPs: {(record.get('cost') or {}).get('flop_convention', 'not counted')}",
    ]
    for skip in record.get("skipped") or []:
        lines.append(f"- Skipped {skip['variant']}: {skip['reason']}")
    lines += ["", "## Summary", "", "Per query = ground branch, per tile = satellite branch, at the smallest batch "
              f"({settings['batch_sizes'][0]}); speedup against the first variant.", ""]
    lines += _md_table(SUMMARY_COLUMNS, summary_rows(record) + anchor_rows(record))
    if record.get("anchors"):
        lines += [anchor_note(record) + ", shown for scale only.", ""]
    lines += ["## Latency per batch", ""] + _md_table(CELL_COLUMNS, cell_rows(record))
    if plot_name:
        lines += [f"![latency and throughput against batch size]({plot_name})", ""]
    if record.get("preprocess"):
        lines += ["## Pre-processing per image", ""] + _md_table(PREPROCESS_COLUMNS, preprocess_rows(record))
    if accuracy_rows(record):
        a = record["accuracy_set"]
        lines += [f"## Accuracy ({a['pairs']} {a['data']} {a['split']} pairs, chance R@1 {a['chance_r1']:.1f}%)", ""]
        lines += _md_table(ACCURACY_COLUMNS, accuracy_rows(record))
    if power_rows(record):
        lines += ["## Power (tegrastats)", ""] + _md_table(POWER_COLUMNS, power_rows(record))
    if estimate_rows(record):
        lines += ["## Estimates (roofline, not measured)", ""] + _md_table(ESTIMATE_COLUMNS, estimate_rows(record))
    return "\n".join(lines) + "\n"
