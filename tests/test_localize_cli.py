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
from localize_helpers import textured_map, tiny_model
from test_cli import _assert_one_line_error, cli

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
    _assert_one_line_error(result, fragment)
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
    _assert_one_line_error(run(capsys, "index", "set", idx, "--min-similarity", "2"), "not a cosine")
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
    _assert_one_line_error(result, "cannot open camera 57")
    assert not fixes.exists()
