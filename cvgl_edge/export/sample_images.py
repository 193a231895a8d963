"""Deterministic, realistic-looking check images for comparing an export with PyTorch.

Why synthetic scenes rather than noise: the parity check should see the value range
and structure of real inputs (skies, roads, roofs) that the model will meet; the
built-in synthetic generator gives that without any dataset on disk.
"""

from __future__ import annotations

import numpy as np

from cvgl_edge.data.images import resize
from cvgl_edge.data.normalize import normalize_array
from cvgl_edge.data.synthetic import SyntheticCrossView


def sample_images(view: str, size_hw: tuple[int, int], count: int, seed: int = 0) -> np.ndarray:
    """(count, 3, H, W) float32, normalised like training images, from the val split."""
    h, w = size_hw
    if view == "ground":
        generator = SyntheticCrossView(seed=seed, ground_size=(h, w))
        images = [generator.ground(i, "val") for i in range(count)]
    else:
        generator = SyntheticCrossView(seed=seed, satellite_size=max(h, w))
        images = [resize(generator.satellite(i, "val"), (h, w)) for i in range(count)]
    return np.stack([normalize_array(img) for img in images]).astype(np.float32)
