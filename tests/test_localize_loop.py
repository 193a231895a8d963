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
from cvgl_edge.localize.geomap import read_map
from cvgl_edge.localize.index import build_index
from cvgl_edge.localize.loop import LoopSettings, run_loop
from cvgl_edge.localize.mission import MissionSpec, SyntheticMission, read_truth, synthetic_mission
from cvgl_edge.localize.sinks import JsonlSink
from cvgl_edge.localize.sources import CameraSource, FolderSource, LatestFrameReader, SyntheticSource, VideoSource
from localize_helpers import thumbnail_encoder, tiny_encoder

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
