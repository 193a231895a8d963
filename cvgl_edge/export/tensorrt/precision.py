"""Which layers of a weakly typed (implicit INT8) network are pinned to FP32, and why.

With ``BuilderFlag.INT8`` + ``FP16`` TensorRT may run any layer in int8 or fp16. Two parts of
GeoSSM must not be: the selective scan (an exp / cumulative recurrence over L steps: int8
ranges or fp16 rounding compound along the sequence) and the norms (RMSNorm squares and
means activations; the final L2 norm divides by a reduction; squares overflow fp16 past
256). These are the same ops the explicit QDQ path leaves in float (int8/quantize.py).

Pinned (``layer.precision`` and every output type = FP32):
  * the scan: loop layers (the ONNX ``Scan`` body becomes a TensorRT loop), plugin layers
    (``cvgl::SelectiveScan``), and the layers the parser makes from the inlined
    SelectiveScan local function (unnamed function nodes are named ``node_of_<output>``,
    see scan/function.py);
  * the norms: normalization and reduce layers, and the layers made from ONNX nodes whose
    op is a power, square root, division, reciprocal, exp or log (by ONNX node name, which
    the parser gives the layer).
Only layers whose outputs are all float tensors are pinned (shape arithmetic and casts are
left alone: pinning an int32 layer is an error).

Flag: ``PREFER_PRECISION_CONSTRAINTS``, not ``OBEY``: every pinned op has an FP32 kernel, so
the preference holds in practice, but a layer that TensorRT fuses or cannot honour (e.g.
inside a loop on an older 10.x) gives a warning (kept in the sidecar) instead of a failed
build. Everything else (MatMul, Conv, activations, elementwise glue) is left to TensorRT's
int8/fp16/fp32 choice.

Not run against real TensorRT here (tensorrt_rtx has no ``layer.precision``: strongly typed
only); tested with a fake network in tests/export/tensorrt/test_int8.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import onnx

#: TensorRT layer types kept in FP32 by type.
FP32_LAYER_TYPES = ("ITERATOR", "RECURRENCE", "LOOP_OUTPUT", "TRIP_LIMIT", "PLUGIN", "PLUGIN_V2", "PLUGIN_V3",
                    "NORMALIZATION", "REDUCE")
#: ONNX op types whose layers are kept in FP32 (the norms' arithmetic; SelectiveScan itself when a plugin).
FP32_ONNX_OPS = ("Pow", "Sqrt", "Div", "Reciprocal", "Exp", "Log", "Softplus", "ReduceMean", "ReduceL2",
                 "ReduceSum", "ReduceSumSquare", "LayerNormalization", "RMSNormalization", "SelectiveScan")
#: Prefix the ONNX parser gives layers made from the unnamed nodes of the inlined scan function.
SCAN_BODY_PREFIX = "node_of_"
#: Layer types never pinned: they compute shapes/indices or only move data between types.
_SKIP_TYPES = ("CONSTANT", "SHAPE", "CAST", "ASSERTION", "CONDITION", "CONDITIONAL_INPUT", "CONDITIONAL_OUTPUT")


def _type_name(layer: Any) -> str:
    return str(layer.type).split(".")[-1]


def _reason(layer: Any, fp32_nodes: set[str]) -> str | None:
    kind = _type_name(layer)
    if kind in FP32_LAYER_TYPES:
        return "scan" if kind.startswith(("ITERATOR", "RECURRENCE", "LOOP", "TRIP", "PLUGIN")) else "norm"
    if layer.name.startswith(SCAN_BODY_PREFIX):
        return "scan"
    if layer.name in fp32_nodes:
        return "norm"
    return None


def _all_float(trt: Any, layer: Any) -> bool:
    outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
    return bool(outputs) and all(t is not None and t.dtype == trt.float32 for t in outputs)


def fp32_node_names(model: onnx.ModelProto) -> set[str]:
    """Names of the main graph's nodes whose op is in ``FP32_ONNX_OPS``."""
    return {node.name for node in model.graph.node if node.op_type in FP32_ONNX_OPS and node.name}


def pin_fp32_layers(trt: Any, network: Any, model: onnx.ModelProto) -> dict[str, Any]:
    """Pin the scan and norm layers of ``network`` to FP32; returns counts for the sidecar."""
    fp32_nodes = fp32_node_names(model)
    pinned: Counter[str] = Counter()
    skipped = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        reason = _reason(layer, fp32_nodes)
        if reason is None:
            continue
        if _type_name(layer) in _SKIP_TYPES or not _all_float(trt, layer):
            skipped += 1
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        pinned[reason] += 1
    return {"scan_layers_fp32": pinned["scan"], "norm_layers_fp32": pinned["norm"],
            "not_float_left_alone": skipped, "flag": "PREFER_PRECISION_CONSTRAINTS",
            "rule": "scan (loop/plugin/scan-function layers) and norms (reduce, pow, sqrt, div, exp, log) in FP32; "
                    "the rest int8/fp16/fp32 as TensorRT chooses"}
