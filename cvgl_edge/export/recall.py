"""The recall figures verify compares between PyTorch and an exported artifact.

Why recall and not only descriptor cosine: a cosine of 0.999 per descriptor can still
reorder near neighbours; R@1 on held-out pairs is what a user loses.
"""

from __future__ import annotations

import torch

from cvgl_edge.eval.metrics import cross_view_metrics

REPORTED = ("R@1", "R@5", "R@1%")
HEADLINE = "ground->satellite"


def headline_recall(ground: torch.Tensor, satellite: torch.Tensor,
                    keys: tuple[str, ...] = REPORTED) -> dict[str, float]:
    """``keys`` (default R@1, R@5, R@1%; percent, 3 decimals) of ground queries against satellite tiles."""
    metrics = cross_view_metrics(ground, satellite)[HEADLINE]
    return {k: round(metrics[k], 3) for k in keys}
