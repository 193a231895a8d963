"""The one ``Encoder`` interface over PyTorch, ONNX Runtime and TensorRT.

Why one interface: eval, verify, bench and the localisation loop should not care what
runs a branch. Every backend takes normalised images (N, 3, H, W) float32 and returns
L2-normalised descriptors (N, D) float32 on the host. The three stages are separate
methods so that ``bench`` can time host->device copies, the encoder itself and
device->host copies apart (on CUDA with events after synchronisation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError


@dataclass
class EncoderInfo:
    """What an encoder is: enough to label a benchmark row or a verify report."""

    backend: str
    view: str
    input_size: tuple[int, int]
    descriptor_dim: int
    precision: str
    device: str
    model_name: str
    model_sha256: str | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> str:
        """What ran, in words (``extra["runtime"]``, e.g. "onnxruntime 1.31.1 CPUExecutionProvider")."""
        return str(self.extra.get("runtime") or self.backend)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["input_size"] = list(self.input_size)
        return record


class Encoder(ABC):
    """One encoder branch behind a runtime. Subclasses implement the three stages."""

    info: EncoderInfo

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """float32 contiguous (N, 3, H, W) at the encoder's size, else CvglError (one line)."""
        array = np.asarray(images)
        h, w = self.info.input_size
        if array.ndim != 4 or array.shape[1:] != (3, h, w):
            raise CvglError(f"{self.info.view} encoder expects images (N, 3, {h}, {w}), got {tuple(array.shape)}")
        return np.ascontiguousarray(array, dtype=np.float32)

    @abstractmethod
    def to_device(self, images: np.ndarray) -> Any:
        """Stage a checked host batch where ``forward`` reads it (a no-op on the CPU)."""

    @abstractmethod
    def forward(self, staged: Any) -> Any:
        """Run the encoder on a staged batch; returns a device-side result (asynchronous on CUDA)."""

    @abstractmethod
    def to_host(self, result: Any) -> np.ndarray:
        """(N, D) float32 numpy descriptors from a ``forward`` result (synchronises)."""

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA backends override)."""

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Images (N, 3, H, W) float32 normalised -> (N, D) float32 descriptors.

        A batch larger than ``max_batch`` is split (an engine's profile has a maximum).
        """
        limit = self.max_batch
        if limit is not None and len(images) > limit:
            return self.encode_batches(images, limit)
        return self.to_host(self.forward(self.to_device(self.check_images(images))))

    def encode_batches(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``encode`` in chunks of ``batch_size``, never more than ``max_batch`` at a time."""
        if batch_size < 1:
            raise CvglError("batch size must be >= 1")
        if self.max_batch is not None:
            batch_size = min(batch_size, self.max_batch)
        parts = [self.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        if not parts:
            return np.zeros((0, self.info.descriptor_dim), dtype=np.float32)
        return np.concatenate(parts)

    @property
    def max_batch(self) -> int | None:
        """Largest batch the backend accepts (None: unbounded)."""
        return None

    def close(self) -> None:
        """Release runtime resources (sessions, contexts)."""

    def __enter__(self) -> "Encoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
