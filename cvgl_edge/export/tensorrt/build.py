"""Exported ONNX -> serialized TensorRT engine (+ JSON sidecar), with tensorrt or tensorrt_rtx.

Why this shape: by default (``int8_mode="explicit"``) the network is created strongly
typed, so the precision is the ONNX graph's (fp32 file -> fp32 engine, QDQ file -> int8
engine) and the same code works on TensorRT 11 (strongly typed only) and TensorRT-RTX.
``int8_mode="implicit"`` (TensorRT 10.x only) builds a weakly typed network from the FP32
file with the INT8/FP16 flags and an entropy calibrator (implicit_int8.py). The batch
is dynamic (one optimisation profile min 1 / opt / max).

The selective scan: each scan is one ``cvgl.SelectiveScan`` node, and the file also holds a
``SelectiveScan`` ONNX local function (standard ops) so ONNX Runtime runs it. Without
``--plugin-lib`` the parser imports that function (a TensorRT loop). With it, the parser is
handed the model *without* that function (the file on disk is unchanged), because which one
the parser takes depends on its version: 10.0-10.6 (JetPack 6: 10.3) import a node through
its local function first and only try the plugin registry for ops with neither importer nor
function, so the plugin would silently go unused; 10.7-10.14 prefer a registered plugin;
10.15+ look a node with ``plugin_namespace`` up in the registry first. Without the function
every version makes a plugin layer, and the build stops unless there is one per scan node.
TensorRT-RTX cannot run custom plugins, so ``--plugin-lib`` is refused there. The engine is
written atomically; the sidecar records what it was built from and for: TensorRT version, and the
GPU (full TensorRT: name, compute capability, driver/runtime CUDA versions) or the
compute-capability targets (TensorRT-RTX), which the TensorRT runtime checks on load.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import onnx

import cvgl_edge
from cvgl_edge.errors import CvglError
from cvgl_edge.export.int8.calibration import Recipe
from cvgl_edge.export.onnx.metadata import INPUT_NAME, read_metadata
from cvgl_edge.export.scan import contract
from cvgl_edge.export.tensorrt.gpu_facts import gpu_facts, rtx_capabilities
from cvgl_edge.export.tensorrt.implicit_int8 import check_implicit_support, check_int8_mode, configure_implicit_int8
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.runtime.tensorrt.backend import TrtBackend, collecting_logger, load_backend
from cvgl_edge.runtime.tensorrt.engine_checks import sidecar_path

#: Engines built by TensorRT-RTX without explicit targets run on these (its documented default).
RTX_DEFAULT_TARGET = "AOT, CPU-built; TensorRT-RTX default targets: CC 8.0, 8.6, 8.9, 12.0 and later (not 7.5)"
NOT_RUN = "not run here: building needs no GPU, running the engine does (no inference check was made)"
NOT_RUN_FULL = "not run here: the build does not execute the engine (no inference check was made)"
#: The sidecar's ``selective_scan`` text for each ``ScanImport.path``.
SCAN_TEXT = {"plugin": f"plugin {contract.PLUGIN_NAMESPACE}::{contract.OP_TYPE} v{contract.PLUGIN_VERSION}",
             "function": "standard-op body (ONNX local function imported; Scan as a TensorRT loop)",
             "none": "none (the model has no selective scan)"}


@dataclass
class EngineOptions:
    """Build settings (CLI: --max-batch, --opt-batch, --workspace-mb, --plugin-lib, --int8-mode)."""

    max_batch: int = 8
    opt_batch: int = 1
    workspace_mb: int = 1024
    plugin_lib: Path | None = None
    timing_cache: Path | None = None
    #: What the int8 scales came from (the export report's calibration entry), for the sidecar.
    calibration: Any = None
    #: "explicit": strongly typed, precision from the ONNX file (QDQ = int8). "implicit": TensorRT 10.x
    #: weakly typed INT8+FP16 from the FP32 file, entropy-calibrated on ``recipe``'s images.
    int8_mode: str = "explicit"
    recipe: Recipe | None = None
    #: Implicit mode: the polar transform the checkpoint was trained with (recipe polar "checkpoint").
    trained_polar: bool = False

    def check(self) -> None:
        self.int8_mode = check_int8_mode(self.int8_mode)
        if self.max_batch < 1 or not 1 <= self.opt_batch <= self.max_batch:
            raise CvglError(f"need 1 <= --opt-batch ({self.opt_batch}) <= --max-batch ({self.max_batch})")
        if self.workspace_mb < 1:
            raise CvglError("--workspace-mb must be >= 1")
        if self.plugin_lib is not None and not Path(self.plugin_lib).is_file():
            raise CvglError(f"--plugin-lib {self.plugin_lib}: no such file")

    def check_backend(self, backend: TrtBackend) -> None:
        """CvglError for what ``backend`` cannot build: implicit INT8 outside TensorRT 10.x, and any plugin
        library with TensorRT-RTX (its parser creates the plugin and the process aborts: no custom plugins)."""
        if self.int8_mode == "implicit":
            check_implicit_support(backend)
        if self.plugin_lib is not None and backend.is_rtx:
            raise CvglError(f"--plugin-lib {self.plugin_lib}: TensorRT-RTX ({backend.flavour} {backend.version}) "
                            "cannot run custom plugins; build without --plugin-lib (the scan's standard-op body) "
                            "or with the full tensorrt package")


@dataclass(frozen=True)
class ScanImport:
    """How the parser imported the SelectiveScan nodes: the sidecar's ``scan_import``.

    ``path``: "plugin" (one plugin layer per scan node), "function" (the local function, a
    TensorRT loop) or "none" (no scan node). ``function_removed``: the parser was given the
    model without its SelectiveScan local function (so that the plugin serves every scan).
    """

    path: Literal["plugin", "function", "none"]
    scan_nodes: int
    plugin_layers: int
    function_removed: bool

    @property
    def text(self) -> str:
        """The sidecar's ``selective_scan`` entry."""
        return SCAN_TEXT[self.path]


