"""What an exported ONNX file says about itself (``metadata_props``).

Why: a runtime (onnxruntime, TensorRT, the on-drone loop) must feed the file exactly
the images the model was trained on and know what comes out, without the checkpoint
or this package's defaults. Scalars are plain strings; lists and dicts are JSON. The I/O
names and the parsing live in ``cvgl_edge.runtime.onnxruntime.session``, which runtimes read the
metadata with (no ``onnx``, no PyTorch); this module writes it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import onnx
from torch import nn

import cvgl_edge
from cvgl_edge.data.normalize import MEAN_RGB, PIXEL_SCALE, STD_RGB
from cvgl_edge.models.cost import FLOP_CONVENTION, model_cost, params_total
from cvgl_edge.models.fingerprint import state_dict_sha256
from cvgl_edge.runtime.onnxruntime.session import INPUT_NAME, INT_KEYS, JSON_KEYS, OUTPUT_NAME, parse_metadata

__all__ = ["INPUT_NAME", "INT_KEYS", "JSON_KEYS", "OUTPUT_NAME", "export_metadata", "read_metadata",
           "state_dict_sha256", "write_metadata"]


def export_metadata(
    model: nn.Module, view: str, opset: int, scan_nodes: int, model_sha256: str | None = None
) -> dict[str, str]:
    """The metadata of one exported branch of a model built by ``build_model``."""
    config = model.config
    h, w = config.input_size(view)
    cost = model_cost(model, view)  # recorded so a deployment bench (no PyTorch) can report them
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
        "params": cost["params"],
        "params_total": params_total(model),
        "flops": cost["flops"],
        "flop_convention": FLOP_CONVENTION,
        "cvgl_edge_version": cvgl_edge.__version__,
    }
    return {k: json.dumps(v) if k in JSON_KEYS else str(v) for k, v in values.items()}


def write_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    """Replace the model's metadata_props with ``metadata`` (in place)."""
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, dict(metadata))


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """Parsed metadata of an exported file (JSON keys decoded, counts as ints)."""
    return parse_metadata({p.key: p.value for p in model.metadata_props})
