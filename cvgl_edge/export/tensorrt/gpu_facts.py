"""Which GPU an engine was built for: the facts an engine sidecar records and a runtime checks.

Why: a full-TensorRT engine runs only on the GPU architecture (compute capability) and the
TensorRT version it was built with; a TensorRT-RTX engine runs on the compute capabilities
it was compiled for ahead of time. Writing these into the sidecar lets a runtime refuse a
mismatched engine with a clear message instead of TensorRT's deserialisation error.

Sources, in order: ``torch.cuda`` (when torch has CUDA and sees a device), else cuda-python
(``cuda.bindings.runtime``); None when neither sees a GPU (e.g. this CPU-only machine).
``driver`` and ``cuda_runtime`` are CUDA API versions as "major.minor" (``cudaDriverGetVersion``
= the newest CUDA the installed driver supports; ``cudaRuntimeGetVersion`` / ``torch.version.cuda``
= the runtime in use), not the driver's release number.
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.runtime.tensorrt.cuda_memory import cudart_module as _cudart
from cvgl_edge.runtime.tensorrt.cuda_memory import device_name

#: What TensorRT-RTX targets when no compute capability is set (its CPU-only AOT docs:
#: "8.0, 8.6, 8.9, 12.0, and later"; 7.5 / Turing only when asked for explicitly).
RTX_DEFAULT_CAPABILITIES = ("8.0", "8.6", "8.9", "12.0")


def cuda_version_text(value: int | None) -> str | None:
    """12040 -> "12.4" (the CUDA API encodes major*1000 + minor*10); None/0 -> None."""
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _torch_facts() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    runtime = _cudart()
    driver = None
    if runtime is not None:
        err, version = runtime.cudaDriverGetVersion()
        driver = cuda_version_text(version) if _ok(runtime, err) else None
    return {"name": torch.cuda.get_device_name(index), "compute_capability": f"{major}.{minor}",
            "driver": driver, "cuda_runtime": torch.version.cuda, "device_index": index, "source": "torch.cuda"}


def _ok(runtime: Any, err: Any) -> bool:
    return err == runtime.cudaError_t.cudaSuccess


def _cuda_python_facts() -> dict[str, Any] | None:
    runtime = _cudart()
    if runtime is None:
        return None
    err, count = runtime.cudaGetDeviceCount()
    if not _ok(runtime, err) or not count:
        return None
    err, index = runtime.cudaGetDevice()
    if not _ok(runtime, err):
        return None
    err, props = runtime.cudaGetDeviceProperties(index)
    if not _ok(runtime, err):
        return None
    err_d, driver = runtime.cudaDriverGetVersion()
    err_r, version = runtime.cudaRuntimeGetVersion()
    return {"name": device_name(props), "compute_capability": f"{props.major}.{props.minor}",
            "driver": cuda_version_text(driver) if _ok(runtime, err_d) else None,
            "cuda_runtime": cuda_version_text(version) if _ok(runtime, err_r) else None,
            "device_index": int(index), "source": "cuda-python"}


def gpu_facts() -> dict[str, Any] | None:
    """The current CUDA device: name, compute capability "8.9", driver and runtime CUDA versions; None without one."""
    for probe in (_torch_facts, _cuda_python_facts):
        try:
            facts = probe()
        except Exception:  # a broken CUDA install must not stop an engine build; the sidecar says None
            facts = None
        if facts is not None:
            return facts
    return None


def capability_text(value: Any) -> str:
    """TensorRT-RTX ``ComputeCapability.SM89`` -> "8.9" (SM120 -> "12.0"); CURRENT/NONE -> lower-case name."""
    name = str(value).split(".")[-1]
    digits = name[2:] if name.upper().startswith("SM") else ""
    if len(digits) < 2 or not digits.isdigit():
        return name.lower()
    return f"{int(digits[:-1])}.{digits[-1]}"


def rtx_capabilities(config: Any) -> tuple[list[str], bool]:
    """(compute capabilities a TensorRT-RTX config targets, whether they are its default set)."""
    count = getattr(config, "num_compute_capabilities", 0)
    if not count:
        return list(RTX_DEFAULT_CAPABILITIES), True
    values = [capability_text(config.get_compute_capability(i)) for i in range(count)]
    if values == ["current"]:
        facts = gpu_facts()
        values = [facts["compute_capability"]] if facts else values
    return values, False
