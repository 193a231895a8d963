"""Device buffers, copies and a stream for the TensorRT encoder, behind one small interface.

Why two strategies: on a machine with CUDA-enabled torch, torch tensors and a
``torch.cuda.Stream`` are the simplest owners of device memory (and interoperate with the
rest of the package). A deployment box may have TensorRT without a CUDA torch build; there
the CUDA runtime is reached through cuda-python (``cuda.bindings.runtime``, or the older
``cuda.cudart`` module). ``open_device_memory`` takes the first that finds a GPU.

Not run here: both strategies need an NVIDIA driver and a GPU, which this machine lacks.
What was run: the "no GPU" refusals of both (torch CPU build; cuda-python reports
cudaErrorInsufficientDriver). The TensorRT encoder's logic is tested with a numpy-backed
fake of this interface; the ``@pytest.mark.gpu`` tests exercise the real strategies.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError

NO_GPU = "no CUDA GPU available: running a TensorRT engine needs an NVIDIA GPU and driver"


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


def _torch_has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install means: not this strategy
        return False


def open_device_memory(index: int = 0, prefer: str | None = None) -> DeviceMemory:
    """torch CUDA when available (or ``prefer="torch"``), else cuda-python; CvglError if no GPU."""
    if prefer == "cuda-python":
        return CudaPythonMemory(index)
    if prefer == "torch" or _torch_has_cuda():
        return TorchCudaMemory(index)
    return CudaPythonMemory(index)
