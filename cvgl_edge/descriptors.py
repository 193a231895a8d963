"""Descriptor arrays without PyTorch: read any array-like as float32, refuse NaN/inf.

Why here (below data, eval and localize): retrieval metrics and tile-index builds both
start from descriptors that may come from PyTorch, ONNX Runtime or TensorRT, and the
deployment install has no PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError


def as_array(descriptors: Any) -> np.ndarray:
    """float32 (N, D) array of descriptors given as a numpy array or a torch tensor (any device)."""
    if hasattr(descriptors, "detach"):  # a torch tensor, read without importing torch here
        descriptors = descriptors.detach().float().cpu().numpy()
    return np.asarray(descriptors, dtype=np.float32)


def check_finite(descriptors: Any, what: str) -> None:
    """CvglError when descriptors hold NaN/inf: NaN similarities rank every query first (R@1 = 100 %
    from NaN weights), and a NaN tile in an index would be everyone's nearest neighbour."""
    values = as_array(descriptors)
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise CvglError(f"{bad} non-finite values in the {what} descriptors (the model's weights or the images "
                        "hold NaN/inf): retrieval metrics on them would be meaningless")


def cosine_rows(a: Any, b: Any) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) descriptor arrays, computed in float64."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1) + 1e-30)
