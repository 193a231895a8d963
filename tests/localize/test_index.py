"""Map georeferencing, tiling and the tile index (round trip, corruption, other model, resume)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvgl_edge.data.images import write_image
from cvgl_edge.errors import CvglError
from cvgl_edge.data.geomap import Corners, read_map, write_geotiff
from cvgl_edge.localize.index import build_index, load_index, make_faiss
from cvgl_edge.data.aerial import north_up_crop
from cvgl_edge.data.tiles import plan_tiles, tile_count
from tests.support.localize import textured_map, tiny_encoder

LAT0, LON0, MPP = 47.37, 8.54, 1.0
DLAT = MPP / 111_320.0
DLON = MPP / (111_320.0 * math.cos(math.radians(LAT0)))


def _geotiff(tmp_path, h=256, w=320, seed=0):
    path = tmp_path / "map.tif"
    write_geotiff(path, textured_map(h, w, seed), (DLON, 0.0, LON0, 0.0, -DLAT, LAT0))
    return path


def test_geotiff_transform_round_trip(tmp_path):
    gm = read_map(_geotiff(tmp_path))
    assert gm.shape == (256, 320)
    lat, lon = gm.pixel_to_latlon(np.array([0.0, 100.0]), np.array([0.0, 50.0]))
    assert lat[0] == pytest.approx(LAT0) and lon[0] == pytest.approx(LON0)
    assert lat[1] == pytest.approx(LAT0 - 100 * DLAT) and lon[1] == pytest.approx(LON0 + 50 * DLON)
    row, col = gm.latlon_to_pixel(lat, lon)
    assert np.allclose(row, [0, 100]) and np.allclose(col, [0, 50])
    assert gm.gsd_m == pytest.approx(1.0, rel=1e-3)
    east, north = gm.to_local(*gm.from_local(np.array([30.0]), np.array([-40.0])))
    assert east[0] == pytest.approx(30.0) and north[0] == pytest.approx(-40.0)


def test_projected_geotiff_is_converted_to_latlon(tmp_path):
    path = tmp_path / "utm.tif"
    # UTM zone 32N, 2 m pixels: easting 465000, northing 5246000 (near Zurich).
    write_geotiff(path, textured_map(64, 64), (2.0, 0.0, 465_000.0, 0.0, -2.0, 5_246_000.0), crs="EPSG:32632")
    gm = read_map(path)
    lat, lon = gm.pixel_to_latlon(np.array([0.0]), np.array([0.0]))
    assert 47.3 < lat[0] < 47.4 and 8.5 < lon[0] < 8.6
    assert gm.gsd_m == pytest.approx(2.0, rel=0.01)
    row, col = gm.latlon_to_pixel(lat, lon)
    assert abs(row[0]) < 1e-6 and abs(col[0]) < 1e-6


def test_world_file_and_corners(tmp_path):
    img = textured_map(100, 200)
    png = tmp_path / "ortho.png"
    write_image(png, img)
    # World file: pixel-centre coordinates of pixel (0, 0).
    (tmp_path / "ortho.pgw").write_text(f"{DLON}\n0\n0\n{-DLAT}\n{LON0 + DLON / 2}\n{LAT0 - DLAT / 2}\n")
    gm = read_map(png)
    lat, lon = gm.pixel_to_latlon(np.array([0.0]), np.array([0.0]))
    assert lat[0] == pytest.approx(LAT0) and lon[0] == pytest.approx(LON0)
    corners = Corners(LAT0, LON0, LAT0 - 100 * DLAT, LON0 + 200 * DLON)
    gc = read_map(png, corners=corners)
    assert np.allclose(gc.pixel_to_latlon(np.array([50.0]), np.array([70.0])),
                       gm.pixel_to_latlon(np.array([50.0]), np.array([70.0])))


def test_map_errors(tmp_path):
    with pytest.raises(CvglError, match="map not found"):
        read_map(tmp_path / "none.tif")
    bare = tmp_path / "bare.png"
    write_image(bare, textured_map(32, 32))
    with pytest.raises(CvglError, match="no georeferencing"):
        read_map(bare)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    with pytest.raises(CvglError, match="cannot read map"):
        read_map(broken)
    with pytest.raises(CvglError, match="--corners"):
        Corners.parse("1,2,3")


def test_tiling_in_metres_and_pixels(tmp_path):
    gm = read_map(_geotiff(tmp_path))
    plan = plan_tiles(gm, 64, overlap=0.5, unit="m")
    assert plan.size_px == 64 and plan.stride_px == 32
    assert len(plan) == tile_count(256, 320, 64, 32) == 7 * 9
    assert plan.rows.max() + 64 == 256 and plan.cols.max() + 64 == 320   # flush with the edges
    lat, lon = gm.pixel_to_latlon(plan.rows[5] + 32.0, plan.cols[5] + 32.0)
    assert plan.lat[5] == pytest.approx(float(lat)) and plan.lon[5] == pytest.approx(float(lon))
    n, s, w, e = plan.bounds[0]
    assert n > plan.lat[0] > s and w < plan.lon[0] < e
    px = plan_tiles(gm, 100, overlap=20, unit="px")
    assert px.size_px == 100 and px.stride_px == 80
    assert px.cols.max() == 220                                          # last column pulled flush
    with pytest.raises(CvglError, match="smaller than one"):
        plan_tiles(gm, 1000, unit="m")
    with pytest.raises(CvglError, match="no stride"):
        plan_tiles(gm, 64, overlap=64, unit="px")


def test_north_up_crop_undoes_heading():
    img = textured_map(96, 96, seed=3)
    turned = np.ascontiguousarray(np.rot90(img, k=1))  # content turned counter-clockwise: top faces east
    back = north_up_crop(turned, heading_deg=90.0)
    assert np.abs(back[8:-8, 8:-8].astype(int) - img[8:-8, 8:-8].astype(int)).mean() < 2.0


def test_index_round_trip_and_search(tmp_path):
    enc = tiny_encoder()
    index = build_index(_geotiff(tmp_path), enc, tmp_path / "map.idx", tile_size=64, overlap=0.5,
                        show_progress=False)
    assert not (tmp_path / "map.idx.parts").exists()
    loaded = load_index(tmp_path / "map.idx")
    assert len(loaded) == len(index) == 63
    assert loaded.meta["model_sha256"] == enc.info.model_sha256
    loaded.check_encoder(enc.info)
    desc = loaded.descriptors()
    assert desc.shape == (63, enc.info.descriptor_dim)
    assert np.allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-4)
    sims, ids = loaded.faiss_index.search(desc[[10, 40]], 1)
    assert list(ids[:, 0]) == [10, 40]
    assert loaded.summary()["tiles"] == 63
    assert loaded.summary()["origin"] == list(loaded.origin)          # the EKF origin `localize --mavlink` asks for


def test_index_refuses_corruption_and_other_model(tmp_path):
    enc = tiny_encoder()
    path = tmp_path / "map.idx"
    build_index(_geotiff(tmp_path), enc, path, tile_size=96, overlap=0.25, show_progress=False)
    other = tiny_encoder(seed=1)
    with pytest.raises(CvglError, match="another model"):
        load_index(path).check_encoder(other.info)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.idx").write_bytes(bytes(data))
    with pytest.raises(CvglError, match="corrupted"):
        load_index(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CvglError, match="corrupted"):
        load_index(tmp_path / "short.idx")
    with pytest.raises(CvglError, match="index not found"):
        load_index(tmp_path / "nope.idx")


class _CountingEncoder:
    """Wraps an encoder: counts encoded images, optionally raises after ``fail_after`` batches."""

    def __init__(self, inner, fail_after: int | None = None):
        self.inner, self.info, self.images, self.calls, self.fail_after = inner, inner.info, 0, 0, fail_after

    def encode(self, images):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.images += len(images)
        return self.inner.encode(images)


def test_build_resumes_after_interruption(tmp_path):
    tif = _geotiff(tmp_path)
    enc = tiny_encoder()
    full = build_index(tif, enc, tmp_path / "full.idx", tile_size=64, chunk_tiles=16, batch_size=8,
                       show_progress=False)
    path = tmp_path / "map.idx"
    with pytest.raises(KeyboardInterrupt):
        build_index(tif, _CountingEncoder(enc, fail_after=5), path, tile_size=64, chunk_tiles=16, batch_size=8,
                    show_progress=False)
    assert not path.exists() and len(list((tmp_path / "map.idx.parts").glob("*/chunk_*.npy"))) == 2
    again = _CountingEncoder(enc)
    resumed = build_index(tif, again, path, tile_size=64, chunk_tiles=16, batch_size=8, show_progress=False)
    assert again.images == 63 - 32                  # the two finished chunks were not embedded again
    assert np.allclose(resumed.descriptors(), full.descriptors(), atol=1e-6)
    assert not (tmp_path / "map.idx.parts").exists()


def test_ivfpq_index_finds_its_vectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index, settings = make_faiss(x, "ivfpq")
    assert settings["pq_m"] == 16 and settings["nlist"] >= 1  # 4-dim sub-vectors
    index.nprobe = settings["nlist"]
    _, ids = index.search(x[:50], 5)
    assert (ids == np.arange(50)[:, None]).any(axis=1).mean() > 0.8
    with pytest.raises(CvglError, match="at least 256"):
        make_faiss(x[:100], "ivfpq")


def test_min_similarity_is_stored_checked_and_changed(tmp_path):
    from cvgl_edge.localize.index import set_min_similarity
    from cvgl_edge.localize.loop import tracker_settings_for

    enc = tiny_encoder()
    path = tmp_path / "map.idx"
    with pytest.raises(CvglError, match="not a cosine"):
        build_index(_geotiff(tmp_path), enc, path, tile_size=96, min_similarity=1.5, show_progress=False)
    assert not path.exists() and not (tmp_path / "map.idx.parts").exists()
    build_index(_geotiff(tmp_path), enc, path, tile_size=96, overlap=0.25, min_similarity=0.6, show_progress=False)
    index = load_index(path)
    assert index.summary()["min_similarity"] == 0.6
    assert tracker_settings_for(index).min_similarity == 0.6
    assert tracker_settings_for(index, -1.0).min_similarity == -1.0             # an explicit value wins
    set_min_similarity(path, 0.35)
    assert load_index(path).meta["min_similarity"] == 0.35                     # checksum still valid
    set_min_similarity(path, None)
    assert "min_similarity" not in load_index(path).meta
    assert tracker_settings_for(load_index(path)).min_similarity is None


class _GatedEncoder(_CountingEncoder):
    """Blocks in its second ``encode`` until ``release`` is set (a build caught half-way)."""

    def __init__(self, inner):
        import threading

        super().__init__(inner)
        self.started, self.release = threading.Event(), threading.Event()

    def encode(self, images):
        if self.calls == 1:
            self.started.set()
            assert self.release.wait(60), "the test never released the build"
        return super().encode(images)


def _same_as_fresh_build(index, tif, enc, tmp_path, name, tile_size):
    """The index's descriptors are those of a fresh build of its own plan (not another build's chunks)."""
    fresh = build_index(tif, enc, tmp_path / name, tile_size=tile_size, chunk_tiles=16, batch_size=8,
                        show_progress=False)
    assert index.meta["tile_size_px"] == fresh.meta["tile_size_px"] and len(index) == len(fresh)
    assert np.allclose(index.descriptors(), fresh.descriptors(), atol=1e-6)


def test_a_concurrent_second_build_into_one_out_is_refused(tmp_path):
    """Finding A: a second build with another tiling used to delete and reload the first's chunks."""
    import threading

    tif, enc = _geotiff(tmp_path), tiny_encoder()
    out = tmp_path / "map.idx"
    gated, result = _GatedEncoder(enc), {}

    def first():
        result["index"] = build_index(tif, gated, out, tile_size=64, chunk_tiles=16, batch_size=8,
                                      show_progress=False)

    thread = threading.Thread(target=first, daemon=True)
    thread.start()
    try:
        assert gated.started.wait(60)
        refusal = r"another index build is writing .*map\.idx \(lock .*map\.idx\.lock"
        with pytest.raises(CvglError, match=refusal) as err:
            build_index(tif, enc, out, tile_size=96, chunk_tiles=16, batch_size=8, show_progress=False)
        assert "\n" not in str(err.value)
    finally:
        gated.release.set()
        thread.join(120)
    assert "index" in result and not (tmp_path / "map.idx.lock").exists()
    _same_as_fresh_build(load_index(out), tif, enc, tmp_path, "ref64.idx", 64)
    # Once the first is done the other tiling builds, consistent with its own plan.
    _same_as_fresh_build(build_index(tif, enc, out, tile_size=96, chunk_tiles=16, batch_size=8, show_progress=False),
                         tif, enc, tmp_path, "ref96.idx", 96)
    assert not (tmp_path / "map.idx.parts").exists()