def _one_line(parts: list[str], limit: int = 3) -> str:
    text = "; ".join(" ".join(p.split()) for p in parts[:limit])
    return text + (f" (+{len(parts) - limit} more)" if len(parts) > limit else "")


def _load_plugin(backend: TrtBackend, builder: Any, config: Any, path: Path) -> bool:
    """Load the plugin library into the registry and ask for it to be serialized in the engine."""
    registry = builder.get_plugin_registry() if hasattr(builder, "get_plugin_registry") else backend.trt.get_plugin_registry()
    try:
        handle = registry.load_library(str(path))
    except Exception as error:  # the bindings raise for a library without plugin entry points
        raise CvglError(f"--plugin-lib {path}: {backend.flavour} could not load it: {error}") from None
    if handle is None:
        raise CvglError(f"--plugin-lib {path}: {backend.flavour} could not load it (no getCreators/getPluginCreators?)")
    if hasattr(config, "plugins_to_serialize"):
        config.plugins_to_serialize = [str(path)]
    return True


def _has_scan_function(model: onnx.ModelProto) -> bool:
    return any(contract.is_scan_function(f) for f in model.functions)


def _without_scan_function(model: onnx.ModelProto) -> bytes:
    """``model`` serialized without its SelectiveScan local function (``model`` is left as it is).

    Why: TensorRT 10.0-10.6 import a node through its local function before looking for a
    plugin, so with the function present the plugin library is never used there.
    """
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    kept = [f for f in stripped.functions if not contract.is_scan_function(f)]
    del stripped.functions[:]
    stripped.functions.extend(kept)
    return stripped.SerializeToString()


def _parse(backend: TrtBackend, network: Any, logger: Any, onnx_path: Path, model: onnx.ModelProto,
           plugin_lib: Path | None) -> None:
    """Parse the file, or with ``plugin_lib`` ``model`` without its SelectiveScan local function, so that
    the plugin serves the scans (``onnx_path`` still tells the parser where external weights are)."""
    parser = backend.trt.OnnxParser(network, logger)
    if plugin_lib is None:
        ok = parser.parse_from_file(str(onnx_path))
    else:
        ok = parser.parse(_without_scan_function(model), str(onnx_path))
    if not ok:
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        texts = [f"{e.desc()} (node {e.node()} {e.node_name()!r} op {e.node_operator()!r})" for e in errors]
        hint = "" if plugin_lib is None else (f" (parsed without the SelectiveScan local function for the plugin "
                                              f"library {plugin_lib}: does it register {SCAN_TEXT['plugin']}?)")
        raise CvglError(f"TensorRT ({backend.flavour} {backend.version}) could not parse {onnx_path.name}: "
                        f"{_one_line(texts or logger.errors() or ['unknown parser error'])}{hint}")


