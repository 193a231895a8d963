"""Moved to :mod:`cvgl_edge.export.tensorrt.build`; kept so scripts keep working."""

from cvgl_edge.export.tensorrt.build import (
    NOT_RUN,
    NOT_RUN_FULL,
    RTX_DEFAULT_TARGET,
    SCAN_TEXT,
    EngineOptions,
    ScanImport,
    build_engine,
    engine_path_for,
    read_sidecar,
    sidecar_path,
)

__all__ = [
    "EngineOptions", "NOT_RUN", "NOT_RUN_FULL", "RTX_DEFAULT_TARGET", "SCAN_TEXT", "ScanImport",
    "build_engine", "engine_path_for", "read_sidecar", "sidecar_path"
]
