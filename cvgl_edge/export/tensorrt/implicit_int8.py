"""``--int8-mode implicit``: configure a weakly typed TensorRT 10.x build for entropy-calibrated INT8.

Why a second INT8 path: the explicit QDQ file (``--int8-mode explicit``, the default) is the
only one TensorRT 11 and TensorRT-RTX accept, and it is calibrated once on the host. JetPack 6
ships TensorRT 10.3, where TensorRT can also calibrate on the device from the FP32 ONNX file
(``BuilderFlag.INT8`` + ``FP16``, an ``IInt8EntropyCalibrator2``), which can pick different
(often better) int8 placements than the QDQ file fixes. Both paths use the same recipe images.

What this sets on the builder config: INT8 + FP16 + PREFER_PRECISION_CONSTRAINTS flags, the
calibrator (calibrator.py), a fixed-shape calibration profile (batch = the recipe's
batch size), and FP32 pins on the scan and norm layers (precision.py).

Not run here: this machine has no GPU and no TensorRT 10.x (tensorrt_rtx cannot do implicit
INT8). Tested against a fake ``trt`` module (tests/export/tensorrt/test_int8.py); the real build is
a ``@pytest.mark.gpu`` test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.export.int8.calibration import Recipe, calibration_images
from cvgl_edge.export.onnx.metadata import INPUT_NAME
from cvgl_edge.export.tensorrt.calibrator import (
    ALGORITHM,
    CacheKey,
    cache_status,
    entropy_cache_path,
    key_path,
    make_entropy_calibrator,
)
from cvgl_edge.export.tensorrt.precision import pin_fp32_layers
from cvgl_edge.io import file_sha256
from cvgl_edge.runtime.tensorrt.backend import TrtBackend
from cvgl_edge.runtime.tensorrt.cuda_memory import open_device_memory

INT8_MODES = ("explicit", "implicit")
NEEDS_TRT10 = ("implicit INT8 needs TensorRT 10.x; TensorRT 11 and TensorRT-RTX take the explicit QDQ file: "
               "--int8-mode explicit")
NO_RECIPE = ("implicit INT8 needs calibration images: give a calibration recipe (--calibration RECIPE.json, "
             "see calibration/README.md)")
FLAGS = ("INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS")


def check_int8_mode(mode: str) -> str:
    mode = str(mode).lower()
    if mode not in INT8_MODES:
        raise CvglError(f"unknown --int8-mode {mode!r}; choose {', '.join(INT8_MODES)}")
    return mode


def _major(version: str) -> int | None:
    head = str(version).split(".")[0]
    return int(head) if head.isdigit() else None


def check_implicit_support(backend: TrtBackend) -> None:
    """CvglError unless ``backend`` is a TensorRT with builder INT8 flags and entropy calibrators (10.x)."""
    trt = backend.trt
    major = _major(backend.version)
    has_api = hasattr(trt, "IInt8EntropyCalibrator2") and hasattr(getattr(trt, "BuilderFlag", None), "INT8")
    if backend.is_rtx or (major is not None and major >= 11) or not has_api:
        raise CvglError(f"{NEEDS_TRT10} (found {backend.flavour} {backend.version})")


def _open_memory() -> Any:
    """Device memory for calibration batches (torch CUDA, else cuda-python): runtime/tensorrt/cuda_memory.py."""

    return open_device_memory()


@dataclass
class ImplicitInt8:
    """A configured build's calibrator and what the sidecar says about it."""

    calibrator: Any
    info: dict[str, Any]

    def finish(self) -> dict[str, Any]:
        """After ``build_serialized_network``: raise what the calibrator caught; the sidecar's calibration entry."""
        cal = self.calibrator
        if cal.error is not None:
            raise CvglError(f"INT8 calibration failed: {first_line(cal.error)}")
        self.info.update(reused_cache=cal.cache_read and not cal.batches_served, cache_written=cal.cache_written,
                         batches=cal.batches_served, images=cal.images_served, padded_images=cal.padded_images)
        return self.info


def _sizes(meta: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Both views' input sizes (the dataset builder wants both) from the file's model_config."""
    config = meta.get("model_config") or {}
    own = tuple(meta["input_size"])
    return {"ground": tuple(config.get("ground_size", own)), "satellite": tuple(config.get("satellite_size", own)),
            meta["view"]: own}


def configure_implicit_int8(backend: TrtBackend, builder: Any, network: Any, config: Any, onnx_path: Path,
                            engine_path: Path, meta: dict[str, Any], recipe: Recipe | None, trained_polar: bool,
                            images: Callable[[], Iterable[np.ndarray]] | None = None) -> ImplicitInt8:
    """Set flags, calibrator, calibration profile and FP32 pins on a parsed weakly typed network.

    ``images`` overrides the recipe's images (tests); by default they are
    ``calibration_images(recipe, view, ...)``, loaded now unless a reusable cache makes them unnecessary.
    """
    trt = backend.trt
    if recipe is None:
        raise CvglError(NO_RECIPE)
    view, (h, w) = meta["view"], meta["input_size"]
    key = CacheKey(recipe.sha256(), file_sha256(onnx_path), meta.get("model_sha256"), backend.version)
    cache = entropy_cache_path(Path(engine_path).parent, meta["model_name"], view)
    reusable, note = cache_status(cache, key)
    batches = images
    manifest = None
    if batches is None:
        def load() -> Any:
            return calibration_images(recipe, view, _sizes(meta), trained_polar)

        chosen = None if reusable else load()  # a missing data set fails here, before the build
        manifest = chosen.manifest() if chosen is not None else None
        batches = (lambda: chosen.batches()) if chosen is not None else (lambda: load().batches())
    batch = min(recipe.batch_size, recipe.count)
    calibrator = make_entropy_calibrator(trt, batches, batch, (3, h, w), cache, key, _open_memory)
    for flag in FLAGS:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    config.int8_calibrator = calibrator
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (batch, 3, h, w), (batch, 3, h, w), (batch, 3, h, w))
    config.set_calibration_profile(profile)
    precision = pin_fp32_layers(trt, network, onnx.load(str(onnx_path), load_external_data=False))
    info = {"int8_mode": "implicit", "algorithm": ALGORITHM, "recipe": recipe.to_dict(),
            "recipe_sha256": recipe.sha256(), "fp32_onnx": str(onnx_path), "calibration_batch": batch,
            "cache": str(cache), "cache_key": str(key_path(cache)), "key": key.to_dict(),
            "cache_note": None if reusable else (note and f"{note}: recalibrating"),
            "builder_flags": list(FLAGS), "precision_constraints": precision,
            "indices": manifest["indices"] if manifest else None, "polar": manifest["polar"] if manifest else None}
    return ImplicitInt8(calibrator, info)
