"""Moved to :mod:`cvgl_edge.export.onnx.exporter`; kept so scripts keep working."""

from cvgl_edge.export.onnx.exporter import (
    EXPORT_PRECISIONS,
    BranchEncoder,
    expected_scan_nodes,
    export_branch,
    save_onnx,
)

__all__ = [
    "BranchEncoder", "EXPORT_PRECISIONS", "expected_scan_nodes", "export_branch", "save_onnx"
]
