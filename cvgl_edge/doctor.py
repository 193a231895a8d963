"""Environment report for `cvgl-edge doctor`: what is installed and what will run."""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
from typing import Any

import torch

import cvgl_edge
from cvgl_edge.export.plugin_cache import list_builds


def _version(module: str) -> str:
    if importlib.util.find_spec(module) is None:
        return "not installed"
    try:
        return str(getattr(importlib.import_module(module), "__version__", "installed"))
    except Exception as error:  # an installed but broken package is worth reporting
        return f"broken ({type(error).__name__}: {error})"


def environment_report() -> dict[str, Any]:
    """Versions, devices and selective-scan backends, as a flat dict."""
    from cvgl_edge import ops

    report: dict[str, Any] = {
        "cvgl-edge": cvgl_edge.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "cuda available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
        report["cuda (torch)"] = torch.version.cuda
    for module in ("mamba_ssm", "onnx", "onnxruntime", "tensorrt", "tensorrt_rtx", "numpy", "cv2"):
        report[module] = _version(module)
    report["scan backends available"] = ", ".join(ops.available_backends())
    report["scan backend (cpu)"] = ops.active_backend(torch.device("cpu"))
    if torch.cuda.is_available():
        report["scan backend (cuda)"] = ops.active_backend(torch.device("cuda"))
    builds = list_builds()
    report["tensorrt plugin (cvgl-edge plugin build)"] = "; ".join(
        f"TensorRT {b.tensorrt_major_minor} sm_{'/'.join(map(str, b.architectures))}: {b.library}" for b in builds
    ) or "none built"
    return report
