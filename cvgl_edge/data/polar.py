"""SAFA polar transform: square aerial image -> panorama-shaped image.

For output pixel (row i, col j) of an H x W image from a square input of side S:
``r = (S/2) * (H-1-i) / H``, ``theta = 2*pi*j / W``, source
``(row S/2 + r*cos(theta), col S/2 - r*sin(theta))``, bilinear, zero outside.
So the bottom row samples the image centre, column 0 looks south, W/4 west,
W/2 (the middle column) north and 3W/4 east: azimuth grows clockwise from left
to right, like a real panorama centred on north.

The maps depend only on (S, H, W) and are cached, so the per-image cost is one
``cv2.remap`` call.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from cvgl_edge.errors import CvglError


def polar_source_coords(side: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) float64 arrays of shape (H, W): where each output pixel samples the input."""
    i = np.arange(height, dtype=np.float64)[:, None]
    j = np.arange(width, dtype=np.float64)[None, :]
    r = (side / 2.0) * (height - 1 - i) / height
    theta = 2.0 * np.pi * j / width
    rows = side / 2.0 + r * np.cos(theta)
    cols = side / 2.0 - r * np.sin(theta)
    return rows, cols


@lru_cache(maxsize=32)
def polar_maps(side: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (map_x = cols, map_y = rows) as float32, cached per (S, H, W)."""
    rows, cols = polar_source_coords(side, height, width)
    map_x = cols.astype(np.float32)
    map_y = rows.astype(np.float32)
    map_x.setflags(write=False)
    map_y.setflags(write=False)
    return map_x, map_y


def polar_transform(aerial: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Polar-transform a square aerial image (HxW or HxWxC) into an out_hw panorama-shaped image."""
    if aerial.ndim not in (2, 3) or aerial.shape[0] != aerial.shape[1]:
        raise CvglError(f"polar transform needs a square aerial image, got shape {tuple(aerial.shape)}")
    map_x, map_y = polar_maps(int(aerial.shape[0]), int(out_hw[0]), int(out_hw[1]))
    return cv2.remap(aerial, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def default_polar_source_side(out_hw: tuple[int, int]) -> int:
    """Aerial side to resize to before the transform: 2*H gives one input pixel per output row."""
    return 2 * int(out_hw[0])
