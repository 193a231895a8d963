"""Paired augmentations stay consistent with the polar convention."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cvgl_edge.data.augment import PairAugment, mirror_panorama, mirror_tile, roll_panorama, rotate_tile
from cvgl_edge.data.polar import polar_transform

S, H, W = 64, 32, 128


def _smooth_tile(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((8, 8, 3)).astype(np.float32)
    return cv2.resize(small, (S, S), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotating_tile_equals_rolling_its_panorama(k):
    tile = _smooth_tile()
    lhs = polar_transform(rotate_tile(tile, k), (H, W))
    rhs = roll_panorama(polar_transform(tile, (H, W)), k)
    # Rotation about the polar centre: equal up to float rounding of the sample positions.
    assert np.abs(lhs - rhs)[:-2].max() < 1e-3


def test_rotation_direction_brings_east_to_north():
    tile = np.zeros((S, S), np.float32)
    tile[S // 2 - 1:S // 2 + 2, S // 2 + 18:S // 2 + 21] = 1.0    # a mark east of the centre
    pano = polar_transform(rotate_tile(tile, 1), (H, W))
    col = int(np.argmax(pano.max(axis=0)))
    assert abs(col - W // 2) <= 1                               # now in the middle (north) column


def test_mirror_commutes_with_polar_transform():
    tile = _smooth_tile(1)
    lhs = polar_transform(mirror_tile(tile), (H, W))
    rhs = mirror_panorama(polar_transform(tile, (H, W)))
    assert np.abs(lhs - rhs).max() < 1e-3


def test_mirror_keeps_north_and_south_columns():
    pano = np.arange(W)[None, :].repeat(4, 0)
    m = mirror_panorama(pano)
    assert m[0, 0] == 0 and m[0, W // 2] == W // 2 and m[0, 1] == W - 1
    assert np.array_equal(mirror_panorama(m), pano)


def test_rotate_four_times_is_identity():
    tile = _smooth_tile(2)
    out = tile
    for _ in range(4):
        out = rotate_tile(out, 1)
    assert np.array_equal(out, tile)


def test_pair_augment_eval_is_identity_and_train_is_seeded():
    ground = (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)
    sat = (np.random.default_rng(1).random((S, S, 3)) * 255).astype(np.uint8)
    aug = PairAugment(flip_p=1.0, rotate_p=1.0, photometric=0.5)
    g1, s1 = aug(ground, sat, np.random.default_rng(5))
    g2, s2 = aug(ground, sat, np.random.default_rng(5))
    assert np.array_equal(g1, g2) and np.array_equal(s1, s2)
    assert not np.array_equal(g1, ground)
    aug.eval()
    g3, s3 = aug(ground, sat, np.random.default_rng(5))
    assert g3 is ground and s3 is sat


def test_pair_augment_keeps_polar_pair_consistent():
    tile = (_smooth_tile(3) * 255).astype(np.uint8)
    pano = polar_transform(tile, (H, W))
    aug = PairAugment(flip_p=0.5, rotate_p=1.0, photometric=0.0, satellite_is_polar=False)
    aug_polar = PairAugment(flip_p=0.5, rotate_p=1.0, photometric=0.0, satellite_is_polar=True)
    for seed in range(6):
        g, s = aug(pano, tile, np.random.default_rng(seed))
        diff = np.abs(polar_transform(s, (H, W)).astype(int) - g.astype(int))[:-2]
        assert diff.max() <= 2
        g2, s2 = aug_polar(pano, pano, np.random.default_rng(seed))
        assert np.array_equal(g2, s2)
