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
    if model.get("exported"):
        return f"weights of the exported files in {model['exported']}"
    if model.get("random_weights"):
        return "random (seeded preset) weights: R@1 is near chance and says nothing about the method"
    return f"trained weights from {model.get('checkpoint')}"


SUMMARY_COLUMNS = ("variant", "Params M", "GFLOPs/query", "ms/query p50 / p90 / p99", "queries/s",
                   "ms/tile p50", "peak RSS MB", "R@1 %", "x first")


def _triple(row: dict[str, Any], prefix: str) -> str:
    values = [row.get(f"{prefix}_{q}_ms") for q in ("p50", "p90", "p99")]
    return " / ".join(_fmt(v) for v in values) if values[0] is not None else "-"


def _cost_cell(record: dict[str, Any], value: Any, key: str) -> str:
    """A Params / FLOPs figure; 'unknown' where the record says it could not be known (exported files)."""
    if value is None and key in ((record.get("cost") or {}).get("unknown") or ()):
        return "unknown"
    return _fmt(value)


def summary_rows(record: dict[str, Any]) -> list[list[str]]:
    """One row per variant: the headline figures (per query = ground, per tile = satellite)."""
    return [[row["variant"], _cost_cell(record, row.get("params_total_m"), "params"),
             _cost_cell(record, row.get("gflops_per_query"), "flops"), _triple(row, "query"),
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


ESTIMATE_COLUMNS = ("device", "precision", "branch", "estimate ms/item", "scans ms", "old scans ms", "bound",
                    "label")


def estimate_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = []
    for e in record.get("estimates") or []:
        ms = next((e[k] for k in ("ms_per_query", "ms", "latency_ms") if e.get(k) is not None), None)
        rows.append([str(e.get("device")), str(e.get("precision")), str(e.get("view") or e.get("branch")), _fmt(ms),
                     _fmt(e.get("scan_ms")), _fmt(e.get("scan_ms_old")), str(e.get("bound", "-")),
                     str(e.get("kind", "estimate"))])
    return rows


#: Columns of names (left-aligned, kept on one line); the others hold figures (right-aligned).
TEXT_COLUMNS = {"variant", "published", "branch", "device", "precision", "bound", "label", "frame", "input"}


def _table(title: str, columns: tuple[str, ...] | list[str], rows: list[list[str]],
           caption: str | None = None, fold: bool = False) -> Table:
    """Names left on one line, figures right. ``fold`` (the --wide tables, which need more than 80
    columns): every cell may break onto a second line rather than end in '…'."""
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, column in enumerate(columns):
        text = i == 0 or column in TEXT_COLUMNS
        table.add_column(column, justify="left" if text else "right", no_wrap=text and not fold,
                         overflow="fold" if fold or not text else "ellipsis")
    for row in rows:
        table.add_row(*row)
    return table


def _pick(columns: tuple[str, ...], rows: list[list[str]],
          keep: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """The ``keep`` columns of a full table (full name -> short header), in ``keep``'s order."""
    index = [columns.index(name) for name in keep]
    return list(keep.values()), [[row[i] for i in index] for row in rows]


#: The default screen tables read in an 80-column terminal (an SSH session on a Jetson): the
#: headline columns only, units in the titles. ``--wide``, the markdown and the JSON have every figure.
COMPACT_SUMMARY_COLUMNS = ("variant", "query p50", "p90", "queries/s", "tile p50", "R@1", "x first")
COMPACT_ANCHOR_COLUMNS = ("published", "Params M", "GFLOPs", "ms/query", "R@1 %")
COMPACT_CELLS = {"variant": "variant", "branch": "branch", "batch": "batch", "p50 ms": "p50", "p90 ms": "p90",
                 "items/s": "items/s", "x first": "x first"}
COMPACT_PREPROCESS_COLUMNS = ("branch", "frame", "input", "decode", "resize", "norm.", "total p50", "total p90")
COMPACT_POWER = {"variant": "variant", "branch": "branch", "batch": "batch", "mean module power W": "power W",
                 "J/item": "J/item", "peak RAM MB": "RAM MB", "GPU load %": "GPU %"}
COMPACT_ESTIMATES = {"device": "device", "precision": "precision", "branch": "branch",
                     "estimate ms/item": "ms/item", "scans ms": "scans ms", "bound": "bound"}


def compact_summary_rows(record: dict[str, Any]) -> list[list[str]]:
    """The summary's measured rows: ms per query (p50, p90) and per tile, best queries/s, R@1, speed-up."""
    return [[row["variant"], _fmt(row.get("query_p50_ms")), _fmt(row.get("query_p90_ms")),
             _fmt(row.get("queries_per_s")), _fmt(row.get("tile_p50_ms")), _fmt(row.get("R@1"), 1),
             _fmt(row.get("query_speedup_vs_first"), 2)] for row in record["summary"]]


def compact_preprocess_rows(record: dict[str, Any]) -> list[list[str]]:
    """As ``preprocess_rows``, the frame without its ' JPEG' (the title says so)."""
    return [[row[0], row[1].removesuffix(" JPEG"), *row[2:]] for row in preprocess_rows(record)]


def _cost_note(record: dict[str, Any]) -> str:
    """'2.00 M params, 3.00 GFLOPs/query' (the same for every variant; from the summary)."""
    row = (record.get("summary") or [{}])[0]
    unknown = (record.get("cost") or {}).get("unknown") or ()
    parts = []
    if row.get("params_total_m") is not None:
        parts.append(f"{_fmt(row['params_total_m'])} M params")
    if row.get("gflops_per_query") is not None:
        parts.append(f"{_fmt(row['gflops_per_query'])} GFLOPs/query")
    missing = [name for key, name in (("params", "Params"), ("flops", "FLOPs")) if key in unknown]
    if missing:
        parts.append(f"{' and '.join(missing)} unknown: not recorded in the exported files")
    return ", ".join(parts)


def _accuracy_title(record: dict[str, Any]) -> str:
    a = record["accuracy_set"]
    return (f"accuracy on {a['pairs']} {a['data']} {a['split']} pairs, ground->satellite "
            f"(chance R@1 {a['chance_r1']:.1f}%)")


def rich_tables(record: dict[str, Any], wide: bool = False) -> list[Table]:
    """Summary, published figures, per-cell latency, pre-processing, accuracy, power, estimates.

    Default: a few columns per table, readable at 80 columns. ``wide``: every column, as the
    markdown report has them (needs about 150 columns; narrower, cells fold rather than truncate).
    """
    if wide:
        return _wide_tables(record)
    model, settings = record["model"], record["settings"]
    cost = _cost_note(record)
    tables = [_table(
        f"{model['name']} on {settings['device']}" + (f" ({cost})" if cost else "") + ": ms per query "
        f"(ground branch) and per tile (satellite branch) at batch {settings['batch_sizes'][0]}; queries/s at "
        "the best batch; R@1 in %; x first = speed-up against the first variant",
        COMPACT_SUMMARY_COLUMNS, compact_summary_rows(record), caption=f"{weights_note(record)}.")]
    anchors = anchor_rows(record)
    if anchors:
        keep = [0, 1, 2, 3, 7]  # method, Params M, GFLOPs, ms/query, R@1 % of the summary's columns
        tables.append(_table("published figures, for scale only", COMPACT_ANCHOR_COLUMNS,
                             [[row[i] for i in keep] for row in anchors], caption=anchor_note(record)))
    tables.append(_table(
        "encoder latency per batch, ms (interleaved runs); items/s = throughput; x first = speed-up "
        "against the first variant's p50",
        *_pick(CELL_COLUMNS, cell_rows(record), COMPACT_CELLS),
        caption="p99, mean±std, ms/item, copies and memory: --wide, --markdown or --json"))
    if record.get("preprocess"):
        tables.append(_table("pre-processing per image, ms (host, before the encoder): JPEG frame -> input; "
                             "decode, resize and norm. (normalize) at p50", COMPACT_PREPROCESS_COLUMNS,
                             compact_preprocess_rows(record)))
    if accuracy_rows(record):
        tables.append(_table(_accuracy_title(record), ACCURACY_COLUMNS, accuracy_rows(record)))
    if power_rows(record):
        tables.append(_table("power (tegrastats): mean module power, energy per item, peak RAM, mean GPU load",
                             *_pick(POWER_COLUMNS, power_rows(record), COMPACT_POWER)))
    if estimate_rows(record):
        tables.append(_table("ESTIMATES (roofline, not measured), ms per item",
                             *_pick(ESTIMATE_COLUMNS, estimate_rows(record), COMPACT_ESTIMATES)))
    return tables


def _wide_tables(record: dict[str, Any]) -> list[Table]:
    """Every column of every table, as the markdown report has them (``cvgl-edge bench --wide``)."""
    model, settings = record["model"], record["settings"]
    summary = _table(
        f"{model['name']} on {settings['device']}: per query = ground branch, per tile = satellite branch "
        f"(batch {settings['batch_sizes'][0]}); x first = speedup against the first variant",
        SUMMARY_COLUMNS, summary_rows(record) + anchor_rows(record),
        caption=f"{weights_note(record)}. {anchor_note(record)}", fold=True,
    )
    tables = [summary, _table("encoder latency per batch (interleaved runs; speedup = first variant's p50 / this p50)",
                              CELL_COLUMNS, cell_rows(record), fold=True)]
    if record.get("preprocess"):
        tables.append(_table("pre-processing per image (host, before the encoder)", PREPROCESS_COLUMNS,
                             preprocess_rows(record), fold=True))
    if accuracy_rows(record):
        tables.append(_table(_accuracy_title(record), ACCURACY_COLUMNS, accuracy_rows(record), fold=True))
    if power_rows(record):
        tables.append(_table("power (tegrastats)", POWER_COLUMNS, power_rows(record), fold=True))
    if estimate_rows(record):
        tables.append(_table("ESTIMATES (roofline, not measured)", ESTIMATE_COLUMNS, estimate_rows(record),
                             fold=True))
    return tables


def _md_table(columns: list[str] | tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines + [""]


def markdown(record: dict[str, Any], plot_name: str | None = None) -> str:
    """The record as a markdown page (results file for benchmarks/results/)."""
    model, settings, machine = record["model"], record["settings"], record["machine"]
    cost = record.get("cost") or {}
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
        f"- FLOPs: {cost.get('flop_convention') or cost.get('note') or 'not counted'}",
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
