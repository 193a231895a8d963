"""FP16 export: a strongly typed FP16 graph (fp16 weights/activations, fp32 islands for
norms, the scan body, pooling and the L2 norm; float32 I/O), one SelectiveScan node per
scan with fp16 data and fp32 parameters (A, D, delta_bias), run by ONNX Runtime on the
CPU close to the FP32 PyTorch model, and verified at export (``<file>.verify.json``); a
failed verification removes the file."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from cvgl_edge.errors import CvglError
from cvgl_edge.export.scan import contract
from cvgl_edge.runtime.tensorrt import backend as trt_backend
from cvgl_edge.export import verify as verify_module
from cvgl_edge.export.onnx.fp16 import FP32_ISLANDS, half_model
from cvgl_edge.export.onnx.metadata import read_metadata, state_dict_sha256
from cvgl_edge.export.onnx.validate import checker_error, cosine_rows, ort_session, torch_descriptors
from cvgl_edge.export.pipeline import ExportRequest, run_export
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.export.scan.function import build_scan_function
from cvgl_edge.export.scan.translation import translation_table
from cvgl_edge.models import build_model, save_checkpoint
from cvgl_edge.models.mixer import BiMambaMixer
from cvgl_edge.ops import selective_scan_reference
from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY
from tests.support.trt_available import has_tensorrt

VIEWS = ("ground", "satellite")
F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
#: Ops of the fp32 islands (RMSNorm: Pow/ReduceMean/Sqrt/Reciprocal; L2 norm: ReduceL2/Clip).
FP32_OPS = ("Pow", "ReduceMean", "Sqrt", "Reciprocal", "ReduceL2", "Clip")
#: The heavy ops, which must be fp16 in the file.
FP16_OPS = ("MatMul", "Conv", "Sigmoid")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both branches of a tiny checkpoint through `export --precision fp16` (verified on 16 pairs)."""
    root = tmp_path_factory.mktemp("fp16")
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    checkpoint = save_checkpoint(model, root / "tiny.pt")
    reports = run_export(ExportRequest(checkpoint=checkpoint, out=root / "out", precision="fp16",
                                       check_images=2, verify_pairs=16))
    return model, checkpoint, {r["branch"]: r for r in reports}


