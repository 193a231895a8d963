"""The loop end to end on a tiny synthetic mission; sources (realtime drops, camera reconnect); evaluation."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from cvgl_edge.data.images import read_image
from cvgl_edge.errors import CvglError
from cvgl_edge.localize.evaluate import fix_errors, plot_trajectory
from cvgl_edge.data.geomap import read_map
from cvgl_edge.localize.index import build_index
from cvgl_edge.localize.loop import LoopSettings, run_loop
from cvgl_edge.data.mission import MissionSpec, SyntheticMission, read_truth, synthetic_mission
from cvgl_edge.localize.sinks import JsonlSink
from cvgl_edge.localize.sources import CameraSource, FolderSource, LatestFrameReader, SyntheticSource, VideoSource
from tests.support.localize import thumbnail_encoder, tiny_encoder

# A 384 m map, 128x160 frames from 100 m: ~62 m footprint, 1 frame per second at 16 m/s; the last
# 11 frames fly off the map by its nearest edge (their centres beyond it by half a tile).
SPEC = MissionSpec(seed=1, map_px=384, pad_px=256, frames=36, fps=1.0, speed_mps=16.0, altitude_m=100.0,
                   frame_size=(128, 160), exit_fraction=0.3)


@pytest.fixture(scope="module")
def mission_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mission")
    synthetic_mission(out, SPEC, show_progress=False)
    build_index(out / "map.tif", tiny_encoder(), out / "map.idx", tile_size=SPEC.suggested_tile_m, overlap=0.5,
                show_progress=False)
    build_index(out / "map.tif", thumbnail_encoder(), out / "thumbs.idx", tile_size=SPEC.suggested_tile_m,
                overlap=0.75, show_progress=False)
    return out


def test_mission_is_deterministic_and_complete(mission_dir):
    names = {p.name for p in mission_dir.iterdir()}
    assert {"map.tif", "frames", "flight.mp4", "telemetry.csv", "truth.csv", "mission.json"} <= names
    assert len(list((mission_dir / "frames").glob("*.png"))) == SPEC.frames
    again = SyntheticMission(SPEC)
    assert np.array_equal(again.frame(5), read_image(mission_dir / "frames" / "000005.png"))
    assert len(FolderSource(mission_dir / "frames").files) == SPEC.frames
    truth = read_truth(mission_dir / "truth.csv")
    st = again.state(7)
    assert truth[7]["lat"] == pytest.approx(st.lat, abs=1e-7) and truth[7]["heading_deg"] == pytest.approx(
        st.heading_deg, abs=1e-3)
    gm = read_map(mission_dir / "map.tif")
    assert gm.gsd_m == pytest.approx(1.0, rel=1e-3)
    video = VideoSource(mission_dir / "flight.mp4")
    frames = list(video)
    video.close()
    assert len(frames) == SPEC.frames and frames[3].heading_deg == pytest.approx(truth[3]["heading_deg"], abs=1e-3)


def test_loop_tracks_the_flight_and_reports_no_fix_off_the_map(mission_dir, tmp_path):
    from cvgl_edge.localize.index import load_index

    index = load_index(mission_dir / "thumbs.idx")
    mission = SyntheticMission(SPEC)
    sink = JsonlSink(tmp_path / "fixes.jsonl")
    summary = run_loop(index, thumbnail_encoder(), SyntheticSource(mission), [sink],
                       LoopSettings(hfov_deg=SPEC.hfov_deg))
    sink.close()
    records = [json.loads(line) for line in (tmp_path / "fixes.jsonl").read_text().splitlines()]
    assert len(records) == summary.frames == SPEC.frames
    assert records[0]["mode"] == "global" and any(r["mode"] == "window" for r in records)
    inside = [r for r in records if mission.inside_map(r["frame"], margin_px=SPEC.suggested_tile_m / 2)]
    outside = [r for r in records if not mission.inside_map(r["frame"])]
    assert len(inside) >= 15 and len(outside) >= 3
    truth = read_truth(mission_dir / "truth.csv")
    ev = fix_errors(inside, truth)
    assert ev["fix_rate"] >= 0.9 and ev["median_error_m"] < 12.0       # tile 62 m, stride 15 m
    # Past the edge the filter follows its prediction off the map: every frame there is "no fix".
    assert all(r["lat"] is None and r["status"] == "no_fix" for r in outside)
    assert all(r["reason"].startswith("outside the map") and r["state"] == "off_map" for r in outside)
    assert set(records[0]["latency_ms"]) == {"read", "preprocess", "encode", "search", "filter", "total"}
    png = plot_trajectory(tmp_path / "track.png", read_map(mission_dir / "map.tif"), records, truth)
    assert png.stat().st_size > 10_000


def test_loop_with_geossm_runs_every_stage(mission_dir):
    from cvgl_edge.localize.index import load_index

    index = load_index(mission_dir / "map.idx")
    records = []
    summary = run_loop(index, tiny_encoder(), SyntheticSource(SyntheticMission(SPEC)), [],
                       LoopSettings(hfov_deg=SPEC.hfov_deg, max_frames=6), on_record=records.append)
    assert summary.frames == 6 and records[0]["mode"] == "global"
    assert all(r["latency_ms"]["encode"] > 0 and r["searched"] > 0 for r in records)
    assert summary.to_dict()["latency_ms"]["total"]["p50"] > 0


def test_records_carry_capture_time_track_and_the_altitude_given_when_frames_have_none(mission_dir):
    from dataclasses import replace

    from cvgl_edge.localize.index import load_index

    index = load_index(mission_dir / "thumbs.idx")
    frames = (replace(f, altitude_m=None) for f in SyntheticSource(SyntheticMission(SPEC)))
    records = []
    run_loop(index, thumbnail_encoder(), frames, [], LoopSettings(hfov_deg=SPEC.hfov_deg, altitude_m=95.0, max_frames=5),
             on_record=records.append)
    assert all(r["altitude_m"] == 95.0 for r in records)          # --altitude, not None (was: 2-D GPS fixes)
    assert all(r["captured_unix"] <= r["wall_time"] for r in records)
    assert all("track" in r and "sigma_v_mps" in r for r in records)


def test_loop_refuses_another_model(mission_dir):
    from cvgl_edge.localize.index import load_index

    with pytest.raises(CvglError, match="another model"):
        run_loop(load_index(mission_dir / "map.idx"), tiny_encoder(seed=3), [], [])


def test_latest_frame_reader_drops_stale_frames():
    from cvgl_edge.localize.sources import Frame

    produced = iter(range(40))

    def grab():
        i = next(produced, None)
        return None if i is None else Frame(np.zeros((4, 4, 3), np.uint8), i, i / 100.0)

    reader = LatestFrameReader(grab, None, pace_fps=100.0)
    seen = []
    for frame in reader:
        seen.append((frame.index, frame.dropped))
        time.sleep(0.05)                             # a slow encoder: 20 fps against a 100 fps source
    reader.close()
    indices = [i for i, _ in seen]
    assert indices == sorted(indices) and indices[-1] == 39
    assert len(seen) < 20 and sum(d for _, d in seen) == 40 - len(seen)


class _FakeCapture:
    """A camera that gives ``good`` frames, then fails; reopening works after ``broken`` attempts."""

    opens = 0

    def __init__(self, good=3, broken=2):
        self.good, self.broken = good, broken

    def isOpened(self):
        return _FakeCapture.opens == 1 or _FakeCapture.opens > 1 + self.broken

    def read(self):
        if self.good <= 0:
            return False, None
        self.good -= 1
        return True, np.full((8, 8, 3), self.good, np.uint8)

    def release(self):
        pass


def test_camera_reconnects_with_backoff():
    events = []

    def opener(_device):
        _FakeCapture.opens += 1
        return _FakeCapture()

    _FakeCapture.opens = 0
    cam = CameraSource("0", opener=opener, give_up_s=5.0, on_event=events.append)
    cam.reader.backoff_s = 0.01
    got = []
    for frame in cam:
        got.append(frame)
        if len(got) == 5:
            break
    cam.close()
    assert len(got) == 5 and cam.reader.reconnects >= 1
    assert any("reconnecting" in e for e in events) and any("reconnected" in e for e in events)


def test_camera_that_cannot_be_opened():
    class Closed:
        def isOpened(self):
            return False

    with pytest.raises(CvglError, match="cannot open camera 7"):
        CameraSource("7", opener=lambda d: Closed())


def test_camera_lost_for_good_ends_with_one_line():
    class Dead(_FakeCapture):
        def isOpened(self):
            return _FakeCapture.opens == 1

    def opener(_device):
        _FakeCapture.opens += 1
        return Dead(good=1)

    _FakeCapture.opens = 0
    cam = CameraSource("0", opener=opener, give_up_s=0.3)
    cam.reader.backoff_s = 0.05
    with pytest.raises(CvglError, match="lost and not back"):
        list(cam)
    cam.close()


def test_similarity_split_suggests_a_floor_between_correct_and_wrong():
    from cvgl_edge.localize.evaluate import similarity_split

    # Tiles 0..3 at 0, 100, 200, 300 m east of the truth point (lat/lon at 47.37, 8.54).
    lon = 8.54 + np.arange(4) * 100.0 / (111_320.0 * math.cos(math.radians(47.37)))
    lat = np.full(4, 47.37)
    truth = {i: {"lat": 47.37, "lon": 8.54} for i in range(8)}
    records = [{"frame": i, "tile": 0, "similarity": 0.8 + 0.01 * i} for i in range(4)]      # correct
    records += [{"frame": 4 + i, "tile": 1 + i % 3, "similarity": 0.3 + 0.05 * i} for i in range(4)]  # wrong
    split = similarity_split(records, truth, lat, lon, radius_m=30.0)
    assert split["correct"] == 4 and split["wrong"] == 4
    assert 0.45 < split["suggested_min_similarity"] <= 0.8
    assert split["correct_kept"] == 1.0 and split["wrong_kept"] == 0.0


def test_exit_leg_puts_the_last_frames_off_the_map():
    mission = SyntheticMission(SPEC)
    n_exit = round(SPEC.frames * SPEC.exit_fraction)
    half_tile = 0.5 * SPEC.suggested_tile_m
    assert all(not mission.inside_map(i, margin_px=-half_tile + 1e-6) for i in range(SPEC.frames - n_exit, SPEC.frames))
    assert mission.inside_map(SPEC.frames - n_exit - 1 - int(half_tile // 16) - 1)


def test_exit_leg_that_cannot_reach_the_edge_is_a_clear_error():
    from cvgl_edge.errors import CvglError

    with pytest.raises(CvglError, match="too few frames to reach the map edge"):
        SyntheticMission(MissionSpec(seed=1, map_px=384, pad_px=256, frames=20, fps=5.0, speed_mps=5.0,
                                     altitude_m=100.0, frame_size=(128, 160), exit_fraction=0.3))
    with pytest.raises(CvglError, match="past the map edge"):
        SyntheticMission(MissionSpec(seed=1, map_px=384, pad_px=64, frames=36, fps=1.0, speed_mps=16.0,
                                     altitude_m=100.0, frame_size=(128, 160), exit_fraction=0.3))


def test_camera_timeout_reaches_the_camera_and_zero_waits_for_ever(monkeypatch):
    """Finding F: the 30 s give-up was fixed in the code; `localize --camera-timeout` sets it (0: for ever)."""
    import cv2

    from cvgl_edge.localize.sources import open_source

    def opener(_device):
        _FakeCapture.opens = 1
        return _FakeCapture(good=10**6)

    monkeypatch.setattr(cv2, "VideoCapture", opener)
    for given, expected in ((0, math.inf), (7.5, 7.5), (30.0, 30.0)):
        cam = open_source("camera:0", camera_timeout_s=given)
        try:
            assert cam.reader.give_up_s == expected
        finally:
            cam.close()
    for bad in (-1.0, math.nan):
        with pytest.raises(CvglError, match="--camera-timeout"):
            open_source("camera:0", camera_timeout_s=bad)


def test_camera_waits_for_ever_with_an_infinite_timeout():
    """A camera back only after ~0.15 s of failed reopens: lost for good under a 0.05 s limit,
    picked up again without one (``--camera-timeout 0``)."""
    def run(give_up_s):
        def opener(_device):
            _FakeCapture.opens += 1
            return _FakeCapture(good=2, broken=6)

        _FakeCapture.opens = 0
        cam = CameraSource("0", opener=opener, give_up_s=give_up_s)
        cam.reader.backoff_s = cam.reader.backoff_max_s = 0.025
        got = []
        try:
            for frame in cam:
                got.append(frame)
                if len(got) == 3:
                    break
        finally:
            cam.close()
        return got, cam.reader

    with pytest.raises(CvglError, match="lost and not back"):
        run(0.05)
    got, reader = run(math.inf)
    assert len(got) == 3 and reader.reconnects >= 1 and reader.error is None


def _frames_folder(mission_dir, tmp_path, n=6, corrupt=(2,), telemetry=None):
    """The first ``n`` mission frames in a folder, some replaced by garbage, with their telemetry."""
    import shutil

    folder = tmp_path / "frames"
    folder.mkdir(parents=True)
    for i in range(n):
        target = folder / f"{i:06d}.png"
        if i in corrupt:
            target.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            shutil.copy(mission_dir / "frames" / f"{i:06d}.png", target)
    lines = (mission_dir / "telemetry.csv").read_text().splitlines()[: n + 1]
    for i, row in (telemetry or {}).items():
        lines[i + 1] = row
    (folder / "telemetry.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_a_corrupt_frame_is_skipped_and_counted(mission_dir, tmp_path):
    """Finding F: one corrupt image used to end the whole flight (exit 2)."""
    from cvgl_edge.localize.index import load_index

    events = []
    source = FolderSource(_frames_folder(mission_dir, tmp_path, corrupt=(0, 3)), fps=1.0, on_event=events.append)
    records = []
    summary = run_loop(load_index(mission_dir / "thumbs.idx"), thumbnail_encoder(), source, [],
                       LoopSettings(hfov_deg=SPEC.hfov_deg), on_record=records.append)
    assert [r["frame"] for r in records] == [1, 2, 4, 5]          # frame numbers still match the truth
    assert summary.skipped == 2 and summary.to_dict()["skipped"] == 2 and summary.frames == 4
    assert len(events) == 2 and "skipped frame 0" in events[0] and "cannot decode" in events[0]
    with pytest.raises(CvglError, match="all 2 were unreadable"):
        run_loop(load_index(mission_dir / "thumbs.idx"), thumbnail_encoder(),
                 FolderSource(_frames_folder(mission_dir, tmp_path / "bad", n=2, corrupt=(0, 1))), [])


def test_non_finite_telemetry_is_unknown_for_that_frame(mission_dir, tmp_path):
    """Findings C and E: inf altitude, NaN time in telemetry.csv are unknown for the frame; the run goes on
    and every record stays valid JSON (NaN headings: see test_localize_cli, run in a child with a timeout)."""
    from cvgl_edge.localize.index import load_index

    folder = _frames_folder(mission_dir, tmp_path, corrupt=(), telemetry={1: "1,1.0,10.0,inf", 2: "2,nan,10.0,100"})
    sink = JsonlSink(tmp_path / "fixes.jsonl")
    summary = run_loop(load_index(mission_dir / "thumbs.idx"), thumbnail_encoder(), FolderSource(folder, fps=1.0),
                       [sink], LoopSettings(hfov_deg=SPEC.hfov_deg, altitude_m=90.0))
    sink.close()
    records = [json.loads(line) for line in (tmp_path / "fixes.jsonl").read_text().splitlines()]
    assert len(records) == summary.frames == 6 and summary.telemetry_ignored == 2
    assert records[1]["telemetry_ignored"] == {"altitude_m": "inf"} and records[1]["altitude_m"] == 90.0
    assert records[2]["telemetry_ignored"] == {"t": "nan"} and records[2]["t"] == 2.0    # the folder's clock
    assert records[0]["telemetry_ignored"] == {} and records[0]["altitude_m"] != 90.0


def test_loop_settings_are_range_checked():
    """Finding E: the loop's options, one line each (shared by `localize` and the library)."""
    for kwargs, fragment in (({"hfov_deg": -30.0}, "--hfov"), ({"hfov_deg": 180.0}, "--hfov"),
                             ({"altitude_m": -150.0}, "--altitude"), ({"altitude_m": math.inf}, "--altitude"),
                             ({"heading_deg": math.nan}, "--heading"), ({"min_similarity": 5.0}, "not a cosine"),
                             ({"min_similarity": math.nan}, "not a cosine")):
        with pytest.raises(CvglError, match=fragment):
            LoopSettings(**kwargs).check()
    assert LoopSettings(hfov_deg=179.0, altitude_m=1.0, heading_deg=-720.0, min_similarity=-1.0).check()


