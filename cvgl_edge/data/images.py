"""Reading and resizing images with OpenCV, always returning RGB uint8.

cv2 reads BGR and returns ``None`` (no exception) for a missing or corrupt file;
this module turns both into a one-line :class:`CvglError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from cvgl_edge.errors import CvglError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an HxWx3 RGB uint8 array (grey and alpha are converted)."""
    p = Path(path)
    if not p.is_file():
        raise CvglError(f"image not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise CvglError(f"cannot decode image (corrupt or unsupported format): {p}")
    if img.dtype == np.uint16:  # 16-bit PNG/TIFF: scale to 8 bits rather than clip
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raise CvglError(f"unsupported channel count {img.shape[2]} in image: {p}")


def write_image(path: str | os.PathLike, img_rgb: np.ndarray) -> None:
    """Write an RGB uint8 image (format from the extension); used for previews and tests."""
    p = Path(path)
    ok, buf = cv2.imencode(p.suffix or ".png", cv2.cvtColor(np.ascontiguousarray(img_rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise CvglError(f"cannot encode image for: {p}")
    buf.tofile(str(p))


def resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize to (H, W): area averaging when shrinking (no aliasing), bilinear when enlarging."""
    h, w = int(size_hw[0]), int(size_hw[1])
    if img.shape[0] == h and img.shape[1] == w:
        return img
    shrinking = h * w < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def resize_square(img: np.ndarray, side: int) -> np.ndarray:
    """Resize to side x side (aerial tiles are square)."""
    return resize(img, (side, side))


def check_size(img: np.ndarray, size_hw: tuple[int, int], path: str | os.PathLike) -> None:
    """Raise CvglError if ``img`` is not exactly (H, W) (strict-size datasets)."""
    if tuple(img.shape[:2]) != (int(size_hw[0]), int(size_hw[1])):
        raise CvglError(
            f"wrong image size {img.shape[0]}x{img.shape[1]} (expected {size_hw[0]}x{size_hw[1]}): {path}"
        )
