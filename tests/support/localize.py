"""Shared pieces of the localisation tests: a tiny satellite encoder and a small georeferenced map."""

from __future__ import annotations

import numpy as np

from cvgl_edge.models import build_model
from tests.support.tiny import TINY


def tiny_model(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return build_model("geossm-nano", **TINY).eval()


def tiny_encoder(seed: int = 0):
    """The TINY model's satellite branch behind the Encoder interface (torch, CPU)."""
    from cvgl_edge import runtime

    model = tiny_model(seed)
    if hasattr(runtime, "model_encoder"):
        return runtime.model_encoder(model, "satellite")
    from cvgl_edge.runtime.torch_encoder import TorchEncoder

    return TorchEncoder(model, "satellite")


def textured_map(h: int = 256, w: int = 320, seed: int = 0) -> np.ndarray:
    """A map image with distinct structure everywhere (smoothed noise, blocky colours)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def thumbnail_encoder(input_size=(64, 64)):
    """A deterministic non-learned Encoder (16x16 thumbnails, mean-removed, L2-normalised).

    Why: the loop's logic (search modes, filter, no-fix off the map) needs a descriptor
    that reliably recognises a tile; an untrained tiny GeoSSM does not, and training one
    would take minutes. GeoSSM itself is exercised by the other loop and CLI tests.
    """
    import cv2

    from cvgl_edge.runtime.base import Encoder, EncoderInfo

    class Thumbnails(Encoder):
        def __init__(self):
            self.info = EncoderInfo("numpy", "satellite", tuple(input_size), 16 * 16 * 3, "fp32", "cpu",
                                    "thumbnail", model_sha256="thumbnail-16")

        def to_device(self, images):
            return images

        def forward(self, staged):
            out = []
            for img in staged:
                small = cv2.resize(img.transpose(1, 2, 0), (16, 16), interpolation=cv2.INTER_AREA).ravel()
                small = small - small.mean()
                out.append(small / (np.linalg.norm(small) + 1e-9))
            return np.asarray(out, np.float32)

        def to_host(self, result):
            return result

    return Thumbnails()