def _tensors(network: Any, count: int, get: str) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        t = getattr(network, get)(i)
        out.append({"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype).split(".")[-1]})
    return out


def _scan_layers(backend: TrtBackend, network: Any) -> dict[str, int]:
    """How the scans were imported: plugin layers vs loop layers (the Scan body)."""
    types = [str(network.get_layer(i).type).split(".")[-1] for i in range(network.num_layers)]
    return {"layers": len(types), "plugin_layers": sum("PLUGIN" in t for t in types),
            "loop_layers": sum(t in ("ITERATOR", "RECURRENCE", "TRIP_LIMIT", "LOOP_OUTPUT") for t in types)}


def _scan_import(scan_nodes: int, plugin_layers: int, plugin: bool, function_removed: bool) -> ScanImport:
    path = "none" if not scan_nodes else "plugin" if plugin else "function"
    return ScanImport(path, scan_nodes, plugin_layers, function_removed)


def _check_plugin_used(scan: ScanImport, backend: TrtBackend, onnx_path: Path, plugin_lib: Path) -> None:
    """With a plugin library every scan node must have become a plugin layer (else some ran as loops, silently)."""
    if scan.plugin_layers != scan.scan_nodes:
        raise CvglError(f"TensorRT ({backend.flavour} {backend.version}) made {scan.plugin_layers} plugin layers "
                        f"for {scan.scan_nodes} SelectiveScan nodes of {onnx_path.name}: the plugin library "
                        f"{plugin_lib} was not used for every scan (does it register {SCAN_TEXT['plugin']}?)")


def _gpu_entries(config: Any, backend: TrtBackend) -> dict[str, Any]:
    """Full TensorRT: the build GPU (engine runs on that compute capability only); TensorRT-RTX: its targets."""
    if backend.is_rtx:
        capabilities, default = rtx_capabilities(config)
        return {"gpu": None, "compute_capabilities": capabilities, "compute_capabilities_default": default}
    gpu = gpu_facts()
    return {"gpu": gpu, "compute_capabilities": [gpu["compute_capability"]] if gpu else None,
            "compute_capabilities_default": False}


def _target(gpu_entries: dict[str, Any], backend: TrtBackend) -> str:
    """Where the engine runs, in words, from the compute capabilities ``_gpu_entries`` found."""
    if not backend.is_rtx:
        return "the GPU this was built on (full TensorRT builds for the local device)"
    if gpu_entries["compute_capabilities_default"]:
        return RTX_DEFAULT_TARGET
    return "AOT, CPU-built; CC " + ", ".join(gpu_entries["compute_capabilities"])


def _load_timing_cache(config: Any, path: Path | None, backend: TrtBackend) -> Any:
    """The timing cache from ``path`` (empty if absent); None where it does nothing (TensorRT-RTX >= 1.2)."""
    if path is None or backend.is_rtx or not hasattr(config, "create_timing_cache"):
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _save_timing_cache(config: Any, path: Path | None) -> bool:
    cache = config.get_timing_cache() if path is not None and hasattr(config, "get_timing_cache") else None
    if cache is None:
        return False
    blob = bytes(memoryview(cache.serialize()))
    if not blob:
        return False
    atomic_write(path, lambda tmp: tmp.write_bytes(blob))
    return True


def _warnings(logger: Any) -> dict[str, Any]:
    """Warnings, minus the parser's one-per-inlined-function 'node named ... already exists' notes."""
    texts = [m for _, m in logger.messages]
    dup = [t for t in texts if "already exists, the output tensors" in t]
    return {"warnings": sorted(set(texts) - set(dup))[:20], "duplicate_node_name_warnings": len(dup)}


def build_engine(onnx_path: Path, engine_path: Path, options: EngineOptions,
                 backend: TrtBackend | None = None) -> dict[str, Any]:
    """Build ``engine_path`` (+ ``.json`` sidecar) from an exported ONNX file; returns the sidecar."""
    options.check()
    backend = backend or load_backend()
    options.check_backend(backend)
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    model = onnx.load(str(onnx_path), load_external_data=False)
    meta = read_metadata(model)
    implicit = options.int8_mode == "implicit"
    if implicit:
        if meta.get("precision", "fp32") != "fp32":
            raise CvglError(f"implicit INT8 builds from the FP32 ONNX file; {onnx_path.name} is "
                            f"{meta.get('precision')} (use <model>-<branch>.onnx)")
    trt = backend.trt
    logger = collecting_logger(trt)
    start = time.perf_counter()
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if hasattr(
        trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") and not implicit else 0
    network = builder.create_network(flags)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    plugin = _load_plugin(backend, builder, config, options.plugin_lib) if options.plugin_lib else False
    scan_nodes = contract.count_scan_nodes(model)
    remove_function = plugin and scan_nodes > 0 and _has_scan_function(model)
    _parse(backend, network, logger, onnx_path, model, options.plugin_lib if remove_function else None)
    scans = _scan_layers(backend, network)
    scan = _scan_import(scan_nodes, scans["plugin_layers"], plugin, remove_function)
    if plugin:
        _check_plugin_used(scan, backend, onnx_path, options.plugin_lib)
    int8 = configure_implicit_int8(backend, builder, network, config, onnx_path, engine_path, meta, options.recipe,
                                   options.trained_polar) if implicit else None
    h, w = meta["input_size"]
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (1, 3, h, w), (options.opt_batch, 3, h, w), (options.max_batch, 3, h, w))
    config.add_optimization_profile(profile)
    timing = _load_timing_cache(config, options.timing_cache, backend)
    serialized = builder.build_serialized_network(network, config)
    calibration = int8.finish() if int8 is not None else options.calibration  # calibrator errors first
    if serialized is None:
        raise CvglError(f"TensorRT ({backend.flavour} {backend.version}) could not build {engine_path.name}: "
                        f"{_one_line(logger.errors() or ['no error message'])}")
    blob = bytes(memoryview(serialized))
    seconds = time.perf_counter() - start
    atomic_write(engine_path, lambda tmp: tmp.write_bytes(blob))
    gpu_entries = _gpu_entries(config, backend)
    sidecar = {
        "engine": str(engine_path), "engine_bytes": len(blob), "engine_sha256": hashlib.sha256(blob).hexdigest(),
        "onnx": str(onnx_path), "tensorrt": {"flavour": backend.flavour, "version": backend.version},
        "target": _target(gpu_entries, backend), **gpu_entries, "strongly_typed": bool(flags),
        "precision": "int8" if implicit else meta.get("precision", "fp32"),
        "int8_mode": options.int8_mode if implicit or meta.get("precision") == "int8" else None,
        "calibration": calibration,
        "inputs": _tensors(network, network.num_inputs, "get_input"),
        "outputs": _tensors(network, network.num_outputs, "get_output"),
        "batch_profile": {"min": 1, "opt": options.opt_batch, "max": options.max_batch},
        "workspace_mb": options.workspace_mb,
        "model_name": meta.get("model_name"), "view": meta.get("view"), "model_sha256": meta.get("model_sha256"),
        "descriptor_dim": meta.get("descriptor_dim"), "input_size": [h, w],
        "selective_scan": scan.text, "scan_import": asdict(scan),
        "plugin_lib": str(options.plugin_lib) if plugin else None, "network_layers": scans,
        "timing_cache": str(options.timing_cache) if timing is not None else
                        ("not used (a no-op in TensorRT-RTX)" if backend.is_rtx else None),
        "timing_cache_saved": _save_timing_cache(config, options.timing_cache) if timing is not None else False,
        "build_seconds": round(seconds, 2), "run_check": NOT_RUN if backend.is_rtx else NOT_RUN_FULL,
        **_warnings(logger),
        "cvgl_edge_version": cvgl_edge.__version__,
    }
    atomic_write_json(sidecar, sidecar_path(engine_path))
    return sidecar


def engine_path_for(onnx_path: Path) -> Path:
    """``<model>-<branch>[.int8].onnx`` -> ``<model>-<branch>[.int8].engine``."""
    return Path(onnx_path).with_suffix(".engine")


def read_sidecar(engine_path: Path) -> dict[str, Any]:
    return json.loads(sidecar_path(engine_path).read_text())
