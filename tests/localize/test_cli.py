"""`cvgl-edge index mission|build|info` and `cvgl-edge localize` end to end, and their one-line errors.

The commands run in-process through ``cvgl_edge.cli.main`` (the console script's entry point),
so the test pays for importing torch once; one error also goes through a real subprocess.
Every refused run is checked to leave no output file behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cvgl_edge.data.images import write_image
from cvgl_edge.models import save_checkpoint
from tests.support.localize import textured_map, tiny_model
from tests.support.cli import assert_one_line_error, cli

# 192 m map, 240x320 frames from 100 m (58 m tiles), 6 frames at 1 fps: ~36 tiles, a few seconds.
MISSION_ARGS = ["--map-px", "192", "--frames", "6", "--fps", "1", "--speed", "16", "--altitude", "100",
                "--no-video", "--no-progress"]


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


def run(capsys, *args: str) -> Result:
    """Run ``cvgl-edge ARGS`` in-process (same entry point as the console script)."""
    from cvgl_edge.cli import main

    capsys.readouterr()
    argv = sys.argv
    sys.argv = ["cvgl-edge", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_refused(result: Result, fragment: str, *must_not_exist: Path) -> None:
    assert_one_line_error(result, fragment)
    for path in must_not_exist:
        assert not path.exists(), f"{path} was written by a refused run"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A small mission, a TINY checkpoint and an index of the mission's map (built by the CLI)."""
    root = tmp_path_factory.mktemp("loc_cli")
    save_checkpoint(tiny_model(0), root / "tiny.pt")
    save_checkpoint(tiny_model(3), root / "other.pt")
    return root


