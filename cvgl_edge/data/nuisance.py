"""Image nuisances for synthetic views: lighting/colour change, sensor noise, occluders.

Real cross-view pairs differ by time of day, camera response, noise, and things
in front of the street camera (cars, people, poles).  These functions add such
differences with strength in 0..1 (0 = none) so a model cannot match pixels
one-to-one.  All work on uint8 RGB in place or by LUT, so they cost well under a
millisecond on demo-sized images.
"""

from __future__ import annotations

import cv2
import numpy as np

from cvgl_edge.data.noise import noise_crop


def photometric(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Brightness, contrast, white balance and gamma change applied with one per-channel LUT."""
    if strength <= 0:
        return img
    s = float(strength)
    brightness = 1.0 + s * rng.uniform(-0.2, 0.2)
    contrast = 1.0 + s * rng.uniform(-0.2, 0.2)
    gains = 1.0 + s * rng.uniform(-0.08, 0.08, 3)
    gamma = float(np.exp(s * rng.uniform(-0.2, 0.2)))
    v = np.arange(256, dtype=np.float64) / 255.0
    base = np.clip(((v - 0.5) * contrast + 0.5) * brightness, 0.0, 1.0)
    table = np.stack([np.clip(base * g, 0.0, 1.0) ** gamma for g in gains], axis=1)
    lut = np.clip(np.rint(table * 255.0), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(np.ascontiguousarray(img), lut)


def sensor_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Add approximately N(0, sigma) per-pixel colour noise (sigma in grey levels)."""
    if sigma <= 0:
        return img
    h, w = img.shape[:2]
    noise = cv2.merge([noise_crop(rng, (h, w)) for _ in range(3)])
    k = sigma / 5.0  # the shared noise texture has sigma 5 around 128
    return cv2.addWeighted(img, 1.0, noise, k, -128.0 * k)


def _colour(rng: np.random.Generator, lo: int, hi: int) -> tuple[float, float, float]:
    base = rng.uniform(lo, hi)
    return tuple(float(np.clip(base + rng.uniform(-25, 25), 0, 255)) for _ in range(3))  # type: ignore[return-value]


def occlude_panorama(pano: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Draw a few vehicles, blobs and poles into a panorama (in place; returns it)."""
    if strength <= 0:
        return pano
    h, w = pano.shape[:2]
    horizon = h // 2
    for _ in range(int(rng.integers(0, 3) * min(1.0, strength) + 0.5)):   # vehicles near the road
        cw = int(w * rng.uniform(0.04, 0.1))
        ch = max(3, int(h * rng.uniform(0.1, 0.2)))
        x0 = int(rng.integers(0, w))
        y1 = int(horizon + h * rng.uniform(0.05, 0.3))
        body = _colour(rng, 20, 230)
        xs = [(x0, min(w, x0 + cw))] + ([(0, x0 + cw - w)] if x0 + cw > w else [])
        for a, b in xs:
            cv2.rectangle(pano, (a, y1 - ch), (b - 1, y1), body, -1)
            cv2.rectangle(pano, (a, y1 - ch), (b - 1, y1 - int(ch * 0.6)), (40.0, 48.0, 56.0), -1)
    for _ in range(int(rng.integers(0, 3) * min(1.0, strength) + 0.5)):   # pedestrians, bushes, signs
        centre = (int(rng.integers(0, w)), int(rng.integers(horizon - h // 8, h)))
        axes = (max(1, int(w * rng.uniform(0.01, 0.04))), max(1, int(h * rng.uniform(0.05, 0.15))))
        cv2.ellipse(pano, centre, axes, 0.0, 0.0, 360.0, _colour(rng, 20, 160), -1)
    for _ in range(int(rng.integers(0, 3) * min(1.0, strength) + 0.5)):   # poles
        x = int(rng.integers(0, w))
        top = int(rng.integers(0, horizon))
        cv2.line(pano, (x, top), (x, h - 1), _colour(rng, 30, 90), max(1, w // 256))
    return pano
