"""PNG plot of a benchmark record: latency and throughput against batch size.

One line per variant and branch; left panel p50 latency per batch (with the p90 as the
upper whisker), right panel throughput (items/s). Drawn with matplotlib's Agg backend
(no display needed) and written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvgl_edge.io import atomic_write


def plot_record(record: dict[str, Any], path: str | Path) -> Path:
    """Write the latency/throughput figure of ``record`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), dpi=110)
    latency_ax, throughput_ax = figure.subplots(1, 2)
    styles = {"ground": "-", "satellite": "--"}
    for index, variant in enumerate(record["variants"]):
        colour = f"C{index % 10}"
        for branch in ("ground", "satellite"):
            cells = sorted((c for c in variant["cells"] if c["branch"] == branch), key=lambda c: c["batch"])
            if not cells:
                continue
            batches = [c["batch"] for c in cells]
            p50 = [c["encoder_ms"]["p50_ms"] for c in cells]
            p90 = [c["encoder_ms"]["p90_ms"] for c in cells]
            label = f"{variant['name']} {branch}"
            latency_ax.errorbar(batches, p50, yerr=[[0] * len(p50), [b - a for a, b in zip(p50, p90)]],
                                color=colour, linestyle=styles[branch], marker="o", capsize=3, label=label)
            throughput_ax.plot(batches, [c["throughput_per_s"] for c in cells], color=colour,
                               linestyle=styles[branch], marker="o", label=label)
    for ax, title, unit in ((latency_ax, "encoder latency per batch (p50, whisker p90)", "ms"),
                            (throughput_ax, "throughput (batch / p50)", "items / s")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    model = record.get("model", {})
    machine = record.get("machine", {})
    figure.suptitle(f"{model.get('name', '?')} on {record['settings']['device']} "
                    f"({machine.get('cpu_model') or machine.get('gpu') or '?'}), {record.get('date', '')}", fontsize=10)
    figure.tight_layout()
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
