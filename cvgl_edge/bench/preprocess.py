"""Timing of the pre-processing a deployed encoder pays per image, apart from the encoder.

What "pre-processing" is here: a JPEG-compressed camera frame (bytes in memory, no disk
I/O) -> ``cv2.imdecode`` -> BGR to RGB -> resize to the model input (area averaging, as
training does) -> ``normalize_array`` (scale, mean/std, HWC -> CHW float32). Each step is
timed on its own with the host clock; the frame sizes are those of the public datasets'
raw images (CVACT panoramas 832x1664, CVUSA aerial tiles 750x750) so the resize does
real work. The content is a synthetic scene upscaled to the frame size, JPEG quality 90.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from cvgl_edge.bench.clocks import HostClock
from cvgl_edge.data.images import resize
from cvgl_edge.data.normalize import from_tensor, normalize_array
from cvgl_edge.errors import CvglError
from cvgl_edge.export.sample_images import sample_images
from cvgl_edge.timing import summarize_runs

#: Raw frame (H, W) per branch: CVACT street-view panorama, CVUSA aerial tile.
FRAME_SIZES = {"ground": (832, 1664), "satellite": (750, 750)}
JPEG_QUALITY = 90
STEPS = ("decode", "resize", "normalize")


def synthetic_frame(view: str, size_hw: tuple[int, int]) -> bytes:
    """A JPEG frame of a synthetic scene at ``size_hw`` (what a camera or a tile store delivers)."""
    small = sample_images(view, (64, 256) if view == "ground" else (128, 128), 1)[0]
    rgb = cv2.resize(from_tensor(small), (size_hw[1], size_hw[0]), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise CvglError("OpenCV cannot encode a JPEG frame for the pre-processing benchmark")
    return buf.tobytes()


def preprocess_steps(jpeg: bytes, input_hw: tuple[int, int], clock: HostClock) -> tuple[np.ndarray, dict[str, float]]:
    """Decode, resize and normalise one frame; (3, H, W) float32 and the ms of each step."""
    data = np.frombuffer(jpeg, dtype=np.uint8)
    bgr, t_decode = clock.measure(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR))
    rgb, t_convert = clock.measure(lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    sized, t_resize = clock.measure(lambda: resize(rgb, input_hw))
    tensor, t_norm = clock.measure(lambda: normalize_array(sized))
    return tensor, {"decode": t_decode + t_convert, "resize": t_resize, "normalize": t_norm}


def time_preprocess(view: str, input_hw: tuple[int, int], runs: int = 30, warmup: int = 3,
                    frame_hw: tuple[int, int] | None = None) -> dict[str, Any]:
    """Per-image pre-processing time of one branch: each step and the total (ms summaries)."""
    frame_hw = frame_hw or FRAME_SIZES[view]
    jpeg = synthetic_frame(view, frame_hw)
    clock = HostClock()
    for _ in range(warmup):
        preprocess_steps(jpeg, input_hw, clock)
    times: dict[str, list[float]] = {step: [] for step in (*STEPS, "total")}
    for _ in range(runs):
        tensor, steps = preprocess_steps(jpeg, input_hw, clock)
        for step, ms in steps.items():
            times[step].append(ms)
        times["total"].append(sum(steps.values()))
    if tensor.shape != (3, *input_hw):
        raise CvglError(f"pre-processing produced {tensor.shape}, expected (3, {input_hw[0]}, {input_hw[1]})")
    return {
        "view": view, "frame_hw": list(frame_hw), "jpeg_bytes": len(jpeg), "jpeg_quality": JPEG_QUALITY,
        "input_hw": list(input_hw), "per_image": {step: summarize_runs(values) for step, values in times.items()},
    }
