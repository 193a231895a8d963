"""The TensorRT encoder's device memory: which strategy is chosen, and pycuda's, against stand-ins.

No GPU here, and neither cuda-python nor pycuda is installed: stand-in modules are put into
``sys.modules`` under the names the selection looks for (``cuda.bindings.runtime``,
``pycuda.driver``; ``None`` there means "not installed"), so each case of "what is installed"
is checked, including a TrtEncoder that picks pycuda by itself and runs a fake engine on it.
The pycuda stand-in moves real bytes (numpy arrays addressed by their data pointers).
"""

from __future__ import annotations

import ctypes
import sys
import types

import numpy as np
import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model
from cvgl_edge.runtime.tensorrt import cuda_memory
from cvgl_edge.runtime.tensorrt.cuda_memory import (
    NO_CUDA_BINDINGS, NO_GPU, CudaPythonMemory, GpuInfo, PycudaMemory, TorchCudaMemory, choose_strategy,
    open_device_memory,
)
from cvgl_edge.runtime.tensorrt.backend import TrtBackend
from cvgl_edge.runtime.tensorrt.encoder import TrtEncoder
from tests.support.fake_trt_runtime import VERSION, FakeCudart, FakeTrt, one_line, write_engine
from tests.support.tiny import TINY

MODULES = ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart", "pycuda", "pycuda.driver")


class FakeAllocation:
    def __init__(self, driver, array):
        self.driver, self.array = driver, array

    def __int__(self):
        return self.array.ctypes.data

    def free(self):
        self.driver.freed.append(int(self))


class FakePycuda:
    """The slice of ``pycuda.driver`` PycudaMemory uses; device memory is numpy bytes."""

    class Error(Exception):
        pass

    def __init__(self, devices: int | None = 1):
        self.devices, self.buffers, self.copies, self.freed, self.events = devices, {}, [], [], []
        driver = self

        class Context:
            def push(self):
                driver.events.append("push")

            @staticmethod
            def pop():
                driver.events.append("pop")

            def detach(self):
                driver.events.append("detach")

        class Device:
            @staticmethod
            def count():
                return driver.devices

            def __init__(self, index):
                self.index = index

            def name(self):
                return "Fake GPU"

            def compute_capability(self):
                return (8, 9)

            def retain_primary_context(self):
                driver.events.append(f"retain {self.index}")
                return Context()

        class Stream:
            handle = 99

            def synchronize(self):
                driver.events.append("sync")

        self.Context, self.Device, self.Stream = Context, Device, Stream

    def init(self):
        if self.devices is None:
            raise self.Error("cuInit failed: no CUDA-capable device is detected")

    def mem_alloc(self, nbytes):
        if nbytes > 1 << 30:
            raise self.Error("cuMemAlloc failed: out of memory")
        array = np.zeros(nbytes, np.uint8)
        self.buffers[array.ctypes.data] = array
        return FakeAllocation(self, array)

    def pagelocked_empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def memcpy_htod_async(self, dest, src, stream=None):
        ctypes.memmove(int(dest), src.ctypes.data, src.nbytes)
        self.copies.append(("htod", src.nbytes, stream.handle))

    def memcpy_dtoh_async(self, dest, src, stream=None):
        ctypes.memmove(dest.ctypes.data, int(src), dest.nbytes)
        self.copies.append(("dtoh", dest.nbytes, stream.handle))


def installed_stand_ins(monkeypatch, cuda_python=None, pycuda=None, torch_installed=True):
    """Make exactly these importable: a stand-in cudart and/or pycuda driver (None: not installed)."""
    for name in MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    if cuda_python is not None:
        monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
        monkeypatch.setitem(sys.modules, "cuda.bindings", types.ModuleType("cuda.bindings"))
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cuda_python)
    if pycuda is not None:
        monkeypatch.setitem(sys.modules, "pycuda", types.ModuleType("pycuda"))
        monkeypatch.setitem(sys.modules, "pycuda.driver", pycuda)
    if not torch_installed:
        monkeypatch.setattr(cuda_memory, "installed", lambda module, real=cuda_memory.installed:
                            False if module == "torch" else real(module))
    monkeypatch.setattr(cuda_memory, "_torch_has_cuda", lambda: False)


# -- which strategy ----------------------------------------------------------------------------
def test_what_is_installed_decides(monkeypatch):
    installed_stand_ins(monkeypatch, cuda_python=FakeCudart(), pycuda=FakePycuda())
    assert choose_strategy() == "cuda-python"
    memory = open_device_memory(0)
    assert isinstance(memory, CudaPythonMemory) and memory.gpu == GpuInfo(0, "Fake Orin", "8.7")
    memory.close()

    installed_stand_ins(monkeypatch, pycuda=FakePycuda())
    assert choose_strategy() == "pycuda"
    memory = open_device_memory(0)
    assert isinstance(memory, PycudaMemory) and memory.gpu == GpuInfo(0, "Fake GPU", "8.9")
    memory.close()

    installed_stand_ins(monkeypatch)  # only torch (a CPU build here): it refuses for want of a GPU
    assert choose_strategy() == "torch"
    if not torch.cuda.is_available():
        with pytest.raises(CvglError) as excinfo:
            open_device_memory(0)
        one_line(excinfo, NO_GPU)

    installed_stand_ins(monkeypatch, torch_installed=False)  # the deployment install without bindings
    with pytest.raises(CvglError) as excinfo:
        open_device_memory(0)
    one_line(excinfo, NO_CUDA_BINDINGS)
    assert 'pip install "cvgl-edge[cuda-python]"' in NO_CUDA_BINDINGS and "pycuda" in NO_CUDA_BINDINGS


