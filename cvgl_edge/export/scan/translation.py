"""Lowering of ``torch.ops.cvgl.selective_scan`` to one ``cvgl.SelectiveScan`` ONNX node.

Used as the dynamo exporter's ``custom_translation_table`` entry. onnxscript needs an
OpSchema to emit a node; we hand it one built here instead of registering it with
``onnx.defs`` (a process-wide side effect that would also change how onnx checks
every other model). The node's body is attached later as a local function
(``function``); this module only writes the node.
"""

from __future__ import annotations

from typing import Any

from onnx import TensorProto
from onnx.defs import OpSchema
from onnxscript import opset18 as op
from onnxscript.values import Op, Opset

from cvgl_edge.export.scan import contract

_FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(bfloat16)")


def _type_of(name: str) -> str:
    """Type constraint of an input: "P" for the parameters, "T" for the data."""
    return "P" if name in contract.PARAMETER_INPUTS else "T"


def _schema() -> OpSchema:
    param = OpSchema.FormalParameter
    attrs = [OpSchema.Attribute(name, OpSchema.AttrType.INT, "") for name in contract.INT_ATTRIBUTES]
    attrs += [OpSchema.Attribute(name, OpSchema.AttrType.STRING, "") for name in contract.STRING_ATTRIBUTES]
    return OpSchema(
        contract.OP_TYPE,
        contract.DOMAIN,
        contract.DOMAIN_VERSION,
        "Mamba selective scan; see cvgl_edge.export.scan.contract.",
        inputs=[param(name, _type_of(name)) for name in contract.INPUTS],
        outputs=[param(contract.OUTPUT, "T")],
        type_constraints=[("T", list(_FLOAT_TYPES), "data: u, delta, B, C, z and y"),
                          ("P", list(_FLOAT_TYPES), "parameters: A, D, delta_bias")],
        attributes=attrs,
    )


SELECTIVE_SCAN = Op(Opset(contract.DOMAIN, contract.DOMAIN_VERSION), contract.OP_TYPE, _schema())


def _placeholder() -> Any:
    return op.Constant(value_floats=[0.0] * contract.PLACEHOLDER_SHAPE[0])


def selective_scan_to_onnx(
    u: Any,
    delta: Any,
    A: Any,
    B: Any,
    C: Any,
    D: Any = None,
    z: Any = None,
    delta_bias: Any = None,
    delta_softplus: bool = False,
    reverse: bool = False,
) -> Any:
    """Translation for ``torch.ops.cvgl.selective_scan.default`` (same argument order)."""
    attributes = contract.scan_attributes(
        reverse=reverse, delta_softplus=delta_softplus,
        has_D=D is not None, has_z=z is not None, has_delta_bias=delta_bias is not None,
    )
    D, z, delta_bias = (t if t is not None else _placeholder() for t in (D, z, delta_bias))
    # Data in u's type T, parameters in fp32 (P): the model keeps A, D and the dt bias
    # fp32; rounding them to fp16 put some Vim-S scan outputs 10-19 % off (benchmarks/
    # scan_fp16_params.py). The Casts pin the types for models that hand in other
    # dtypes; in an FP32 graph all of them are no-ops the exporter's optimizer drops.
    delta, B, C, z = (op.CastLike(t, u) for t in (delta, B, C, z))
    A, D, delta_bias = (op.Cast(t, to=TensorProto.FLOAT) for t in (A, D, delta_bias))
    return SELECTIVE_SCAN(u, delta, A, B, C, D, z, delta_bias, **attributes)


def translation_table() -> dict[Any, Any]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``."""
    import torch

    import cvgl_edge.ops  # noqa: F401  (registers torch.ops.cvgl.selective_scan)

    return {torch.ops.cvgl.selective_scan.default: selective_scan_to_onnx}
