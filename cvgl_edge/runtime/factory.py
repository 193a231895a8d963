"""One door to every backend: a source path (+ view, backend, device) -> an open ``Encoder``.

Why: eval, verify, bench and the localisation loop take the same ``SOURCE --backend
--device`` triple; how a checkpoint, an ONNX file or an engine is opened, and what the user
is told when the pair does not fit, lives here once.

PyTorch is imported only to open a checkpoint (``--backend torch``): ONNX files and
engines open on the deployment install, which has no PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cvgl_edge.errors import CvglError
from cvgl_edge.extras import is_missing_torch, needs
from cvgl_edge.runtime.artifacts import backend_for, branch_files
from cvgl_edge.runtime.backends import BACKENDS
from cvgl_edge.runtime.base import Encoder
from cvgl_edge.views import canonical_view

if TYPE_CHECKING:
    import torch


def model_encoder(model: torch.nn.Module, view: str, device: str = "cpu", precision: str = "fp32",
                  torch_mode: str = "eager") -> Encoder:
    """An in-memory model (e.g. a preset without checkpoint) as an Encoder; moves it to ``device``."""
    from cvgl_edge.runtime.torch_encoder import TorchEncoder

    return TorchEncoder(model, view, device=device, precision=precision, torch_mode=torch_mode)


def open_encoder(source: str | Path, view: str | None, backend: str | None = None, device: str = "cpu",
                 precision: str | None = None, *, threads: int | None = None, torch_mode: str = "eager",
                 trusted: bool = False) -> Encoder:
    """Open one branch of ``source``.

    ``source``: a checkpoint (.pt -> torch), an ONNX file (.onnx -> onnxruntime), an engine
    (.engine -> tensorrt), or an export folder (with ``view``; onnxruntime unless ``backend``
    says tensorrt). ``backend=None`` means: from the suffix. ``view=None`` opens whatever branch
    the artifact holds (a checkpoint needs a view). ``precision``: the torch backend's compute
    precision (fp32; fp16/bf16 on CUDA), for artifacts which file to pick / what it must be.
    ``threads``: onnxruntime intra-op threads; for torch ``torch.set_num_threads`` (process-wide).
    """
    path = Path(source)
    if threads is not None and threads < 1:
        raise CvglError("--threads must be >= 1")
    backend = backend_for(path, backend)
    wanted = canonical_view(view) if view is not None else None
    if backend == "torch":
        if path.is_dir():
            raise CvglError(f"{BACKENDS['torch'].needs} (got the folder {path})")
        if wanted is None:
            raise CvglError("a checkpoint holds both branches: say which view (ground or satellite) to open")
        try:
            import torch

            from cvgl_edge.models.checkpoint import load_checkpoint
        except ImportError as exc:
            if is_missing_torch(exc):
                raise CvglError(needs(f"running the checkpoint {path.name}") + " (or pass an exported "
                                ".onnx / .engine file)") from None
            raise
        if threads:
            torch.set_num_threads(threads)
        return model_encoder(load_checkpoint(path, trusted=trusted), wanted, device, precision or "fp32", torch_mode)
    if path.is_dir():
        if wanted is None:
            raise CvglError(f"{path} is an export folder: say which view (ground or satellite) to open")
        path = branch_files(path, backend, precision)[wanted]
    encoder = _open_artifact(path, backend, device, threads)
    problem = None
    if wanted is not None and encoder.info.view != wanted:
        problem = f"{path.name} is the {encoder.info.view} branch, not {wanted}"
    elif precision is not None and encoder.info.precision != precision:
        problem = f"{path.name} is {encoder.info.precision}, not --precision {precision}"
    if problem:
        encoder.close()
        raise CvglError(problem)
    return encoder


def _open_artifact(path: Path, backend: str, device: str, threads: int | None) -> Encoder:
    opener = BACKENDS[backend].open
    if opener is None:
        raise CvglError(f"{BACKENDS[backend].needs} (got {path.name})")
    return opener(path, device, threads)
