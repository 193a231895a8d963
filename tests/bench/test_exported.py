"""`cvgl-edge bench EXPORT_FOLDER`: benchmarking files that exist, without a checkpoint or PyTorch's model.

The export folders here are fabricated: tiny hand-built ONNX graphs (images -> channel means ->
a fixed matrix -> L2 norm) carrying the cvgl-edge metadata an export writes, so the tests need
no model, no exporter and take about a second. (tests/package/test_torch_free.py runs the command on a
real export, with PyTorch blocked and in the torch-free venv.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cvgl_edge.bench import exported as exports
from cvgl_edge.bench.plan import Variant
from cvgl_edge.bench.report import markdown, rich_tables, summary_rows
from cvgl_edge.bench.runner import RunPolicy
from cvgl_edge.bench.session import BenchRequest, check_request, run_bench
from cvgl_edge.errors import CvglError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SIZES = {"ground": (8, 32), "satellite": (16, 16)}
DIM = 6
SHA = "cd" * 32


def fabricated_branch(path: Path, view: str, *, sha: str = SHA, precision: str = "fp32", dim: int = DIM,
                      extra: dict[str, str] | None = None) -> Path:
    """A valid ONNX branch with cvgl-edge metadata: (N, 3, H, W) 'images' -> (N, dim) 'descriptors'."""
    h, w = SIZES[view]
    weight = np.random.default_rng(len(view)).standard_normal((3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images", "axes"], ["pooled"], keepdims=0),
         helper.make_node("MatMul", ["pooled", "weight"], ["raw"]),
         helper.make_node("LpNormalization", ["raw"], ["descriptors"], axis=1, p=2)],
        f"fabricated-{view}",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, h, w])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
         helper.make_tensor("weight", TensorProto.FLOAT, [3, dim], weight.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    metadata = {"model_name": "fake-net", "model_sha256": sha, "view": view, "input_size": json.dumps([h, w]),
                "descriptor_dim": str(dim), "precision": precision, **(extra or {})}
    helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


def export_folder(folder: Path, precisions: tuple[str, ...] = ("fp32",), **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for precision in precisions:
        part = "" if precision == "fp32" else f".{precision}"
        for view in SIZES:
            fabricated_branch(folder / f"fake-net-{view}{part}.onnx", view, precision=precision, **kw)
    return folder


def request(source: Path | None, **kw) -> BenchRequest:
    options = dict(checkpoint=source, batch_sizes="1,2", policy=RunPolicy(warmup=1, runs=3), eval_pairs=0,
                   show_progress=False)
    options.update(kw)
    return BenchRequest(**options)


def test_an_export_folder_is_benchmarked_from_its_files(tmp_path):
    folder = export_folder(tmp_path / "export", ("fp32", "fp16"))
    record = run_bench(request(folder, backend="onnxruntime,tensorrt", precision="fp32,fp16,int8", eval_pairs=4))
    assert [v["name"] for v in record["variants"]] == ["onnxruntime fp32", "onnxruntime fp16"]
    reasons = {s["variant"]: s["reason"] for s in record["skipped"]}
    assert set(reasons) == {"tensorrt fp32", "tensorrt fp16", "tensorrt int8", "onnxruntime int8"}
    assert "no fake-net-ground.int8.onnx in" in reasons["onnxruntime int8"]
    assert "cvgl-edge export CHECKPOINT --format onnx --precision int8" in reasons["onnxruntime int8"]
    assert not list(folder.glob("*int8*"))  # nothing was exported
    model = record["model"]
    assert model["name"] == "fake-net" and model["model_sha256"] == SHA and model["exported"] == str(folder)
    assert model["input_sizes"] == {v: list(s) for v, s in SIZES.items()} and model["descriptor_dim"] == DIM
    assert model["checkpoint"] is None and model["random_weights"] is None
    fp16 = record["variants"][1]
    assert fp16["source"]["ground"].endswith("fake-net-ground.fp16.onnx")
    assert fp16["artifacts"] == {"folder": str(folder), "exported": [], "reused": ["ground", "satellite"]}
    for variant in record["variants"]:
        assert {(c["branch"], c["batch"]) for c in variant["cells"]} == {(b, n) for b in SIZES for n in (1, 2)}
        assert all(c["runs"] == 3 and c["encoder_ms"]["p50_ms"] > 0 for c in variant["cells"])
        assert variant["accuracy"]["finite"] and variant["accuracy"]["R@1"] is not None
    assert fp16["accuracy"]["cosine_vs_first"]["ground"]["min"] > 0.9999  # same graph, other label
    assert record["accuracy_set"] == {"data": "synthetic", "split": "val", "polar": False, "pairs": 4,
                                      "chance_r1": 25.0}
    assert record["settings"]["torch_threads"] is None or isinstance(record["settings"]["torch_threads"], int)

    cost = record["cost"]
    assert cost["unknown"] == ["params", "flops"] and cost["params_total"] is None and "unknown" in cost["note"]
    assert cost["branches"]["ground"] == {"view": "ground", "params": None, "flops": None}
    row = record["summary"][0]
    assert row["params_total_m"] is None and row["gflops_per_query"] is None and row["query_p50_ms"] > 0
    assert summary_rows(record)[0][1:3] == ["unknown", "unknown"]
    title = " ".join(rich_tables(record)[0].title.split())
    assert "Params and FLOPs unknown" in title
    page = markdown(record)
    assert "weights of the exported files in" in page and "Params and FLOPs unknown" in page
    json.dumps(record)  # JSON-ready


def test_figures_the_files_record_are_used(tmp_path):
    recorded = {"params": "1500000", "flops": "2000000000", "params_total": "3000000", "flop_convention": "counted"}
    folder = export_folder(tmp_path / "export", extra=recorded)
    record = run_bench(request(folder, branch="ground", batch_sizes="1", policy=RunPolicy(warmup=0, runs=1)))
    cost = record["cost"]
    assert "unknown" not in cost and cost["flop_convention"] == "counted" and cost["params_total"] == 3_000_000
    row = record["summary"][0]
    assert row["params_total_m"] == 3.0 and row["params_ground_m"] == 1.5 and row["gflops_per_query"] == 2.0


def test_one_file_of_the_export_names_the_model_and_its_sibling(tmp_path):
    folder = export_folder(tmp_path / "export")
    (folder / "fake-net-ground.onnx").rename(folder / "fake-net-ground.fp32.onnx")  # the tag is optional
    record = run_bench(request(folder / "fake-net-satellite.onnx", batch_sizes="1", policy=RunPolicy(warmup=0, runs=1)))
    assert record["variants"][0]["source"]["ground"].endswith("fake-net-ground.fp32.onnx")
    assert record["settings"]["variants"] == ["onnxruntime fp32"]  # the file's own backend by default


def test_variants_from_other_weights_are_skipped(tmp_path):
    folder = export_folder(tmp_path / "export")
    for view in SIZES:
        fabricated_branch(folder / f"fake-net-{view}.fp16.onnx", view, sha="ef" * 32, precision="fp16")
    record = run_bench(request(folder, precision="fp32,fp16", batch_sizes="1", policy=RunPolicy(warmup=0, runs=1)))
    assert [v["name"] for v in record["variants"]] == ["onnxruntime fp32"]
    assert "other weights" in {s["variant"]: s["reason"] for s in record["skipped"]}["onnxruntime fp16"]


def test_branches_of_two_models_in_one_variant_are_refused(tmp_path):
    folder = export_folder(tmp_path / "export")
    fabricated_branch(folder / "fake-net-satellite.onnx", "satellite", sha="ef" * 32)
    with pytest.raises(CvglError, match="no variant could be opened: onnxruntime fp32: .*different models"):
        run_bench(request(folder))


@pytest.mark.parametrize("options, fragment", [
    (dict(backend="torch"), "--backend torch runs a checkpoint"),
    (dict(estimate="orin-nano"), "--estimate needs FLOPs"),
    (dict(artifacts=Path("elsewhere")), "drop --artifacts"),
    (dict(overrides={"depth": 1}), "--set applies to --model presets only"),
])
def test_what_an_export_cannot_do_is_refused_before_any_work(tmp_path, options, fragment):
    folder = export_folder(tmp_path / "export")
    with pytest.raises(CvglError, match=fragment):
        check_request(request(folder, **options))


def test_export_sources_and_their_files(tmp_path):
    folder = export_folder(tmp_path / "export", ("fp32", "int8"))
    assert exports.is_exported(folder) and exports.is_exported(folder / "x.ONNX") and exports.is_exported("a.engine")
    assert not exports.is_exported(tmp_path / "run.pt") and not exports.is_exported(None)
    assert exports.model_name(folder) == exports.model_name(folder / "fake-net-ground.int8.onnx") == "fake-net"
    files = exports.variant_files(folder, "fake-net", Variant("onnxruntime", "int8"))
    assert files == {v: folder / f"fake-net-{v}.int8.onnx" for v in SIZES}
    with pytest.raises(CvglError, match=r"no fake-net-ground\.engine in .*--format engine --precision fp32"):
        exports.variant_files(folder, "fake-net", Variant("tensorrt", "fp32"))
    fabricated_branch(folder / "other-net-ground.onnx", "ground")
    with pytest.raises(CvglError, match="several models"):
        exports.model_name(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CvglError, match="no exported files"):
        exports.model_name(tmp_path / "empty")
    (tmp_path / "weights.onnx").write_bytes(b"")
    with pytest.raises(CvglError, match="not named"):
        exports.model_name(tmp_path / "weights.onnx")
    with pytest.raises(CvglError, match="not found"):
        check_request(request(tmp_path / "missing-folder.onnx"))
    env = exports.exported_environment("cuda")
    assert env.cuda and "CPUExecutionProvider" in env.ort_providers