def test_mission_build_info_localize_eval(workdir, capsys):
    mission, idx = workdir / "mission", workdir / "map.idx"
    r = run(capsys, "index", "mission", "--out", mission, "--seed", "2", *MISSION_ARGS)
    assert r.returncode == 0, r.stderr
    assert "--tile-size 58" in r.stderr
    assert len(list((mission / "frames").glob("*.png"))) == 6 and (mission / "truth.csv").is_file()

    r = run(capsys, "index", "build", "--map", mission / "map.tif", "--checkpoint", workdir / "tiny.pt",
            "--out", idx, "--tile-size", "58", "--threads", "1", "--no-progress", "--json", workdir / "build.json")
    assert r.returncode == 0, r.stderr
    built = json.loads((workdir / "build.json").read_text())
    assert built["tiles"] == 36 and built["kind"] == "flat" and built["tile_size_m"] == pytest.approx(58, abs=1)
    assert not (workdir / "map.idx.parts").exists()

    r = run(capsys, "index", "info", idx)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["tiles"] == 36 and info["model_sha256"] == built["model_sha256"] and info["checksum"]

    fixes, summary = workdir / "fixes.jsonl", workdir / "run.json"
    r = run(capsys, "localize", "--index", idx, "--source", "synthetic", "--out", fixes, "--hfov", "60",
            "--threads", "1", "--eval", "--json", summary, "--no-progress")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in fixes.read_text().splitlines()]
    assert [rec["frame"] for rec in records] == list(range(6))
    assert records[0]["mode"] == "global" and set(records[0]["latency_ms"]) >= {"encode", "search", "total"}
    result = json.loads(summary.read_text())
    assert result["frames"] == 6 and result["backend"] == "torch" and result["fps"] > 0
    assert result["model"] == str((workdir / "tiny.pt").resolve())    # default: the index's model
    ev = result["eval"]
    assert ev["frames"] == 6 and 0.0 <= ev["fix_rate"] <= 1.0
    assert Path(ev["plot"]).stat().st_size > 5_000 and ev["truth"].endswith("truth.csv")
    assert ev["similarity"]["correct"] + ev["similarity"]["wrong"] == 6

    # A best-match floor stored in the index: frames whose best cosine is below it get no measurement.
    floor = float(np.median([rec["similarity"] for rec in records]))
    r = run(capsys, "index", "set", idx, "--min-similarity", f"{floor:.6f}")
    assert r.returncode == 0, r.stderr
    r = run(capsys, "localize", "--index", idx, "--source", "synthetic", "--out", fixes, "--hfov", "60",
            "--threads", "1", "--json", summary, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads(summary.read_text())["min_similarity"] == pytest.approx(floor, abs=1e-6)
    floored = [json.loads(line) for line in fixes.read_text().splitlines()]
    assert all(rec["similarity"] >= floor - 1e-6 for rec in floored if rec["status"] == "fix")
    assert any("below" in rec["reason"] for rec in floored)
    assert_one_line_error(run(capsys, "index", "set", idx, "--min-similarity", "2"), "not a cosine")
    run(capsys, "index", "set", idx, "--clear-min-similarity")


def test_map_errors_leave_nothing(workdir, capsys, tmp_path):
    out = tmp_path / "map.idx"
    garbage = tmp_path / "broken.tif"
    garbage.write_bytes(b"II*\x00not a tiff")
    ckpt = workdir / "tiny.pt"
    assert_refused(run(capsys, "index", "build", "--map", garbage, "--checkpoint", ckpt, "--out", out),
                   "cannot read map", out, tmp_path / "map.idx.parts")
    bare = tmp_path / "bare.png"
    write_image(bare, textured_map(64, 64))
    assert_refused(run(capsys, "index", "build", "--map", bare, "--checkpoint", ckpt, "--out", out),
                   "no georeferencing", out, tmp_path / "map.idx.parts")
    assert_refused(run(capsys, "index", "build", "--map", tmp_path / "none.tif", "--checkpoint", ckpt, "--out", out),
                   "map not found", out)
    assert_refused(run(capsys, "index", "info", tmp_path / "none.idx"), "index not found")


def test_localize_errors_leave_nothing(workdir, capsys, tmp_path):
    idx = workdir / "map.idx"
    if not idx.is_file():
        pytest.skip("needs the index of test_mission_build_info_localize_eval")
    fixes, summary = tmp_path / "fixes.jsonl", tmp_path / "run.json"
    common = ["--index", idx, "--out", fixes, "--json", summary, "--no-progress"]
    assert_refused(run(capsys, "localize", *common, "--source", "camera:57"),
                   "cannot open camera 57", fixes, summary)
    link = ["--source", "synthetic", "--ground-elevation", "400"]
    assert_refused(run(capsys, "localize", *common, *link, "--mavlink", "tcp:127.0.0.1:9"),
                   "cannot open MAVLink URL tcp:127.0.0.1:9", fixes, summary)
    assert_refused(run(capsys, "localize", *common, *link, "--mavlink", "udpout:nohost"),
                   "needs HOST:PORT", fixes, summary)
    assert_refused(run(capsys, "localize", *common, "--source", "synthetic", "--mavlink", "udpout:127.0.0.1:14550"),
                   "--mavlink needs --ground-elevation", fixes, summary)
    assert_refused(run(capsys, "localize", *common, *link, "--mavlink", "udpout:127.0.0.1:14550", "--autopilot", "px4",
                       "--mavlink-messages", "gps_input"), "gps_input has no handler in PX4", fixes, summary)
    assert_refused(run(capsys, "localize", *common, "--source", "synthetic", "--model", workdir / "other.pt"),
                   "another model", fixes, summary)
    assert_refused(run(capsys, "localize", *common, "--source", tmp_path / "nowhere"),
                   "--source not found", fixes, summary)


def test_camera_error_is_one_line_from_the_console_script(workdir, tmp_path):
    """A real process: OpenCV's own warnings about the missing camera must not reach the user."""
    idx = workdir / "map.idx"
    if not idx.is_file():
        pytest.skip("needs the index of test_mission_build_info_localize_eval")
    fixes = tmp_path / "fixes.jsonl"
    result = cli("localize", "--index", str(idx), "--source", "camera:57", "--out", str(fixes), "--no-progress")
    assert_one_line_error(result, "cannot open camera 57")
    assert not fixes.exists()


def _index_or_skip(workdir) -> Path:
    idx = workdir / "map.idx"
    if not idx.is_file():
        pytest.skip("needs the index of test_mission_build_info_localize_eval")
    return idx


def test_localize_options_out_of_range_are_one_line_before_work(workdir, capsys, tmp_path):
    """Finding E (and C for --heading nan): each refused in one line, nothing written."""
    idx = _index_or_skip(workdir)
    fixes, summary = tmp_path / "fixes.jsonl", tmp_path / "run.json"
    common = ["--index", idx, "--source", "synthetic", "--out", fixes, "--json", summary, "--no-progress"]
    for args, fragment in ((["--min-similarity", "5"], "--min-similarity 5.0 is not a cosine"),
                           (["--hfov", "-30"], "--hfov -30.0: must be between 0 and 180"),
                           (["--hfov", "180"], "--hfov 180.0: must be between 0 and 180"),
                           (["--altitude", "-150"], "--altitude -150.0: must be a finite number above 0"),
                           (["--altitude", "inf"], "--altitude inf"),
                           (["--heading", "nan"], "--heading nan: must be a finite number"),
                           (["--fps", "0"], "--fps 0.0: must be a finite number above 0"),
                           (["--fps", "-1", "--realtime"], "--fps -1.0"),
                           (["--camera-timeout", "-1"], "--camera-timeout -1.0")):
        assert_refused(run(capsys, "localize", *common, *args), fragment, fixes, summary,
                       tmp_path / "fixes.jsonl.lock")
    truth = tmp_path / "truth.csv"
    truth.write_text("frame,x,y\n0,1,2\n")
    assert_refused(run(capsys, "localize", *common, "--eval", "--truth", truth),
                   "lacks column(s) lat, lon (has frame, x, y)", fixes, summary)
    nested = tmp_path / "new" / "fixes.jsonl"                   # refused while holding the lock on it
    assert_refused(run(capsys, "localize", "--index", idx, "--source", "camera:57", "--out", nested, "--no-progress"),
                   "cannot open camera 57", tmp_path / "new")


def test_index_options_out_of_range_are_one_line_before_work(workdir, capsys, tmp_path):
    """Findings D and E: georeferencing off Earth, NaN tiling, unknown CRS, an impossible tilt."""
    ckpt, out = workdir / "tiny.pt", tmp_path / "map.idx"
    png = tmp_path / "ortho.png"
    write_image(png, textured_map(96, 128))
    build = ["index", "build", "--map", png, "--checkpoint", ckpt, "--out", out, "--no-progress"]
    nothing = (out, tmp_path / "map.idx.parts", tmp_path / "map.idx.lock")
    world = tmp_path / "ortho.pgw"
    for text, fragment in (("nan\n0\n0\n-1e-5\n8.5\n47.3\n", "ortho.pgw: georeferencing has non-finite numbers"),
                           ("1e-5\n0\n0\n-1e-5\n8.5\n147\n", "ortho.pgw: georeferencing (lon/lat degrees) puts the map"
                                                             " at lat 146.999..147")):
        world.write_text(text)
        assert_refused(run(capsys, *build), fragment, *nothing)
    world.write_text("1e-5\n0\n0\n-1e-5\n8.5\n47.3\n")
    assert_refused(run(capsys, *build, "--tile-size", "nan"), "--tile-size nan", *nothing)
    assert_refused(run(capsys, *build, "--min-similarity", "5"), "not a cosine", *nothing)
    assert_refused(run(capsys, *build, "--corners", "47.4,8.5,47.3,inf"), "--corners", *nothing)
    world.write_text("1\n0\n0\n-1\n465000\n5246000\n")
    assert_refused(run(capsys, *build, "--crs", "EPSG:999999"), "--crs EPSG:999999: unknown coordinate", *nothing)
    mission = tmp_path / "mission"
    assert_refused(run(capsys, "index", "mission", "--out", mission, "--tilt", "90", *MISSION_ARGS),
                   "--tilt 90.0: must be >= 0 and below", mission)


def test_index_build_into_a_busy_out_is_refused(workdir, capsys, tmp_path):
    """Finding A: a second build on one --out (here: the lock another build holds) is refused in one line."""
    from cvgl_edge.locks import hold_output

    mission = workdir / "mission"
    if not (mission / "map.tif").is_file():
        pytest.skip("needs the mission of test_mission_build_info_localize_eval")
    out = tmp_path / "map.idx"
    with hold_output(out, "index build"):
        result = run(capsys, "index", "build", "--map", mission / "map.tif", "--checkpoint", workdir / "tiny.pt",
                     "--out", out, "--tile-size", "58", "--threads", "1", "--no-progress")
    assert_refused(result, f"another index build is writing {out} (lock {out}.lock held, pid ", out,
                   tmp_path / "map.idx.parts")
    assert not (tmp_path / "map.idx.lock").exists()                  # removed by its holder


def _flight_folder(workdir, tmp_path, corrupt=(), telemetry=None) -> Path:
    """The mission's frames in a folder of their own (some garbage), with edited telemetry and the truth."""
    import shutil

    mission = workdir / "mission"
    folder = tmp_path / "flight"
    folder.mkdir()
    for png in sorted((mission / "frames").glob("*.png")):
        target = folder / png.name
        if int(png.stem) in corrupt:
            target.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            shutil.copy(png, target)
    lines = (mission / "telemetry.csv").read_text().splitlines()
    for i, row in (telemetry or {}).items():
        lines[i + 1] = row
    (folder / "telemetry.csv").write_text("\n".join(lines) + "\n")
    shutil.copy(mission / "truth.csv", folder / "truth.csv")
    return folder


def test_nan_telemetry_and_a_corrupt_frame_do_not_stop_localize(workdir, tmp_path):
    """Findings C and F, in a real process with a timeout: NaN heading (an autopilot without yaw) hung
    OpenCV at 100% CPU for ever; one corrupt frame ended the flight with exit 2."""
    import subprocess

    idx = _index_or_skip(workdir)
    folder = _flight_folder(workdir, tmp_path, corrupt=(3,),
                            telemetry={1: "1,1.000,nan,100.00", 2: "2,2.000,inf,inf", 4: "4,4.000,-inf,nan"})
    fixes, summary = tmp_path / "fixes.jsonl", tmp_path / "run.json"
    try:
        result = cli("localize", "--index", str(idx), "--source", str(folder), "--out", str(fixes), "--fps", "1",
                     "--hfov", "60", "--altitude", "90", "--threads", "1", "--eval", "--json", str(summary),
                     "--no-progress", timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("localize hung on NaN telemetry")
    assert result.returncode == 0, result.stderr
    assert "skipped frame 3" in result.stderr and "[ WARN" not in result.stderr
    records = {rec["frame"]: rec for rec in map(json.loads, fixes.read_text().splitlines())}
    assert sorted(records) == [0, 1, 2, 4, 5]
    assert records[1]["telemetry_ignored"] == {"heading_deg": "nan"} and records[1]["heading_deg"] is None
    assert records[2]["telemetry_ignored"] == {"heading_deg": "inf", "altitude_m": "inf"}
    assert records[2]["altitude_m"] == 90.0                           # unknown: --altitude stands in
    assert records[4]["telemetry_ignored"] == {"heading_deg": "-inf", "altitude_m": "nan"}
    assert records[0]["telemetry_ignored"] == {} and records[0]["heading_deg"] is not None
    done = json.loads(summary.read_text())
    assert done["frames"] == 5 and done["skipped"] == 1 and done["telemetry_ignored"] == 3
    assert done["eval"]["frames"] == 5 and "1 skipped (unreadable)" in result.stderr


def test_a_second_localize_on_one_out_is_refused(workdir, capsys, tmp_path):
    """Finding B: two runs on one --out interleaved their lines; the second is now refused in one line
    naming the file, while the first (a real process) runs on undisturbed."""
    import subprocess
    import time

    idx = _index_or_skip(workdir)
    folder = _flight_folder(workdir, tmp_path)
    fixes = tmp_path / "fixes.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "cvgl_edge.cli", "localize", "--index", str(idx), "--source",
                              str(folder), "--out", str(fixes), "--realtime", "--fps", "1", "--hfov", "60",
                              "--threads", "1", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "fixes.jsonl.lock").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.05)
        second = run(capsys, "localize", "--index", idx, "--source", "synthetic", "--out", fixes, "--no-progress",
                     "--threads", "1")
        _, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert_one_line_error(second, f"another localize run is writing {fixes} (lock {fixes}.lock held, pid {first.pid})")
    assert first.returncode == 0, err
    records = [json.loads(line) for line in fixes.read_text().splitlines()]
    frames = [rec["frame"] for rec in records]
    assert frames == sorted(set(frames)) and frames[-1] == 5          # one run's lines only, in order
    assert not (tmp_path / "fixes.jsonl.lock").exists()


def test_no_command_writes_over_its_own_inputs(workdir, capsys, tmp_path):
    """A mistyped --out equal to --map once replaced the user's GeoTIFF with the index."""
    tif = tmp_path / "map.tif"
    tif.write_bytes(b"the user's only copy of the map")
    ckpt = workdir / "tiny.pt"
    before = ckpt.read_bytes()
    assert_refused(run(capsys, "index", "build", "--map", tif, "--checkpoint", ckpt, "--out", tif),
                   "--out " + str(tif) + " is also --map")
    idx = tmp_path / "map.idx"
    idx.write_bytes(b"an index")
    assert_refused(run(capsys, "localize", "--index", idx, "--source", "synthetic", "--out", idx),
                   "--out " + str(idx) + " is also --index")
    assert_refused(run(capsys, "localize", "--index", idx, "--source", "synthetic", "--model", ckpt,
                       "--out", tmp_path / "fixes.jsonl", "--json", ckpt), "--json " + str(ckpt) + " is also --model")
    assert tif.read_bytes() == b"the user's only copy of the map" and idx.read_bytes() == b"an index"
    assert ckpt.read_bytes() == before