def test_chunks_belong_to_one_plan(tmp_path):
    """An interrupted build's chunks are neither reused nor deleted by a build of another tiling."""
    tif, enc = _geotiff(tmp_path), tiny_encoder()
    out = tmp_path / "map.idx"
    with pytest.raises(KeyboardInterrupt):
        build_index(tif, _CountingEncoder(enc, fail_after=5), out, tile_size=64, chunk_tiles=16, batch_size=8,
                    show_progress=False)
    events = []
    other = build_index(tif, enc, out, tile_size=96, chunk_tiles=16, batch_size=8, show_progress=False,
                        on_event=events.append)
    _same_as_fresh_build(other, tif, enc, tmp_path, "ref96.idx", 96)
    assert len(events) == 1 and "other interrupted builds" in events[0] and "kept" in events[0]
    assert len(list((tmp_path / "map.idx.parts").glob("*/chunk_*.npy"))) == 2     # the 64 m build's, kept
    again = _CountingEncoder(enc)
    resumed = build_index(tif, again, out, tile_size=64, chunk_tiles=16, batch_size=8, show_progress=False)
    assert again.images == 63 - 32                                                   # it resumed
    _same_as_fresh_build(resumed, tif, enc, tmp_path, "ref64.idx", 64)
    assert not (tmp_path / "map.idx.parts").exists()


