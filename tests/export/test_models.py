"""Export + verify of the VimGeo and LRFR toy models through the same pipeline and thresholds as
GeoSSM: fp32 (both branches, one graph each), fp16 and int8 ONNX, a TensorRT(-RTX) engine for
LRFR where a TensorRT package is installed, and Params/FLOPs from bench/cost."""

import json
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto

from cvgl_edge.models.cost import model_cost, params_total
from cvgl_edge.export.onnx.exporter import expected_scan_nodes
from cvgl_edge.export.onnx.metadata import read_metadata
from cvgl_edge.export.pipeline import ExportRequest, run_export
from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine
from cvgl_edge.models import build_model, save_checkpoint
from tests.support.trt_available import has_tensorrt

RECIPE = {"name": "test", "dataset": "synthetic:32", "split": "train", "count": 16, "batch_size": 8, "seed": 3}
MODELS = {
    "lrfr-nano": {},
    "vimgeo-nano": {"embed_dim": 32, "depth": 1, "descriptor_dim": 48},  # 48 != 32: with the projection head
}


def _model(name):
    torch.manual_seed(0)
    model = build_model(name, **MODELS[name]).eval()
    if name == "lrfr-nano":  # wake the ConvNeXt blocks (layer_scale starts at 1e-6) and GSRA's batch norms
        with torch.no_grad():
            for m in model.modules():
                if hasattr(m, "layer_scale"):
                    m.layer_scale.fill_(0.5)
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module", params=sorted(MODELS))
def checkpoint(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    (root / "recipe.json").write_text(json.dumps(RECIPE))
    return request.param, save_checkpoint(_model(request.param), root / "model.pt")


def _export(checkpoint, precision, branch, **kw):
    name, path = checkpoint
    calibration = path.parent / "recipe.json" if precision == "int8" else None
    request = ExportRequest(checkpoint=path, out=path.parent / precision, branch=branch, precision=precision,
                            check_images=2, verify_pairs=16, calibration=calibration, **kw)
    return {r["branch"]: r for r in run_export(request)}


def _verified(report, precision):
    record = json.loads(Path(report["file"] + ".verify.json").read_text())
    assert record["status"] == "passed" and record["precision"] == precision, record.get("failures")
    return record


@pytest.fixture(scope="module")
def fp32(checkpoint):
    """LRFR: both branches (one graph each); VimGeo: the satellite branch (its trunk is GeoSSM's)."""
    return _export(checkpoint, "fp32", branch="both" if checkpoint[0] == "lrfr-nano" else "satellite")


def test_fp32_export_verified(checkpoint, fp32):
    name, _ = checkpoint
    model = _model(name)
    assert set(fp32) == ({"ground", "satellite"} if name == "lrfr-nano" else {"satellite"})
    for view, report in fp32.items():
        assert report["written"] and report["checker"] == "ok"
        assert report["scan_nodes"] == report["expected_scan_nodes"] == expected_scan_nodes(model, view)
        assert report["function"] == (name == "vimgeo-nano")
        record = _verified(report, "fp32")
        assert record["descriptors"]["cosine_min"] >= 0.9999
        meta = read_metadata(onnx.load(report["file"]))
        assert meta["model_name"] == name and meta["descriptor_dim"] == model.descriptor_dim
        assert meta["scan_op"] == ("none" if name == "lrfr-nano" else "cvgl.SelectiveScan plugin_version 1")
    assert expected_scan_nodes(model, "ground") == (0 if name == "lrfr-nano" else 2)


def test_fp16_keeps_norms_and_sinkhorn_in_fp32(checkpoint):
    name, _ = checkpoint
    (report,) = _export(checkpoint, "fp16", branch="satellite").values()
    record = _verified(report, "fp16")
    assert record["recall"]["drop"]["R@1"] <= 0.5 and report["parity"]["cosine_min"] >= 0.999
    if name != "lrfr-nano":
        return
    model = onnx.shape_inference.infer_shapes(onnx.load(report["file"]), strict_mode=True)
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
    types.update({i.name: i.data_type for i in graph.initializer})
    fp32_ops = {"LayerNormalization", "ReduceLogSumExp", "Exp", "ReduceL2"}
    for node in graph.node:
        if node.op_type in fp32_ops:
            assert types[node.input[0]] == TensorProto.FLOAT, node.op_type
    heavy = [n for n in graph.node if n.op_type == "Conv"]
    assert heavy and all(types[n.input[1]] == TensorProto.FLOAT16 for n in heavy)
    assert any("Sinkhorn" in island for island in report["fp16"]["fp32_islands"])


def test_int8_quantizes_weights_only(checkpoint):
    name, _ = checkpoint
    (report,) = _export(checkpoint, "int8", branch="satellite").values()
    _verified(report, "int8")
    qdq = report["qdq"]
    assert qdq["quantized_ops"] == qdq["quantized_weights"] > 0 and not qdq["float_ops_reading_dq"]
    # LRFR: GSRA's relation matrix and SALAD's aggregation are activation x activation products, kept float;
    # the ConvNeXt block input feeds both the dwconv and the residual add, so the conv gets its own copy
    assert qdq["float_activation_products"] == (2 if name == "lrfr-nano" else 0)
    assert (report["int8_input_copies"] > 0) == (name == "lrfr-nano")


@pytest.mark.skipif(not has_tensorrt(), reason="needs tensorrt or tensorrt-rtx")
@pytest.mark.parametrize("checkpoint", ["lrfr-nano"], indirect=True)  # VimGeo's engine path is GeoSSM's
def test_lrfr_engine_builds(checkpoint, fp32, tmp_path):
    """The engine step of `export --format engine`, on the verified fp32 file (tensorrt-rtx builds on the CPU)."""
    engine = tmp_path / "lrfr-nano-satellite.engine"
    side = build_engine(Path(fp32["satellite"]["file"]), engine, EngineOptions(max_batch=2, workspace_mb=256))
    assert engine.stat().st_size == side["engine_bytes"] > 10_000
    assert side["selective_scan"].startswith("none") and side["network_layers"]["loop_layers"] == 0


def test_cost_of_the_new_models(checkpoint):
    name, _ = checkpoint
    model = _model(name)
    cost = model_cost(model, "drone")
    assert cost["view"] == "satellite" and cost["flops"] > 0
    assert cost["params"] == params_total(model)  # one shared branch reads every parameter
    assert (cost["scan_flops"] == 0) == (name == "lrfr-nano")
