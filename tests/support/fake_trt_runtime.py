"""A stand-in for the TensorRT runtime the encoder uses, and for cuda-python's runtime calls.

No GPU here, so ``TrtEncoder`` runs against ``FakeTrt`` (Runtime -> engine -> execution context,
TensorRT 10 name-based I/O) whose ``execute_async_v3`` reads the bound input address, runs the
PyTorch model it was given and writes the bound output address, over ``NumpyMemory`` (device
memory as numpy arrays). ``FakeCudart`` follows cuda-python's calling convention and moves real
bytes with ctypes. Used by tests/runtime/test_trt.py and tests/runtime/test_cuda_memory.py.
"""

import ctypes
import enum
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from cvgl_edge.runtime.tensorrt.cuda_memory import DeviceBuffer, DeviceMemory, GpuInfo

VERSION = "10.7.0"
MAX_BATCH = 4


class NumpyMemory(DeviceMemory):
    """Device memory as numpy arrays; addresses are the arrays' data pointers."""

    name = "numpy-fake"

    def __init__(self, cc: str = "8.9") -> None:
        self.gpu = GpuInfo(0, "Fake GPU", cc)
        self.buffers: dict[int, np.ndarray] = {}
        self.uploads: list[int] = []
        self.closed = False

    @property
    def stream_handle(self) -> int:
        return 4242

    def alloc(self, shape, dtype):
        array = np.zeros(shape, dtype=dtype)
        self.buffers[array.ctypes.data] = array
        return DeviceBuffer(array.ctypes.data, tuple(shape), np.dtype(dtype), array)

    def upload(self, host, dst):
        dst.owner.reshape(-1)[: host.size] = host.reshape(-1)
        self.uploads.append(len(host))

    def download(self, src, shape):
        return src.owner.reshape(-1)[: int(np.prod(shape))].reshape(shape).copy()

    def synchronize(self):
        pass

    def close(self):
        self.closed = True


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3


class FakeContext:
    def __init__(self, engine):
        self.engine, self.shape, self.addresses, self.calls = engine, None, {}, []

    def set_input_shape(self, name, shape):
        if not 1 <= shape[0] <= MAX_BATCH:
            return False
        self.shape = tuple(shape)
        return True

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream):
        memory = self.engine.memory
        n = self.shape[0]
        images = memory.buffers[self.addresses["images"]][:n]
        with torch.no_grad():
            out = self.engine.model.encode(torch.from_numpy(images.copy()), self.engine.view).numpy()
        memory.buffers[self.addresses["descriptors"]][:n] = out
        self.calls.append((n, stream))
        return True


class FakeEngine:
    def __init__(self, trt, model, view):
        self.trt, self.model, self.view = trt, model, view
        self.h, self.w = model.config.input_size(view)
        self.memory = trt.memory
        self.contexts = []
        self.num_io_tensors = 2

    def get_tensor_name(self, i):
        return ("images", "descriptors")[i]

    def get_tensor_mode(self, name):
        return self.trt.TensorIOMode.INPUT if name == "images" else self.trt.TensorIOMode.OUTPUT

    def get_tensor_shape(self, name):
        return (-1, 3, self.h, self.w) if name == "images" else (-1, self.model.descriptor_dim)

    def get_tensor_profile_shape(self, name, profile):
        return [(1, 3, self.h, self.w), (2, 3, self.h, self.w), (MAX_BATCH, 3, self.h, self.w)]

    def get_tensor_dtype(self, name):
        return "float"

    def create_execution_context(self):
        self.contexts.append(FakeContext(self))
        return self.contexts[-1]


class FakeRegistry:
    def __init__(self):
        self.loaded, self.fail = [], False

    def load_library(self, path):
        if self.fail:
            raise RuntimeError("undefined symbol: getCreators")
        self.loaded.append(path)
        return object()


class FakeTrt:
    """The slice of the TensorRT Python API the runtime uses."""

    class ILogger:
        Severity = Severity

        def __init__(self):
            pass

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    def __init__(self, model, view, memory):
        self.model, self.view, self.memory = model, view, memory
        self.registry = FakeRegistry()
        self.engines = []
        trt = self

        class Runtime:
            def __init__(self, logger):
                self.logger = logger

            def get_plugin_registry(self):
                return trt.registry

            def deserialize_cuda_engine(self, blob):
                if not blob.startswith(b"FAKE"):
                    self.logger.log(Severity.ERROR, "IRuntime::deserializeCudaEngine: magic tag mismatch")
                    return None
                trt.engines.append(FakeEngine(trt, trt.model, trt.view))
                return trt.engines[-1]

        self.Runtime = Runtime

    @staticmethod
    def nptype(dtype):
        return {"float": np.float32, "half": np.float16}[dtype]


def write_engine(folder: Path, model, view="satellite", blob=b"FAKE serialized engine", **sidecar_overrides):
    engine = folder / f"geossm-nano-{view}.engine"
    engine.write_bytes(blob)
    sidecar = {
        "engine": str(engine), "engine_bytes": len(blob), "engine_sha256": hashlib.sha256(blob).hexdigest(),
        "tensorrt": {"flavour": "tensorrt", "version": VERSION}, "precision": "fp32",
        "batch_profile": {"min": 1, "opt": 2, "max": MAX_BATCH}, "model_name": "geossm-nano", "view": view,
        "model_sha256": "ab" * 32, "descriptor_dim": model.descriptor_dim,
        "input_size": list(model.config.input_size(view)), "plugin_lib": None,
        "gpu": {"name": "Fake GPU", "compute_capability": "8.9"},
    }
    sidecar.update(sidecar_overrides)
    Path(str(engine) + ".json").write_text(json.dumps(sidecar))
    return engine


def one_line(excinfo, fragment):
    text = str(excinfo.value)
    assert "\n" not in text and fragment in text, text


class FakeCudart:
    """cuda-python's runtime calling convention ((error, *results)) over host memory and ctypes."""

    class cudaError_t(enum.Enum):
        cudaSuccess = 0
        cudaErrorMemoryAllocation = 2

    class cudaMemcpyKind(enum.Enum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class _Props:
        name = b"Fake Orin\0\0\0"
        major, minor = 8, 7

    def __init__(self, devices=1):
        self.devices, self.blocks, self.copies, self.freed = devices, {}, [], []

    def cudaGetDeviceCount(self):
        return (self.cudaError_t.cudaSuccess, self.devices)

    def cudaSetDevice(self, index):
        return (self.cudaError_t.cudaSuccess,)

    def cudaGetDeviceProperties(self, index):
        return (self.cudaError_t.cudaSuccess, self._Props())

    def cudaStreamCreate(self):
        return (self.cudaError_t.cudaSuccess, 77)

    def cudaMalloc(self, size):
        if size > 1 << 30:
            return (self.cudaError_t.cudaErrorMemoryAllocation, 0)
        block = ctypes.create_string_buffer(size)
        self.blocks[ctypes.addressof(block)] = block
        return (self.cudaError_t.cudaSuccess, ctypes.addressof(block))

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        ctypes.memmove(dst, src, count)
        self.copies.append((kind.name, count, stream))
        return (self.cudaError_t.cudaSuccess,)

    def cudaStreamSynchronize(self, stream):
        return (self.cudaError_t.cudaSuccess,)

    def cudaFree(self, ptr):
        self.freed.append(ptr)
        return (self.cudaError_t.cudaSuccess,)

    def cudaStreamDestroy(self, stream):
        return (self.cudaError_t.cudaSuccess,)

    def cudaGetErrorString(self, err):
        return (self.cudaError_t.cudaSuccess, f"error {err.name}".encode())
