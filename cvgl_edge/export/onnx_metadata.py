"""What an exported ONNX file says about itself (``metadata_props``).

Why: a runtime (onnxruntime, TensorRT, the on-drone loop) must feed the file exactly
the images the model was trained on and know what comes out, without the checkpoint
or this package's defaults. Scalars are plain strings; lists and dicts are JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import onnx
import torch
from torch import nn

import cvgl_edge
from cvgl_edge.data.normalize import MEAN_RGB, PIXEL_SCALE, STD_RGB
from cvgl_edge.errors import CvglError

INPUT_NAME = "images"
OUTPUT_NAME = "descriptors"
#: Keys whose value is JSON (everything else is a plain string).
JSON_KEYS = ("input_size", "normalize_mean", "normalize_std", "model_config")
INT_KEYS = ("descriptor_dim", "opset", "scan_nodes")


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over the state dict (sorted keys; name, dtype, shape and raw bytes of each).

    Identifies the weights, not the file they came from: the same model saved with or
    without optimizer state hashes the same.
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def export_metadata(
    model: nn.Module, view: str, opset: int, scan_nodes: int, model_sha256: str | None = None
) -> dict[str, str]:
    """The metadata of one exported branch of a model built by ``build_model``."""
    config = model.config
    h, w = config.input_size(view)
    values: dict[str, Any] = {
        "model_name": model.model_name,
        "model_config": config.to_dict(),
        "model_sha256": model_sha256 or state_dict_sha256(model),
        "view": view,
        "input_name": INPUT_NAME,
        "input_size": [h, w],
        "input_layout": "NCHW float32 RGB, x = (pixel * pixel_scale - mean) / std",
        "pixel_scale": repr(PIXEL_SCALE),
        "normalize_mean": list(MEAN_RGB),
        "normalize_std": list(STD_RGB),
        "output_name": OUTPUT_NAME,
        "descriptor_dim": model.descriptor_dim,
        "descriptor_norm": "L2 (unit length); compare with cosine = dot product",
        "precision": "fp32",
        "opset": opset,
        "scan_nodes": scan_nodes,
        "scan_op": "cvgl.SelectiveScan plugin_version 1" if scan_nodes else "none",
        "cvgl_edge_version": cvgl_edge.__version__,
    }
    return {k: json.dumps(v) if k in JSON_KEYS else str(v) for k, v in values.items()}


def write_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    """Replace the model's metadata_props with ``metadata`` (in place)."""
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, dict(metadata))


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """Parsed metadata of an exported file (JSON keys decoded, counts as ints)."""
    raw = {p.key: p.value for p in model.metadata_props}
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
