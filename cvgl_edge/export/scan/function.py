"""The standard-op body of ``cvgl.SelectiveScan`` as an ONNX local function (FunctionProto).

Why a local function: ONNX Runtime (and TensorRT without the plugin) inline it, so one
exported file runs everywhere, while TensorRT >= 10.7 prefers a registered plugin of
the same name. The body computes, in fp32 whatever the input dtype:

    delta = delta + delta_bias           (if has_delta_bias)
    delta = softplus(delta)              (if delta_softplus)
    dA_t  = exp(delta_t * A); dBu_t = delta_t * u_t * B_t       (vectorised over t)
    h_t   = dA_t * h_{t-1} + dBu_t;  y_t = h_t @ C_t            (an ONNX Scan over t)
    y     = y + D * u                    (if has_D)
    y     = y * silu(z)                  (if has_z)

The reverse direction flips the time-major inputs and the result with a Slice whose
start/end/step derive from the ``direction`` attribute (an attribute-referenced
Constant), so both directions share one op_type and one body. Flags select with
``Where`` rather than multiplying, so an inf in an unused branch never turns into NaN.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from cvgl_edge.export.scan import contract

INT64_MAX = 2**63 - 1


class _Body:
    """Collects the nodes of the function body; one helper per node, unique output names.

    Nodes are left unnamed: every call site instantiates the same body, so any name
    would repeat. (TensorRT-RTX still warns once per inlined instance, because it names
    unnamed nodes after their outputs, e.g. ``node_of_u_f``; the warning is harmless and
    export/tensorrt/build.py counts it separately.)
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []

    def add(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], **attrs))
        return name

    def const_ints(self, name: str, values: list[int]) -> str:
        return self.add("Constant", [], name, value_ints=values)

    def const_float(self, name: str, value: float) -> str:
        return self.add("Constant", [], name, value_float=value)

    def attr_int(self, name: str, attribute: str) -> str:
        """Scalar int64 tensor holding the value of the function attribute ``attribute``."""
        node = helper.make_node("Constant", [], [name])
        ref = helper.make_attribute_ref("value_int", onnx.AttributeProto.INT)
        ref.ref_attr_name = attribute  # set directly: onnx < 1.20 has no keyword for it
        node.attribute.append(ref)
        self.nodes.append(node)
        return name

    def attr_flag(self, name: str, attribute: str) -> str:
        """Scalar bool tensor: function attribute ``attribute`` != 0."""
        return self.add("Cast", [self.attr_int(f"{name}_int", attribute)], name, to=TensorProto.BOOL)


def _recurrence_graph() -> onnx.GraphProto:
    """Scan body: state h (B, Dc, N); per step dA_t, dBu_t (B, Dc, N), C_t (B, N, 1).

    Three ops per step. Tried and dropped: a chunked form (a Scan of ~sqrt(L) steps
    inside all chunks at once plus a carry Scan across chunks), which has 8x fewer
    steps but streams the (L, B, Dc, N) state several more times and ran 2.3x slower
    in onnxruntime 1.31 on CPU (Vim-S scan, L=257: 35 ms vs 15 ms).
    """
    def float_any(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)

    nodes = [
        helper.make_node("Mul", ["dA_t", "h_prev"], ["decayed"]),
        helper.make_node("Add", ["decayed", "dBu_t"], ["h_next"]),
        helper.make_node("MatMul", ["h_next", "C_t"], ["y_t"]),
    ]
    return helper.make_graph(
        nodes,
        "selective_scan_step",
        [float_any("h_prev"), float_any("dA_t"), float_any("dBu_t"), float_any("C_t")],
        [float_any("h_next"), float_any("y_t")],
    )


def _flip_params(b: _Body) -> tuple[str, str, str, str]:
    """(starts, ends, axes, steps) for a Slice that reverses axis 0 iff direction == 1."""
    direction = b.attr_int("direction", "direction")
    one = b.add("Constant", [], "one_i", value=helper.make_tensor("one_i", TensorProto.INT64, [], [1]))
    two = b.add("Constant", [], "two_i", value=helper.make_tensor("two_i", TensorProto.INT64, [], [2]))
    big = b.add("Constant", [], "big_i", value=helper.make_tensor("big_i", TensorProto.INT64, [], [INT64_MAX]))
    axis0 = b.const_ints("axis0", [0])
    step = b.add("Sub", [one, b.add("Mul", [two, direction], "two_dir")], "step")  # 1 or -1
    steps = b.add("Unsqueeze", [step, axis0], "steps")
    starts = b.add("Unsqueeze", [b.add("Neg", [direction], "neg_dir"), axis0], "starts")  # 0 or -1
    ends = b.add("Unsqueeze", [b.add("Mul", [step, big], "end_scalar"), axis0], "ends")  # +-max
    return starts, ends, axis0, steps