@pytest.mark.parametrize("world, fragment", [
    (f"nan\n0\n0\n{-DLAT}\n{LON0}\n{LAT0}\n", "non-finite"),
    (f"{DLON}\n0\n0\n{-DLAT}\ninf\n{LAT0}\n", "non-finite"),
    (f"{DLON}\n0\n0\n{-DLAT}\n{LON0}\n147\n", "not on Earth"),
    (f"{DLON}\n0\n0\n{-DLAT}\n200\n{LAT0}\n", "not on Earth"),
    ("2\n0\n0\n-2\n465000\n5246000\n", "projected coordinates need --crs"),
])
def test_world_file_georeferencing_must_be_finite_and_on_earth(tmp_path, world, fragment):
    """Finding D: these built an index of "25 tiles of nan m"; now one line naming the world file."""
    png = tmp_path / "ortho.png"
    write_image(png, textured_map(100, 200))
    (tmp_path / "ortho.pgw").write_text(world)
    with pytest.raises(CvglError, match=fragment) as err:
        read_map(png)
    assert "world file" in str(err.value) and "ortho.pgw" in str(err.value) and "\n" not in str(err.value)


def test_geotiff_corners_and_crs_must_be_on_earth(tmp_path):
    path = tmp_path / "far.tif"
    write_geotiff(path, textured_map(64, 64), (DLON, 0.0, LON0, 0.0, -DLAT, 147.0))
    with pytest.raises(CvglError, match="GeoTIFF .*far.tif.*not on Earth"):
        read_map(path)
    png = tmp_path / "ortho.png"
    write_image(png, textured_map(64, 64))
    for text in ("47.4,8.5,47.3,inf", "nan,8.5,47.3,8.6", "47.4,-190,47.3,8.6"):
        with pytest.raises(CvglError, match="--corners"):
            read_map(png, corners=text)
    (tmp_path / "ortho.pgw").write_text("2\n0\n0\n-2\n465000\n5246000\n")
    with pytest.raises(CvglError, match="--crs EPSG:999999: unknown coordinate reference system"):
        read_map(png, crs="EPSG:999999")
    assert 47.3 < read_map(png, crs="EPSG:32632").origin[0] < 47.4


