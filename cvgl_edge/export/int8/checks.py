"""Structural checks of a QDQ INT8 file: quantization exactly where intended.

Why: quantize_static decides placement from op types and options; a change in
onnxruntime's defaults could silently fake-quantize the scan parameters or a norm,
which costs accuracy and breaks the plan of keeping them in float on TensorRT.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import onnx

from cvgl_edge.export.int8.quantize import QUANTIZED_OP_TYPES
from cvgl_edge.export.scan import contract

#: Consumers that may read a dequantized tensor besides the quantized ops (shape only).
_SHAPE_ONLY = ("Shape",)


def qdq_structure(model: onnx.ModelProto) -> dict[str, Any]:
    """Counts of Q/DQ and quantized ops, and every place where a DQ output reaches a float op."""
    nodes = list(model.graph.node)
    initializers = {i.name for i in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in nodes:
        for name in node.input:
            consumers[name].append(node)
    dq_outputs = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    constants = initializers | {o for n in nodes if n.op_type == "Constant" for o in n.output}
    # weight-bearing ops (second input a constant, or its dequantized form); a product of two
    # activations (LRFR's relation matrix and SALAD aggregation) must stay float
    weighted = [n for n in nodes if n.op_type in QUANTIZED_OP_TYPES and len(n.input) > 1
                and (n.input[1] in dq_outputs or n.input[1] in constants)]
    weighted_ids = {id(n) for n in weighted}
    float_products = [n for n in nodes if n.op_type in QUANTIZED_OP_TYPES and id(n) not in weighted_ids]
    quantized_ops = weighted
    weights_dq = sum(1 for n in quantized_ops if n.input[1] in dq_outputs)
    activations_dq = sum(1 for n in quantized_ops if n.input[0] in dq_outputs)
    leaks = sorted({
        f"{c.op_type}:{c.name}" for out in dq_outputs for c in consumers[out]
        if (c.op_type not in QUANTIZED_OP_TYPES or id(c) not in weighted_ids) and c.op_type not in _SHAPE_ONLY
    })
    scan_inputs_dq = sum(
        1 for n in nodes if contract.is_scan_node(n) for name in n.input if name in dq_outputs
    )
    zero_points_nonzero = 0
    for n in nodes:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in initializers:
            zp = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == n.input[2]))
            zero_points_nonzero += int((zp != 0).any())
    return {
        "quantize_linear": sum(n.op_type == "QuantizeLinear" for n in nodes),
        "dequantize_linear": len(dq_outputs),
        "quantized_ops": len(quantized_ops),
        "quantized_weights": weights_dq,
        "quantized_activations": activations_dq,
        "float_activation_products": len(float_products),
        "scan_inputs_dequantized": scan_inputs_dq,
        "float_ops_reading_dq": leaks,
        "nonzero_zero_points": zero_points_nonzero,
    }


def qdq_problems(structure: dict[str, Any]) -> list[str]:
    problems = []
    if structure["quantized_weights"] != structure["quantized_ops"]:
        problems.append(f"{structure['quantized_weights']}/{structure['quantized_ops']} MatMul/Conv weights quantized")
    if structure["scan_inputs_dequantized"] or structure["float_ops_reading_dq"]:
        problems.append(f"QDQ reaches float ops: {structure['float_ops_reading_dq'][:5]}")
    if structure["nonzero_zero_points"]:
        problems.append(f"{structure['nonzero_zero_points']} Q/DQ nodes with a nonzero zero point (not symmetric)")
    return problems
