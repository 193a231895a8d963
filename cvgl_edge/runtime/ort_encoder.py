"""Moved to :mod:`cvgl_edge.runtime.onnxruntime.encoder`; kept so scripts keep working."""

from cvgl_edge.runtime.onnxruntime.encoder import (
    OrtEncoder,
    REQUIRED,
    file_metadata,
    open_session,
)

__all__ = ["OrtEncoder", "REQUIRED", "file_metadata", "open_session"]