def test_torch_already_loaded_with_cuda_and_prefer_win(monkeypatch):
    installed_stand_ins(monkeypatch, cuda_python=FakeCudart(), pycuda=FakePycuda())
    monkeypatch.setattr(cuda_memory, "_torch_has_cuda", lambda: True)  # torch is in sys.modules here
    assert choose_strategy() == "torch"
    assert choose_strategy("pycuda") == "pycuda" and choose_strategy("cuda-python") == "cuda-python"
    with pytest.raises(CvglError) as excinfo:
        choose_strategy("cupy")
    one_line(excinfo, "unknown device-memory strategy 'cupy'; choose cuda-python, pycuda, torch")
    assert TorchCudaMemory.name == "torch"


def test_installed_does_not_import():
    assert cuda_memory.installed("numpy") and not cuda_memory.installed("no_such_module_cvgl")
    assert not cuda_memory.installed("no_such_package_cvgl.sub")
    assert "no_such_module_cvgl" not in sys.modules


# -- pycuda ------------------------------------------------------------------------------------
def test_pycuda_memory_moves_bytes_on_its_stream_in_the_primary_context():
    driver = FakePycuda()
    memory = PycudaMemory(0, driver=driver)
    assert memory.gpu == GpuInfo(0, "Fake GPU", "8.9") and memory.stream_handle == 99
    assert driver.events == ["retain 0", "push"]
    buffer = memory.alloc((4, 3), np.float32)
    assert buffer.nbytes == 48 and buffer.ptr in driver.buffers
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    memory.upload(host, buffer)
    np.testing.assert_array_equal(driver.buffers[buffer.ptr][:24].view(np.float32).reshape(2, 3), host)
    out = memory.download(buffer, (2, 3))
    np.testing.assert_array_equal(out, host)
    assert driver.copies == [("htod", 24, 99), ("dtoh", 24, 99)] and driver.events[-1] == "sync"
    out[0, 0] = 42.0  # a copy, not the host mirror
    np.testing.assert_array_equal(memory.download(buffer, (2, 3)), host)
    with pytest.raises(CvglError) as excinfo:
        memory.alloc((1 << 29,), np.float32)
    one_line(excinfo, "CUDA (pycuda) could not allocate 2147483648 bytes on the GPU: cuMemAlloc failed: out of memory")
    memory.close()
    assert driver.freed == [buffer.ptr] and driver.events[-2:] == ["pop", "detach"]


def test_pycuda_without_a_gpu_is_one_line():
    for driver, why in ((FakePycuda(devices=None), "no CUDA-capable device"), (FakePycuda(devices=0), "no device")):
        with pytest.raises(CvglError) as excinfo:
            PycudaMemory(0, driver=driver)
        one_line(excinfo, f"{NO_GPU} (")
        assert why in str(excinfo.value)
    with pytest.raises(CvglError) as excinfo:
        PycudaMemory(2, driver=FakePycuda(devices=1))
    one_line(excinfo, "cuda:2 requested but only 1 GPU(s) exist")


def test_pycuda_not_installed_is_one_line(monkeypatch):
    installed_stand_ins(monkeypatch)
    with pytest.raises(CvglError) as excinfo:
        PycudaMemory(0)
    one_line(excinfo, "pycuda is not installed: `pip install pycuda`")


class ShapedBuffers:
    """What the fake engine reads and writes: the encoder's device buffers as typed, shaped arrays."""

    def __init__(self, driver):
        self.driver, self.memory = driver, None

    @property
    def buffers(self):
        return {b.ptr: self.driver.buffers[b.ptr].view(b.dtype).reshape(b.shape) for b in self.memory._buffers}


def test_trt_encoder_runs_an_engine_on_pycuda_chosen_by_itself(monkeypatch, tmp_path):
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    driver = FakePycuda()
    installed_stand_ins(monkeypatch, pycuda=driver)
    shaped = ShapedBuffers(driver)
    trt = FakeTrt(model, "satellite", shaped)
    encoder = TrtEncoder(write_engine(tmp_path, model), "cuda", backend=TrtBackend(trt, "tensorrt", VERSION))
    shaped.memory = encoder.memory
    assert isinstance(encoder.memory, PycudaMemory) and encoder.info.extra["memory"] == "pycuda"
    images = np.random.default_rng(0).standard_normal((6, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(images), "satellite").numpy()
    np.testing.assert_allclose(encoder.encode(images), expected, atol=1e-6)  # 6 > max batch 4: 4 + 2
    assert [n for n, _ in trt.engines[0].contexts[0].calls] == [4, 2]
    assert {stream for _, stream in trt.engines[0].contexts[0].calls} == {99}
    encoder.close()
    assert len(driver.freed) == 2 and driver.events[-2:] == ["pop", "detach"]  # the encoder owned it
