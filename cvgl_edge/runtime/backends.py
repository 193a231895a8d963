"""The runtime backends: one entry each, read by eval, verify, bench, localize, doctor and the CLI help.

Why one table: a backend's name, aliases, file suffixes, the export format that feeds it, whether
it needs a GPU, why it cannot run here and how to open it were spelled out in about ten modules.
Adding a backend is now its encoder module plus one entry here.

No PyTorch, ONNX Runtime or TensorRT is imported here: each opener imports its runtime when it
is called (they are optional heavy dependencies; the deployment install has no PyTorch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cvgl_edge.errors import CvglError
from cvgl_edge.extras import needs, torch_installed
from cvgl_edge.runtime.base import Encoder
from cvgl_edge.runtime.onnxruntime.encoder import OrtEncoder, ort_device
from cvgl_edge.runtime.tensorrt.encoder import TrtEncoder


class MachineFacts(Protocol):
    """What a machine offers a backend (``bench.plan.Environment`` is one)."""

    cuda: bool
    ort_providers: tuple[str, ...]
    tensorrt: str | None


#: (artifact path, device, threads) -> an open Encoder
Opener = Callable[[Path, str, "int | None"], Encoder]
#: (precision, on a GPU, machine facts) -> why the backend cannot run that here, or None
Availability = Callable[[str, bool, MachineFacts], "str | None"]


@dataclass(frozen=True)
class Backend:
    """One ``--backend`` value."""

    name: str
    description: str
    aliases: tuple[str, ...]
    suffixes: tuple[str, ...]        # files it runs; the first is the one cvgl-edge writes
    export_format: str | None        # the ``export --format`` that makes its files (None: a checkpoint)
    needs: str                       # what it needs, for the one-line error on a wrong file
    needs_gpu: bool
    unavailable: Availability
    open: Opener | None = None       # None: opened from a checkpoint by the factory (torch)

    @property
    def suffix(self) -> str:
        return self.suffixes[0]


def _torch_unavailable(precision: str, on_gpu: bool, facts: MachineFacts) -> str | None:
    if not torch_installed():
        return needs("the torch backend")
    if precision == "int8":
        return "PyTorch int8 is not supported; benchmark int8 with onnxruntime or tensorrt"
    if precision == "fp16" and not on_gpu:
        return "PyTorch fp16 runs on CUDA only; use --device cuda"
    return None


def _ort_unavailable(precision: str, on_gpu: bool, facts: MachineFacts) -> str | None:
    if not facts.ort_providers:
        return "onnxruntime is not installed"
    if on_gpu and "CUDAExecutionProvider" not in facts.ort_providers:
        return "this onnxruntime build has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


def _trt_unavailable(precision: str, on_gpu: bool, facts: MachineFacts) -> str | None:
    if not on_gpu or not facts.cuda:
        return "TensorRT engines need a CUDA GPU; none here"
    if facts.tensorrt is None:
        return "no TensorRT package (tensorrt or tensorrt-rtx) is installed"
    return None


def _open_onnx(path: Path, device: str, threads: int | None) -> Encoder:

    return OrtEncoder(path, device=ort_device(device), threads=threads)


def _open_engine(path: Path, device: str, threads: int | None) -> Encoder:

    return TrtEncoder(path, device=device)


BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (
    Backend("torch", "PyTorch checkpoint: eager, torch.compile or CUDA graphs", ("pytorch",),
            (".pt", ".pth", ".ckpt"), None, "--backend torch needs a checkpoint (.pt) written by cvgl-edge train",
            needs_gpu=False, unavailable=_torch_unavailable),
    Backend("onnxruntime", "ONNX file through ONNX Runtime (CPU, or CUDA with onnxruntime-gpu)", ("ort", "onnx"),
            (".onnx",), "onnx", "--backend onnxruntime needs an exported .onnx file; run cvgl-edge export first",
            needs_gpu=False, unavailable=_ort_unavailable, open=_open_onnx),
    Backend("tensorrt", "TensorRT engine (CUDA GPU)", ("trt",), (".engine",), "engine",
            "--backend tensorrt needs a TensorRT .engine file; build one with cvgl-edge export --format engine",
            needs_gpu=True, unavailable=_trt_unavailable, open=_open_engine),
)}
#: the built-in names, in --help order (``backend_names()`` also lists registered ones)
BACKEND_NAMES = tuple(BACKENDS)


def register_backend(backend: Backend) -> Backend:
    """Add a backend (a plugin package's, or a test's); every command sees it from then on."""
    if backend.name in BACKENDS:
        raise ValueError(f"backend {backend.name!r} is already registered")
    BACKENDS[backend.name] = backend
    return backend


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def backend_named(name: str) -> Backend:
    """The backend a ``--backend`` value (or alias, any case) names; CvglError otherwise."""
    key = name.strip().lower()
    for backend in BACKENDS.values():
        if key == backend.name or key in backend.aliases:
            return backend
    raise CvglError(f"unknown --backend {name!r}; choose {', '.join(BACKENDS)}")


def check_backend(name: str) -> str:
    """The canonical name of a ``--backend`` value (aliases: ort, onnx, pytorch, trt), else CvglError."""
    return backend_named(name).name


def backend_for_suffix(suffix: str) -> Backend | None:
    """The backend that runs files with this suffix, or None."""
    return next((b for b in BACKENDS.values() if suffix.lower() in b.suffixes), None)


def backend_for_format(export_format: str) -> Backend:
    """The backend that runs what ``export --format`` wrote."""
    return next(b for b in BACKENDS.values() if b.export_format == export_format)


def artifact_backends() -> list[Backend]:
    """Backends that run exported files (not checkpoints)."""
    return [b for b in BACKENDS.values() if b.export_format is not None]


def backends_help() -> str:
    """'torch, onnxruntime or tensorrt' for option help texts."""
    names = backend_names()
    return ", ".join(names[:-1]) + f" or {names[-1]}"
