"""Smooth value noise for procedural maps: random grids upsampled with cv2.

Upsampling a small random grid with bicubic interpolation gives band-limited
noise at a chosen feature size for the cost of one ``cv2.resize``.  Fractal
noise sums octaves on a coarse grid and upsamples once, so a 1280x1280 field
costs a couple of milliseconds.  Fields come back as uint8 (0..255, mean ~128)
because the map compositor works in uint8 with OpenCV, which is much faster
than float numpy on large rasters.  All randomness comes from the caller's
generator, so a seed fixes the result.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


def _grid_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """float32 noise in 0..1 with features of ``cell`` pixels (bicubic upsampled grid)."""
    h, w = shape
    cell = max(float(cell), 1.0)
    gh = int(np.ceil(h / cell)) + 3
    gw = int(np.ceil(w / cell)) + 3
    grid = rng.random((gh, gw), dtype=np.float32)
    big_h, big_w = max(int(round(gh * cell)), h + 2), max(int(round(gw * cell)), w + 2)
    big = cv2.resize(grid, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    oy = int(rng.integers(0, big_h - h - 1))
    ox = int(rng.integers(0, big_w - w - 1))
    return big[oy:oy + h, ox:ox + w]


def _to_u8(field: np.ndarray, std: float = 0.15) -> np.ndarray:
    """Standardise to mean 0.5 and the given std, then map 0..1 to 0..255 uint8."""
    mean, dev = cv2.meanStdDev(field)
    alpha = 255.0 * std / max(float(dev[0, 0]), 1e-6)
    beta = 127.5 - alpha * float(mean[0, 0])
    return cv2.addWeighted(field, alpha, field, 0.0, beta, dtype=cv2.CV_8U)  # saturating cast


def value_noise_u8(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """uint8 value noise (mean ~128, std ~38) with features of ``cell`` pixels."""
    return _to_u8(_grid_noise(rng, shape, cell))


def fractal_noise_u8(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[float, ...],
                     gain: float = 0.5) -> np.ndarray:
    """Sum of octaves (largest cell first) as uint8 (mean ~128, std ~38).

    Octaves are summed and standardised on a grid ``step`` times coarser than the
    output (step = a quarter of the smallest cell), then upsampled bilinearly once.
    """
    h, w = shape
    step = max(1, int(min(cells) // 4))
    sh, sw = -(-h // step) + 1, -(-w // step) + 1
    total = np.zeros((sh, sw), dtype=np.float32)
    amp = 1.0
    for cell in cells:
        total += amp * _grid_noise(rng, (sh, sw), cell / step)
        amp *= gain
    small = _to_u8(total)  # standardise on the coarse grid: far fewer pixels
    if step > 1:
        small = cv2.resize(small, (sw * step, sh * step), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return np.ascontiguousarray(small)


@lru_cache(maxsize=2)
def noise_texture(size: int = 2048, sigma: float = 5.0) -> np.ndarray:
    """A fixed uint8 texture of N(128, sigma) pixel noise, cropped at random offsets for grain.

    Drawing fresh per-pixel noise for every map is the slowest step of map making;
    one shared texture (fixed seed, so still deterministic) is as good visually.
    """
    rng = np.random.default_rng(20240521)
    tex = np.clip(np.rint(128.0 + sigma * rng.standard_normal((size, size), dtype=np.float32)), 0, 255)
    out = tex.astype(np.uint8)
    out.setflags(write=False)
    return out


def noise_crop(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A (H, W) crop of :func:`noise_texture` at a random offset (tiled when larger)."""
    tex = noise_texture()
    h, w = shape
    big = tex
    if h > tex.shape[0] or w > tex.shape[1]:
        big = np.tile(tex, (-(-h // tex.shape[0]), -(-w // tex.shape[1])))
    oy = int(rng.integers(0, big.shape[0] - h + 1))
    ox = int(rng.integers(0, big.shape[1] - w + 1))
    return big[oy:oy + h, ox:ox + w]
