"""FP32 ONNX export: one cvgl.SelectiveScan node per scan with a standard-op local
function, metadata, onnx checker, onnxruntime vs PyTorch on both views, and the
verification report written next to each file."""

import itertools
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from cvgl_edge.data.normalize import MEAN_RGB, STD_RGB
from cvgl_edge.errors import CvglError
from cvgl_edge.export.scan import contract
from cvgl_edge.export.onnx.versions import IR_VERSION
from cvgl_edge.export.onnx.metadata import read_metadata, state_dict_sha256
from cvgl_edge.export.onnx.validate import checker_error, cosine_rows, ort_session, torch_descriptors
from cvgl_edge.export.pipeline import ExportRequest, check_request, run_export
from cvgl_edge.export.scan.model import single_scan_model
from cvgl_edge.models import build_model, save_checkpoint
from cvgl_edge.ops import selective_scan_reference
from cvgl_edge.ops.testing import random_scan_inputs

from tests.support.tiny import TINY
VIEWS = ("ground", "satellite")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny checkpoint exported (both branches) through the `cvgl-edge export` pipeline."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    checkpoint = save_checkpoint(model, root / "tiny.pt")
    reports = run_export(ExportRequest(checkpoint=checkpoint, out=root / "out", check_images=3, verify_pairs=16))
    files = {r["branch"]: root / "out" / f"geossm-nano-{r['branch']}.onnx" for r in reports}
    return model, files, {r["branch"]: r for r in reports}


def _scan_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == contract.OP_TYPE]


@pytest.mark.parametrize("view", VIEWS)
def test_one_selective_scan_node_per_scan(exported, view):
    model, files, _ = exported
    onnx_model = onnx.load(files[view])
    nodes = _scan_nodes(onnx_model)
    assert len(nodes) == 2 * TINY["depth"]  # forward + reverse per layer
    directions = []
    for node in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert node.domain == "cvgl"
        assert len(node.input) == len(contract.INPUTS) and all(node.input)
        assert attrs["plugin_version"] == b"1" and attrs["plugin_namespace"] == b"cvgl"
        assert attrs["delta_softplus"] == 1
        assert attrs["has_D"] == attrs["has_z"] == attrs["has_delta_bias"] == 1
        directions.append(attrs["direction"])
    assert sorted(directions) == [0] * TINY["depth"] + [1] * TINY["depth"]
    # nothing else left of the scan: no unrolled loop, no other custom op
    assert {n.domain for n in onnx_model.graph.node} == {"", "cvgl"}
    assert not any(n.op_type in ("Scan", "Loop") for n in onnx_model.graph.node)


@pytest.mark.parametrize("view", VIEWS)
def test_fp32_scan_nodes_are_float32_without_casts(exported, view):
    """FP32 exports are untouched by the FP16 typing of the node (data like u, parameters
    fp32): its Casts are no-ops the exporter's optimizer drops, so the graph has none."""
    model, files, _ = exported
    onnx_model = onnx.load(files[view])
    graph = onnx.shape_inference.infer_shapes(onnx_model, strict_mode=True).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input)}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in _scan_nodes(onnx_model):
        assert [types[name] for name in node.input] == [onnx.TensorProto.FLOAT] * len(contract.INPUTS)
    assert not [n for n in onnx_model.graph.node if n.op_type in ("Cast", "CastLike")]


def test_scan_function_has_a_standard_op_body(exported):
    _, files, _ = exported
    onnx_model = onnx.load(files["satellite"])
    functions = [f for f in onnx_model.functions if (f.domain, f.name) == ("cvgl", "SelectiveScan")]
    assert len(functions) == 1
    function = functions[0]
    assert list(function.input) == list(contract.INPUTS) and list(function.output) == ["y"]
    declared = {a.name for a in function.attribute_proto} | set(function.attribute)
    assert set(contract.INT_ATTRIBUTES) | set(contract.STRING_ATTRIBUTES) <= declared
    ops = {n.op_type for n in function.node}
    assert "Scan" in ops
    assert all(n.domain == "" and onnx.defs.has(n.op_type) for n in function.node)
    referenced = {a.ref_attr_name for n in function.node for a in n.attribute if a.ref_attr_name}
    assert set(contract.INT_ATTRIBUTES) <= referenced


