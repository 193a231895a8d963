"""The ``--format engine`` step of ``cvgl-edge export``: one engine per exported ONNX file.

Why a separate step: the ONNX export (and its checks) stays exactly as for ``--format
onnx``; the engine is built from the file that passed them. The TensorRT package and the
options are checked before any export work, so a missing package fails in a second.

``--int8-mode implicit`` (TensorRT 10.x): the INT8 engine ``<model>-<branch>.int8.engine`` is
built from the FP32 file ``<model>-<branch>.onnx`` (which the export must have written),
calibrated by TensorRT on the ``--calibration`` recipe's images, with its entropy cache
``<model>-<branch>.int8.entropy.cache`` beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError
from cvgl_edge.eval.evaluate import trained_data_options
from cvgl_edge.export.int8.calibration import Recipe, load_recipe
from cvgl_edge.export.plugin.cache import find_plugin
from cvgl_edge.export.plugin.toolchain import gpu_compute_capability
from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine, engine_path_for, sidecar_path
from cvgl_edge.export.tensorrt.implicit_int8 import check_int8_mode
from cvgl_edge.models.checkpoint import read_checkpoint
from cvgl_edge.progress import console
from cvgl_edge.runtime.tensorrt.backend import TrtBackend, load_backend


def request_int8_mode(request: Any) -> str:
    """The request's ``int8_mode`` ("explicit" when the request has none)."""
    return check_int8_mode(getattr(request, "int8_mode", None) or "explicit")


def engine_options(request: Any) -> EngineOptions:
    return EngineOptions(max_batch=request.max_batch, opt_batch=request.opt_batch,
                         workspace_mb=request.workspace_mb,
                         plugin_lib=Path(request.plugin_lib) if request.plugin_lib else None,
                         timing_cache=Path(request.out) / "trt-timing.cache", int8_mode=request_int8_mode(request))


def default_plugin(backend: TrtBackend) -> Path | None:
    """The plugin `cvgl-edge plugin build` cached for this TensorRT and GPU; None with TensorRT-RTX
    (no custom plugins) or when none was built."""
    if backend.is_rtx:
        return None
    build = find_plugin(backend.version, gpu_compute_capability())
    return Path(build.library) if build else None


def check_engine_request(request: Any) -> None:
    """Options valid and a TensorRT package importable that can build them (implicit INT8: 10.x; plugin
    library: not TensorRT-RTX); CvglError otherwise. Without --plugin-lib (and without --no-plugin)
    the request takes the cached plugin for this TensorRT and GPU, when there is one."""
    if request.plugin_lib is not None and not request.use_plugin:
        raise CvglError("--plugin-lib and --no-plugin contradict each other; give one")
    backend = load_backend()
    if request.plugin_lib is None and request.use_plugin:
        request.plugin_lib = default_plugin(backend)
        if request.plugin_lib is not None:
            console.print(f"SelectiveScan plugin: {request.plugin_lib} (from `cvgl-edge plugin build`; "
                          "--no-plugin builds the standard-op scan instead)")
    options = engine_options(request)
    options.check()
    if options.int8_mode == "implicit" and getattr(request, "precision", "fp32") != "int8":
        raise CvglError("--int8-mode implicit applies to --precision int8")
    options.check_backend(backend)


def implicit_source(onnx_path: Path) -> Path:
    """The FP32 file an implicit-INT8 engine is built from: ``X.int8.onnx`` or ``X.onnx`` -> ``X.onnx``."""
    path = Path(onnx_path)
    return path.with_name(path.name[: -len(".int8.onnx")] + ".onnx") if path.name.endswith(".int8.onnx") else path


def implicit_engine_path(fp32_onnx: Path) -> Path:
    """``X.onnx`` -> ``X.int8.engine`` (the same name as the explicit INT8 engine; the sidecar says which mode)."""
    return Path(fp32_onnx).with_suffix(".int8.engine")


def _trained_polar(request: Any, recipe: Recipe) -> bool:
    """Whether the checkpoint was trained on polar-transformed ground images (only read when the recipe says so)."""
    if recipe.polar != "checkpoint":
        return False

    return trained_data_options(read_checkpoint(request.checkpoint, trusted=getattr(request, "trusted", False)))[1]


def _paths(report: dict[str, Any], implicit: bool) -> tuple[Path, Path]:
    """(ONNX file to build from, engine path) for one export report."""
    onnx_path = Path(report["file"])
    if not implicit:
        if not report.get("accepted", True) or not onnx_path.is_file():
            raise CvglError(f"no ONNX file {onnx_path} to build an engine from (rejected at export)")
        return onnx_path, engine_path_for(onnx_path)
    source = implicit_source(onnx_path)
    if not source.is_file():
        raise CvglError(f"implicit INT8 builds from the FP32 ONNX file {source}, which this export did not write "
                        f"(--int8-mode implicit needs <model>-<branch>.onnx)")
    return source, implicit_engine_path(source)


def build_engines(request: Any, reports: list[dict[str, Any]]) -> None:
    """Build ``<model>-<branch>[.int8].engine`` (+ ``.engine.json``) next to each ONNX file."""
    backend = load_backend()
    implicit = request_int8_mode(request) == "implicit"
    recipe = load_recipe(getattr(request, "calibration", None)) if implicit else None
    polar = _trained_polar(request, recipe) if recipe is not None else False
    for report in reports:
        onnx_path, engine = _paths(report, implicit)
        options = engine_options(request)
        options.calibration = report.get("calibration")
        options.recipe, options.trained_polar = recipe, polar
        what = f"calibrating INT8 on {recipe.count} {recipe.split} images and " if implicit else ""
        with console.status(f"[bold]{engine.name}[/bold]: {what}building with {backend.flavour} {backend.version}"):
            sidecar = build_engine(onnx_path, engine, options, backend)
        report["engine"] = sidecar
        console.print(
            f"[green]wrote[/green] {engine} ({sidecar['engine_bytes'] / 1e6:.1f} MB, {sidecar['precision']}, "
            f"{backend.flavour} {backend.version}, {sidecar['build_seconds']:.1f} s; scan: {sidecar['selective_scan']}; "
            f"target: {sidecar['target']}) and {sidecar_path(engine).name}. "
            + ("Not run: this build needs no GPU, running the engine does." if backend.is_rtx else
               "Built, not run (no inference check was made).")
        )
        if implicit:
            _print_calibration(sidecar["calibration"])


def _print_calibration(info: dict[str, Any]) -> None:
    if info.get("cache_note"):
        console.print(f"[yellow]note[/yellow]: {info['cache_note']}")
    how = ("reused the calibration cache" if info["reused_cache"] else
           f"calibrated on {info['images']} images in {info['batches']} batches"
           + (f" ({info['padded_images']} repeated to fill the last batch)" if info["padded_images"] else ""))
    console.print(f"implicit INT8 ({info['algorithm']}): {how}; cache {info['cache']}; "
                  f"{info['precision_constraints']['scan_layers_fp32']} scan and "
                  f"{info['precision_constraints']['norm_layers_fp32']} norm layers pinned to FP32")
