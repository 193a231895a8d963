"""Learning-rate schedule: linear warm-up then cosine decay to a floor."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, floor: float) -> float:
    """Multiplier of the base lr at ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, floor: float = 0.01
) -> LambdaLR:
    """LambdaLR over ``warmup_cosine_factor``; stepped once per optimiser step."""
    return LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, total_steps, floor)
    )