def test_tile_size_and_overlap_must_be_finite(tmp_path):
    gm = read_map(_geotiff(tmp_path))
    for size, overlap, name in ((math.nan, 0.5, "--tile-size"), (math.inf, 0.5, "--tile-size"),
                                (-5.0, 0.5, "--tile-size"), (64, math.nan, "--overlap"), (64, -1, "--overlap")):
        with pytest.raises(CvglError, match=name):
            plan_tiles(gm, size, overlap)


def test_an_index_with_tiles_off_earth_is_refused(tmp_path):
    """An index built before read_map checked the georeferencing must not reach the loop."""
    from cvgl_edge.localize.index import save_index

    path = tmp_path / "map.idx"
    index = build_index(_geotiff(tmp_path), tiny_encoder(), path, tile_size=96, show_progress=False)
    index.tiles["lon"] = np.full_like(index.tiles["lon"], np.nan)
    index.meta = {k: v for k, v in index.meta.items() if k != "checksum"}
    save_index(index, tmp_path / "nan.idx")                      # a valid checksum over NaN positions
    with pytest.raises(CvglError, match="not on Earth"):
        load_index(tmp_path / "nan.idx")


def test_north_up_crop_refuses_a_non_finite_heading_at_once():
    """Finding C: warpAffine with a NaN matrix never returns; run in a child so a hang fails, not blocks."""
    import subprocess
    import sys

    code = ("import numpy as np\nfrom cvgl_edge.data.aerial import north_up_crop\n"
            "img = np.zeros((96, 96, 3), np.uint8)\n"
            "for h in (float('nan'), float('inf')):\n"
            "    try:\n        north_up_crop(img, 64, h)\n        raise SystemExit('no error')\n"
            "    except ValueError:\n        pass\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_frame_crop_of_non_finite_altitude_or_fov_is_unknown():
    from cvgl_edge.data.aerial import frame_crop_px

    assert frame_crop_px(320, 60.0, math.inf, 60.0) is None
    assert frame_crop_px(320, 60.0, math.nan, 60.0) is None
    assert frame_crop_px(320, 60.0, 100.0, 180.0) is None
    assert frame_crop_px(320, 60.0, 100.0, 60.0) == round(60.0 / (200 * math.tan(math.radians(30))) * 320)


def test_hold_output_refuses_a_second_holder_and_leaves_nothing(tmp_path):
    from cvgl_edge.locks import hold_output

    out = tmp_path / "new" / "deeper" / "fixes.jsonl"
    with hold_output(out, "localize run") as lock:
        assert lock == tmp_path / "new" / "deeper" / "fixes.jsonl.lock" and lock.is_file()
        refusal = r"another localize run is writing .*fixes\.jsonl \(lock .* held, pid \d+\)"
        with pytest.raises(CvglError, match=refusal):
            with hold_output(out, "localize run"):
                pass
        assert lock.is_file()                                   # the refused one did not take it away
    assert not (tmp_path / "new").exists()                      # nothing written: folders it made are gone
    with hold_output(out, "localize run"):                      # free again
        out.write_text("x")
    assert out.is_file() and not (out.parent / "fixes.jsonl.lock").exists()


class _NanEncoder(_CountingEncoder):
    """What a model with NaN weights gives: NaN descriptors."""

    def encode(self, images):
        return np.full_like(np.asarray(self.inner.encode(images)), np.nan)


def test_nan_descriptors_never_become_an_index(tmp_path):
    out = tmp_path / "map.idx"
    with pytest.raises(CvglError, match="non-finite values in the tile"):
        build_index(_geotiff(tmp_path), _NanEncoder(tiny_encoder()), out, tile_size=64, overlap=0.5,
                    show_progress=False)
    assert not out.exists()
