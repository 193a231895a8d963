"""Device buffers, copies and a stream for the TensorRT encoder, behind one small interface.

Why three strategies: a deployment box (a Jetson with TensorRT) has no PyTorch; there the
CUDA runtime is reached through cuda-python (``cuda.bindings.runtime``, or the older
``cuda.cudart`` module) or through pycuda (``pycuda.driver``, the primary context), whichever
is installed. On a machine with CUDA-enabled torch already loaded (training, export's INT8
calibration), torch tensors and a ``torch.cuda.Stream`` own the memory and share the
process's CUDA context. ``choose_strategy`` says which one ``open_device_memory`` takes.

Not run here: every strategy needs an NVIDIA driver and a GPU, which this machine lacks.
What was run: the "no GPU" refusals (torch CPU build; cuda-python reports
cudaErrorInsufficientDriver), the choice between strategies, and cuda-python and pycuda
against stand-in modules that move real bytes (tests/runtime/test_trt.py). The TensorRT
encoder's logic is tested with a numpy-backed fake of this interface; the
``@pytest.mark.gpu`` tests exercise the real strategies.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError, first_line

NO_GPU = "no CUDA GPU available: running a TensorRT engine needs an NVIDIA GPU and driver"
#: ``open_device_memory(prefer=...)`` values.
STRATEGIES = ("cuda-python", "pycuda", "torch")
NO_CUDA_BINDINGS = ("running a TensorRT engine needs CUDA Python bindings for its device memory: "
                    '`pip install "cvgl-edge[cuda-python]"` (or `pip install pycuda`)')


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine would run on (compared with the sidecar's build GPU)."""

    index: int
    name: str
    compute_capability: str  # "8.9"


@dataclass
class DeviceBuffer:
    """A device allocation: its address (what TensorRT is given), shape and dtype."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    owner: Any = None  # what keeps the memory alive (a torch tensor; None for raw cudaMalloc)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


class DeviceMemory(ABC):
    """Allocate, copy in, copy out, on one stream of one GPU."""

    name: str
    gpu: GpuInfo

    @property
    @abstractmethod
    def stream_handle(self) -> int:
        """The CUDA stream (as an integer handle) that copies and engine work are queued on."""

    @abstractmethod
    def alloc(self, shape: tuple[int, ...], dtype: Any) -> DeviceBuffer:
        """A device buffer of ``shape`` and numpy ``dtype``."""

    @abstractmethod
    def upload(self, host: np.ndarray, dst: DeviceBuffer) -> None:
        """Queue a copy of ``host`` (C-contiguous, dtype of ``dst``) into the start of ``dst``."""

    @abstractmethod
    def download(self, src: DeviceBuffer, shape: tuple[int, ...]) -> np.ndarray:
        """Copy the first ``prod(shape)`` elements of ``src`` to a new host array (synchronises)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait for everything queued on the stream."""

    def close(self) -> None:
        """Free the buffers and the stream."""


def _torch_dtype(dtype: Any) -> Any:
    import torch

    return {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
            np.dtype(np.int8): torch.int8, np.dtype(np.int32): torch.int32}[np.dtype(dtype)]


class TorchCudaMemory(DeviceMemory):
    """torch CUDA tensors as buffers, pinned host staging, one ``torch.cuda.Stream``."""

    name = "torch"

    def __init__(self, index: int = 0) -> None:
        import torch

        if not torch.cuda.is_available():
            raise CvglError(NO_GPU)
        if index >= torch.cuda.device_count():
            raise CvglError(f"cuda:{index} requested but only {torch.cuda.device_count()} GPU(s) exist")
        self._torch = torch
        self.device = torch.device("cuda", index)
        torch.cuda.set_device(self.device)  # TensorRT deserialises onto the current device
        major, minor = torch.cuda.get_device_capability(self.device)
        self.gpu = GpuInfo(index, torch.cuda.get_device_name(self.device), f"{major}.{minor}")
        self.stream = torch.cuda.Stream(self.device)
        self._inflight: list[Any] = []

    @property
    def stream_handle(self) -> int:
        return int(self.stream.cuda_stream)

    def alloc(self, shape: tuple[int, ...], dtype: Any) -> DeviceBuffer:
        tensor = self._torch.empty(shape, dtype=_torch_dtype(dtype), device=self.device)
        return DeviceBuffer(int(tensor.data_ptr()), tuple(shape), np.dtype(dtype), tensor)

    def upload(self, host: np.ndarray, dst: DeviceBuffer) -> None:
        staging = self._torch.from_numpy(np.ascontiguousarray(host, dtype=dst.dtype)).pin_memory()
        with self._torch.cuda.stream(self.stream):
            dst.owner.view(-1)[: staging.numel()].copy_(staging.view(-1), non_blocking=True)
        self._inflight.append(staging)  # pinned source must live until the copy has run

    def download(self, src: DeviceBuffer, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape))
        out = self._torch.empty(count, dtype=src.owner.dtype, pin_memory=True)
        with self._torch.cuda.stream(self.stream):
            out.copy_(src.owner.view(-1)[:count], non_blocking=True)
        self.synchronize()
        return out.numpy().reshape(shape).copy()

    def synchronize(self) -> None:
        self.stream.synchronize()
        self._inflight.clear()


def cudart_module() -> Any | None:
    """cuda-python's runtime module (new or old layout), None if not installed."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def device_name(props: Any) -> str:
    """The name of a ``cudaDeviceProp`` (a NUL-padded char array in cuda-python)."""
    name = props.name
    return name.split(b"\0", 1)[0].decode(errors="replace") if isinstance(name, bytes) else str(name)


