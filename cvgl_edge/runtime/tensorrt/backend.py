"""Which TensorRT Python package is importable: ``tensorrt`` (10.x/11.x) or ``tensorrt_rtx``.

Why: the full ``tensorrt`` package needs a GPU machine (CUDA wheels), while TensorRT for
RTX installs anywhere and builds engines ahead of time on the CPU. Both expose the same
builder API (Builder, OnnxParser, IBuilderConfig), so the engine builder takes whichever
is present and records which one it used; the TensorRT encoder opens an engine with the
flavour its sidecar names. Here in the runtime (not in export) because running an engine
needs neither the exporter nor PyTorch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cvgl_edge.errors import CvglError

#: Tried in this order: the full TensorRT first (it runs the plugin), then TensorRT-RTX.
FLAVOURS = ("tensorrt", "tensorrt_rtx")
INSTALL_HINT = ("no TensorRT Python package found: `pip install tensorrt` (GPU machine) or "
                "`pip install tensorrt-rtx` (engine AOT build, also CPU-only; `pip install cvgl-edge[trt-rtx]`)")


@dataclass(frozen=True)
class TrtBackend:
    """The imported module, its name and version."""

    trt: ModuleType
    flavour: str
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.flavour == "tensorrt_rtx"


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def load_backend(prefer: str | None = None) -> TrtBackend:
    """The first importable flavour (``prefer`` first if given); CvglError if none is."""
    order = (prefer,) + tuple(f for f in FLAVOURS if f != prefer) if prefer else FLAVOURS
    for name in order:
        module = _import(name)
        if module is not None:
            return TrtBackend(module, name, str(getattr(module, "__version__", "unknown")))
    raise CvglError(INSTALL_HINT)


def collecting_logger(trt: ModuleType) -> Any:
    """A ``trt.ILogger`` keeping warnings and errors (whitespace-collapsed), so a failed
    parse, build or deserialisation can be reported in one line; ``errors()`` keeps errors only."""

    class Collecting(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[tuple[Any, str]] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity <= trt.ILogger.Severity.WARNING:
                self.messages.append((severity, " ".join(str(msg).split())))

        def errors(self) -> list[str]:
            return [m for s, m in self.messages if s <= trt.ILogger.Severity.ERROR]

    return Collecting()
