"""Human-readable tables for retrieval metrics."""

from __future__ import annotations

from rich.table import Table

SHOWN_KEYS = ("R@1", "R@5", "R@10", "R@1%", "mAP")


def metrics_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """One row per retrieval direction, one column per metric (percent)."""
    table = Table(title=title)
    table.add_column("direction")
    for key in SHOWN_KEYS:
        table.add_column(key, justify="right")
    for direction, values in metrics.items():
        table.add_row(direction, *(f"{values[key]:.2f}" for key in SHOWN_KEYS))
    return table
