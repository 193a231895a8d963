"""The recall figures verify compares between PyTorch and an exported artifact.

Why recall and not only descriptor cosine: a cosine of 0.999 per descriptor can still
reorder near neighbours; R@1 on held-out pairs is what a user loses.
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.eval.metrics import cross_view_metrics

REPORTED = ("R@1", "R@5", "R@1%")
HEADLINE = "ground->satellite"


def headline_recall(ground: Any, satellite: Any, keys: tuple[str, ...] = REPORTED) -> dict[str, float]:
    """``keys`` (default R@1, R@5, R@1%; percent, 3 decimals) of ground queries against satellite tiles
    (descriptors as tensors or numpy arrays: no PyTorch needed)."""
    metrics = cross_view_metrics(ground, satellite)[HEADLINE]
    return {k: round(metrics[k], 3) for k in keys}
