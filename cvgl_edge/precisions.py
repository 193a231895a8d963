"""Numeric precisions, named once: what exported files hold and what PyTorch computes in.

Why here: export, verify, eval, bench and the runtimes all check ``--precision`` values, and the
names must agree with the file names (``<model>-<view>.fp16.onnx``) they pick files by.
"""

from __future__ import annotations

#: precisions of exported files (ONNX and TensorRT engines); fp32 files carry no precision tag
ARTIFACT_PRECISIONS = ("fp32", "fp16", "int8")
#: precisions an ONNX export is written in directly (int8 comes from quantising the fp32 file)
ONNX_PRECISIONS = ("fp32", "fp16")
#: what a PyTorch model computes in (fp16/bf16: autocast on CUDA)
TORCH_PRECISIONS = ("fp32", "fp16", "bf16")
