"""The command line as a user meets it: help texts, one-line errors, JSON output."""

import json

import torch

from cvgl_edge.models import build_model
from cvgl_edge.models.checkpoint import checkpoint_payload
from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY

COMMANDS = ["train", "eval", "demo", "models", "doctor", "export", "verify", "distil"]


def test_every_command_has_help():
    top = cli("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout
        result = cli(command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, command


def test_missing_checkpoint(tmp_path):
    assert_one_line_error(cli("eval", str(tmp_path / "nope.pt")), "checkpoint not found")


def test_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    assert_one_line_error(cli("eval", str(bogus)), "cannot read checkpoint")


def test_unknown_model_and_bad_options(tmp_path):
    assert_one_line_error(cli("train", "--model", "geossm-huge", "--out", str(tmp_path)), "geossm-huge")
    assert_one_line_error(cli("train", "--data", "kitti:/x", "--out", str(tmp_path)), "kitti")
    assert_one_line_error(cli("train", "--ground-size", "128by512", "--out", str(tmp_path)), "--ground-size")
    assert_one_line_error(cli("train", "--optimizer", "lion", "--out", str(tmp_path)), "lion")
    assert_one_line_error(cli("train", "--set", "depth=x", "--out", str(tmp_path)), "depth must be an integer")
    assert_one_line_error(cli("train", "--device", "cuda:7", "--out", str(tmp_path)), "cuda")
    assert_one_line_error(cli("train", "--data", f"cvusa:{tmp_path / 'missing'}", "--out", str(tmp_path)), "missing")


def test_eval_writes_json(tmp_path):
    model = build_model("geossm-nano", **TINY)
    checkpoint = tmp_path / "model.pt"
    payload = checkpoint_payload(model)
    payload["train_config"] = {"data": "synthetic:64", "polar": False}
    torch.save(payload, checkpoint)
    out = tmp_path / "metrics.json"
    result = cli("eval", str(checkpoint), "--json", str(out), "--no-progress", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    for key in ("R@1", "R@5", "R@10", "R@1%"):
        assert 0.0 <= record[key] <= 100.0
    assert record["pairs"] == 200 and record["data"] == "synthetic:64"
    assert set(record["directions"]) == {"ground->satellite", "satellite->ground"}


def test_models_and_doctor_json():
    models = json.loads(cli("models", "--json").stdout)
    small = next(m for m in models if m["name"] == "geossm-small")
    assert small["descriptor_dim"] == 6144
    report = json.loads(cli("doctor", "--json").stdout)
    assert report["torch"] == torch.__version__
    assert "chunked" in report["scan backends available"]
    # one line per compiled or optional scan backend: available, or unavailable and why
    for name in ("cpp", "cuda", "native"):
        assert report[f"scan backend {name}"].startswith(("available", "unavailable: ")), name
    if not torch.cuda.is_available():
        assert report["scan backend native"] == "unavailable: no CUDA device"


def test_train_and_eval_on_a_cvusa_tree(tmp_path):
    from tests.support.fake_datasets import make_cvusa

    root = make_cvusa(tmp_path / "CVUSA", n_train=8, n_val=4)
    common = ["--data", f"cvusa:{root}", "--no-progress", "--device", "cpu"]
    sizes = ["--ground-size", "32x128", "--satellite-size", "64x64", "--set", "depth=1", "--set", "embed_dim=32"]
    run = cli("train", *common, *sizes, "--batch-size", "4", "--max-steps", "2", "--out", str(tmp_path / "run"),
              "--json", str(tmp_path / "train.json"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((tmp_path / "train.json").read_text())["steps"] == 2
    out = tmp_path / "m.json"
    ev = cli("eval", str(tmp_path / "run" / "last.pt"), "--json", str(out), "--no-progress", "--device", "cpu")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(out.read_text())["pairs"] == 4

    corrupt = next((root / "streetview" / "panos").glob("*.jpg"))
    corrupt.write_bytes(b"\xff\xd8 truncated")
    for workers in ("0", "1"):
        bad = cli("train", *common, *sizes, "--batch-size", "4", "--max-steps", "2", "--workers", workers,
                  "--out", str(tmp_path / f"bad{workers}"))
        assert_one_line_error(bad, corrupt.name)


def test_assignment_values_are_typed():
    from cvgl_edge.cli_options import parse_assignments

    assert parse_assignments(["depth=6", "share-weights=false", "readout=mean", "ground_size=(64, 256)"], "--set") == {
        "depth": 6, "share_weights": False, "readout": "mean", "ground_size": (64, 256)}
