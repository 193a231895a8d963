"""Moved to :mod:`cvgl_edge.runtime.onnxruntime.encoder`; kept so scripts keep working."""

from cvgl_edge.runtime.onnxruntime.encoder import (
    REQUIRED,
    OrtEncoder,
    file_metadata,
    open_session,
)

__all__ = ["OrtEncoder", "REQUIRED", "file_metadata", "open_session"]
