"""TensorRT's text calibration cache, written from the same activation ranges as the QDQ file.

Why: TensorRT 10.x can still build an implicit-INT8 engine from the FP32 ONNX plus a
calibration cache (IInt8 calibrators read it back verbatim), which skips re-running
calibration on the device. Format: a header line ``TRT-<version>-<algo>``,
then ``tensor_name: <float32 scale as 8 hex digits of its IEEE-754 bits>`` per line,
scale = amax / 127 (symmetric int8).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from pathlib import Path

from cvgl_edge.errors import CvglError
from cvgl_edge.io import atomic_write

#: NV_TENSORRT_VERSION of TensorRT 10.3 (JetPack 6.x), the oldest target.
TRT_VERSION = 100300
_ALGORITHMS = {"minmax": "MinMaxCalibration", "entropy": "EntropyCalibration2", "percentile": "MinMaxCalibration"}
#: Smallest scale written (a tensor that is always 0 would otherwise get scale 0).
_MIN_SCALE = 1e-12


def float_to_hex(value: float) -> str:
    return f"{struct.unpack('>I', struct.pack('>f', value))[0]:08x}"


def hex_to_float(text: str) -> float:
    return struct.unpack(">f", struct.pack(">I", int(text, 16)))[0]


def trt_cache_text(ranges: Mapping[str, tuple[float, float]], method: str) -> str:
    """The cache text for symmetric per-tensor ranges {name: (low, high)}."""
    lines = [f"TRT-{TRT_VERSION}-{_ALGORITHMS[method]}"]
    for name, (low, high) in sorted(ranges.items()):
        amax = max(abs(low), abs(high))
        lines.append(f"{name}: {float_to_hex(max(amax / 127.0, _MIN_SCALE))}")
    return "\n".join(lines) + "\n"


def write_trt_cache(ranges: Mapping[str, tuple[float, float]], method: str, path: Path) -> Path:
    text = trt_cache_text(ranges, method)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def parse_trt_cache(text: str) -> tuple[str, dict[str, float]]:
    """(header, {tensor: scale}); CvglError on a malformed line or a non-positive/non-finite scale."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("TRT-"):
        raise CvglError("TensorRT calibration cache: missing TRT-<version>-<algorithm> header")
    scales = {}
    for line in lines[1:]:
        name, sep, value = line.rpartition(": ")
        if not sep or len(value) != 8:
            raise CvglError(f"TensorRT calibration cache: bad line {line!r}")
        scale = hex_to_float(value)
        if not math.isfinite(scale) or scale <= 0:
            raise CvglError(f"TensorRT calibration cache: bad scale for {name}: {scale}")
        scales[name] = scale
    return lines[0], scales
