"""Runtimes behind one Encoder interface: PyTorch, ONNX Runtime and TensorRT."""

from cvgl_edge.runtime.base import BACKEND_NAMES, Encoder, EncoderInfo, check_backend

__all__ = ["BACKEND_NAMES", "Encoder", "EncoderInfo", "check_backend"]
