"""``cvgl-edge export``: checkpoint -> one validated ONNX file + JSON report per branch.

Each branch is exported, written to a temp file, checked (onnx checker, scan nodes,
onnxruntime vs PyTorch on synthetic images) and only then renamed to
``OUT/<model>-<branch>.onnx``: a file at the final path has passed its checks. The
report (``OUT/<model>-<branch>.report.json``) is written either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from torch import nn

import cvgl_edge
from cvgl_edge.errors import CvglError
from cvgl_edge.export.onnx_export import export_branch
from cvgl_edge.export.onnx_format import IR_VERSION, check_opset
from cvgl_edge.export.onnx_metadata import state_dict_sha256
from cvgl_edge.export.onnx_validate import checker_error, compare_with_torch, scan_structure
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.progress import console

BRANCHES = ("ground", "satellite", "both")
#: engine: the ONNX file, then a TensorRT engine built from it (trt_build.py).
FORMATS = ("onnx", "engine")
PRECISIONS = ("fp32", "int8")
#: Accepted later in the roadmap; named so the error says "not implemented yet".
PLANNED_FORMATS: tuple[str, ...] = ()
PLANNED_PRECISIONS = ("fp16",)


@dataclass
class ExportRequest:
    """What the user asked for, validated by ``check_request``."""

    checkpoint: Path
    out: Path
    branch: str = "both"
    format: str = "onnx"
    precision: str = "fp32"
    opset: int = 18
    check_images: int = 4
    trusted: bool = False
    #: INT8 only: calibration recipe (None: the built-in synthetic default), the data
    #: whose val split measures the accuracy loss (pairs: None = all, 0 = skip), and an
    #: optional R@1 drop (points) above which the INT8 files are rejected.
    calibration: Path | None = None
    eval_data: str = "synthetic"
    eval_pairs: int | None = None
    max_r1_drop: float | None = None
    #: --format engine only: batch profile, workspace and the optional plugin library.
    max_batch: int = 8
    opt_batch: int = 1
    workspace_mb: int = 1024
    plugin_lib: Path | None = None


def _choice(value: str, option: str, valid: tuple[str, ...], planned: tuple[str, ...]) -> str:
    value = value.lower()
    if value in planned:
        raise CvglError(f"{option} {value} is not implemented yet; available: {', '.join(valid)}")
    if value not in valid:
        raise CvglError(f"unknown {option} {value!r}; choose {', '.join(valid)}")
    return value


def check_request(request: ExportRequest) -> list[str]:
    """Validate the options (before any work); returns the views to export."""
    branch = _choice(request.branch, "--branch", BRANCHES, ())
    request.format = _choice(request.format, "--format", FORMATS, PLANNED_FORMATS)
    request.precision = _choice(request.precision, "--precision", PRECISIONS, PLANNED_PRECISIONS)
    check_opset(request.opset)
    if request.check_images < 1:
        raise CvglError("--check-images must be >= 1")
    if request.eval_pairs is not None and request.eval_pairs < 0:
        raise CvglError("--eval-pairs must be >= 0")
    if request.format == "engine":
        from cvgl_edge.export.trt_engine_step import check_engine_request

        check_engine_request(request)
    elif request.plugin_lib is not None:
        raise CvglError("--plugin-lib applies to --format engine only")
    return ["ground", "satellite"] if branch == "both" else [branch]


class _Rejected(Exception):
    """The exported file failed a check; it is not renamed into place."""


def export_one(model: nn.Module, view: str, request: ExportRequest, model_sha256: str) -> dict[str, Any]:
    """Export, validate and write one branch; returns its report (also written as JSON)."""
    name = f"{model.model_name}-{view}"
    onnx_path = request.out / f"{name}.onnx"
    report: dict[str, Any] = {
        "model_name": model.model_name, "branch": view, "checkpoint": str(request.checkpoint),
        "format": "onnx", "precision": "fp32", "opset": request.opset, "ir_version": IR_VERSION,
        "file": str(onnx_path), "cvgl_edge_version": cvgl_edge.__version__,
    }
    start = time.perf_counter()
    with console.status(f"[bold]{name}[/bold]: tracing and lowering to ONNX"):
        onnx_model = export_branch(model, view, request.opset, model_sha256)
    report["export_seconds"] = round(time.perf_counter() - start, 2)
    report.update(scan_structure(onnx_model))
    report["expected_scan_nodes"] = 2 * model.config.depth
    images = sample_images(view, model.config.input_size(view), request.check_images)

    def write_and_check(tmp: Path) -> None:
        onnx.save_model(onnx_model, str(tmp))
        report["file_bytes"] = tmp.stat().st_size
        with console.status(f"[bold]{name}[/bold]: onnx checker"):
            error = checker_error(tmp)
        report["checker"] = "ok" if error is None else error
        with console.status(f"[bold]{name}[/bold]: onnxruntime vs PyTorch on {len(images)} images"):
            report["parity"] = compare_with_torch(tmp, model, view, images).to_dict()
        problems = _problems(report)
        if problems:
            report["problems"] = problems
            raise _Rejected()

    try:
        atomic_write(onnx_path, write_and_check)
        report["written"] = True
    except _Rejected:
        report["written"] = False
    atomic_write_json(report, request.out / f"{name}.report.json")
    return report


def _problems(report: dict[str, Any]) -> list[str]:
    problems = []
    if report["checker"] != "ok":
        problems.append(f"onnx checker: {report['checker']}")
    if report["scan_nodes"] != report["expected_scan_nodes"] or not report["function"]:
        problems.append(
            f"{report['scan_nodes']} SelectiveScan nodes (expected {report['expected_scan_nodes']}), "
            f"function present: {report['function']}"
        )
    parity = report["parity"]
    if not parity["ok"]:
        problems.append(
            f"onnxruntime vs PyTorch cosine {parity['cosine_min']:.6f} < {parity['min_cosine_required']}"
        )
    return problems


def run_export(request: ExportRequest) -> list[dict[str, Any]]:
    """Export every requested branch of a checkpoint (then build engines for --format engine);
    CvglError if any branch fails a check."""
    views = check_request(request)
    reports = _export_onnx(request, views)
    if request.format == "engine":
        from cvgl_edge.export.trt_engine_step import build_engines

        build_engines(request, reports)
    return reports


def _export_onnx(request: ExportRequest, views: list[str]) -> list[dict[str, Any]]:
    """The validated ONNX file(s) of every requested branch (fp32 or int8 QDQ)."""
    from cvgl_edge.models import load_checkpoint

    if request.precision == "int8":
        from cvgl_edge.export.calibration import load_recipe
        from cvgl_edge.export.int8_pipeline import run_int8_export

        return run_int8_export(request, load_recipe(request.calibration), views)
    if request.calibration is not None or request.max_r1_drop is not None:
        raise CvglError("--calibration and --max-r1-drop apply to --precision int8 only")
    model = load_checkpoint(request.checkpoint, trusted=request.trusted)
    digest = state_dict_sha256(model)
    reports = []
    for view in views:
        report = export_one(model, view, request, digest)
        reports.append(report)
        if not report["written"]:
            raise CvglError(
                f"{report['model_name']}-{view} failed its checks ({'; '.join(report['problems'])}); "
                f"no ONNX file written, see {request.out / (report['model_name'] + '-' + view + '.report.json')}"
            )
        parity = report["parity"]
        console.print(
            f"[green]wrote[/green] {report['file']} ({report['file_bytes'] / 1e6:.1f} MB, "
            f"{report['scan_nodes']} SelectiveScan nodes, checker ok, onnxruntime vs PyTorch: "
            f"cosine min {parity['cosine_min']:.7f}, max abs err {parity['max_abs_err']:.2e})"
        )
    return reports