def build_scan_function(opset: int) -> onnx.FunctionProto:
    """FunctionProto ``cvgl.SelectiveScan`` built from standard ONNX ops of ``opset``."""
    b = _Body()
    f32 = TensorProto.FLOAT
    u, delta, A, B, C, D, z, bias = (b.add("Cast", [name], f"{name}_f", to=f32) for name in contract.INPUTS)
    zero = b.const_float("zero_f", 0.0)
    one = b.const_float("one_f", 1.0)
    last = b.const_ints("axis_last", [-1])

    # delta = softplus(delta + delta_bias), each step switched by its attribute
    bias = b.add("Where", [b.attr_flag("has_bias", "has_delta_bias"), bias, zero], "bias_sel")
    delta = b.add("Add", [delta, b.add("Unsqueeze", [bias, last], "bias_col")], "delta_biased")
    delta = b.add("Where", [b.attr_flag("softplus", "delta_softplus"),
                            b.add("Softplus", [delta], "delta_sp"), delta], "delta_eff")

    # time-major (L, B, ...) and, for direction 1, reversed in time
    starts, ends, axes, steps = _flip_params(b)

    def time_major(name: str, x: str) -> str:
        t = b.add("Transpose", [x], f"{name}_tm", perm=[2, 0, 1])
        return b.add("Slice", [t, starts, ends, axes, steps], f"{name}_tmf")

    dt_t, u_t, B_t, C_t = (time_major(n, x) for n, x in (("dt", delta), ("u", u), ("B", B), ("C", C)))

    # discretisation, vectorised over time: (L, B, Dc, N)
    dA = b.add("Exp", [b.add("Mul", [b.add("Unsqueeze", [dt_t, last], "dt_col"), A], "dt_A")], "dA")
    dtu = b.add("Unsqueeze", [b.add("Mul", [dt_t, u_t], "dt_u"), last], "dtu_col")
    dBu = b.add("Mul", [dtu, b.add("Unsqueeze", [B_t, b.const_ints("axis2", [2])], "B_row")], "dBu")
    C_col = b.add("Unsqueeze", [C_t, last], "C_col")  # (L, B, N, 1)

    # h_0 = zeros(B, Dc, N)
    batch_ch = b.add("Shape", [u], "shape_bd", start=0, end=2)
    nstate = b.add("Shape", [A], "shape_n", start=1, end=2)
    h0 = b.add("ConstantOfShape", [b.add("Concat", [batch_ch, nstate], "shape_h", axis=0)], "h0",
               value=helper.make_tensor("zero", f32, [1], [0.0]))

    b.nodes.append(helper.make_node(
        "Scan", [h0, dA, dBu, C_col], ["h_last", "y_scan"],
        num_scan_inputs=3, body=_recurrence_graph(),
    ))
    y = b.add("Slice", ["y_scan", starts, ends, axes, steps], "y_tm")  # back to forward time
    y = b.add("Squeeze", [b.add("Transpose", [y], "y_bdl1", perm=[1, 2, 0, 3]), last], "y_bdl")

    d_col = b.add("Unsqueeze", [b.add("Where", [b.attr_flag("has_D", "has_D"), D, zero], "D_sel"), last], "D_col")
    y = b.add("Add", [y, b.add("Mul", [d_col, u], "D_u")], "y_skip")
    gate = b.add("Where", [b.attr_flag("has_z", "has_z"),
                           b.add("Mul", [z, b.add("Sigmoid", [z], "z_sig")], "z_silu"), one], "gate")
    y = b.add("Mul", [y, gate], "y_gated")
    b.add("CastLike", [y, contract.INPUTS[0]], contract.OUTPUT)

    attributes = [helper.make_attribute(k, v) for k, v in contract.INT_ATTRIBUTES.items()]
    attributes += [helper.make_attribute(k, v) for k, v in contract.STRING_ATTRIBUTES.items()]
    return helper.make_function(
        contract.DOMAIN,
        contract.OP_TYPE,
        list(contract.INPUTS),
        [contract.OUTPUT],
        b.nodes,
        [helper.make_opsetid("", opset)],
        attribute_protos=attributes,
        doc_string="Mamba selective scan (fp32 recurrence via ONNX Scan); see cvgl_edge.export.scan.function.",
    )
