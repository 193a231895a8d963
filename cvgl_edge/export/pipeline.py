"""``cvgl-edge export``: checkpoint -> one validated, verified ONNX file + JSON report per branch.

Each branch is exported, written to a temp file, checked (onnx checker, scan nodes,
onnxruntime vs PyTorch on synthetic images) and only then renamed to
``OUT/<model>-<branch>[.fp16|.int8].onnx``: a file at the final path has passed its
checks. The report (``OUT/<model>-<branch>[.fp16|.int8].report.json``) is written either way.

Then every artifact (each ONNX file, then each engine with ``--format engine``) is
verified against the checkpoint on val pairs (``auto_verify``: ``<artifact>.verify.json``).
A file that fails verification is removed (its reports stay) and the export ends with a
CvglError naming the report; ``--no-verify`` skips the step. Engines are built only from
ONNX files that passed; where an engine cannot be run here its verification is "not run".
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from torch import nn

import cvgl_edge
from cvgl_edge.errors import CvglError
from cvgl_edge.export import auto_verify
from cvgl_edge.export.int8.calibration import load_recipe
from cvgl_edge.export.int8.pipeline import run_int8_export
from cvgl_edge.export.onnx.exporter import expected_scan_nodes, export_branch
from cvgl_edge.export.onnx.fp16 import FP16_MIN_COSINE, fp32_islands
from cvgl_edge.export.onnx.metadata import state_dict_sha256
from cvgl_edge.export.onnx.validate import checker_error, compare_with_torch, scan_structure
from cvgl_edge.export.onnx.versions import IR_VERSION, check_opset
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.export.tensorrt.engine_step import build_engines, check_engine_request
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.models import load_checkpoint
from cvgl_edge.precisions import ARTIFACT_PRECISIONS
from cvgl_edge.progress import console

BRANCHES = ("ground", "satellite", "both")
#: engine: the ONNX file, then a TensorRT engine built from it (tensorrt/build.py).
FORMATS = ("onnx", "engine")
PRECISIONS = ARTIFACT_PRECISIONS
#: Accepted later in the roadmap; named so the error says "not implemented yet".
PLANNED_FORMATS: tuple[str, ...] = ()
PLANNED_PRECISIONS: tuple[str, ...] = ()


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
    #: INT8 only: calibration recipe (None: the built-in synthetic default).
    calibration: Path | None = None
    #: Verification at export (auto_verify): on/off, the data whose val split is used
    #: (None: what the checkpoint was trained on), pairs per artifact, and an override of
    #: the precision's R@1-drop threshold (verify.THRESHOLDS) in points.
    verify: bool = True
    eval_data: str | None = None
    verify_pairs: int = auto_verify.DEFAULT_PAIRS
    max_r1_drop: float | None = None
    #: Older spelling of verify_pairs (it set the INT8 recall pairs): when given it wins,
    #: and 0 turns verification off.
    eval_pairs: int | None = None
    #: --format engine only: batch profile, workspace and the optional plugin library.
    max_batch: int = 8
    opt_batch: int = 1
    workspace_mb: int = 1024
    plugin_lib: Path | None = None
    #: False (--no-plugin): build the standard-op scan even when `cvgl-edge plugin build` cached a plugin.
    use_plugin: bool = True
    #: INT8 engines: "explicit" (from the QDQ file) or "implicit" (TensorRT 10.x calibrates the
    #: FP32 file; tensorrt.engine_step checks it).
    int8_mode: str = "explicit"


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
    if request.verify_pairs < 1:
        raise CvglError("--verify-pairs must be >= 1")
    if request.max_r1_drop is not None and request.max_r1_drop < 0:
        raise CvglError("--max-r1-drop must be >= 0 (points of R@1)")
    if request.max_r1_drop is not None and not verifying(request):
        raise CvglError("--max-r1-drop is a verification threshold; it cannot be used with --no-verify")
    if request.calibration is not None and request.precision != "int8":
        raise CvglError("--calibration applies to --precision int8 only")
    if request.format == "engine":

        check_engine_request(request)
    elif request.plugin_lib is not None or not request.use_plugin:
        raise CvglError("--plugin-lib and --no-plugin apply to --format engine only")
    elif request.int8_mode != "explicit":
        raise CvglError("--int8-mode applies to --format engine only")
    return ["ground", "satellite"] if branch == "both" else [branch]


def verifying(request: ExportRequest) -> bool:
    """Whether the artifacts are verified (``--no-verify`` or the old ``--eval-pairs 0`` turn it off)."""
    return request.verify and request.eval_pairs != 0


def verify_pairs(request: ExportRequest) -> int:
    return request.eval_pairs if request.eval_pairs is not None else request.verify_pairs


def report_path(out: Path, name: str) -> Path:
    """``OUT/<name>.report.json``, where name is ``<model>-<branch>[.fp16]``."""
    return out / f"{name}.report.json"


class _Rejected(Exception):
    """The exported file failed a check; it is not renamed into place."""


def export_one(model: nn.Module, view: str, request: ExportRequest, model_sha256: str) -> dict[str, Any]:
    """Export, validate and write one fp32 or fp16 branch; returns its report (also written as JSON)."""
    precision = request.precision
    name = f"{model.model_name}-{view}" + ("" if precision == "fp32" else f".{precision}")
    onnx_path = request.out / f"{name}.onnx"
    report: dict[str, Any] = {
        "model_name": model.model_name, "branch": view, "checkpoint": str(request.checkpoint),
        "format": "onnx", "precision": precision, "opset": request.opset, "ir_version": IR_VERSION,
        "file": str(onnx_path), "report_file": str(report_path(request.out, name)),
        "cvgl_edge_version": cvgl_edge.__version__,
    }
    if precision == "fp16":
        report["fp16"] = {"method": "half-precision copy of the model traced (fp16 weights and activations)",
                          "io": "float32 input cast to fp16 at the entry; float32 descriptors",
                          "fp32_islands": list(fp32_islands(model))}
    start = time.perf_counter()
    with console.status(f"[bold]{name}[/bold]: tracing and lowering to ONNX"):
        onnx_model = export_branch(model, view, request.opset, model_sha256, precision=precision)
    report["export_seconds"] = round(time.perf_counter() - start, 2)
    report.update(scan_structure(onnx_model))
    report["expected_scan_nodes"] = expected_scan_nodes(model, view)
    images = sample_images(view, model.config.input_size(view), request.check_images)

    def write_and_check(tmp: Path) -> None:
        onnx.save_model(onnx_model, str(tmp))
        report["file_bytes"] = tmp.stat().st_size
        with console.status(f"[bold]{name}[/bold]: onnx checker"):
            error = checker_error(tmp)
        report["checker"] = "ok" if error is None else error
        with console.status(f"[bold]{name}[/bold]: onnxruntime vs PyTorch on {len(images)} images"):
            parity = compare_with_torch(tmp, model, view, images)
            if precision == "fp16":
                parity.min_cosine_required = FP16_MIN_COSINE
            report["parity"] = parity.to_dict()
        problems = _problems(report)
        if problems:
            report["problems"] = problems
            raise _Rejected()

    try:
        atomic_write(auto_verify.unverified_path(onnx_path), write_and_check)   # final name once verified
        report["written"] = True
    except _Rejected:
        report["written"] = False
    atomic_write_json(report, Path(report["report_file"]))
    return report


def _problems(report: dict[str, Any]) -> list[str]:
    problems = []
    if report["checker"] != "ok":
        problems.append(f"onnx checker: {report['checker']}")
    if report["scan_nodes"] != report["expected_scan_nodes"] or report["function"] != bool(report["scan_nodes"]):
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


def _scan_text(report: dict[str, Any]) -> str:
    return f"{report['scan_nodes']} SelectiveScan nodes" if report["expected_scan_nodes"] else "no scan (standard ops)"


def run_export(request: ExportRequest) -> list[dict[str, Any]]:
    """Export every requested branch of a checkpoint, verify the files, then (--format engine)
    build and verify engines; CvglError if any branch fails a check or its verification."""
    views = check_request(request)
    reports = _export_onnx(request, views)
    _verify_step(request, reports, "file")
    for report in reports:  # verified (or --no-verify): now under the name eval and localize use
        auto_verify.promote(auto_verify.unverified_path(Path(report["file"])), Path(report["file"]))
    if request.format == "engine":

        build_engines(request, reports)
        _verify_step(request, reports, "engine")
    for report in reports:
        atomic_write_json(report, Path(report["report_file"]))
    return reports


def _verify_step(request: ExportRequest, reports: list[dict[str, Any]], kind: str) -> None:
    """Verify each report's ONNX file (kind "file") or engine (kind "engine"); record the
    outcome in the report; on failure remove the failed files and raise CvglError."""
    key = "verification" if kind == "file" else "engine_verification"
    if not verifying(request):
        reason = "--no-verify" if not request.verify else "--eval-pairs 0"
        for report in reports:
            report[key] = auto_verify.skipped(reason)
        return
    settings = auto_verify.VerifySettings(checkpoint=request.checkpoint, data=request.eval_data,
                                          pairs=verify_pairs(request), max_r1_drop=request.max_r1_drop,
                                          trusted=request.trusted)
    failed = []
    for report in reports:
        final = Path(report["file"] if kind == "file" else report["engine"]["engine"])
        artifact = auto_verify.unverified_path(final) if kind == "file" else final
        record = auto_verify.verify_artifact(artifact, settings, engine=kind == "engine", final=final)
        report[key] = auto_verify.summary(record, final)
        if record["status"] == "failed":
            failed.append((artifact, final, record))
    if not failed:
        return
    for artifact, _, _ in failed:
        artifact.unlink(missing_ok=True)
    for report in reports:
        atomic_write_json(report, Path(report["report_file"]))
    _, final, record = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    raise CvglError(f"{final.name} failed verification ({'; '.join(record['failures'])}){more}; file removed, "
                    f"see {auto_verify.report_path(final)} (--no-verify keeps unverified files)")


def _export_onnx(request: ExportRequest, views: list[str]) -> list[dict[str, Any]]:
    """The validated ONNX file(s) of every requested branch (fp32, fp16 or int8 QDQ)."""

    if request.precision == "int8" and request.int8_mode == "implicit":
        # TensorRT 10.x calibrates the FP32 graph itself (tensorrt.implicit_int8): the file the
        # INT8 engine is built from is the verified FP32 export.
        return _export_onnx(dataclasses.replace(request, precision="fp32"), views)
    if request.precision == "int8":

        return run_int8_export(request, load_recipe(request.calibration), views)
    model = load_checkpoint(request.checkpoint, trusted=request.trusted)
    digest = state_dict_sha256(model)
    reports = []
    for view in views:
        report = export_one(model, view, request, digest)
        reports.append(report)
        if not report["written"]:
            raise CvglError(
                f"{Path(report['file']).name} failed its checks ({'; '.join(report['problems'])}); "
                f"no ONNX file written, see {report['report_file']}"
            )
        parity = report["parity"]
        console.print(
            f"[green]wrote[/green] {report['file']} ({report['file_bytes'] / 1e6:.1f} MB, {report['precision']}, "
            f"{_scan_text(report)}, checker ok, onnxruntime vs PyTorch: "
            f"cosine min {parity['cosine_min']:.7f}, max abs err {parity['max_abs_err']:.2e})"
        )
    return reports