@pytest.mark.parametrize("view", VIEWS)
def test_checker_versions_and_io(exported, view):
    model, files, reports = exported
    assert checker_error(files[view]) is None
    onnx_model = onnx.load(files[view])
    assert onnx_model.ir_version == IR_VERSION
    assert {o.domain: o.version for o in onnx_model.opset_import} == {"": 18, "cvgl": 1}
    (inp,), (out,) = onnx_model.graph.input, onnx_model.graph.output
    h, w = model.config.input_size(view)
    in_dims = inp.type.tensor_type.shape.dim
    assert inp.name == "images" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert in_dims[0].dim_param and [d.dim_value for d in in_dims[1:]] == [3, h, w]
    assert out.name == "descriptors"
    assert [d.dim_value for d in out.type.tensor_type.shape.dim][1:] == [model.descriptor_dim]
    report = reports[view]
    assert report["written"] and report["checker"] == "ok" and report["scan_nodes"] == 4
    assert report["parity"]["cosine_min"] >= 0.9999 and report["file_bytes"] == files[view].stat().st_size
    saved = json.loads(files[view].with_name(f"geossm-nano-{view}.report.json").read_text())
    assert saved["parity"] == report["parity"]


@pytest.mark.parametrize("view", VIEWS)
def test_verification_report_next_to_each_file(exported, view):
    _, files, reports = exported
    record = json.loads(files[view].with_name(files[view].name + ".verify.json").read_text())
    assert record["status"] == "passed" and record["passed"] and record["failures"] == []
    assert record["artifact"] == str(files[view]) and record["view"] == view and record["precision"] == "fp32"
    assert record["pairs"] == 16 and record["split"] == "val" and record["descriptors"]["cosine_min"] >= 0.9999
    entry = reports[view]["verification"]
    assert entry["status"] == "passed" and entry["report"] == str(files[view]) + ".verify.json"
    saved = json.loads(files[view].with_name(f"geossm-nano-{view}.report.json").read_text())
    assert saved["verification"] == entry  # the report on disk was rewritten with the outcome


def test_metadata(exported):
    model, files, _ = exported
    for view in VIEWS:
        meta = read_metadata(onnx.load(files[view]))
        assert meta["view"] == view
        assert meta["input_name"] == "images" and meta["output_name"] == "descriptors"
        assert meta["input_size"] == list(model.config.input_size(view))
        assert meta["normalize_mean"] == list(MEAN_RGB) and meta["normalize_std"] == list(STD_RGB)
        assert meta["descriptor_dim"] == model.descriptor_dim
        assert meta["model_name"] == "geossm-nano" and meta["model_config"] == model.config.to_dict()
        assert meta["model_sha256"] == state_dict_sha256(model)
        assert meta["opset"] == 18 and meta["scan_nodes"] == 4
        assert meta["cvgl_edge_version"] and meta["precision"] == "fp32"


@pytest.mark.parametrize("view,batch", list(itertools.product(VIEWS, (1, 3))))
def test_onnxruntime_matches_pytorch(exported, view, batch):
    model, files, _ = exported
    h, w = model.config.input_size(view)
    images = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(batch)).numpy()
    onnx_out = ort_session(files[view]).run(None, {"images": images})[0]
    torch_out = torch_descriptors(model, view, images)
    assert onnx_out.shape == (batch, model.descriptor_dim)
    assert cosine_rows(onnx_out, torch_out).min() >= 0.9999
    assert np.abs(onnx_out - torch_out).max() < 1e-4


