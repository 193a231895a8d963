"""The ONNX contract of the selective scan: one ``cvgl.SelectiveScan`` node per scan.

This is the interface shared by the exporter (which writes the nodes), the ONNX local
function (the standard-op body ONNX Runtime runs) and the TensorRT plugin (which the
TensorRT ONNX parser picks by op_type, plugin_version and plugin_namespace). Changing a
name or the input order here breaks files already exported, so bump ``PLUGIN_VERSION``.

Inputs, always all eight, in this order (shapes as in DESIGN.md section 3):
u, delta, z: (B, Dc, L); A: (Dc, N); B, C: (B, N, L); D, delta_bias: (Dc,).
An input the scan does not use (D, z or delta_bias) is fed a (1,) zero placeholder and
flagged with has_D / has_z / has_delta_bias = 0: a fixed input count keeps the plugin
simple, and TensorRT's parser does not accept empty optional inputs on plugin nodes.

All eight inputs and the output share one element type T (float, float16 or bfloat16):
in an FP16 export the node is typed fp16, so A, D, delta_bias (fp32 in the model) and
the placeholders are cast to u's type where the node is written (``scan_translation``).
Whatever T is, the standard-op body computes in fp32 and casts the result back to T.
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
