"""Versions written into every exported ONNX file, in one place.

IR version: onnx >= 1.23 writes IR 14 by default, which onnxruntime 1.x cannot read
(docs/export.md), so every model is stamped with ``IR_VERSION`` explicitly.
IR 10 is the lowest that holds everything we write (function attribute defaults need
IR 9; opset 21 needs IR 10) and is read by onnxruntime >= 1.17 and TensorRT 10.
Opsets: the dynamo exporter produces opset 18 natively; 18-21 are accepted (all run on
onnxruntime >= 1.18; TensorRT 10.x parses up to 20 or more, depending on the release).
"""

from __future__ import annotations

import onnx

from cvgl_edge.errors import CvglError

IR_VERSION = 10
DEFAULT_OPSET = 18
SUPPORTED_OPSETS = range(18, 22)
PRODUCER = "cvgl-edge"


def check_opset(opset: int) -> int:
    """Reject opsets we do not export to, with the valid range in the message."""
    if opset not in SUPPORTED_OPSETS:
        raise CvglError(
            f"--opset {opset} is not supported; choose {SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1}"
        )
    return opset


def stamp_versions(model: onnx.ModelProto, producer_version: str) -> None:
    """Set IR version and producer fields (in place)."""
    model.ir_version = IR_VERSION
    model.producer_name = PRODUCER
    model.producer_version = producer_version
