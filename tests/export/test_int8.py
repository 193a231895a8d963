"""INT8 export: QDQ only around MatMul/Conv (scan, norms, reductions float), ORT runs it
with a dynamic batch close to PyTorch, the export verifies it (INT8 thresholds), the
calibration cache is reused, the TensorRT text cache parses, and bad recipes are user errors."""

import json
import math
import os
import subprocess
import sys
import tempfile

import onnx
import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.export.int8 import quantize as int8_quantize
from cvgl_edge.export.scan import contract
from cvgl_edge.export.int8.calibration import choose_indices, load_recipe, recipe_from_dict
from cvgl_edge.export.int8.pipeline import artifact_paths
from cvgl_edge.export.onnx.validate import cosine_rows, ort_session, torch_descriptors
from cvgl_edge.export.pipeline import ExportRequest, run_export
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.export.tensorrt.calibration_cache import parse_trt_cache
from cvgl_edge.models import build_model, save_checkpoint

from tests.support.tiny import TINY
RECIPE = {"name": "test", "dataset": "synthetic:48", "split": "train", "count": 24, "batch_size": 8, "seed": 3}
#: Measured on the tiny random model: cosine min ~0.9998; the bound leaves room for BLAS differences.
MIN_COSINE = 0.995
NORM_OPS = ("Pow", "ReduceMean", "Sqrt", "Reciprocal", "Div", "ReduceL2")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Ground branch of a tiny checkpoint through `cvgl-edge export --precision int8`."""
    import torch

    root = tmp_path_factory.mktemp("int8")
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    checkpoint = save_checkpoint(model, root / "tiny.pt")
    recipe = root / "recipe.json"
    recipe.write_text(json.dumps(RECIPE))
    request = ExportRequest(checkpoint=checkpoint, out=root / "out", branch="ground", precision="int8",
                            check_images=3, calibration=recipe, verify_pairs=40)
    runs_before = int8_quantize.CALIBRATION_RUNS
    # What a calibration killed by SIGKILL left (its scratch folder; the process is gone), and a
    # private system temp dir to see whether the export leaks anything there.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = root / "out" / f".cvgl-int8.{dead.pid}.x1y2.tmp"
    stale.mkdir(parents=True)
    (stale / "fp32.onnx").write_bytes(b"half")
    system_tmp, saved = root / "system-tmp", tempfile.tempdir
    system_tmp.mkdir()
    tempfile.tempdir = str(system_tmp)
    try:
        (report,) = run_export(request)
    finally:
        tempfile.tempdir = saved
    report["_leaks"] = {"stale_scratch_left": stale.exists(), "system_tmp": sorted(n for n in os.listdir(system_tmp) if n.startswith("cvgl")),  # not torch's caches
                        "scratch_in_out": sorted(p.name for p in (root / "out").glob(".cvgl-int8.*"))}
    return model, request, report, int8_quantize.CALIBRATION_RUNS - runs_before


def test_calibration_scratch_stays_beside_the_output_and_a_killed_runs_is_removed(exported):
    leaks = exported[2]["_leaks"]
    assert leaks == {"stale_scratch_left": False, "system_tmp": [], "scratch_in_out": []}


def _graph(report) -> onnx.ModelProto:
    return onnx.load(report["file"])


def test_qdq_around_matmul_and_conv_weights(exported):
    _, _, report, _ = exported
    graph = _graph(report).graph
    dq_out = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    inits = {i.name: i for i in graph.initializer}
    quantized = [n for n in graph.node if n.op_type in ("MatMul", "Conv")]
    assert quantized and all(n.input[0] in dq_out and n.input[1] in dq_out for n in quantized)
    for node in quantized:
        weight = dq_out[node.input[1]]
        assert inits[weight.input[0]].data_type == onnx.TensorProto.INT8
        scale = onnx.numpy_helper.to_array(inits[weight.input[1]])
        assert scale.ndim == 1 and scale.size > 1  # per output channel
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            assert not onnx.numpy_helper.to_array(inits[node.input[2]]).any()  # symmetric
    assert report["qdq"]["float_ops_reading_dq"] == [] and report["qdq"]["scan_inputs_dequantized"] == 0


def test_scan_and_norms_stay_float(exported):
    model, _, report, _ = exported
    graph = _graph(report).graph
    producers = {o: n for n in graph.node for o in n.output}
    scans = [n for n in graph.node if contract.is_scan_node(n)]
    assert len(scans) == 2 * TINY["depth"] == report["scan_nodes"]
    for node in scans:
        for name in node.input:
            assert producers.get(name) is None or producers[name].op_type != "DequantizeLinear"
        for name in (node.input[2], node.input[5], node.input[7]):  # A, D, delta_bias
            assert name not in producers  # plain float initializers, no QDQ
    qdq_types = ("QuantizeLinear", "DequantizeLinear")
    for node in graph.node:
        if node.op_type in NORM_OPS:
            assert all(producers.get(i) is None or producers[i].op_type not in qdq_types for i in node.input)
    assert any(f.name == contract.OP_TYPE for f in _graph(report).functions)


def test_ort_dynamic_batch_close_to_pytorch(exported):
    model, _, report, _ = exported
    session = ort_session(report["file"])
    for batch in (1, 5):
        images = sample_images("ground", TINY["ground_size"], batch, seed=7)
        cos = cosine_rows(session.run(None, {"images": images})[0], torch_descriptors(model, "ground", images))
        assert cos.min() > MIN_COSINE
    assert report["parity"]["cosine_min"] > MIN_COSINE


def test_verified_at_export_with_pytorch_other_branch(exported):
    _, request, report, _ = exported
    record = json.loads((request.out / "geossm-nano-ground.int8.onnx.verify.json").read_text())
    assert record["status"] == "passed" and record["precision"] == "int8"
    assert record["pairs"] == 40 and record["split"] == "val" and record["view"] == "ground"
    assert record["branches"]["satellite"] == "PyTorch"
    assert record["thresholds"] == {"min_cosine": 0.98, "max_r1_drop": 2.0}
    for side in ("pytorch", "artifact", "drop"):
        assert set(record["recall"][side]) == {"R@1", "R@5", "R@1%"}
    assert record["descriptors"]["cosine_min"] > MIN_COSINE
    saved = json.loads(artifact_paths(request.out, "geossm-nano-ground")["report"].read_text())
    assert saved["verification"]["status"] == "passed" and "accuracy" not in saved  # no second recall pass
    assert saved["verification"]["r1_drop"] == record["recall"]["drop"]["R@1"]


def test_calibration_cache_written_and_reused(exported):
    _, request, report, runs = exported
    assert runs == 1 and report["calibration"]["reused_cache"] is False
    paths = artifact_paths(request.out, "geossm-nano-ground")
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["indices"] == choose_indices(recipe_from_dict(RECIPE), 48) and len(manifest["indices"]) == 24
    before = int8_quantize.CALIBRATION_RUNS
    (again,) = run_export(ExportRequest(**{**request.__dict__, "eval_pairs": 0}))
    assert int8_quantize.CALIBRATION_RUNS == before and again["calibration"]["reused_cache"] is True
    assert again["verification"] == {"status": "skipped", "reason": "--eval-pairs 0"}  # the old spelling of --no-verify
    # A different recipe does not match the cache: it recalibrates.
    other = request.out.parent / "other.json"
    other.write_text(json.dumps({**RECIPE, "seed": 4}))
    run_export(ExportRequest(**{**request.__dict__, "verify": False, "calibration": other}))
    assert int8_quantize.CALIBRATION_RUNS == before + 1


def test_trt_cache_lines_parse(exported):
    _, request, _, _ = exported
    text = artifact_paths(request.out, "geossm-nano-ground")["trt_cache"].read_text()
    lines = text.splitlines()
    assert lines[0].startswith("TRT-")
    for line in lines[1:]:
        name, hex_scale = line.rsplit(": ", 1)
        assert name and len(hex_scale) == 8 and int(hex_scale, 16) >= 0
    header, scales = parse_trt_cache(text)
    assert "images" in scales and all(math.isfinite(s) and s > 0 for s in scales.values())


def test_recipe_errors(tmp_path):
    with pytest.raises(CvglError, match="not found"):
        load_recipe(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CvglError, match="not valid JSON"):
        load_recipe(bad)
    for raw, message in [({"split": "val"}, "not allowed"), ({"count": 0}, "count"),
                         ({"sampling": "first"}, "sampling"), ({"colour": 1}, "unknown key"),
                         ({"method": "mse"}, "method"), ({"polar": "maybe"}, "polar")]:
        with pytest.raises(CvglError, match=message):
            recipe_from_dict({**RECIPE, **raw})
    with pytest.raises(CvglError, match="asks for 24 images"):
        choose_indices(recipe_from_dict(RECIPE), 10)
    assert load_recipe(None).count == 256 and load_recipe(None).split == "train"


def test_shipped_recipe_matches_default():
    from tests.support.paths import REPO_ROOT

    shipped = REPO_ROOT / "calibration" / "synthetic-default.json"
    assert load_recipe(shipped) == load_recipe(None)


def test_missing_dataset_is_user_error(tmp_path):
    from cvgl_edge.export.int8.calibration import calibration_images

    recipe = recipe_from_dict({**RECIPE, "dataset": f"cvusa:{tmp_path / 'nowhere'}"})
    with pytest.raises(CvglError):
        calibration_images(recipe, "ground", {"ground": (32, 128), "satellite": (64, 64)}, False)
