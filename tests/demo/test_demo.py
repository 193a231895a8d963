"""`cvgl-edge demo` end to end with tiny settings: every stage runs and metrics.json holds every section."""

import json

import pytest

from cvgl_edge.demo import DemoSettings, run_demo
from cvgl_edge.demo.run import METRICS

from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY


def _tiny(out, **kw) -> DemoSettings:
    base = dict(out=str(out), train_pairs=64, steps=2, batch_size=8, drone_pairs=64, drone_steps=2,
                verify_pairs=8, mission_frames=6, mission_map_px=256, show_progress=False, threads=1,
                model_overrides=dict(TINY))
    base.update(kw)
    return DemoSettings(**base)


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(_tiny(out, export_ground=False))  # one ONNX export: the loop's branch


def test_demo_runs_every_stage(tiny_demo):
    out, record = tiny_demo
    assert record["completed"] == ["ground", "drone", "export", "mission", "index", "localize"]
    on_disk = json.loads((out / METRICS).read_text())
    for section in ("drone", "export", "mission", "index", "localize", "summary", "stage_seconds"):
        assert section in on_disk, section
    # ground model: the old top-level record; drone model: queries through the aerial branch
    assert 0 <= on_disk["R@1"] <= 100 and on_disk["steps"] == 2 and on_disk["untrained"]
    assert on_disk["drone"]["query_view"] == "drone" and on_disk["drone"]["data"] == "synthetic-drone:64"
    files = on_disk["export"]["files"]
    assert [(f["model"], f["branch"]) for f in files] == [("drone", "satellite")]
    assert all(f["verification"] == "passed" for f in files)
    assert on_disk["export"]["loop_model"].endswith("geossm-nano-satellite.onnx")
    loc = on_disk["localize"]
    assert loc["backend"] == "onnxruntime" and loc["frames"] == 6
    assert loc["eval"]["frames"] == 6 and (out / "localize" / "fixes.jsonl").is_file()
    assert loc["hfov_deg"] == 60.0  # the synthetic mission's camera reaches the loop's footprint crop
    text = "\n".join(on_disk["summary"])
    assert "R@1" in text and "chance" in text and "PASSED" in text and "median" in text and str(out) in text


def test_resume_skips_finished_stages(tiny_demo):
    out, record = tiny_demo
    again = run_demo(_tiny(out, export_ground=False), resume=True)
    assert again["completed"] == record["completed"]
    assert again["stage_seconds"]["ground"] == record["stage_seconds"]["ground"]  # not re-run
    # a missing file makes its stage run again
    (out / "localize" / "fixes.jsonl").unlink()
    third = run_demo(_tiny(out, export_ground=False), resume=True)
    assert (out / "localize" / "fixes.jsonl").is_file() and third["completed"][-1] == "localize"


def test_demo_without_export_localises_with_pytorch(tmp_path):
    record = run_demo(_tiny(tmp_path, export=False, mission_frames=3))
    assert "export" not in record and record["localize"]["backend"] == "torch"


def test_demo_errors_are_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(cli("demo", "--out", str(blocker / "sub"), "--steps", "1", "--no-progress"), "demo")
