"""Image normalisation shared by training, export and the localisation loop.

The constants live here and nowhere else, so that a model trained with one
normalisation is never fed images normalised another way by an exporter or a
runtime.  Input convention: RGB channel order, values scaled to 0..1, then
``(x - MEAN) / STD`` per channel (ImageNet statistics, which pretrained Vim /
ConvNeXt weights expect).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cvgl_edge.errors import CvglError

if TYPE_CHECKING:
    import torch

#: Per-channel mean of RGB images scaled to 0..1 (ImageNet).
MEAN_RGB: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: Per-channel standard deviation of RGB images scaled to 0..1 (ImageNet).
STD_RGB: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: Factor that maps uint8 pixel values to the 0..1 range before normalising.
PIXEL_SCALE: float = 1.0 / 255.0

_MEAN = np.asarray(MEAN_RGB, dtype=np.float32)
_STD = np.asarray(STD_RGB, dtype=np.float32)


def normalize_array(img_rgb_uint8: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW float32 normalised (numpy, for ONNX/TensorRT feeds)."""
    if img_rgb_uint8.ndim != 3 or img_rgb_uint8.shape[2] != 3:
        raise CvglError(f"expected an HxWx3 RGB image, got shape {tuple(img_rgb_uint8.shape)}")
    x = img_rgb_uint8.astype(np.float32) * PIXEL_SCALE
    x = (x - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def to_tensor(img_rgb_uint8: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> float32 tensor (3,H,W), normalised with MEAN_RGB/STD_RGB.

    PyTorch is imported here, not above: the runtimes use :func:`normalize_array` and the
    deployment install has no PyTorch."""
    import torch

    return torch.from_numpy(normalize_array(img_rgb_uint8))


def from_tensor(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_tensor` for debugging and previews: (3,H,W) -> HxWx3 uint8 RGB."""
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)  # a tensor, without importing torch
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise CvglError(f"expected a (3,H,W) normalised image, got shape {tuple(arr.shape)}")
    img = arr.transpose(1, 2, 0).astype(np.float32) * _STD + _MEAN
    return np.clip(np.rint(img / PIXEL_SCALE), 0, 255).astype(np.uint8)
