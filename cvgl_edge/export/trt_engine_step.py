"""The ``--format engine`` step of ``cvgl-edge export``: one engine per exported ONNX file.

Why a separate step: the ONNX export (and its checks) stays exactly as for ``--format
onnx``; the engine is built from the file that passed them. The TensorRT package and the
options are checked before any export work, so a missing package fails in a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError
from cvgl_edge.export.trt_backend import load_backend
from cvgl_edge.export.trt_build import EngineOptions, build_engine, engine_path_for, sidecar_path
from cvgl_edge.progress import console


def engine_options(request: Any) -> EngineOptions:
    return EngineOptions(max_batch=request.max_batch, opt_batch=request.opt_batch,
                         workspace_mb=request.workspace_mb,
                         plugin_lib=Path(request.plugin_lib) if request.plugin_lib else None,
                         timing_cache=Path(request.out) / "trt-timing.cache")


def check_engine_request(request: Any) -> None:
    """Options valid and a TensorRT package importable (CvglError otherwise)."""
    engine_options(request).check()
    load_backend()


def build_engines(request: Any, reports: list[dict[str, Any]]) -> None:
    """Build ``<model>-<branch>[.int8].engine`` (+ ``.engine.json``) next to each ONNX file."""
    backend = load_backend()
    for report in reports:
        onnx_path = Path(report["file"])
        if not report.get("accepted", True) or not onnx_path.is_file():
            raise CvglError(f"no ONNX file {onnx_path} to build an engine from (rejected at export)")
        options = engine_options(request)
        options.calibration = report.get("calibration")
        engine = engine_path_for(onnx_path)
        with console.status(f"[bold]{engine.name}[/bold]: building with {backend.flavour} {backend.version}"):
            sidecar = build_engine(onnx_path, engine, options, backend)
        report["engine"] = sidecar
        console.print(
            f"[green]wrote[/green] {engine} ({sidecar['engine_bytes'] / 1e6:.1f} MB, {sidecar['precision']}, "
            f"{backend.flavour} {backend.version}, {sidecar['build_seconds']:.1f} s; scan: {sidecar['selective_scan']}; "
            f"target: {sidecar['target']}) and {sidecar_path(engine).name}. "
            f"Not run: this build needs no GPU, running the engine does."
        )
