"""`cvgl-edge verify`: an exported ONNX file re-checked against its checkpoint (ONNX Runtime
vs PyTorch on the same val pairs), exit 0 within thresholds, 1 past them, 2 for user errors.
Engines go through the TensorRT encoder; here (no GPU) only its refusals can be checked."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from cvgl_edge.export.pipeline import ExportRequest, run_export
from cvgl_edge.export.verify import artifact_precision, verify
from cvgl_edge.models import build_model, save_checkpoint
from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY

PAIRS = "32"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny checkpoint, its FP32 ground-branch ONNX, and a copy with one weight perturbed."""
    root = tmp_path_factory.mktemp("verify")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("geossm-nano", **TINY).eval(), root / "tiny.pt")
    (report,) = run_export(ExportRequest(checkpoint=checkpoint, out=root / "out", branch="ground", check_images=2,
                                       verify=False))
    fp32 = Path(report["file"])

    model = onnx.load(str(fp32))
    weights = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) >= 2]
    target = max(weights, key=lambda i: int(np.prod(i.dims)))
    array = onnx.numpy_helper.to_array(target)
    noisy = array * np.random.default_rng(0).uniform(0.0, 2.0, array.shape).astype(array.dtype)
    target.CopyFrom(onnx.numpy_helper.from_array(noisy, target.name))
    perturbed = root / "perturbed.onnx"
    onnx.save_model(model, str(perturbed))
    return root, checkpoint, fp32, perturbed


