"""Synthetic cross-view generator: determinism, geometry carried by the pairs, disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest

from cvgl_edge.data.polar import polar_transform
from cvgl_edge.data.synthetic import SyntheticCrossView, SyntheticSpec, load_or_generate
from cvgl_edge.data.worldgen import BUILDING, ROAD, generate_world
from cvgl_edge.data.georef import GeoRef
from cvgl_edge.errors import CvglError

SMALL = SyntheticSpec(ground_size=(32, 128), satellite_size=64, drone_size=(48, 48), chunk_px=640)


@pytest.fixture(scope="module")
def gen() -> SyntheticCrossView:
    return SyntheticCrossView(SMALL)


@pytest.fixture(scope="module")
def val_pairs(gen):
    return gen.generate("val", 24, views=("ground", "satellite", "drone"))


def test_same_seed_gives_identical_bytes(val_pairs):
    again = SyntheticCrossView(SMALL).generate("val", 24, views=("ground", "satellite", "drone"))
    for name in ("ground", "satellite", "drone", "lat", "lon"):
        assert getattr(again, name).tobytes() == getattr(val_pairs, name).tobytes(), name


def test_other_seed_gives_other_data(val_pairs):
    other = SyntheticCrossView(SMALL, seed=1).generate("val", 4)
    assert not np.array_equal(other.satellite, val_pairs.satellite[:4])


def test_sample_does_not_depend_on_generation_order(val_pairs):
    fresh = SyntheticCrossView(SMALL)
    g, s = fresh.pair(17, "val")           # out of order, on a fresh generator
    assert np.array_equal(g, val_pairs.ground[17]) and np.array_equal(s, val_pairs.satellite[17])
    assert np.array_equal(fresh.drone_view(17, "val"), val_pairs.drone[17])


def test_shapes_and_types(val_pairs):
    assert val_pairs.ground.shape == (24, 32, 128, 3) and val_pairs.ground.dtype == np.uint8
    assert val_pairs.satellite.shape == (24, 64, 64, 3)
    assert val_pairs.drone.shape == (24, 48, 48, 3)
    assert np.isfinite(val_pairs.lat).all() and np.isfinite(val_pairs.lon).all()


def test_tiles_are_different_from_each_other(val_pairs):
    sats = val_pairs.satellite.reshape(len(val_pairs), -1).astype(np.float32)
    d = np.abs(sats[:, None] - sats[None]).mean(-1)
    off = d[~np.eye(len(d), dtype=bool)]
    assert off.min() > 8.0      # no two tiles are near-duplicates


def _unit_rows(a: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float32)
    a -= a.mean(1, keepdims=True)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_panorama_ground_half_matches_polar_of_its_own_tile(val_pairs):
    hg, wg = val_pairs.ground.shape[1:3]
    lower = _unit_rows(val_pairs.ground[:, hg // 2:])
    polar = _unit_rows(np.stack([polar_transform(s, (hg - hg // 2, wg)) for s in val_pairs.satellite]))
    corr = lower @ polar.T
    own = np.diag(corr)
    other = corr[~np.eye(len(corr), dtype=bool)]
    assert own.mean() > other.mean() + 0.3
    assert (corr.argmax(axis=1) == np.arange(len(corr))).mean() >= 0.8


def test_untrained_statistics_are_near_chance(val_pairs):
    # Mean colour alone (what a random network mostly sees) should not identify the tile.
    g = val_pairs.ground.reshape(len(val_pairs), -1, 3).mean(1)
    s = val_pairs.satellite.reshape(len(val_pairs), -1, 3).mean(1)
    d = ((g[:, None] - s[None]) ** 2).sum(-1)
    assert (d.argmin(axis=1) == np.arange(len(d))).mean() < 0.3


def test_splits_use_disjoint_areas(gen):
    spec = gen.spec
    boxes = {}
    for split in ("train", "val", "test"):
        locs = [gen.location(i, split) for i in range(0, 3 * gen.per_chunk, 3)]
        lat = np.array([l.lat for l in locs])
        boxes[split] = (lat.min(), lat.max())
    half_tile_deg = spec.footprint_px * spec.metres_per_px / 111_320.0
    ordered = sorted(boxes.values())
    for (lo1, hi1), (lo2, hi2) in zip(ordered, ordered[1:]):
        assert hi1 + half_tile_deg < lo2


def test_tiles_of_one_split_keep_apart(gen):
    locs = [gen.location(i, "train") for i in range(gen.per_chunk)]
    pts = np.array([(l.row, l.col) for l in locs], dtype=float)
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    assert d[~np.eye(len(d), dtype=bool)].min() >= gen.spec.spacing_px / 2


def test_street_cameras_stand_on_roads_or_open_ground(gen):
    cover = []
    for i in range(gen.per_chunk):
        loc = gen.location(i, "train")
        cover.append(gen.world(loc.chunk, "train").cover[loc.row, loc.col])
    cover = np.array(cover)
    assert not np.any(cover == BUILDING)
    assert np.mean(cover == ROAD) > 0.3


def test_latlon_matches_chunk_georeference(gen):
    loc = gen.location(5, "val")
    lat, lon = gen.world_georef(loc.chunk, "val").to_latlon(loc.row, loc.col)
    assert float(lat) == pytest.approx(loc.lat) and float(lon) == pytest.approx(loc.lon)


def test_world_map_layers():
    wm = generate_world(3, (256, 320), GeoRef(10.0, 20.0, 1.0))
    assert wm.rgb.shape == (256, 320, 3) and wm.street_rgb.shape == (256, 320, 3)
    assert wm.height.shape == wm.cover.shape == (256, 320)
    assert np.all(wm.height[wm.cover == BUILDING] > 0)
    again = generate_world(3, (256, 320), GeoRef(10.0, 20.0, 1.0))
    assert np.array_equal(again.rgb, wm.rgb)


def test_nuisance_zero_gives_clean_pairs():
    clean = SyntheticCrossView(SMALL, nuisance=0.0)
    a = clean.ground(0, "val")
    assert a.shape == (32, 128, 3)
    assert not np.array_equal(a, SyntheticCrossView(SMALL).ground(0, "val"))


def test_disk_cache_round_trip(tmp_path):
    spec = SyntheticSpec(ground_size=(16, 64), satellite_size=32, chunk_px=640, seed=9)
    first = load_or_generate(spec, "test", 3, cache_dir=tmp_path)
    files = list(tmp_path.glob("synthetic-*.npz"))
    assert len(files) == 1
    from cvgl_edge.data import synthetic
    synthetic._MEMORY.clear()
    second = load_or_generate(spec, "test", 3, cache_dir=tmp_path)
    assert np.array_equal(first.ground, second.ground) and np.array_equal(first.lat, second.lat)


def test_bad_split_and_view_are_errors(gen):
    with pytest.raises(CvglError, match="split"):
        gen.location(0, "holdout")
    with pytest.raises(CvglError, match="view"):
        gen.generate("val", 1, views=("thermal",))
