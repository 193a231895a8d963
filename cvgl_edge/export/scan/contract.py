"""The ONNX contract of the selective scan: one ``cvgl.SelectiveScan`` node per scan.

This is the interface shared by the exporter (which writes the nodes), the ONNX local
function (the standard-op body ONNX Runtime runs) and the TensorRT plugin (which the
TensorRT ONNX parser picks by op_type, plugin_version and plugin_namespace). Changing a
name or the input order here breaks files already exported, so bump ``PLUGIN_VERSION``.

Inputs, always all eight, in this order (B batch, Dc channels, L length, N state size):
u, delta, z: (B, Dc, L); A: (Dc, N); B, C: (B, N, L); D, delta_bias: (Dc,).
An input the scan does not use (D, z or delta_bias) is fed a (1,) zero placeholder and
flagged with has_D / has_z / has_delta_bias = 0: a fixed input count keeps the plugin
simple, and TensorRT's parser does not accept empty optional inputs on plugin nodes.

Two element types (float, float16 or bfloat16 each): the data u, delta, B, C, z and the
output y share T; the parameters A, D, delta_bias (``PARAMETER_INPUTS``) share P. The
exporter writes P = float32 whatever T is (``translation``): in an FP16 export the
node takes fp16 data and the fp32 parameters the model keeps, as the CUDA kernel does.
(Rounding A, D and delta_bias to fp16, as exports did before, raised a Vim-S scan's mean
relative error 1.6-2x and some elements' to 10-19 %: benchmarks/scan_fp16_params.py.)
The unused D / delta_bias placeholders are fp32, an unused z placeholder is in T.
P = T (a graph cast wholesale by another tool) is valid too; the TensorRT plugin takes
both. Whatever T and P are, the standard-op body computes in fp32 and casts the result
back to T.
"""

from __future__ import annotations

from typing import Any

DOMAIN = "cvgl"
OP_TYPE = "SelectiveScan"
#: Version of the custom-op domain written to the model's opset_import.
DOMAIN_VERSION = 1
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "cvgl"

INPUTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
#: The inputs of type P (the parameters; float32 as exported); the others and the output are T.
PARAMETER_INPUTS = ("A", "D", "delta_bias")
OUTPUT = "y"
#: Integer attributes and their defaults (what an absent attribute means).
INT_ATTRIBUTES: dict[str, int] = {
    "direction": 0,  # 0: t = 0..L-1, 1: t = L-1..0
    "delta_softplus": 0,
    "has_D": 1,
    "has_z": 1,
    "has_delta_bias": 1,
}
STRING_ATTRIBUTES: dict[str, str] = {
    "plugin_version": PLUGIN_VERSION,
    "plugin_namespace": PLUGIN_NAMESPACE,
}
#: Shape of the zero tensor fed in place of an unused D / z / delta_bias.
PLACEHOLDER_SHAPE = (1,)


def scan_attributes(
    *,
    reverse: bool,
    delta_softplus: bool,
    has_D: bool,
    has_z: bool,
    has_delta_bias: bool,
) -> dict[str, Any]:
    """Every attribute of one SelectiveScan node, written explicitly (no defaults relied on)."""
    return {
        "direction": int(bool(reverse)),
        "delta_softplus": int(bool(delta_softplus)),
        "has_D": int(bool(has_D)),
        "has_z": int(bool(has_z)),
        "has_delta_bias": int(bool(has_delta_bias)),
        **STRING_ATTRIBUTES,
    }


def is_scan_node(node: Any) -> bool:
    """True for an onnx NodeProto that is a SelectiveScan of our domain."""
    return node.op_type == OP_TYPE and node.domain == DOMAIN


def is_scan_function(function: Any) -> bool:
    """True for an onnx FunctionProto that is the SelectiveScan local function (the standard-op body)."""
    return function.name == OP_TYPE and function.domain == DOMAIN


def count_scan_nodes(model: Any) -> int:
    """Number of SelectiveScan nodes in an onnx ModelProto's main graph."""
    return sum(is_scan_node(n) for n in model.graph.node)