class CudaPythonMemory(DeviceMemory):
    """cudaMalloc'ed buffers, cudaMemcpyAsync copies and a cudaStream via cuda-python."""

    name = "cuda-python"

    def __init__(self, index: int = 0, cudart: Any | None = None) -> None:
        self.rt = cudart or cudart_module()
        if self.rt is None:
            raise CvglError(NO_GPU + " (and cuda-python is not installed: `pip install cuda-python`)")
        err, count = self.rt.cudaGetDeviceCount()
        if err != self.rt.cudaError_t.cudaSuccess or not count:
            why = self._message(err) if err != self.rt.cudaError_t.cudaSuccess else "no device"
            raise CvglError(f"{NO_GPU} ({why})")
        if index >= count:
            raise CvglError(f"cuda:{index} requested but only {count} GPU(s) exist")
        self._call("cudaSetDevice", index)
        props = self._call("cudaGetDeviceProperties", index)
        self.gpu = GpuInfo(index, device_name(props), f"{props.major}.{props.minor}")
        self.stream = self._call("cudaStreamCreate")
        self._buffers: list[DeviceBuffer] = []
        self._inflight: list[np.ndarray] = []

    def _message(self, err: Any) -> str:
        text = self.rt.cudaGetErrorString(err)[1]
        return text.decode() if isinstance(text, bytes) else str(text)

    def _call(self, name: str, *args: Any) -> Any:
        """Call a runtime function; cuda-python returns (error, *results)."""
        result = getattr(self.rt, name)(*args)
        err, values = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise CvglError(f"CUDA {name} failed: {self._message(err)}")
        return values[0] if len(values) == 1 else (values or None)

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def alloc(self, shape: tuple[int, ...], dtype: Any) -> DeviceBuffer:
        buffer = DeviceBuffer(0, tuple(shape), np.dtype(dtype))
        buffer.ptr = int(self._call("cudaMalloc", buffer.nbytes))
        self._buffers.append(buffer)
        return buffer

    def upload(self, host: np.ndarray, dst: DeviceBuffer) -> None:
        array = np.ascontiguousarray(host, dtype=dst.dtype)
        self._call("cudaMemcpyAsync", dst.ptr, array.ctypes.data, array.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream)
        self._inflight.append(array)

    def download(self, src: DeviceBuffer, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=src.dtype)
        self._call("cudaMemcpyAsync", out.ctypes.data, src.ptr, out.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream)
        self.synchronize()
        return out

    def synchronize(self) -> None:
        self._call("cudaStreamSynchronize", self.stream)
        self._inflight.clear()

    def close(self) -> None:
        for buffer in self._buffers:
            self.rt.cudaFree(buffer.ptr)
        self._buffers.clear()
        if self.stream is not None:
            self.rt.cudaStreamDestroy(self.stream)
            self.stream = None


def pycuda_driver() -> Any | None:
    """pycuda's driver module, None if pycuda is not installed."""
    try:
        return importlib.import_module("pycuda.driver")
    except ImportError:
        return None


