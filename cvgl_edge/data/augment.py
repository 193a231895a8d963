"""Paired augmentations that keep a (ground panorama, satellite) pair geometrically consistent.

Conventions (see :mod:`cvgl_edge.data.polar`): a panorama's column j looks at
azimuth ``theta_j = 2*pi*j/W`` measured so that column W/2 is north and azimuth
grows clockwise left to right; a square satellite tile is north-up and its
polar centre is pixel (S/2, S/2).

* Mirror: a left-right mirror of the tile about column S/2 turns azimuth theta
  into -theta, so the panorama must become ``p'[:, j] = p[:, (W - j) % W]``:
  a left-right flip *rolled by one column*, which keeps columns 0 (south) and
  W/2 (north) in place.  (A bare ``p[:, ::-1]`` mirrors about column
  (W-1)/2 instead, half a column off.)  The tile uses the same formula,
  ``t'[:, c] = t[:, (S - c) % S]``, so the mirror is exactly about the polar
  centre and ``polar(mirror(t)) == mirror(polar(t))``.
* Rotation: turning the tile k*90 degrees counter-clockwise brings what was
  east to the north, i.e. the panorama must roll left by k*W/4 columns:
  ``p' = np.roll(p, -k*W//4, axis=1)``.  The tile is rotated about pixel
  (S/2, S/2) (``np.rot90`` plus a one-pixel roll), so
  ``polar(rot(t, k)) == roll(polar(t), -k*W/4)`` up to interpolation.
  W must be divisible by 4 for the roll to be exact (otherwise it is rounded).
* A polar-transformed satellite image is panorama-shaped: it gets the same
  mirror / roll as the panorama.
* Photometric jitter (brightness, contrast, white balance, gamma) is drawn
  independently per view: the two views are taken at different times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvgl_edge.data.nuisance import photometric


def mirror_panorama(pano: np.ndarray) -> np.ndarray:
    """Mirror a panorama about its north/south columns: out[:, j] = pano[:, (W - j) % W]."""
    return np.ascontiguousarray(np.roll(pano[:, ::-1], 1, axis=1))


def mirror_tile(tile: np.ndarray) -> np.ndarray:
    """Mirror a square tile about its polar centre column S/2: out[:, c] = tile[:, (S - c) % S]."""
    return np.ascontiguousarray(np.roll(tile[:, ::-1], 1, axis=1))


def rotate_tile(tile: np.ndarray, k: int) -> np.ndarray:
    """Rotate a square tile by k*90 degrees counter-clockwise about pixel (S/2, S/2)."""
    k %= 4
    if k == 0:
        return tile
    out = np.rot90(tile, k)
    shift = {1: (1, 0), 2: (1, 1), 3: (0, 1)}[k]
    return np.ascontiguousarray(np.roll(out, shift, axis=(0, 1)))


def roll_panorama(pano: np.ndarray, k: int) -> np.ndarray:
    """Panorama seen after the tile turned k*90 degrees counter-clockwise: roll left by k*W/4."""
    w = pano.shape[1]
    return np.ascontiguousarray(np.roll(pano, -int(round(k * w / 4.0)), axis=1))


@dataclass
class PairAugment:
    """Random consistent flip / 90-degree rotation / photometric jitter of a pair.

    ``satellite_is_polar``: the satellite image was polar-transformed (panorama-shaped).
    ``training=False`` (see :meth:`eval`) turns every augmentation off.
    """

    flip_p: float = 0.5
    rotate_p: float = 0.5
    photometric: float = 0.5
    satellite_is_polar: bool = False
    training: bool = True

    def train(self, mode: bool = True) -> "PairAugment":
        """Switch augmentation on (training) or off (evaluation); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> "PairAugment":
        return self.train(False)

    def __call__(self, ground: np.ndarray, satellite: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if not self.training:
            return ground, satellite
        if rng.random() < self.flip_p:
            ground = mirror_panorama(ground)
            satellite = mirror_panorama(satellite) if self.satellite_is_polar else mirror_tile(satellite)
        if rng.random() < self.rotate_p:
            k = int(rng.integers(1, 4))
            ground = roll_panorama(ground, k)
            satellite = roll_panorama(satellite, k) if self.satellite_is_polar else rotate_tile(satellite, k)
        if self.photometric > 0:
            ground = photometric(ground, rng, self.photometric)
            satellite = photometric(satellite, rng, self.photometric)
        return ground, satellite
