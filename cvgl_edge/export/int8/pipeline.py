"""``cvgl-edge export --precision int8``: checkpoint -> QDQ INT8 ONNX per branch + report.

Per branch: FP32 export (as for fp32) -> calibration (recipe images, or the cache) ->
``quantize_static`` QDQ -> checks (onnx checker, scan nodes, QDQ placement, ORT runs
with a dynamic batch) -> atomic rename to ``OUT/<model>-<branch>.int8.onnx``. Beside it:
``.int8.calib.json`` (ranges cache), ``.int8.calib.trt`` (TensorRT text cache),
``.int8.calibration-manifest.json`` (the images used) and ``.int8.report.json``.
Accuracy (descriptor cosine, R@1/R@5/R@1% vs FP32 PyTorch on the val split) is not
measured here: the export's verification step (``auto_verify``, run for every precision)
does it per file, with the INT8 thresholds of ``verify.THRESHOLDS`` (R@1 drop <= 2
points unless ``--max-r1-drop`` says otherwise), and removes a file that fails.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import onnx
from torch import nn

import cvgl_edge
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.evaluate import trained_data_options
from cvgl_edge.export.auto_verify import unverified_path
from cvgl_edge.export.int8.calibration import Recipe, calibration_images
from cvgl_edge.export.int8.checks import qdq_problems, qdq_structure
from cvgl_edge.export.int8.quantize import QUANTIZED_OP_TYPES, isolate_quantized_inputs, quantize_int8
from cvgl_edge.export.onnx.exporter import expected_scan_nodes, export_branch
from cvgl_edge.export.onnx.metadata import state_dict_sha256
from cvgl_edge.export.onnx.validate import checker_error, compare_with_torch, scan_structure
from cvgl_edge.export.onnx.versions import IR_VERSION
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.export.tensorrt.calibration_cache import write_trt_cache
from cvgl_edge.io import atomic_write, atomic_write_json, scratch_folder
from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint
from cvgl_edge.progress import console


def artifact_paths(out: Path, name: str) -> dict[str, Path]:
    suffixes = {"onnx": "onnx", "report": "report.json", "cache": "calib.json", "trt_cache": "calib.trt",
                "manifest": "calibration-manifest.json"}
    return {key: out / f"{name}.int8.{suffix}" for key, suffix in suffixes.items()}


def _stamp(path: Path, recipe: Recipe, model_sha256: str) -> onnx.ModelProto:
    """Add the precision and calibration provenance to the file's metadata."""
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({"precision": "int8", "quantization": "QDQ symmetric int8, per-channel weights",
                  "quantized_op_types": ",".join(QUANTIZED_OP_TYPES), "fp32_onnx_sha256": model_sha256,
                  "calibration_recipe": recipe.name, "calibration_recipe_sha256": recipe.sha256()})
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    model.ir_version = IR_VERSION
    return model