class PycudaMemory(DeviceMemory):
    """mem_alloc'ed buffers, async copies through page-locked host mirrors and a stream via pycuda.

    The device's primary context is retained and made current (TensorRT's runtime API uses
    the primary context), and released on ``close``. Each buffer has a page-locked host
    mirror of its size, so copies are truly asynchronous without a pinned allocation per call.
    """

    name = "pycuda"

    def __init__(self, index: int = 0, driver: Any | None = None) -> None:
        self.cuda = driver or pycuda_driver()
        if self.cuda is None:
            raise CvglError(NO_GPU + " (and pycuda is not installed: `pip install pycuda`)")
        self.context = None
        self.stream = None
        try:
            self.cuda.init()
            count = self.cuda.Device.count()
        except self.cuda.Error as exc:
            raise CvglError(f"{NO_GPU} ({first_line(exc)})") from None
        if not count:
            raise CvglError(f"{NO_GPU} (no device)")
        if index >= count:
            raise CvglError(f"cuda:{index} requested but only {count} GPU(s) exist")
        device = self.cuda.Device(index)
        self.context = self._call("retain the primary context of", device.retain_primary_context)
        self._call("make current the context of", self.context.push)
        major, minor = device.compute_capability()
        self.gpu = GpuInfo(index, str(device.name()), f"{major}.{minor}")
        self.stream = self._call("create a stream on", self.cuda.Stream)
        self._buffers: list[DeviceBuffer] = []

    def _call(self, what: str, function: Any, *args: Any) -> Any:
        """Call a pycuda function; its errors become one line."""
        try:
            return function(*args)
        except self.cuda.Error as exc:
            raise CvglError(f"CUDA (pycuda) could not {what} the GPU: {first_line(exc)}") from None

    @property
    def stream_handle(self) -> int:
        return int(self.stream.handle)

    def alloc(self, shape: tuple[int, ...], dtype: Any) -> DeviceBuffer:
        buffer = DeviceBuffer(0, tuple(shape), np.dtype(dtype))
        allocation = self._call(f"allocate {buffer.nbytes} bytes on", self.cuda.mem_alloc, buffer.nbytes)
        mirror = self._call("allocate page-locked host memory for", self.cuda.pagelocked_empty,
                            int(np.prod(shape)), buffer.dtype)
        buffer.ptr, buffer.owner = int(allocation), (allocation, mirror)
        self._buffers.append(buffer)
        return buffer

    def upload(self, host: np.ndarray, dst: DeviceBuffer) -> None:
        array = np.ascontiguousarray(host, dtype=dst.dtype).reshape(-1)
        staging = dst.owner[1][: array.size]
        staging[...] = array
        self._call("copy to", self.cuda.memcpy_htod_async, dst.ptr, staging, self.stream)

    def download(self, src: DeviceBuffer, shape: tuple[int, ...]) -> np.ndarray:
        staging = src.owner[1][: int(np.prod(shape))]
        self._call("copy from", self.cuda.memcpy_dtoh_async, staging, src.ptr, self.stream)
        self.synchronize()
        return staging.reshape(shape).copy()

    def synchronize(self) -> None:
        self._call("synchronise with", self.stream.synchronize)

    def close(self) -> None:
        for buffer in self._buffers:
            buffer.owner[0].free()
        self._buffers.clear()
        self.stream = None
        if self.context is not None:
            self.cuda.Context.pop()
            self.context.detach()
            self.context = None


def _torch_has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install means: not this strategy
        return False


def installed(module: str) -> bool:
    """Whether ``module`` could be imported, without importing it (a stand-in in sys.modules counts)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module without a spec
        return False


def choose_strategy(prefer: str | None = None) -> str:
    """Which device-memory strategy the TensorRT encoder uses here.

    ``prefer`` if given; else torch when it is already loaded with CUDA (share its context);
    else cuda-python, else pycuda, whichever is installed; else torch if installed (on a CPU
    build it refuses with NO_GPU). CvglError (what to install) when none is.
    """
    if prefer is not None:
        if prefer not in STRATEGIES:
            raise CvglError(f"unknown device-memory strategy {prefer!r}; choose {', '.join(STRATEGIES)}")
        return prefer
    if sys.modules.get("torch") is not None and _torch_has_cuda():
        return "torch"
    if installed("cuda.bindings.runtime") or installed("cuda.cudart"):
        return "cuda-python"
    if installed("pycuda.driver"):
        return "pycuda"
    if installed("torch"):
        return "torch"
    raise CvglError(NO_CUDA_BINDINGS)


def open_device_memory(index: int = 0, prefer: str | None = None) -> DeviceMemory:
    """Device memory on GPU ``index`` through the strategy ``choose_strategy`` picks; CvglError if no GPU."""
    strategy = choose_strategy(prefer)
    if strategy == "cuda-python":
        return CudaPythonMemory(index)
    if strategy == "pycuda":
        return PycudaMemory(index)
    return TorchCudaMemory(index)