def test_mission_tilt_must_keep_the_horizon_out_of_the_frame():
    """Finding E: --tilt 90 put the viewed point 1e13 degrees away."""
    spec = MissionSpec()
    assert 60.0 < spec.max_tilt_deg() < 70.0          # 240x320 frames, 60 deg hfov: 90 - 23.4 deg
    assert MissionSpec(tilt_deg=45.0).tilt_deg == 45.0
    for tilt in (90.0, 89.0, spec.max_tilt_deg(), -1.0, math.nan):
        with pytest.raises(CvglError, match="--tilt"):
            MissionSpec(tilt_deg=tilt)
    with pytest.raises(CvglError, match="--tilt"):     # the viewed point beyond the rendered world
        MissionSpec(tilt_deg=40.0, pad_px=50)
    for kwargs in ({"fps": 0.0}, {"fps": math.nan}, {"altitude_m": -1.0}, {"speed_mps": math.inf}):
        with pytest.raises(CvglError):
            MissionSpec(**kwargs)


def test_truth_needs_frame_lat_lon_columns(tmp_path):
    """Finding E: a truth file with other columns gave "median None m"."""
    bad = tmp_path / "truth.csv"
    bad.write_text("frame,x,y\n0,1,2\n")
    with pytest.raises(CvglError, match="lacks column\\(s\\) lat, lon \\(has frame, x, y\\)"):
        read_truth(bad)
    bad.write_text("frame,lat,lon\n0,47.3,abc\n")
    with pytest.raises(CvglError, match="line 2: not a number"):
        read_truth(bad)
    bad.write_text("frame,lat,lon,view_lat\n0,47.3,8.5,47.3\n")
    with pytest.raises(CvglError, match="view_lon"):
        read_truth(bad)
    bad.write_text("frame,lat,lon\n3,47.3,8.5\n")
    assert read_truth(bad) == {3: {"lat": 47.3, "lon": 8.5}}
