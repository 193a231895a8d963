"""Moved to :mod:`cvgl_edge.runtime.tensorrt.backend` (running an engine needs no exporter); this
module keeps the old import path working."""

from cvgl_edge.runtime.tensorrt.backend import (
    FLAVOURS,
    INSTALL_HINT,
    TrtBackend,
    collecting_logger,
    load_backend,
)

__all__ = ["FLAVOURS", "INSTALL_HINT", "TrtBackend", "collecting_logger", "load_backend"]
