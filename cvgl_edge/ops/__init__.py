"""Selective-scan operator (Mamba semantics). Placeholder: reference loop only."""

from cvgl_edge.ops.reference import selective_scan_reference as selective_scan

__all__ = ["selective_scan"]
