"""Moved to :mod:`cvgl_edge.runtime.tensorrt.encoder`; kept so scripts keep working."""

from cvgl_edge.runtime.tensorrt.encoder import (
    TrtEncoder,
    cuda_index,
)

__all__ = ["TrtEncoder", "cuda_index"]