def export_int8_one(model: nn.Module, view: str, request: Any, recipe: Recipe, digest: str,
                    polar: bool) -> dict[str, Any]:
    """Export, quantize, check and write one branch; returns its report (also written)."""
    name = f"{model.model_name}-{view}"
    paths = artifact_paths(request.out, name)
    request.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "model_name": model.model_name, "branch": view, "checkpoint": str(request.checkpoint),
        "format": "onnx", "precision": "int8", "opset": request.opset, "ir_version": IR_VERSION,
        "file": str(paths["onnx"]), "report_file": str(paths["report"]),
        "cvgl_edge_version": cvgl_edge.__version__,
        "quantization": {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                         "op_types": list(QUANTIZED_OP_TYPES), "weights": "int8 symmetric per-channel",
                         "activations": "int8 symmetric per-tensor", "bias": "float",
                         "float": "SelectiveScan, norms, reductions, elementwise ops"},
        "calibration": {"recipe": recipe.to_dict(), "recipe_sha256": recipe.sha256(),
                        "cache": str(paths["cache"]), "trt_cache": str(paths["trt_cache"]),
                        "manifest": str(paths["manifest"])},
    }
    start = time.perf_counter()
    with console.status(f"[bold]{name}[/bold]: tracing and lowering to ONNX"):
        fp32_model = export_branch(model, view, request.opset, digest)
        report["int8_input_copies"] = isolate_quantized_inputs(fp32_model)
    with scratch_folder(request.out, "cvgl-int8") as tmp:
        fp32_path, int8_tmp = tmp / "fp32.onnx", tmp / "int8.onnx"
        onnx.save_model(fp32_model, str(fp32_path))

        def images():
            chosen = calibration_images(recipe, view, model.input_sizes, polar)
            return chosen.batches(), chosen.manifest()

        with console.status(f"[bold]{name}[/bold]: calibrating and quantizing ({recipe.count} {recipe.split} images)"):
            cache, reused = quantize_int8(fp32_path, int8_tmp, paths["cache"], recipe.sha256(), recipe.method, images)
        report["calibration"].update(reused_cache=reused, tensors=len(cache.ranges),
                                     fp32_onnx_sha256=cache.model_sha256)
        atomic_write_json(cache.manifest, paths["manifest"])
        write_trt_cache(cache.ranges, cache.method, paths["trt_cache"])
        int8_model = _stamp(int8_tmp, recipe, cache.model_sha256)
    report["export_seconds"] = round(time.perf_counter() - start, 2)
    report.update(scan_structure(int8_model))
    report["expected_scan_nodes"] = expected_scan_nodes(model, view)
    report["qdq"] = qdq_structure(int8_model)
    images = sample_images(view, model.config.input_size(view), request.check_images)

    def write_and_check(tmp: Path) -> None:
        onnx.save_model(int8_model, str(tmp))
        report["file_bytes"] = tmp.stat().st_size
        error = checker_error(tmp)
        report["checker"] = "ok" if error is None else error
        with console.status(f"[bold]{name}[/bold]: onnxruntime INT8 vs PyTorch on {len(images)} images"):
            parity = compare_with_torch(tmp, model, view, images).to_dict()
        parity.pop("ok"), parity.pop("min_cosine_required")  # reported, not enforced
        report["parity"] = parity
        problems = _problems(report)
        if problems:
            report["problems"] = problems
            raise _Rejected()

    try:
        atomic_write(unverified_path(paths["onnx"]), write_and_check)   # final name once verified (pipeline)
        report["written"] = True
    except _Rejected:
        report["written"] = False
    atomic_write_json(report, paths["report"])
    return report


class _Rejected(Exception):
    """The INT8 file failed a structural check; it is not renamed into place."""


def _problems(report: dict[str, Any]) -> list[str]:
    problems = [] if report["checker"] == "ok" else [f"onnx checker: {report['checker']}"]
    if report["scan_nodes"] != report["expected_scan_nodes"] or report["function"] != bool(report["scan_nodes"]):
        problems.append(f"{report['scan_nodes']} SelectiveScan nodes (expected {report['expected_scan_nodes']})")
    problems += qdq_problems(report["qdq"])
    if not math.isfinite(report["parity"]["cosine_min"]):
        problems.append("onnxruntime INT8 descriptors are not finite")
    return problems


def run_int8_export(request: Any, recipe: Recipe, views: list[str]) -> list[dict[str, Any]]:
    """Every requested branch as INT8 (checked; accuracy is the verification step's job)."""

    payload = read_checkpoint(request.checkpoint, trusted=request.trusted)
    model = model_from_payload(payload, str(request.checkpoint)).eval()
    _, polar = trained_data_options(payload)
    digest = state_dict_sha256(model)
    reports = []
    for view in views:
        report = export_int8_one(model, view, request, recipe, digest, polar)
        reports.append(report)
        if not report["written"]:
            raise CvglError(f"{report['model_name']}-{view} INT8 failed its checks ({'; '.join(report['problems'])}); "
                            f"no INT8 file written, see {report['report_file']}")
        p = report["parity"]
        calibration = "reused from cache" if report["calibration"]["reused_cache"] else "computed"
        console.print(f"[green]wrote[/green] {report['file']} ({report['file_bytes'] / 1e6:.2f} MB, "
                      f"{report['qdq']['quantized_ops']} MatMul/Conv quantized, {report['scan_nodes']} SelectiveScan "
                      f"nodes in float, calibration {calibration}; "
                      f"INT8 vs PyTorch cosine min {p['cosine_min']:.5f} mean {p['cosine_mean']:.5f})")
    return reports