OPTIONAL_CASES = [(True, True, True), (False, False, False), (True, False, True), (False, True, False)]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("has_D,has_z,has_bias", OPTIONAL_CASES)
def test_single_scan_function_matches_reference(reverse, has_D, has_z, has_bias):
    model = single_scan_model(reverse=reverse, delta_softplus=True, has_D=has_D, has_z=has_z,
                              has_delta_bias=has_bias)
    assert checker_error_of(model) is None
    x = random_scan_inputs(2, 6, 11, 16, with_D=has_D, with_z=has_z, with_bias=has_bias, seed=7)
    session = ort_session_of(model)
    y = session.run(None, {k: v.numpy() for k, v in x.items() if v is not None})[0]
    expected = selective_scan_reference(**x, delta_softplus=True, reverse=reverse).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_single_scan_without_softplus_and_reversal_differs():
    """delta_softplus=0 passes delta through; direction really changes the result."""
    x = random_scan_inputs(1, 4, 9, 16, seed=2)
    x["delta"] = torch.nn.functional.softplus(x["delta"])  # positive steps without the op's softplus
    x["delta_bias"] = x["delta_bias"].abs() * 0.1
    feeds = {k: v.numpy() for k, v in x.items()}
    outputs = {}
    for reverse in (False, True):
        y = ort_session_of(single_scan_model(reverse=reverse, delta_softplus=False)).run(None, feeds)[0]
        expected = selective_scan_reference(**x, delta_softplus=False, reverse=reverse).numpy()
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
        outputs[reverse] = y
    assert not np.allclose(outputs[False], outputs[True])


def checker_error_of(model: onnx.ModelProto):
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        return str(exc)
    return None


def ort_session_of(model: onnx.ModelProto):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("changes,fragment", [
    (dict(branch="aerial"), "unknown --branch 'aerial'"),
    (dict(precision="int4"), "unknown --precision 'int4'"),
    (dict(precision="fp16", calibration="recipe.json"), "--calibration applies to --precision int8 only"),
    (dict(verify=False, max_r1_drop=1.0), "cannot be used with --no-verify"),
    (dict(verify_pairs=0), "--verify-pairs must be >= 1"),
    (dict(format="tensorrt"), "unknown --format 'tensorrt'; choose onnx, engine"),
    (dict(format="tflite"), "unknown --format 'tflite'"),
    (dict(opset=13), "--opset 13 is not supported"),
])
def test_request_errors(tmp_path, changes, fragment):
    request = ExportRequest(checkpoint=tmp_path / "x.pt", out=tmp_path, **changes)
    with pytest.raises(CvglError, match=fragment.replace("(", r"\(")):
        check_request(request)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cvgl_edge.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,fragment", [
    (("--branch", "aerial"), "unknown --branch"),
    (("--precision", "int4"), "unknown --precision"),
    (("--no-verify", "--max-r1-drop", "1"), "cannot be used with --no-verify"),
])
def test_cli_one_line_errors(tmp_path, args, fragment):
    result = _cli("export", str(tmp_path / "missing.pt"), "--out", str(tmp_path), *args)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and fragment in lines[0]
    assert not list(tmp_path.iterdir())


def test_a_kill_during_verification_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    """eval and localize pick files by name: an unverified one must never carry it."""
    from cvgl_edge.export import auto_verify

    checkpoint = save_checkpoint(build_model("geossm-nano", **TINY).eval(), tmp_path / "ckpt.pt")
    out = tmp_path / "out"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what SIGINT does; SIGKILL leaves the same files behind
    monkeypatch.setattr(auto_verify, "_run", killed)
    with pytest.raises(KeyboardInterrupt):
        run_export(ExportRequest(checkpoint=checkpoint, out=out, branch="ground", check_images=2, verify_pairs=8))
    assert not (out / "geossm-nano-ground.onnx").exists()
    assert (out / "geossm-nano-ground.unverified.onnx").exists()          # waiting, under a name nothing picks
    monkeypatch.undo()
    run_export(ExportRequest(checkpoint=checkpoint, out=out, branch="ground", check_images=2, verify_pairs=8))
    assert (out / "geossm-nano-ground.onnx").exists()
    assert not list(out.glob("*.unverified.onnx*"))                      # the next run took the leftover's place
