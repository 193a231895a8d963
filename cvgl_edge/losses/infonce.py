"""Symmetric InfoNCE with label smoothing and a learnable temperature (Sample4Geo style).

Input contract: two aligned (batch, dim) descriptor batches, row i of each one place; any
scale (they are L2-normalised here, as Sample4Geo's loss does, which leaves the models'
already-normalised descriptors and their gradients unchanged).
logits = scale * a @ b^T; loss = (CE(logits, i) + CE(logits^T, i)) / 2 with label smoothing.
The scale is learned as log(scale), initialised to log(1/0.07) = 14.3. It is clamped at
``max_scale`` = 100 (temperature 0.01), as CLIP does, so that it cannot grow without bound on
easy batches; Sample4Geo does not clamp: ``max_scale=0`` (``--loss-param max_scale=0``)
reproduces that. In Sample4Geo's runs the scale stays far below 100, so the clamp does not
change their recipe.
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
        scale = self.log_scale.exp()
        return scale.clamp(max=self.max_scale) if self.max_scale > 0 else scale

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = self.scale * similarity_matrix(F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1))
        labels = torch.arange(logits.shape[0], device=logits.device)
        ls = self.label_smoothing
        return 0.5 * (F.cross_entropy(logits, labels, label_smoothing=ls)
                      + F.cross_entropy(logits.t(), labels, label_smoothing=ls))

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, max_scale={self.max_scale}"
