"""Runtimes behind one Encoder interface: PyTorch, ONNX Runtime and TensorRT."""

from cvgl_edge.runtime.backends import BACKEND_NAMES, BACKENDS, Backend, check_backend, register_backend
from cvgl_edge.runtime.base import Encoder, EncoderInfo
from cvgl_edge.runtime.factory import model_encoder, open_encoder

__all__ = ["BACKEND_NAMES", "BACKENDS", "Backend", "Encoder", "EncoderInfo", "check_backend", "model_encoder",
           "open_encoder", "register_backend"]
