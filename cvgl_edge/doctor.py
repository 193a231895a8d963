"""Environment report for `cvgl-edge doctor`: what is installed and what will run.

Runs on the deployment install too (no PyTorch): the PyTorch lines then say how to get it,
and the rest (onnxruntime, TensorRT, the CUDA bindings of the TensorRT encoder, faiss,
rasterio, pymavlink) is reported as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
from typing import Any

import cvgl_edge
from cvgl_edge.bench.plan import probe_environment
from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.export.plugin.cache import list_builds
from cvgl_edge.extras import TRAIN_INSTALL, is_missing_torch
from cvgl_edge.runtime.backends import BACKENDS
from cvgl_edge.runtime.tensorrt.cuda_memory import choose_strategy

#: Packages whose version is reported: import name -> label.
MODULES = {"mamba_ssm": "mamba_ssm", "onnx": "onnx", "onnxruntime": "onnxruntime", "tensorrt": "tensorrt",
           "tensorrt_rtx": "tensorrt_rtx", "numpy": "numpy", "cv2": "cv2", "faiss": "faiss",
           "rasterio": "rasterio", "pymavlink": "pymavlink", "cuda.bindings": "cuda-python", "pycuda": "pycuda"}


def _version(module: str) -> str:
    try:
        if importlib.util.find_spec(module) is None:
            return "not installed"
    except (ImportError, ValueError):  # e.g. "cuda.bindings" without the "cuda" package
        return "not installed"
    try:
        return str(getattr(importlib.import_module(module), "__version__", "installed"))
    except Exception as error:  # an installed but broken package is worth reporting
        return f"broken ({type(error).__name__}: {error})"


def _torch_report() -> dict[str, Any]:
    """PyTorch's version, threads, CUDA and the selective-scan backends; how to install it if absent."""
    try:
        import torch

        from cvgl_edge import ops
    except ImportError as error:
        if not is_missing_torch(error):
            return {"torch": f"broken ({type(error).__name__}: {first_line(error)})"}
        return {"torch": f"not installed (train, distil, export, verify, demo need it: {TRAIN_INSTALL})"}
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "cuda available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
        report["cuda (torch)"] = torch.version.cuda
    report["scan backends available"] = ", ".join(ops.available_backends())
    report["scan backend (cpu)"] = ops.active_backend(torch.device("cpu"))
    if torch.cuda.is_available():
        report["scan backend (cuda)"] = ops.active_backend(torch.device("cuda"))
    for name, status in ops.backend_status().items():
        if name not in ("reference", "chunked"):  # those two always run
            report[f"scan backend {name}"] = status  # available, or unavailable and why
    return report


def _backend_lines(cuda: bool) -> dict[str, str]:
    """One line per registered backend: the files it runs and whether it can run here (its own rule)."""
    facts = probe_environment(cuda=cuda)
    lines = {}
    for backend in BACKENDS.values():
        why = backend.unavailable("fp32", backend.needs_gpu or cuda, facts)
        lines[f"backend {backend.name}"] = f"{'/'.join(backend.suffixes)}: {why or 'can run here'}"
    return lines


def environment_report() -> dict[str, Any]:
    """Versions, devices and selective-scan backends, as a flat dict."""
    report: dict[str, Any] = {
        "cvgl-edge": cvgl_edge.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu cores": os.cpu_count(),
    }
    torch_lines = _torch_report()
    scan = {key: torch_lines.pop(key) for key in list(torch_lines) if key.startswith("scan backend")}
    report.update(torch_lines)
    for module, label in MODULES.items():
        report[label] = _version(module)
    report.update(scan)
    report.update(_backend_lines(bool(report.get("cuda available", False))))
    try:
        report["tensorrt device memory"] = choose_strategy()
    except CvglError as error:
        report["tensorrt device memory"] = f"none ({error})"
    builds = list_builds()
    report["tensorrt plugin (cvgl-edge plugin build)"] = "; ".join(
        f"TensorRT {b.tensorrt_major_minor} sm_{'/'.join(map(str, b.architectures))}: {b.library}" for b in builds
    ) or "none built"
    return report


def environment_table(report: dict[str, Any]) -> Any:
    """The `doctor` table (fits 80 columns): one row per entry; long values (paths) fold, never cut."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="cvgl-edge environment", show_header=False)
    table.add_column("entry", overflow="fold", max_width=24)  # long keys wrap, leaving the value ~50 columns
    table.add_column("value", overflow="fold")
    for key, value in report.items():
        table.add_row(Text(key), Text(str(value)))  # plain text: "cvgl-edge[train]" is no markup tag
    return table
