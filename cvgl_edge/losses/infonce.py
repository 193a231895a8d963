"""Symmetric InfoNCE with label smoothing and a learnable temperature (Sample4Geo style).

logits = scale * a @ b^T; loss = (CE(logits, i) + CE(logits^T, i)) / 2. The scale is
learned as log(scale), initialised to log(1/0.07) and clamped at 100 (as CLIP does) so
it cannot grow without bound.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.losses._checks import similarity_matrix


class InfoNCELoss(nn.Module):
    """Symmetric cross-entropy over in-batch pairs; ``logit_scale`` is a parameter."""

    def __init__(self, label_smoothing: float = 0.1, init_temperature: float = 0.07,
                 max_scale: float = 100.0, learnable: bool = True) -> None:
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.max_scale = float(max_scale)
        init = torch.tensor(math.log(1.0 / init_temperature))
        if learnable:
            self.log_scale = nn.Parameter(init)
        else:
            self.register_buffer("log_scale", init)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = self.scale * similarity_matrix(a, b)
        labels = torch.arange(logits.shape[0], device=logits.device)
        ls = self.label_smoothing
        return 0.5 * (F.cross_entropy(logits, labels, label_smoothing=ls)
                      + F.cross_entropy(logits.t(), labels, label_smoothing=ls))

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, max_scale={self.max_scale}"
