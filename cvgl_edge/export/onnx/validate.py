"""Checks of an exported ONNX file: structure (onnx checker, one scan node per scan)
and numbers (onnxruntime on CPU against the PyTorch model on the same images).

Why both: the checker proves the file is well formed for any runtime, but only running
it shows the SelectiveScan body and the lowering of everything around it are right.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from cvgl_edge.descriptors import cosine_rows  # noqa: F401 - this module's API too (verify, tests)
from cvgl_edge.errors import first_line
from cvgl_edge.export.scan import contract
from cvgl_edge.runtime.onnxruntime.session import INPUT_NAME, ort_session

#: Minimum cosine between ONNX Runtime and PyTorch descriptors for an FP32 export.
FP32_MIN_COSINE = 0.9999


@dataclass
class Parity:
    """ONNX Runtime vs PyTorch on the same images."""

    images: int
    cosine_min: float
    cosine_mean: float
    max_abs_err: float
    min_cosine_required: float = FP32_MIN_COSINE

    @property
    def ok(self) -> bool:
        return self.cosine_min >= self.min_cosine_required

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def checker_error(path: str | Path) -> str | None:
    """None if ``onnx.checker.check_model(path, full_check=True)`` passes, else its message."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return first_line(exc)
    return None


def scan_structure(model: onnx.ModelProto) -> dict:
    """Scan node count, directions and whether the local function is present."""
    nodes = [n for n in model.graph.node if contract.is_scan_node(n)]
    directions = [onnx.helper.get_node_attr_value(n, "direction") for n in nodes]
    function = any(contract.is_scan_function(f) for f in model.functions)
    return {
        "scan_nodes": len(nodes),
        "forward": directions.count(0),
        "reverse": directions.count(1),
        "function": function,
    }


@torch.no_grad()
def torch_descriptors(model: nn.Module, view: str, images: np.ndarray) -> np.ndarray:
    return model.eval().encode(torch.from_numpy(images), view).cpu().numpy()


def compare_with_torch(path: str | Path, model: nn.Module, view: str, images: np.ndarray) -> Parity:
    """Run the file on ``images`` in one batch (exercises the dynamic batch dimension)."""
    onnx_out = ort_session(path).run(None, {INPUT_NAME: images})[0]
    torch_out = torch_descriptors(model, view, images)
    cos = cosine_rows(onnx_out, torch_out)
    return Parity(
        images=len(images),
        cosine_min=float(cos.min()),
        cosine_mean=float(cos.mean()),
        max_abs_err=float(np.abs(onnx_out.astype(np.float64) - torch_out).max()),
    )
