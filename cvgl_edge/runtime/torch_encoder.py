"""PyTorch backend: one branch of an in-memory GeoSSM behind the ``Encoder`` interface.

Precision: fp32 everywhere; fp16/bf16 on CUDA only, through ``torch.autocast``. Why
autocast rather than a half copy of the weights: the same fp32 model serves every
request, matmuls and convolutions run in half precision, while RMSNorm (which computes
its statistics in fp32 by design), the selective scan and the L2-normalised readout keep
fp32, exactly as the training loop's AMP does. A ``.half()`` copy would need per-module
exceptions to keep those islands in fp32.

Modes: ``eager``; ``compile`` = ``torch.compile`` (default inductor); ``cudagraph`` =
``torch.compile(mode="reduce-overhead")`` (CUDA only), i.e. inductor with CUDA graph trees.
Why not a hand-captured ``torch.cuda.CUDAGraph``: the compiled path re-records per input
shape and falls back by itself where a graph cannot be captured, while a manual capture
would fail hard on any host synchronisation inside the scan backends. Its outputs live in
graph-owned memory that the next replay overwrites, so ``forward`` clones them.

Run here (CPU): eager and compile in fp32, and the CPU refusals. Not run here (no GPU):
the CUDA paths (pinned-memory staging, autocast fp16/bf16, cudagraph); they use only
documented torch APIs and are covered by ``@pytest.mark.gpu`` tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.devices import resolve_device
from cvgl_edge.models.fingerprint import state_dict_sha256
from cvgl_edge.precisions import TORCH_PRECISIONS
from cvgl_edge.runtime.base import Encoder, EncoderInfo

PRECISIONS = dict(zip(TORCH_PRECISIONS, (torch.float32, torch.float16, torch.bfloat16)))
TORCH_MODES = ("eager", "compile", "cudagraph")


class _Branch(nn.Module):
    """``model.encode(x, view)`` as a module, so torch.compile sees one forward."""

    def __init__(self, model: nn.Module, view: str) -> None:
        super().__init__()
        self.model = model
        self.view = view

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images, self.view)


def resolve_torch_device(device: str | torch.device) -> torch.device:
    """'auto' | 'cpu' | 'cuda[:N]' -> a usable torch device, else CvglError (one line)."""

    return device if isinstance(device, torch.device) else resolve_device(str(device))


def check_torch_options(device: torch.device, precision: str, torch_mode: str) -> None:
    """Refuse combinations that cannot run here with one line each."""
    if precision not in PRECISIONS:
        raise CvglError(f"unknown precision {precision!r} for the torch backend; choose {', '.join(PRECISIONS)}")
    if torch_mode not in TORCH_MODES:
        raise CvglError(f"unknown torch mode {torch_mode!r}; choose {', '.join(TORCH_MODES)}")
    if device.type != "cuda":
        if precision != "fp32":
            raise CvglError(f"the torch backend runs {precision} on CUDA only (autocast); use fp32 on {device.type}")
        if torch_mode == "cudagraph":
            raise CvglError("torch mode cudagraph needs a CUDA device; use eager or compile on the CPU")
    elif precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise CvglError("this GPU does not support bf16; use fp16 or fp32")


class TorchEncoder(Encoder):
    """One view of a dual encoder, run by PyTorch on ``device``."""

    def __init__(self, model: nn.Module, view: str, device: str | torch.device = "cpu",
                 precision: str = "fp32", torch_mode: str = "eager") -> None:

        view = model.canonical_view(view) if hasattr(model, "canonical_view") else view
        self.device = resolve_torch_device(device)
        check_torch_options(self.device, precision, torch_mode)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.torch_mode = torch_mode
        self._dtype = PRECISIONS[precision]
        branch = _Branch(self.model, view).eval()
        if torch_mode == "eager":
            self._run: Any = branch
        else:
            self._run = torch.compile(branch, mode="reduce-overhead" if torch_mode == "cudagraph" else None)
        h, w = model.config.input_size(view)
        self.info = EncoderInfo(
            backend="torch", view=view, input_size=(int(h), int(w)), descriptor_dim=int(model.descriptor_dim),
            precision=precision, device=str(self.device), model_name=getattr(model, "model_name", "unknown"),
            model_sha256=state_dict_sha256(model),
            extra={"runtime": f"torch {torch.__version__} {self.device} {torch_mode} {precision}",
                   "torch": torch.__version__, "torch_mode": torch_mode,
                   "autocast": precision != "fp32"},
        )

    @property
    def _cuda(self) -> bool:
        return self.device.type == "cuda"

    def to_device(self, images: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        if not self._cuda:
            return tensor
        # Pinned host memory lets the copy run asynchronously on the current stream.
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def forward(self, staged: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if self.torch_mode == "cudagraph":
                torch.compiler.cudagraph_mark_step_begin()
            if self._dtype is torch.float32:
                out = self._run(staged)
            else:
                with torch.autocast("cuda", dtype=self._dtype):
                    out = self._run(staged)
            return out.clone() if self.torch_mode == "cudagraph" else out

    def to_host(self, result: torch.Tensor) -> np.ndarray:
        return result.detach().float().cpu().numpy()

    def synchronize(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)
