"""A one-node ONNX model around ``cvgl.SelectiveScan``.

Why: the scan's ONNX body (and, later, the TensorRT plugin) must match the PyTorch
reference on its own, without a whole GeoSSM around it; this builds the smallest
model that exercises one node, with any of D / z / delta_bias left out.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from cvgl_edge.export.onnx.versions import DEFAULT_OPSET, IR_VERSION
from cvgl_edge.export.scan import contract
from cvgl_edge.export.scan.function import build_scan_function

#: Symbolic dims per input (B batch, Dc channels, L sequence length, N state size).
_SHAPES = {
    "u": ["batch", "channels", "length"],
    "delta": ["batch", "channels", "length"],
    "A": ["channels", "nstate"],
    "B": ["batch", "nstate", "length"],
    "C": ["batch", "nstate", "length"],
    "D": ["channels"],
    "z": ["batch", "channels", "length"],
    "delta_bias": ["channels"],
}


def single_scan_model(
    *,
    reverse: bool = False,
    delta_softplus: bool = True,
    has_D: bool = True,
    has_z: bool = True,
    has_delta_bias: bool = True,
    opset: int = DEFAULT_OPSET,
    data_type: int = TensorProto.FLOAT,
    param_type: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """Graph inputs: the used scan inputs by their contract names; output ``y``.

    ``data_type`` (u, delta, B, C, z, y) and ``param_type`` (A, D, delta_bias) are
    TensorProto element types: float32 both by default; an FP16 export writes float16
    data with float32 parameters. An unused optional input becomes a (1,) zero
    initializer with its has_* flag at 0, exactly as the exporter writes it (D and
    delta_bias float32, z in ``data_type``).
    """
    used = {"D": has_D, "z": has_z, "delta_bias": has_delta_bias}
    graph_inputs, initializers, node_inputs = [], [], []
    for name in contract.INPUTS:
        if used.get(name, True):
            elem = param_type if name in contract.PARAMETER_INPUTS else data_type
            graph_inputs.append(helper.make_tensor_value_info(name, elem, _SHAPES[name]))
            node_inputs.append(name)
        else:
            placeholder = f"{name}_unused"
            elem = data_type if name == "z" else TensorProto.FLOAT
            initializers.append(helper.make_tensor(placeholder, elem, contract.PLACEHOLDER_SHAPE, [0.0]))
            node_inputs.append(placeholder)
    node = helper.make_node(
        contract.OP_TYPE, node_inputs, [contract.OUTPUT], name="scan", domain=contract.DOMAIN,
        **contract.scan_attributes(reverse=reverse, delta_softplus=delta_softplus, has_D=has_D,
                                   has_z=has_z, has_delta_bias=has_delta_bias),
    )
    output = helper.make_tensor_value_info(contract.OUTPUT, data_type, _SHAPES["u"])
    graph = helper.make_graph([node], "single_selective_scan", graph_inputs, [output], initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(contract.DOMAIN, contract.DOMAIN_VERSION)],
        functions=[build_scan_function(opset)],
    )
    model.ir_version = IR_VERSION
    return model
