"""Selective-scan operator (Mamba semantics) with interchangeable backends.

``selective_scan`` is the one entry point models use; it is captured as a single
``cvgl.selective_scan`` operator by tracing/export. Backends: reference (step loop,
parity oracle), chunked (vectorised PyTorch), cpp (JIT-built C++ CPU kernel), cuda
(mamba_ssm), native (our CUDA kernel from export/csrc, JIT-built with nvcc). Nothing is
compiled at import time.
"""

from cvgl_edge.ops.backends import (
    BACKENDS,
    active_backend,
    available_backends,
    backend_status,
    use_backend,
)
from cvgl_edge.ops.reference import selective_scan_reference
from cvgl_edge.ops.scan_op import selective_scan

__all__ = [
    "BACKENDS",
    "active_backend",
    "available_backends",
    "backend_status",
    "selective_scan",
    "selective_scan_reference",
    "use_backend",
]
