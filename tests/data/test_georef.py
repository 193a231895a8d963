"""Georeferencing: pixel <-> lat/lon and UTM -> lat/lon."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvgl_edge.data.augment import mirror_panorama, mirror_tile, roll_panorama, rotate_tile
from cvgl_edge.data.georef import GeoRef, utm_to_latlon


def test_pixel_latlon_round_trip():
    geo = GeoRef(47.0, 8.0, 0.5)
    lat, lon = geo.to_latlon(200.0, 300.0)
    assert lat < 47.0 and lon > 8.0                       # rows go south, cols go east
    row, col = geo.to_pixel(lat, lon)
    assert float(row) == pytest.approx(200.0) and float(col) == pytest.approx(300.0)
    sub = geo.shifted(100, 50)
    assert np.allclose(sub.to_latlon(100, 250), geo.to_latlon(200, 300), atol=1e-9)


def test_utm_to_latlon_known_points():
    # Central meridian of zone 18 at 42 N (northing from the standard UTM tables).
    lat, lon = utm_to_latlon(500_000.0, 4_649_776.22482, 18, south=False)
    assert float(lat) == pytest.approx(42.0, abs=1e-6) and float(lon) == pytest.approx(-75.0, abs=1e-9)
    # Canberra (CVACT area), zone 55 south.
    lat, lon = utm_to_latlon(693_000.0, 6_091_000.0, 55, south=True)
    assert -35.4 < float(lat) < -35.2 and 149.0 < float(lon) < 149.2


@settings(max_examples=25, deadline=None)
@given(side=st.sampled_from([8, 16, 30]), k=st.integers(0, 7), seed=st.integers(0, 1000))
def test_tile_transforms_are_group_actions(side, k, seed):
    tile = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    assert np.array_equal(mirror_tile(mirror_tile(tile)), tile)
    assert np.array_equal(rotate_tile(rotate_tile(tile, k), 4 - k % 4), tile)
    pano = np.random.default_rng(seed + 1).integers(0, 256, (4, 4 * side, 3), dtype=np.uint8)
    assert np.array_equal(mirror_panorama(mirror_panorama(pano)), pano)
    assert np.array_equal(roll_panorama(roll_panorama(pano, k), 4 - k % 4), pano)
