"""ONNX Runtime sessions and what an exported ONNX file says about itself, without ``onnx`` or PyTorch.

Why here (runtime, below export): the deployment install runs exported files with
onnxruntime only. The exporter writes the file's cvgl-edge metadata (``metadata_props``,
see ``cvgl_edge.export.onnx.metadata``); a runtime reads it back through the session
(``get_modelmeta().custom_metadata_map``), so the same parsing serves both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError

INPUT_NAME = "images"
OUTPUT_NAME = "descriptors"
#: Keys whose value is JSON (everything else is a plain string).
JSON_KEYS = ("input_size", "normalize_mean", "normalize_std", "model_config")
INT_KEYS = ("descriptor_dim", "opset", "scan_nodes", "params", "params_total", "flops")
#: ``device`` -> onnxruntime execution provider.
ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def parse_metadata(raw: Mapping[str, str]) -> dict[str, Any]:
    """Parsed cvgl-edge metadata (JSON keys decoded, counts as ints) from the raw key -> string map."""
    if "view" not in raw or "input_size" not in raw:
        raise CvglError("this ONNX file carries no cvgl-edge metadata (was it exported by cvgl-edge?)")
    parsed: dict[str, Any] = dict(raw)
    for key in JSON_KEYS:
        if key in raw:
            parsed[key] = json.loads(raw[key])
    for key in INT_KEYS:
        if key in raw:
            parsed[key] = int(raw[key])
    return parsed


def session_metadata(session: Any) -> dict[str, Any]:
    """The parsed cvgl-edge metadata of the file an onnxruntime session was made from."""
    return parse_metadata(dict(session.get_modelmeta().custom_metadata_map))


def ort_session(path: str | Path, threads: int | None = None, device: str = "cpu"):
    """An onnxruntime session on ``device`` ("cpu" or "cuda[:N]"); ``threads`` intra-op threads
    (default: onnxruntime's).

    Why the checks: onnxruntime silently falls back to the CPU when the CUDA provider is
    missing from the build or cannot load its libraries; a user asking for CUDA gets a
    one-line CvglError instead of CPU timings labelled as GPU ones.
    """
    import onnxruntime as ort

    kind, _, index = device.partition(":")
    if kind not in ORT_PROVIDERS or (index and not index.isdigit()):
        raise CvglError(f"unknown device {device!r} for onnxruntime; use cpu, cuda or cuda:N")
    provider = ORT_PROVIDERS[kind]
    if provider not in ort.get_available_providers():
        raise CvglError(f"this onnxruntime build ({ort.__version__}) has no {provider}; "
                        f"install onnxruntime-gpu for --device cuda, or use --device cpu")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers: list = [provider] if kind == "cpu" else [(provider, {"device_id": int(index or 0)})]
    session = ort.InferenceSession(str(path), options, providers=providers)
    if session.get_providers()[0] != provider:
        raise CvglError(f"onnxruntime could not start {provider} for {Path(path).name} "
                        f"(it fell back to {session.get_providers()[0]}); check the CUDA/cuDNN libraries")
    return session