def _typed(path: str) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The model and the element type of every value (after onnx shape inference)."""
    model = onnx.load(path)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
    types.update({i.name: i.data_type for i in graph.initializer})
    return model, types


@pytest.mark.parametrize("view", VIEWS)
def test_files_and_reports(exported, view):
    _, _, reports = exported
    report = reports[view]
    file = Path(report["file"])
    assert file.name == f"geossm-nano-{view}.fp16.onnx" and file.is_file() and report["written"]
    assert report["precision"] == "fp16" and report["checker"] == "ok" and checker_error(file) is None
    assert report["scan_nodes"] == 2 * TINY["depth"] and report["function"]
    saved = json.loads(file.with_name(f"geossm-nano-{view}.fp16.report.json").read_text())
    assert saved["precision"] == "fp16" and saved["fp16"]["fp32_islands"] == list(FP32_ISLANDS)
    assert saved["verification"]["status"] == "passed"


@pytest.mark.parametrize("view", VIEWS)
def test_graph_is_fp16_with_fp32_islands_and_float32_io(exported, view):
    _, _, reports = exported
    model, types = _typed(reports[view]["file"])
    graph = model.graph
    (inp,), (out,) = graph.input, graph.output
    assert inp.type.tensor_type.elem_type == F32 and out.type.tensor_type.elem_type == F32
    readers = [n for n in graph.node if inp.name in n.input and n.op_type != "Shape"]  # Shape: the batch size
    assert [(n.op_type, onnx.helper.get_node_attr_value(n, "to")) for n in readers] == [("Cast", F16)]
    scan_params = {name for n in graph.node if contract.is_scan_node(n)
                   for slot, name in zip(contract.INPUTS, n.input) if slot in contract.PARAMETER_INPUTS}
    weights = [i for i in graph.initializer if len(i.dims) >= 2 and i.name not in scan_params]  # A is fp32
    assert weights and all(i.data_type == F16 for i in weights)  # every matrix / conv kernel
    for node in graph.node:
        data = types[node.input[0]]
        if node.op_type in FP16_OPS:
            assert data == F16, (node.op_type, node.name)
        if node.op_type in FP32_OPS:
            assert data == F32, (node.op_type, node.name)
    assert all(types[o] != TensorProto.DOUBLE for n in graph.node for o in n.output)
    # fp32 islands are entered and left by Casts only: entry, 2 per layer (residual add, norm exit), final add
    casts = [n for n in graph.node if n.op_type == "Cast"]
    assert len(casts) == 2 + 2 * TINY["depth"]


def _scan_types(data: int) -> list[int]:
    """Element types of the eight scan inputs: ``data`` for u, delta, B, C, z; fp32 for A, D, delta_bias."""
    return [F32 if name in contract.PARAMETER_INPUTS else data for name in contract.INPUTS]


@pytest.mark.parametrize("view", VIEWS)
def test_scan_nodes_take_fp16_data_and_fp32_parameters(exported, view):
    _, _, reports = exported
    model, types = _typed(reports[view]["file"])
    scans = [n for n in model.graph.node if contract.is_scan_node(n)]
    assert len(scans) == 2 * TINY["depth"]
    for node in scans:
        assert [types[name] for name in node.input] == _scan_types(F16)
        assert types[node.output[0]] == F16
    function = next(f for f in model.functions if (f.domain, f.name) == (contract.DOMAIN, contract.OP_TYPE))
    entry_casts = [n for n in function.node if n.op_type == "Cast" and n.input[0] in contract.INPUTS]
    assert len(entry_casts) == len(contract.INPUTS)  # the body computes in fp32 ...
    assert all(onnx.helper.get_node_attr_value(n, "to") == F32 for n in entry_casts)
    assert [n.op_type for n in function.node if contract.OUTPUT in n.output] == ["CastLike"]  # ... and casts back


def _scan_parameters(mixer: BiMambaMixer, reverse: bool) -> list[np.ndarray]:
    """A, D, delta_bias of one scan direction as the fp32 model computes them."""
    a_log, d_skip, dt_proj = ((mixer.A_b_log, mixer.D_b, mixer.dt_proj_b) if reverse
                              else (mixer.A_log, mixer.D, mixer.dt_proj))
    return [t.detach().numpy() for t in (-torch.exp(a_log), d_skip, dt_proj.bias)]


def test_scan_parameters_are_the_fp32_model_values(exported):
    """A, D and delta_bias reach every scan node with the fp32 model's values: no fp16 round trip."""
    model, _, reports = exported
    graph = onnx.load(reports["ground"]["file"]).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    mixers = [m for m in model.branch("ground").modules() if isinstance(m, BiMambaMixer)]
    scans = [n for n in graph.node if contract.is_scan_node(n)]
    for index, node in enumerate(scans):
        reverse = bool(onnx.helper.get_node_attr_value(node, "direction"))
        given = dict(zip(contract.INPUTS, node.input))
        expected = _scan_parameters(mixers[index // 2], reverse)
        for name, want in zip(contract.PARAMETER_INPUTS, expected):
            got = values[given[name]]  # folded to an initializer by the exporter's optimizer
            assert got.dtype == np.float32, name
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=name)
    bias = _scan_parameters(mixers[0], False)[2]
    assert not np.array_equal(bias, bias.astype(np.float16).astype(np.float32))  # fp16 would show


def test_metadata_names_the_fp32_model(exported):
    model, _, reports = exported
    for view in VIEWS:
        meta = read_metadata(onnx.load(reports[view]["file"]))
        assert meta["precision"] == "fp16" and meta["view"] == view
        assert meta["model_sha256"] == state_dict_sha256(model)  # the fp32 weights verify checks against
        assert "RMSNorm" in meta["fp32_islands"] and meta["scan_nodes"] == 2 * TINY["depth"]


@pytest.mark.parametrize("view,batch", [("ground", 1), ("satellite", 3)])
def test_onnxruntime_fp16_close_to_fp32_pytorch(exported, view, batch):
    model, _, reports = exported
    images = sample_images(view, model.config.input_size(view), batch, seed=11)
    out = ort_session(reports[view]["file"]).run(None, {"images": images})[0]
    ref = torch_descriptors(model, view, images)
    assert out.dtype == np.float32 and out.shape == ref.shape
    cos = cosine_rows(out, ref)
    assert cos.min() > 0.9999  # measured ~0.99999995
    # really fp16 inside: the FP32 export agrees to ~2e-7, this one does not
    assert np.abs(out - ref).max() > 1e-6


def test_onnxruntime_cpu_runs_fp16_arithmetic_in_fp32(exported):
    """Documents how the CPU numbers are made: ORT 1.31's CPU provider has no fp16 kernels for
    MatMul/Conv/elementwise math, so it inserts Casts and computes them in fp32 (fp16 storage
    in between); data movement (Transpose, Reshape, Slice, Split, Concat) runs in fp16."""
    import onnxruntime as ort

    _, _, reports = exported
    optimized = Path(reports["ground"]["file"]).parent / "ort-cpu-view.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.optimized_model_filepath = str(optimized)
    ort.InferenceSession(reports["ground"]["file"], options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(optimized)).graph
    optimized.unlink()
    to_fp32 = {n.output[0] for n in graph.node if n.op_type == "Cast" and
               n.name.startswith("InsertedPrecisionFreeCast") and onnx.helper.get_node_attr_value(n, "to") == F32}
    upcast = {n.op_type for n in graph.node if to_fp32 & set(n.input)}
    assert {"MatMul", "Conv"} <= upcast and not upcast & {"Transpose", "Reshape", "Slice", "Split", "Concat"}


@pytest.mark.parametrize("view", VIEWS)
def test_verification_report(exported, view):
    _, checkpoint, reports = exported
    path = Path(reports[view]["file"] + ".verify.json")
    record = json.loads(path.read_text())
    assert record["status"] == "passed" and record["precision"] == "fp16" and record["view"] == view
    assert record["checkpoint"] == str(checkpoint) and record["pairs"] == 16 and record["split"] == "val"
    assert record["thresholds"] == {"min_cosine": None, "max_r1_drop": 0.5}
    assert record["descriptors"]["cosine_min"] > 0.9999 and record["recall"]["drop"]["R@1"] <= 0.5
    assert reports[view]["verification"]["report"] == str(path)


def test_half_model_keeps_fp32_parameters():
    model = build_model("geossm-nano", **TINY).eval()
    half = half_model(model)
    dtypes = {name: p.dtype for name, p in half.named_parameters()}
    assert dtypes["ground.layers.0.mixer.in_proj.weight"] == torch.float16
    assert dtypes["ground.patch_embed.proj.weight"] == dtypes["ground.pos_embed"] == torch.float16
    for name in ("norm.weight", "mixer.A_log", "mixer.A_b_log", "mixer.D", "mixer.D_b", "mixer.dt_proj.bias"):
        assert dtypes[f"ground.layers.1.{name}"] == torch.float32, name
    assert dtypes["ground.norm_f.weight"] == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the original is untouched


class _ScanOnly(torch.nn.Module):
    """One scan without D / z / delta_bias: placeholders fp32 for D / delta_bias, fp16 for z."""

    def forward(self, u, delta, A, B, C):
        from cvgl_edge import ops

        return ops.selective_scan(u, delta, A, B, C, delta_softplus=True)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_scan_placeholders_typed_as_data_and_parameters():
    """The unused z follows the data (fp16); unused D / delta_bias stay fp32 like A. The
    checker and ONNX Runtime accept the node, and its result matches the reference."""
    import onnxruntime as ort

    args = (torch.randn(2, 4, 6).half(), torch.randn(2, 4, 6).half(), -torch.rand(4, 16),
            torch.randn(2, 16, 6).half(), torch.randn(2, 16, 6).half())
    program = torch.onnx.export(_ScanOnly().eval(), args, dynamo=True, opset_version=18, optimize=True,
                                custom_translation_table=translation_table(), verbose=False)
    model = program.model_proto
    model.functions.append(build_scan_function(18))
    model.opset_import.append(onnx.helper.make_opsetid(contract.DOMAIN, contract.DOMAIN_VERSION))
    model.ir_version = 10
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.value_info, *inferred.input)}
    types.update({i.name: i.data_type for i in inferred.initializer})
    (node,) = [n for n in model.graph.node if contract.is_scan_node(n)]
    assert [types[i] for i in node.input] == _scan_types(F16)
    onnx.checker.check_model(model, full_check=True)
    feeds = {i.name: a.numpy() for i, a in zip(model.graph.input, args)}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, feeds)[0]
    expected = selective_scan_reference(*(a.float() for a in args), delta_softplus=True)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), expected.numpy(), rtol=2e-3, atol=2e-3)


