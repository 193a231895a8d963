"""Which scan implementation runs: the registry, the automatic choice, the overrides.

Order of precedence: ``use_backend(...)`` > ``$CVGL_SCAN_BACKEND`` > automatic.
Automatic: CPU -> ``cpp`` if the C++ kernel builds, else ``chunked``; CUDA (fp32, fp16 or
bf16 data) -> ``cuda`` when mamba_ssm imports, else ``native`` (our kernel from export/csrc,
built with nvcc on first use) when it builds and runs, else ``chunked``; anything else ->
``chunked``. ``reference`` (the step loop) is the parity oracle and only runs when asked for.
A requested backend that cannot serve the tensors at hand (``cpp`` for CUDA tensors, ``cuda``
without mamba_ssm, ``native`` without nvcc) logs one warning and the automatic choice runs
instead. ``native`` takes at most 16 states per channel (Mamba's and Vim's N); a larger N runs
``chunked``. ``CVGL_DISABLE_CPP=1`` keeps the C++ kernel from being built at all,
``CVGL_DISABLE_NATIVE_CUDA=1`` the CUDA one.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Callable

import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.ops import chunked, cpu_kernel, cuda_mamba, native_cuda
from cvgl_edge.ops.common import ScanGrads
from cvgl_edge.ops.reference import selective_scan_reference

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("reference", "chunked", "cpp", "cuda", "native")
ENV_VAR = "CVGL_SCAN_BACKEND"

#: Storage dtypes the CUDA kernels (mamba_ssm's and ours) take; fp64 scans run chunked.
_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: The automatic choice on CUDA, first that can serve wins (chunked otherwise).
_CUDA_ORDER = ("cuda", "native")

_override: str | None = None
_warned: set[tuple[str, str]] = set()


def _validate(name: str, source: str) -> str:
    name = name.strip().lower()
    if name not in BACKENDS:
        raise CvglError(f"unknown scan backend {name!r} from {source}; choose one of {', '.join(BACKENDS)}")
    return name


class use_backend:
    """Force a scan backend (None = automatic).

    Works as a call, ``use_backend("chunked")``, which stays in force until changed,
    and as a block, ``with use_backend("chunked"): ...``, which restores the previous
    choice on exit. The setting is process-wide (not per thread).
    """

    def __init__(self, name: str | None) -> None:
        global _override
        self._previous = _override
        _override = None if name is None else _validate(name, "use_backend()")

    def __enter__(self) -> "use_backend":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _override
        _override = self._previous


def requested_backend() -> str | None:
    """The backend forced by use_backend() or the environment, or None (automatic)."""
    if _override is not None:
        return _override
    env = os.environ.get(ENV_VAR, "").strip()
    return _validate(env, f"${ENV_VAR}") if env else None


def _can_serve(name: str, device: torch.device, dtype: torch.dtype) -> bool:
    if name in ("reference", "chunked"):
        return True
    if name == "cpp":
        return device.type == "cpu" and cpu_kernel.is_available()
    if device.type != "cuda" or dtype not in _KERNEL_DTYPES:
        return False
    if name == "cuda":
        return cuda_mamba.scan_fn() is not None
    return native_cuda.is_available()  # builds the kernel on the first CUDA scan that gets here


def _automatic(device: torch.device, dtype: torch.dtype) -> str:
    if device.type == "cpu" and cpu_kernel.is_available():
        return "cpp"
    return next((name for name in _CUDA_ORDER if _can_serve(name, device, dtype)), "chunked")


def resolve(device: torch.device | str, dtype: torch.dtype = torch.float32) -> str:
    """The backend a scan of ``dtype`` tensors on ``device`` runs on now."""
    device = torch.device(device)
    wanted = requested_backend()
    if wanted is not None:
        if _can_serve(wanted, device, dtype):
            return wanted
        key = (wanted, device.type)
        if key not in _warned:
            _warned.add(key)
            log.warning(
                "cvgl_edge: scan backend %r cannot run %s tensors here; using %r instead.",
                wanted,
                device.type,
                _automatic(device, dtype),
            )
    return _automatic(device, dtype)


def active_backend(device: torch.device | str = "cpu") -> str:
    """The backend a float32 scan on ``device`` would use now (for `doctor`)."""
    return resolve(device)


def available_backends() -> list[str]:
    """Backends usable on this machine (builds the C++ kernel, and on a GPU the CUDA one, on first call)."""
    names = ["reference", "chunked"]
    if cpu_kernel.is_available():
        names.append("cpp")
    if cuda_mamba.is_available():
        names.append("cuda")
    if native_cuda.is_available():
        names.append("native")
    return names


def backend_status() -> dict[str, str]:
    """One line per backend saying whether it can run and, if not, why (for `doctor`)."""
    cpp = "available" if cpu_kernel.is_available() else f"unavailable: {cpu_kernel.failure_reason()}"
    if cpu_kernel.LIBRARY.seconds is not None and cpu_kernel.is_available():
        cpp += f" (built/loaded in {cpu_kernel.LIBRARY.seconds:.1f} s, {cpu_kernel.build_directory()})"
    if cuda_mamba.scan_fn() is None:
        cuda = "unavailable: mamba_ssm not importable (CUDA tensors use native, else chunked)"
    elif not torch.cuda.is_available():
        cuda = "unavailable: no CUDA device"
    else:
        cuda = "available (mamba_ssm)"
    scan = native_cuda.library()
    if scan is None:
        native = f"unavailable: {native_cuda.failure_reason()}"
    else:
        seconds = native_cuda.LIBRARY.seconds or 0.0
        native = f"available (export/csrc kernel, built/loaded in {seconds:.1f} s, {scan.path})"
    return {
        "reference": "available (step loop, parity oracle only)",
        "chunked": "available (vectorised PyTorch, any device)",
        "cpp": cpp,
        "cuda": cuda,
        "native": native,
    }


ForwardFn = Callable[..., torch.Tensor]
BackwardFn = Callable[..., ScanGrads]


def _native_forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    reverse: bool,
) -> torch.Tensor:
    """The kernel's C ABI takes 16 states per channel at most (Mamba's and Vim's N); a larger N runs chunked."""
    fn = native_cuda.forward if A.shape[1] <= native_cuda.MAX_DSTATE else chunked.forward
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse)


_FORWARD: dict[str, ForwardFn] = {
    "reference": selective_scan_reference,
    "chunked": chunked.forward,
    "cpp": cpu_kernel.forward,
    "cuda": cuda_mamba.forward,
    "native": _native_forward,
}
# The C++ kernel and mamba_ssm have their own backward; every other backend uses the
# chunked adjoint (device-agnostic; exact same maths).
_BACKWARD: dict[str, BackwardFn] = {
    "reference": chunked.backward,
    "chunked": chunked.backward,
    "cpp": cpu_kernel.backward,
    "cuda": cuda_mamba.backward,
    "native": chunked.backward,
}


def forward_impl(name: str) -> ForwardFn:
    """Forward function of a backend: (u, delta, A, B, C, D, z, bias, softplus, reverse)."""
    return _FORWARD[name]


def backward_impl(name: str) -> BackwardFn:
    """Backward function of a backend: (grad, u, delta, A, B, C, D, z, bias, softplus, reverse)."""
    return _BACKWARD[name]
