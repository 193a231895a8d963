"""FP32 ONNX -> explicitly quantized (QDQ) INT8 ONNX with onnxruntime's ``quantize_static``.

What is quantized: only the weight-bearing ops (``QUANTIZED_OP_TYPES``: MatMul, Gemm,
Conv whose second input is a constant weight; a MatMul of two activations, such as LRFR's
GSRA relation matrix or SALAD's assignment-times-features product, stays float, see
``activation_matmuls``): weights per output channel, activations per tensor, both symmetric int8 (zero
point 0), biases left in float. That is the QDQ form TensorRT's explicit-precision path
consumes, and the one TensorRT 11 (strongly typed only) requires. Everything else --
the ``cvgl.SelectiveScan`` nodes (an exp/cumulative recurrence that int8 ranges would
wreck), the RMSNorm chains, the final L2 normalisation and all reductions -- keeps its
float inputs, because quantize_static only inserts QDQ on inputs of the listed op types.

The activation ranges are cached (``<file>.calib.json``), keyed by the sha256 of the FP32
ONNX bytes and of the recipe; a matching cache is reused and calibration skipped.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.export.onnx.metadata import INPUT_NAME
from cvgl_edge.io import atomic_write_json, file_sha256

QUANTIZED_OP_TYPES = ("MatMul", "Gemm", "Conv")
#: quantize_static options: symmetric int8 (zero point 0, as TensorRT requires), float
#: biases, no QDQ on the outputs of the quantized ops (they feed the scan, norms and
#: residual adds, which stay float), one QDQ pair per consumer so a tensor shared with a
#: float op (e.g. the patch-embedding input's Shape) is not fake-quantized for that op.
_EXTRA_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OP_TYPES),
    "DedicatedQDQPair": True,
}
CACHE_FORMAT = "cvgl-edge-int8-calibration/1"
#: Incremented each time activation ranges are computed from images (tests use it to
#: prove a matching cache is reused).
CALIBRATION_RUNS = 0


class _BatchReader:
    """onnxruntime CalibrationDataReader over an iterable of image batches."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def activation_matmuls(model: Any) -> list[str]:
    """Names of the QUANTIZED_OP_TYPES nodes of an FP32 ONNX model whose second input is not an
    initializer (a product of two activations): left in float, like the norms and the scan,
    since int8 ranges on a Sinkhorn assignment or a relation matrix cost accuracy for little
    speed. GeoSSM has none."""
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    found = []
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OP_TYPES and len(node.input) > 1 and node.input[1] not in constants:
            if not node.name:
                raise CvglError(f"INT8: an unnamed {node.op_type} node reads two activations; cannot keep it float")
            found.append(node.name)
    return found


def isolate_quantized_inputs(model: Any) -> int:
    """Give every weight-bearing op its own copy (an Identity) of an activation it shares with a
    float op other than Shape; returns the number of Identities inserted (in place).

    Why: quantize_static puts the QDQ pair on the tensor, so a float consumer of the same tensor
    would read the fake-quantized value. In ConvNeXt the block input feeds both the depthwise
    conv and the residual Add; without the copy the residual stream itself would be int8.
    GeoSSM has no such tensor (its norms sit between the residual and every MatMul).
    """
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def weighted(node: Any) -> bool:
        return node.op_type in QUANTIZED_OP_TYPES and len(node.input) > 1 and node.input[1] in constants

    inserted = 0
    nodes = list(model.graph.node)
    for tensor, readers in consumers.items():
        quantized = [n for n in readers if weighted(n) and n.input[0] == tensor]
        floats = [n for n in readers if n not in quantized and n.op_type != "Shape"]
        if not quantized or not floats:
            continue
        copy = f"{tensor}__int8_input"
        identity = onnx.helper.make_node("Identity", [tensor], [copy], name=f"{tensor}__int8_copy")
        position = min(nodes.index(n) for n in quantized)
        nodes.insert(position, identity)
        for node in quantized:
            node.input[0] = copy
        inserted += 1
    if inserted:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return inserted


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]


