"""Human-readable tables for retrieval metrics."""

from __future__ import annotations

from rich.table import Table

SHOWN_KEYS = ("R@1", "R@5", "R@10", "R@1%", "mAP")
#: shown only when some direction has them (VIGOR's hit rate: top-1 is the positive or a semi-positive)
OPTIONAL_KEYS = {"hit_rate": "hit rate"}


def metrics_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """One row per retrieval direction, one column per metric (percent)."""
    keys = list(SHOWN_KEYS) + [k for k in OPTIONAL_KEYS if any(k in values for values in metrics.values())]
    table = Table(title=title)
    table.add_column("direction", no_wrap=True)  # 'satellite->ground' and 6-7 figure columns fit 80 columns
    for key in keys:
        table.add_column(OPTIONAL_KEYS.get(key, key), justify="right")
    for direction, values in metrics.items():
        table.add_row(direction, *(f"{values[key]:.2f}" if key in values else "-" for key in keys))
    return table
