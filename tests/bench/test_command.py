"""`cvgl-edge bench` end to end on a tiny checkpoint: JSON/markdown/PNG outputs and one-line errors."""

import json

import pytest
import torch

from cvgl_edge.models import build_model, save_checkpoint
from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY

STAGE_KEYS = {"n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms"}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bench") / "tiny.pt"
    save_checkpoint(build_model("geossm-nano", **TINY), path)
    return path


@pytest.mark.slow  # exports two ONNX branches and runs both backends: ~30-60 s on 2 busy cores
def test_bench_two_backends_writes_the_documented_record(tiny_checkpoint, tmp_path):
    out, md = tmp_path / "out.json", tmp_path / "out.md"
    result = cli("bench", str(tiny_checkpoint), "--backend", "torch,onnxruntime,tensorrt", "--batch-sizes", "1,2",
                 "--runs", "3", "--warmup", "1", "--eval-pairs", "8", "--artifacts", str(tmp_path / "artifacts"),
                 "--json", str(out), "--markdown", str(md), "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped tensorrt fp32" in result.stderr
    record = json.loads(out.read_text())
    for key in ("schema", "command", "date", "machine", "model", "settings", "cost", "summary", "variants",
                "skipped", "preprocess", "accuracy_set", "anchors"):
        assert key in record, key
    assert record["command"].startswith("cvgl-edge bench ")
    assert "--backend torch,onnxruntime,tensorrt" in record["command"]
    assert record["machine"]["usable_cores"] >= 1 and "load_average_before" in record["machine"]
    assert record["machine"]["versions"]["torch"] == torch.__version__
    assert [s["variant"] for s in record["skipped"]] == ["tensorrt fp32"]
    assert [v["name"] for v in record["variants"]] == ["torch fp32", "onnxruntime fp32"]
    ort = record["variants"][1]
    assert set(ort["artifacts"]["exported"]) == {"ground", "satellite"}
    assert all(ort["encoders"][view]["backend"] == "onnxruntime" for view in ("ground", "satellite"))
    for variant in record["variants"]:
        cells = {(c["branch"], c["batch"]): c for c in variant["cells"]}
        assert set(cells) == {("ground", 1), ("ground", 2), ("satellite", 1), ("satellite", 2)}
        for cell in cells.values():
            assert cell["runs"] == 3 and set(cell["encoder_ms"]) == STAGE_KEYS
            assert cell["encoder_ms"]["p50_ms"] > 0 and cell["throughput_per_s"] > 0
            assert cell["memory"]["peak_rss_mb"] > 0 and cell["nonfinite_runs"] == 0
            assert cell["speedup_vs_first"] > 0
        accuracy = variant["accuracy"]
        assert 0 <= accuracy["R@1"] <= 100 and accuracy["finite"]
    assert record["variants"][1]["accuracy"]["cosine_vs_first"]["ground"]["min"] > 0.999  # ORT fp32 == PyTorch
    cost = record["cost"]
    assert cost["params_total"] > 0 and cost["branches"]["ground"]["flops"] > 0 and cost["flop_convention"]
    for row in record["summary"]:
        assert row["query_p50_ms"] > 0 and row["tile_p50_ms"] > 0 and row["queries_per_s"] > 0
        assert row["params_total_m"] > 0 and row["gflops_per_query"] > 0 and row["peak_rss_mb"] > 0
    assert record["preprocess"]["ground"]["per_image"]["total"]["p50_ms"] > 0
    assert record["accuracy_set"]["pairs"] == 8 and record["model"]["random_weights"] is False
    assert any(a["method"].startswith("GeoSSM") for a in record["anchors"])
    assert "## Summary" in md.read_text() and md.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

    again = cli("bench", str(tiny_checkpoint), "--backend", "onnxruntime", "--branch", "ground", "--batch-sizes", "1",
                "--runs", "1", "--warmup", "0", "--eval-pairs", "0", "--artifacts", str(tmp_path / "artifacts"),
                "--json", "-", "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert second["variants"][0]["artifacts"]["reused"] == ["ground", "satellite"]
    assert second["variants"][0]["accuracy"] is None and second["settings"]["branches"] == ["ground"]


def test_bench_a_preset_says_its_weights_are_random(tmp_path):
    result = cli("bench", "--model", "geossm-nano", "--set", "depth=1", "--set", "embed_dim=32",
                 "--set", "ground_size=(32, 128)", "--set", "satellite_size=(64, 64)", "--batch-sizes", "1",
                 "--branch", "ground", "--runs", "2", "--warmup", "0", "--eval-pairs", "0", "--json", "-",
                 "--no-progress",
                 "--estimate", "orin-nano")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "random (seeded preset) weights" in result.stderr
    record = json.loads(result.stdout)
    assert record["model"]["random_weights"] is True and record["model"]["preset"] == "geossm-nano"
    assert record["estimates"] and all(e["kind"].startswith("estimate") for e in record["estimates"])


@pytest.mark.parametrize("args, fragment", [
    (["--backend", "tvm"], "unknown --backend 'tvm'"),
    (["--precision", "fp8"], "unknown --precision 'fp8'"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
    (["--estimate", "orin-mega"], "orin-mega"),
])
def test_bench_unknown_options_are_one_line_errors(tiny_checkpoint, args, fragment):
    assert_one_line_error(cli("bench", str(tiny_checkpoint), *args, "--no-progress"), fragment)


def test_bench_refusals_before_any_work(tmp_path, tiny_checkpoint):
    assert_one_line_error(cli("bench", "--no-progress"), "CHECKPOINT or --model")
    assert_one_line_error(cli("bench", str(tmp_path / "missing.pt")), "checkpoint not found")
    if not torch.cuda.is_available():
        assert_one_line_error(cli("bench", str(tiny_checkpoint), "--device", "cuda"), "no CUDA GPU")
        assert_one_line_error(cli("bench", str(tiny_checkpoint), "--backend", "tensorrt"), "no variant can run here")