def test_failed_verification_removes_file_and_names_report(tmp_path, monkeypatch):
    """An FP16 file is not bit-exact, so asking for cosine 1.0 makes its verification fail."""
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("geossm-nano", **TINY).eval(), tmp_path / "tiny.pt")
    monkeypatch.setitem(verify_module.THRESHOLDS, "fp16", verify_module.Thresholds(min_cosine=1.0, max_r1_drop=0.5))
    request = ExportRequest(checkpoint=checkpoint, out=tmp_path / "out", branch="ground", precision="fp16",
                            check_images=1, verify_pairs=8)
    with pytest.raises(CvglError, match=r"geossm-nano-ground\.fp16\.onnx failed verification \(cosine min") as info:
        run_export(request)
    message = str(info.value)
    assert "\n" not in message and "geossm-nano-ground.fp16.onnx.verify.json" in message
    file = tmp_path / "out" / "geossm-nano-ground.fp16.onnx"
    assert not file.exists()
    record = json.loads(Path(str(file) + ".verify.json").read_text())
    assert record["status"] == "failed" and record["failures"]
    report = json.loads((tmp_path / "out" / "geossm-nano-ground.fp16.report.json").read_text())
    assert report["verification"]["status"] == "failed"


def test_cli_fp16_export_with_summary_line_and_json(tmp_path):
    torch.manual_seed(1)
    checkpoint = save_checkpoint(build_model("geossm-nano", **TINY).eval(), tmp_path / "tiny.pt")
    out = tmp_path / "out"
    result = cli("export", str(checkpoint), "--branch", "satellite", "--precision", "fp16", "--out", str(out),
                 "--check-images", "1", "--verify-pairs", "8", "--json", str(tmp_path / "reports.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PASSED: geossm-nano-satellite.fp16.onnx within thresholds" in result.stdout
    (report,) = json.loads((tmp_path / "reports.json").read_text())["reports"]
    assert report["verification"]["status"] == "passed" and report["verification"]["pairs"] == 8
    assert (out / "geossm-nano-satellite.fp16.onnx.verify.json").is_file()


def test_no_verify_writes_no_verify_report(tmp_path):
    torch.manual_seed(1)
    checkpoint = save_checkpoint(build_model("geossm-nano", **TINY).eval(), tmp_path / "tiny.pt")
    (report,) = run_export(ExportRequest(checkpoint=checkpoint, out=tmp_path / "out", branch="ground",
                                         check_images=1, verify=False))
    assert Path(report["file"]).is_file() and not list((tmp_path / "out").glob("*.verify.json"))
    saved = json.loads((tmp_path / "out" / "geossm-nano-ground.report.json").read_text())
    assert saved["verification"] == {"status": "skipped", "reason": "--no-verify"}


def test_cli_bad_verify_options_are_one_line_errors(tmp_path):
    result = cli("export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "out"), "--max-r1-drop", "-1")
    assert_one_line_error(result, "--max-r1-drop must be >= 0")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not has_tensorrt(), reason="neither tensorrt nor tensorrt-rtx installed")
def test_fp16_engine_builds_strongly_typed(exported, tmp_path):
    """TensorRT(-RTX) builds the FP16 file strongly typed: its matrix layers are HALF, the
    norms FLOAT; the engine's verification is recorded (not run without a GPU)."""
    _, checkpoint, _ = exported
    (report,) = run_export(ExportRequest(checkpoint=checkpoint, out=tmp_path, branch="ground", format="engine",
                                         precision="fp16", check_images=1, verify_pairs=8, max_batch=2,
                                         workspace_mb=256))
    side = report["engine"]
    assert side["engine"].endswith("geossm-nano-ground.fp16.engine") and side["engine_bytes"] > 100_000
    assert side["precision"] == "fp16" and side["strongly_typed"]
    assert side["inputs"][0]["dtype"] == "FLOAT" and side["outputs"][0]["dtype"] == "FLOAT"
    engine_record = json.loads(Path(side["engine"] + ".verify.json").read_text())
    if not torch.cuda.is_available():
        assert engine_record["status"] == "not run" and engine_record["reason"]
        assert report["engine_verification"]["status"] == "not run"
    trt = trt_backend.load_backend().trt
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert trt.OnnxParser(network, logger).parse_from_file(report["file"])
    dtypes: dict[str, set] = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        kind = str(layer.type).split(".")[-1]
        dtypes.setdefault(kind, set()).update(str(layer.get_output(j).dtype).split(".")[-1]
                                             for j in range(layer.num_outputs))
    assert dtypes["MATRIX_MULTIPLY"] >= {"HALF"} and "HALF" in dtypes["CONVOLUTION"]
    assert "FLOAT" in dtypes["REDUCE"]
