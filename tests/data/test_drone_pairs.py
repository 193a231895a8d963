"""Mission-like drone pairs (`synthetic-drone`): deterministic, offsets bounded, frames as the loop makes them."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from cvgl_edge.data.drone_pairs import DronePairGenerator, DronePairSpec, drone_spec, load_or_generate_drone
from cvgl_edge.data.nuisance import photometric, sensor_noise
from cvgl_edge.data.render import render_drone
from cvgl_edge.errors import CvglError
from cvgl_edge.localize.loop import Localizer, LoopSettings
from cvgl_edge.data.aerial import AerialPreprocess
from cvgl_edge.localize.sources import Frame

SMALL = DronePairSpec(side=48, world_px=640)


def test_same_spec_same_bytes_and_splits_differ():
    a = DronePairGenerator(SMALL).generate("train", 6)
    b = DronePairGenerator(SMALL).generate("train", 6)
    assert np.array_equal(a.nadir, b.nadir) and np.array_equal(a.satellite, b.satellite)
    assert a.nadir.shape == a.satellite.shape == (6, 48, 48, 3) and a.nadir.dtype == np.uint8
    val = DronePairGenerator(SMALL).generate("val", 6)
    assert not np.array_equal(a.satellite, val.satellite)
    assert np.all(np.abs(val.lat - a.lat[:, None]).min(1) > 1e-4)  # another area: no shared positions


def test_offsets_are_bounded_by_half_a_stride():
    gen = DronePairGenerator(SMALL)
    spec = gen.spec
    assert spec.tile_m == pytest.approx(87.0) and spec.max_offset_px == pytest.approx(0.25 * spec.tile_px)
    offsets = np.array([gen.pair(i)["offset_px"] for i in range(40)])
    assert np.abs(offsets).max() <= spec.max_offset_px + 0.5  # tile corners are whole map pixels
    assert np.abs(offsets).max() > 0.5 * spec.max_offset_px     # and they are really used
    centred = DronePairGenerator(DronePairSpec(side=48, world_px=640, offset=0.0))
    assert np.abs([centred.pair(i)["offset_px"] for i in range(10)]).max() <= 0.5


def test_frame_is_what_the_loop_encodes():
    """With the nuisance off, the generator's frame equals the Localizer's crop of the same camera frame."""
    spec = DronePairSpec(side=64, world_px=640, nuisance=0.0)
    gen = DronePairGenerator(spec)
    p = gen.pair(3, "val")
    world = gen.world(p["world"], "val")
    img = render_drone(world, p["row"], p["col"], spec.frame_size, p["altitude_m"] / spec.metres_per_px, 1e-4,
                       math.radians(p["heading_deg"]), fov=math.radians(spec.hfov_deg))
    img = sensor_noise(photometric(img, np.random.default_rng(0), 0.0), np.random.default_rng(0), 0.0)
    loop = SimpleNamespace(settings=LoopSettings(hfov_deg=spec.hfov_deg), tile_m=spec.tile_m)
    square = Localizer._square(loop, Frame(img, 0, 0.0, p["heading_deg"], p["altitude_m"]))
    assert np.array_equal(AerialPreprocess((64, 64)).image(square), p["frame"])
    # and it shows the tile's ground: centred pairs are close, other tiles are not
    centred = DronePairGenerator(DronePairSpec(side=64, world_px=640, nuisance=0.0, offset=0.0))
    frames = np.stack([centred.pair(i)["frame"] for i in range(6)]).reshape(6, -1).astype(np.float32)
    tiles = np.stack([centred.pair(i)["tile"] for i in range(6)]).reshape(6, -1).astype(np.float32)
    frames -= frames.mean(1, keepdims=True)
    tiles -= tiles.mean(1, keepdims=True)
    sims = (frames / np.linalg.norm(frames, axis=1, keepdims=True)) @ (tiles / np.linalg.norm(tiles, axis=1,
                                                                                              keepdims=True)).T
    assert np.all(sims.argmax(1) == np.arange(6)) and np.diag(sims).min() > 0.6


def test_disk_cache_round_trip(tmp_path):
    spec = DronePairSpec(seed=3, side=32, world_px=640)
    first = load_or_generate_drone(spec, "test", 4, cache_dir=tmp_path)
    files = list(tmp_path.glob("drone-pairs-*.npz"))
    assert len(files) == 1
    from cvgl_edge.data import synthetic

    synthetic._MEMORY.clear()
    again = load_or_generate_drone(spec, "test", 4, cache_dir=tmp_path)
    assert np.array_equal(first.nadir, again.nadir) and np.array_equal(first.lat, again.lat)


def test_bad_options_are_one_line_errors():
    with pytest.raises(CvglError, match="unknown synthetic-drone option.*colour"):
        drone_spec(colour=1)
    with pytest.raises(CvglError, match="half a stride"):
        DronePairSpec(offset=2.0)
    with pytest.raises(CvglError, match="too small"):
        DronePairGenerator(DronePairSpec(world_px=200))
    with pytest.raises(CvglError, match="split"):
        load_or_generate_drone(SMALL, "holdout", 2)