def test_fp32_export_passes_with_cosine_one(exported):
    root, checkpoint, fp32, _ = exported
    out = root / "verify.json"
    result = cli("verify", str(fp32), "--against", str(checkpoint), "--pairs", PAIRS, "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PASSED" in result.stdout
    record = json.loads(out.read_text())
    for key in ("artifact", "checkpoint", "model_name", "model_sha256", "view", "precision", "data", "split",
                "pairs", "branches", "descriptors", "recall", "thresholds", "passed", "failures"):
        assert key in record, key
    assert record["precision"] == "fp32" and record["view"] == "ground" and record["pairs"] == int(PAIRS)
    assert record["branches"] == {"ground": "artifact (onnxruntime)", "satellite": "PyTorch"}
    assert record["format"] == "onnx" and record["backend"] == "onnxruntime" and record["device"] == "cpu"
    assert record["runtime"].startswith("onnxruntime ") and record["runtime"].endswith(" CPUExecutionProvider")
    d = record["descriptors"]
    assert d["cosine_min"] > 0.99999 and d["max_abs_err"] < 1e-4 and d["polygraphy"]["passed"]
    assert set(record["recall"]) == {"pytorch", "artifact", "drop"}
    for side in record["recall"].values():
        assert set(side) == {"R@1", "R@5", "R@1%"}
    assert record["recall"]["drop"]["R@1"] == 0.0
    assert record["thresholds"] == {"min_cosine": 0.9999, "max_r1_drop": None}
    assert record["passed"] is True and record["failures"] == []


def test_perturbed_onnx_fails_with_exit_1(exported):
    root, checkpoint, _, perturbed = exported
    out = root / "perturbed.json"
    result = cli("verify", str(perturbed), "--against", str(checkpoint), "--pairs", PAIRS, "--json", str(out))
    assert result.returncode == 1, result.stderr[-2000:]
    summary = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(summary) == 1 and "cosine min" in summary[0]
    record = json.loads(out.read_text())
    assert record["passed"] is False and record["descriptors"]["cosine_min"] < 0.9999


def test_threshold_override(exported):
    _, checkpoint, _, perturbed = exported
    record = verify(perturbed, checkpoint, pairs=8, min_cosine=-1.0)
    assert record["passed"] and record["thresholds"]["min_cosine"] == -1.0


def test_precision_from_metadata_or_name():
    assert artifact_precision(Path("m-ground.int8.onnx"), {}) == "int8"
    assert artifact_precision(Path("m-ground.onnx"), {"precision": "int8"}) == "int8"
    assert artifact_precision(Path("m-ground.onnx"), {}) == "fp32"


def test_other_checkpoint_is_a_user_error(exported):
    root, _, fp32, _ = exported
    torch.manual_seed(1)
    other_seed = save_checkpoint(build_model("geossm-nano", **TINY), root / "seed1.pt")
    assert_one_line_error(cli("verify", str(fp32), "--against", str(other_seed), "--pairs", PAIRS), "other weights")
    other_config = save_checkpoint(build_model("geossm-nano", **{**TINY, "depth": 1}), root / "depth1.pt")
    assert_one_line_error(cli("verify", str(fp32), "--against", str(other_config), "--pairs", PAIRS), "depth=2 vs 1")


def test_bad_artifacts_are_user_errors(exported):
    root, checkpoint, _, _ = exported
    assert_one_line_error(cli("verify", str(root / "missing.onnx"), "--against", str(checkpoint)), "artifact not found")
    foreign = root / "identity.onnx"
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save_model(onnx.helper.make_model(graph), str(foreign))
    assert_one_line_error(cli("verify", str(foreign), "--against", str(checkpoint)), "no cvgl-edge metadata")
    garbage = root / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all \xff\xfe")
    assert_one_line_error(cli("verify", str(garbage), "--against", str(checkpoint)), "garbage.onnx")
    assert_one_line_error(cli("verify", str(checkpoint), "--against", str(checkpoint)),
                           "verify checks an exported .onnx or .engine file")
    assert_one_line_error(cli("verify", str(garbage), "--against", str(checkpoint), "--backend", "tensorrt"),
                           "--backend tensorrt needs a TensorRT .engine file")


def test_engines_go_through_the_tensorrt_encoder(exported):
    """An engine is opened by TrtEncoder: its sidecar checks answer in one line (no GPU here)."""
    import hashlib

    from cvgl_edge.errors import CvglError
    from cvgl_edge.runtime.tensorrt.backend import load_backend

    root, checkpoint, _, _ = exported
    engine = root / "geossm-nano-ground.engine"
    blob = b"\0" * 16
    engine.write_bytes(blob)
    assert_one_line_error(cli("verify", str(engine), "--against", str(checkpoint)),
                           "has no sidecar geossm-nano-ground.engine.json")
    sidecar = {"engine_sha256": hashlib.sha256(blob).hexdigest(), "model_name": "geossm-nano", "view": "ground",
               "model_sha256": "0" * 64, "descriptor_dim": 128, "input_size": [32, 128],
               "tensorrt": {"flavour": "tensorrt", "version": "10.3.0"}}
    (root / "geossm-nano-ground.engine.json").write_text(json.dumps(sidecar))
    try:
        installed = load_backend(prefer="tensorrt")
    except CvglError:
        installed = None
    if installed is not None and (installed.flavour, installed.version) != ("tensorrt", "10.3.0"):
        assert_one_line_error(cli("verify", str(engine), "--against", str(checkpoint)),
                               f"engine built with tensorrt 10.3.0, this is {installed.flavour} {installed.version}: "
                               "rebuild it with cvgl-edge export --format engine")
    if installed is not None and not torch.cuda.is_available():
        sidecar["tensorrt"] = {"flavour": installed.flavour, "version": installed.version}
        (root / "geossm-nano-ground.engine.json").write_text(json.dumps(sidecar))
        assert_one_line_error(cli("verify", str(engine), "--against", str(checkpoint)), "no CUDA GPU available")


def test_verdict_rules():
    """The R@1-drop rule (INT8/FP16) fails an artifact whose cosine still passes, and vice versa."""
    from cvgl_edge.export.verify import THRESHOLDS, verdict

    good = {"nonfinite": 0, "cosine_min": 0.995}
    assert verdict(good, {"R@1": 1.5}, THRESHOLDS["int8"]) == []
    assert verdict(good, {"R@1": 2.5}, THRESHOLDS["int8"]) == ["R@1 drop 2.50 points > 2.0"]
    assert verdict(good, {"R@1": 0.6}, THRESHOLDS["fp16"]) == ["R@1 drop 0.60 points > 0.5"]
    assert verdict(good, {"R@1": -3.0}, THRESHOLDS["fp16"]) == []             # a gain never fails
    assert verdict(good, {"R@1": 0.0}, THRESHOLDS["fp32"]) == ["cosine min 0.995000 < 0.9999"]
    broken = {"nonfinite": 3, "cosine_min": float("nan")}
    assert verdict(broken, {"R@1": 0.0}, THRESHOLDS["int8"]) == ["3 non-finite descriptor values",
                                                                  "cosine min nan < 0.98"]