def compute_ranges(fp32_path: Path, batches: Iterable[np.ndarray], method: str) -> dict[str, tuple[float, float]]:
    """Symmetric activation ranges of every float input/output of the quantized op types."""
    global CALIBRATION_RUNS
    from onnxruntime.quantization.calibrate import create_calibrator

    # No max_intermediate_outputs: in onnxruntime 1.31 it drops the batches it clears
    # instead of merging them; MinMax keeps only per-batch scalars anyway.
    options: dict[str, Any] = {"symmetric": True}
    with tempfile.TemporaryDirectory(prefix="cvgl-calib-", dir=fp32_path.parent) as tmp:  # inside the caller's scratch
        calibrator = create_calibrator(
            fp32_path, list(QUANTIZED_OP_TYPES), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_method(method), providers=["CPUExecutionProvider"], extra_options=options,
        )
        calibrator.collect_data(_BatchReader(batches))
        tensors = calibrator.compute_data()
    CALIBRATION_RUNS += 1
    ranges = {}
    for name, data in tensors.items():
        low, high = (float(np.asarray(v).reshape(-1)[0]) for v in data.range_value)
        ranges[name] = (low, high)
    if not ranges:
        raise CvglError("calibration found no tensor to quantize (no MatMul/Gemm/Conv in the graph)")
    return ranges


@dataclass
class CalibrationCache:
    """Activation ranges with what they were computed from."""

    model_sha256: str
    recipe_sha256: str
    method: str
    ranges: dict[str, tuple[float, float]]
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "model_sha256": self.model_sha256, "recipe_sha256": self.recipe_sha256,
                "method": self.method, "manifest": self.manifest,
                "ranges": {k: list(v) for k, v in sorted(self.ranges.items())}}


def read_cache(path: Path, model_sha256: str, recipe_sha256: str) -> CalibrationCache | None:
    """The cache at ``path`` if it exists, parses and matches both hashes; else None."""
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != CACHE_FORMAT:
            return None
        if raw["model_sha256"] != model_sha256 or raw["recipe_sha256"] != recipe_sha256:
            return None
        ranges = {k: (float(v[0]), float(v[1])) for k, v in raw["ranges"].items()}
        return CalibrationCache(model_sha256, recipe_sha256, str(raw["method"]), ranges, raw.get("manifest", {}))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _ort_cache_file(cache: CalibrationCache, path: Path) -> None:
    """Write the ranges in onnxruntime's calibration-cache JSON so quantize_static skips calibrating."""
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    data = {name: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for name, (lo, hi) in cache.ranges.items()}
    save_tensors_data(TensorsData(_method(cache.method), data), path)


def quantize_int8(
    fp32_path: Path, int8_path: Path, cache_path: Path, recipe_sha256: str, method: str,
    images: Callable[[], tuple[Iterable[np.ndarray], dict[str, Any]]],
) -> tuple[CalibrationCache, bool]:
    """Quantize ``fp32_path`` into ``int8_path``; returns (cache, reused).

    ``images()`` is only called on a cache miss: it returns the calibration batches and
    the manifest of the images chosen (so a cache hit never builds the dataset).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    excluded = activation_matmuls(onnx.load(str(fp32_path), load_external_data=False))
    model_sha256 = file_sha256(fp32_path)
    cache = read_cache(cache_path, model_sha256, recipe_sha256)
    reused = cache is not None and cache.method == method
    if not reused:
        batches, manifest = images()
        ranges = compute_ranges(fp32_path, batches, method)
        cache = CalibrationCache(model_sha256, recipe_sha256, method, ranges, manifest)
        atomic_write_json(cache.to_dict(), cache_path)
    assert cache is not None
    with tempfile.TemporaryDirectory(prefix="cvgl-quant-", dir=fp32_path.parent) as tmp:
        ort_cache = Path(tmp) / "ranges.json"
        _ort_cache_file(cache, ort_cache)
        logger = logging.getLogger()
        level = logger.level
        logger.setLevel(logging.ERROR)  # quantize_static warns about pre-processing on every call
        try:
            quantize_static(
                str(fp32_path), str(int8_path), calibration_data_reader=None,
                quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                per_channel=True, reduce_range=False, activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8, calibrate_method=_method(method),
                calibration_cache_path=str(ort_cache), nodes_to_exclude=excluded,
                extra_options=_EXTRA_OPTIONS,
            )
        except Exception as exc:  # noqa: BLE001 - one line for the user
            first = first_line(exc)
            raise CvglError(f"INT8 quantization failed: {first}") from exc
        finally:
            logger.setLevel(level)
    return cache, reused
