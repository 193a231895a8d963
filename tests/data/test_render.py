"""Geometry of the rendered views on a hand-made world map."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvgl_edge.data.georef import GeoRef
from cvgl_edge.data.render import render_drone, render_panorama, render_tile
from cvgl_edge.data.worldgen import BUILDING, GROUND, WorldMap

N = 256
C = N // 2


def _world(marks: dict[tuple[int, int], tuple[int, int, int]], height: int = 0) -> WorldMap:
    rgb = np.full((N, N, 3), 100, np.uint8)
    hgt = np.zeros((N, N), np.uint8)
    cover = np.full((N, N), GROUND, np.uint8)
    for (r, c), colour in marks.items():
        rgb[r - 3:r + 4, c - 3:c + 4] = colour
        if height:
            hgt[r - 3:r + 4, c - 3:c + 4] = height
            cover[r - 3:r + 4, c - 3:c + 4] = BUILDING
    return WorldMap(rgb=rgb, height=hgt, street_rgb=rgb.copy(), cover=cover, georef=GeoRef(0.0, 0.0, 1.0),
                    sun_azimuth=math.pi)


def _reddish(img: np.ndarray) -> np.ndarray:
    """Red facade pixels whatever the lighting and haze (shaded walls are darker)."""
    r, g = img[..., 0].astype(int), img[..., 1].astype(int)
    return (r > 90) & (r > 2 * g)


def test_tile_is_centred_on_the_location():
    w = _world({(C, C): (255, 0, 0), (C - 40, C): (0, 255, 0)})
    tile = render_tile(w, C, C, 128, 128)
    assert tile[64, 64].tolist() == [255, 0, 0]
    assert tile[64 - 40, 64].tolist() == [0, 255, 0]      # north is up


@pytest.mark.parametrize("offset, column", [((-30, 0), 0.5), ((0, 30), 0.75), ((30, 0), 0.0), ((0, -30), 0.25)])
def test_buildings_appear_at_their_azimuth(offset, column):
    w = _world({(C + offset[0], C + offset[1]): (250, 20, 20)}, height=20)
    pano = render_panorama(w, C, C, (64, 256), 64.0, np.random.default_rng(0))
    red = _reddish(pano)
    cols = np.nonzero(red[:32].any(axis=0))[0]              # in the upper (sky) half
    assert cols.size > 0
    centre = np.angle(np.exp(2j * np.pi * cols / 256).mean()) / (2 * np.pi) % 1.0
    assert min(abs(centre - column), 1 - abs(centre - column)) < 0.02


def test_ground_half_bottom_row_is_the_camera_spot_and_heading_rotates():
    w = _world({(C, C): (0, 0, 255)})
    pano = render_panorama(w, C, C, (32, 128), 64.0, np.random.default_rng(0))
    assert pano[-1, :, 2].min() > 200 and pano[-1, :, 0].max() < 40
    a = render_panorama(_world({(C - 30, C): (250, 20, 20)}, 20), C, C, (32, 128), 64.0,
                        np.random.default_rng(0), heading=2 * np.pi / 8)
    red_cols = np.nonzero(_reddish(a)[:16].any(axis=0))[0]
    assert abs(np.median(red_cols) - (64 - 16)) <= 2       # turned 45 deg east: north moves left


def test_drone_looks_at_the_target_and_faces_its_heading():
    w = _world({(C, C): (255, 0, 0), (C - 25, C): (0, 255, 0), (C, C + 25): (0, 0, 255)})
    img = render_drone(w, C, C, (96, 96), 100.0, math.radians(30), heading=0.0)
    red = np.argwhere((img[..., 0] > 200) & (img[..., 1] < 60))
    assert np.abs(red.mean(axis=0) - 48).max() < 3           # target at the image centre
    green = np.argwhere((img[..., 1] > 200) & (img[..., 0] < 60))
    assert green[:, 0].mean() < 40                          # north is up when facing north
    east = render_drone(w, C, C, (96, 96), 100.0, math.radians(30), heading=math.pi / 2)
    blue = np.argwhere((east[..., 2] > 200) & (east[..., 0] < 60))
    assert blue[:, 0].mean() < 40 and abs(blue[:, 1].mean() - 48) < 4   # facing east: east is up
