"""Retrieval accuracy of an INT8 export against the FP32 PyTorch model on the same pairs.

Why measure recall and not only descriptor cosine: a cosine of 0.999 per descriptor can
still reorder near neighbours; R@1 on held-out pairs is what a user loses. The split is
the evaluation split (val), never the calibration split (train).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cvgl_edge.eval.embed import embed_pairs
from cvgl_edge.eval.metrics import cross_view_metrics
from cvgl_edge.export.onnx_metadata import INPUT_NAME
from cvgl_edge.export.onnx_validate import cosine_rows, ort_session

REPORTED = ("R@1", "R@5", "R@1%")
HEADLINE = "ground->satellite"


def onnx_descriptors(path: Path, dataset, view: str, batch: int = 32) -> torch.Tensor:
    session = ort_session(path)
    out = []
    for start in range(0, len(dataset), batch):
        images = np.stack([dataset[i][view].numpy() for i in range(start, min(start + batch, len(dataset)))])
        out.append(session.run(None, {INPUT_NAME: images.astype(np.float32)})[0])
    return torch.from_numpy(np.concatenate(out))


def headline_recall(ground: torch.Tensor, satellite: torch.Tensor) -> dict[str, float]:
    metrics = cross_view_metrics(ground, satellite)[HEADLINE]
    return {k: round(metrics[k], 3) for k in REPORTED}


def int8_accuracy(
    model: nn.Module, files: dict[str, Path], data: str, polar: bool, pairs: int | None = None
) -> dict[str, Any]:
    """FP32 (PyTorch) vs INT8 (ONNX Runtime, per branch in ``files``; PyTorch for a branch
    not exported) recalls ground->satellite, their drop, and per-branch descriptor cosine."""
    from cvgl_edge.eval.evaluate import model_dataset

    dataset = model_dataset(model, data, "val", polar, pairs)
    reference = dict(zip(("ground", "satellite"), embed_pairs(model, dataset, show_progress=False)))
    quantized, cosine, branches = {}, {}, {}
    for view in ("ground", "satellite"):
        if view in files:
            quantized[view] = onnx_descriptors(files[view], dataset, view)
            cos = cosine_rows(quantized[view].numpy(), reference[view].numpy())
            cosine[view] = {"min": float(cos.min()), "mean": float(cos.mean())}
            branches[view] = "int8 onnxruntime"
        else:
            quantized[view] = reference[view]
            branches[view] = "fp32 PyTorch (branch not exported)"
    fp32 = headline_recall(reference["ground"], reference["satellite"])
    int8 = headline_recall(quantized["ground"], quantized["satellite"])
    return {
        "data": data, "split": "val", "pairs": len(dataset), "polar": polar, "direction": HEADLINE,
        "branches": branches, "fp32": fp32, "int8": int8,
        "drop": {k: round(fp32[k] - int8[k], 3) for k in REPORTED},
        "descriptor_cosine": cosine,
    }
