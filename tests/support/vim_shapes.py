"""The tensor names and shapes of an official Vim (bimamba v2) checkpoint, written out by hand.

Checked against VisionMamba's state dict (tests/models/test_vim.py) and used to fabricate
official-format checkpoints (tests/models/test_vim_weights.py).
"""

from __future__ import annotations

import math


def official_layer_shapes(d: int) -> dict[str, tuple[int, ...]]:
    """Per-layer tensors of an official Vim (bimamba v2) checkpoint at width d."""
    di, r, n = 2 * d, math.ceil(d / 16), 16
    shapes = {
        "norm.weight": (d,),
        "mixer.in_proj.weight": (2 * di, d),
        "mixer.out_proj.weight": (d, di),
    }
    for suffix, a_name, d_name in (("", "A_log", "D"), ("_b", "A_b_log", "D_b")):
        shapes.update({
            f"mixer.conv1d{suffix}.weight": (di, 1, 4),
            f"mixer.conv1d{suffix}.bias": (di,),
            f"mixer.x_proj{suffix}.weight": (r + 2 * n, di),
            f"mixer.dt_proj{suffix}.weight": (di, r),
            f"mixer.dt_proj{suffix}.bias": (di,),
            f"mixer.{a_name}": (di, n),
            f"mixer.{d_name}": (di,),
        })
    return shapes


def official_shapes(
    d: int, depth: int, grid: int = 14, cls: bool = True
) -> dict[str, tuple[int, ...]]:
    shapes = {
        "patch_embed.proj.weight": (d, 3, 16, 16),
        "patch_embed.proj.bias": (d,),
        "pos_embed": (1, grid * grid + int(cls), d),
        "norm_f.weight": (d,),
    }
    if cls:
        shapes["cls_token"] = (1, 1, d)
    for i in range(depth):
        shapes.update({f"layers.{i}.{k}": v for k, v in official_layer_shapes(d).items()})
    return shapes
