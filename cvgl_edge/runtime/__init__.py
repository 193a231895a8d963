"""Runtimes behind one Encoder interface: PyTorch, ONNX Runtime and TensorRT."""

from cvgl_edge.runtime.base import BACKEND_NAMES, Encoder, EncoderInfo, check_backend
from cvgl_edge.runtime.factory import model_encoder, open_encoder

__all__ = ["BACKEND_NAMES", "Encoder", "EncoderInfo", "check_backend", "model_encoder", "open_encoder"]
