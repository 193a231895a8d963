"""ONNX Runtime backend: one exported branch (``<model>-<view>[.<precision>].onnx``).

Everything the encoder needs (view, input size, descriptor size, precision, model hash)
comes from the file's own cvgl-edge metadata (``metadata_props``), read through the
session: neither ``onnx`` nor PyTorch is imported (the deployment install has neither).

On the CPU ``forward`` is a plain ``session.run``. On CUDA the three stages are real:
``to_device`` places the batch in an ``OrtValue`` on the GPU, ``forward`` runs with IO
binding and leaves the descriptors on the GPU, ``to_host`` copies them back, so a benchmark
can time copies and compute apart. Run here: the CPU path and the IO-binding path with
CPU OrtValues (the same calls). Not run here: the CUDA provider (no GPU in this machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.runtime.base import Encoder, EncoderInfo
from cvgl_edge.runtime.onnxruntime.session import INPUT_NAME, OUTPUT_NAME, ort_session, session_metadata
from cvgl_edge.views import VIEWS

REQUIRED = ("view", "input_size", "descriptor_dim", "model_name", "model_sha256")


def open_session(path: Path, threads: int | None, device: str) -> Any:
    """An onnxruntime session of ``path``; a file that is no ONNX model, or that onnxruntime
    cannot load, is a one-line CvglError naming the file."""
    try:
        return ort_session(path, threads=threads, device=device)
    except CvglError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        if type(exc).__name__ == "InvalidProtobuf":
            raise CvglError(f"cannot read {path} as an ONNX file: {first_line(exc)}") from None
        raise CvglError(f"onnxruntime cannot load {path.name}: {first_line(exc)}") from exc


def file_metadata(session: Any, path: Path) -> dict[str, Any]:
    """The parsed cvgl-edge metadata of the file behind ``session``, else CvglError naming the file."""
    try:
        meta = session_metadata(session)
    except CvglError as exc:
        raise CvglError(f"{path.name}: {exc}") from None
    missing = [key for key in REQUIRED if key not in meta]
    if missing or meta["view"] not in VIEWS:
        raise CvglError(f"{path.name} carries incomplete cvgl-edge metadata (missing {', '.join(missing) or 'view'})")
    return meta


def _check_io(session: Any, path: Path) -> None:
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
        raise CvglError(f"{path.name} has inputs {inputs} and outputs {outputs}; a cvgl-edge branch has "
                        f"input {INPUT_NAME!r} and output {OUTPUT_NAME!r}")


def ort_device(device: str) -> str:
    """'auto' -> 'cuda' when this onnxruntime has the CUDA provider, else 'cpu'."""
    if device != "auto":
        return device
    import onnxruntime as ort

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


class OrtEncoder(Encoder):
    """One exported branch run by onnxruntime on ``device`` ("cpu" or "cuda[:N]")."""

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None,
                 io_binding: bool | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise CvglError(f"ONNX file not found: {self.path}")
        if threads is not None and threads < 1:
            raise CvglError("--threads must be >= 1")
        kind, _, index = device.partition(":")
        self.session = open_session(self.path, threads, device)
        meta = file_metadata(self.session, self.path)
        _check_io(self.session, self.path)
        self.metadata = meta
        provider = self.session.get_providers()[0]
        #: (device type, index) for OrtValues; None: plain session.run on host arrays.
        use_binding = kind == "cuda" if io_binding is None else io_binding
        self._bind_to: tuple[str, int] | None = (kind, int(index or 0)) if use_binding else None
        h, w = meta["input_size"]
        self.info = EncoderInfo(
            backend="onnxruntime", view=meta["view"], input_size=(int(h), int(w)),
            descriptor_dim=int(meta["descriptor_dim"]), precision=str(meta.get("precision", "fp32")),
            device=device, model_name=meta["model_name"], model_sha256=meta["model_sha256"],
            source=str(self.path),
            extra={"runtime": f"onnxruntime {ort.__version__} {provider}", "onnxruntime": ort.__version__,
                   "provider": provider, "threads": threads, "metadata": meta},
        )

    def to_device(self, images: np.ndarray) -> Any:
        if self._bind_to is None:
            return images
        import onnxruntime as ort

        kind, index = self._bind_to
        return ort.OrtValue.ortvalue_from_numpy(images, kind, index)

    def forward(self, staged: Any) -> Any:
        try:
            if self._bind_to is None:
                return self.session.run([OUTPUT_NAME], {INPUT_NAME: staged})[0]
            kind, index = self._bind_to
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, staged)
            binding.bind_output(OUTPUT_NAME, kind, index)
            self.session.run_with_iobinding(binding)
            return binding.get_outputs()[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CvglError(f"onnxruntime cannot run {self.path.name}: {first_line(exc)}") from exc

    def to_host(self, result: Any) -> np.ndarray:
        array = result if isinstance(result, np.ndarray) else result.numpy()
        return np.asarray(array, dtype=np.float32)

    def close(self) -> None:
        self.session = None
