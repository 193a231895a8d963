"""TensorRT encoder: the logic against small fakes, the real thing on a GPU.

No GPU here, so ``TrtEncoder`` runs against a fake ``trt`` module (Runtime -> engine ->
execution context, TensorRT 10 name-based I/O) whose ``execute_async_v3`` reads the bound
input address, runs the TINY PyTorch model and writes the bound output address, and a
numpy-backed fake ``DeviceMemory``. That checks shapes, addresses, the stream, batch
splitting at the profile maximum and every refusal. ``CudaPythonMemory`` runs against a
fake ``cudart`` that moves real bytes with ctypes. The ``gpu`` tests build a real engine and
compare it with PyTorch; they skip without a CUDA GPU and TensorRT (not run here).
The fakes are in tests/support/fake_trt_runtime.py (tests/runtime/test_cuda_memory.py uses them too).
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.tensorrt.backend import TrtBackend
from cvgl_edge.models import build_model
from cvgl_edge.runtime.tensorrt.cuda_memory import NO_GPU, CudaPythonMemory, GpuInfo, TorchCudaMemory
from cvgl_edge.runtime.tensorrt.engine_checks import check_tensorrt
from cvgl_edge.runtime.tensorrt.encoder import TrtEncoder, cuda_index
from tests.support.fake_trt_runtime import (
    MAX_BATCH, VERSION, FakeCudart, FakeTrt, NumpyMemory, one_line, write_engine,
)
from tests.support.tiny import TINY


# The fakes (FakeTrt, NumpyMemory, FakeCudart) are in tests/support/fake_trt_runtime.py.
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("geossm-nano", **TINY).eval()


def open_fake(engine, model, view="satellite", memory=None, version=VERSION, flavour="tensorrt"):
    memory = memory or NumpyMemory()
    trt = FakeTrt(model, view, memory)
    encoder = TrtEncoder(engine, "cuda", backend=TrtBackend(trt, flavour, version), memory=memory)
    return encoder, trt, memory


# -- the flow --------------------------------------------------------------------------------
def test_encodes_like_pytorch_and_splits_at_the_profile_maximum(tmp_path, model):
    engine = write_engine(tmp_path, model)
    encoder, trt, memory = open_fake(engine, model)
    images = np.random.default_rng(0).standard_normal((10, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(images), "satellite").numpy()

    out = encoder.encode(images)  # 10 > max batch 4: split 4 + 4 + 2
    assert out.shape == (10, model.descriptor_dim) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)
    context = trt.engines[0].contexts[0]
    assert [n for n, _ in context.calls] == [4, 4, 2] and memory.uploads == [4, 4, 2]
    assert {stream for _, stream in context.calls} == {4242}
    assert context.addresses == {"images": encoder._input.ptr, "descriptors": encoder._output.ptr}

    context.calls.clear()
    np.testing.assert_allclose(encoder.encode_batches(images, 3), expected, atol=1e-6)
    assert [n for n, _ in context.calls] == [3, 3, 3, 1]
    context.calls.clear()
    encoder.encode_batches(images, 64)
    assert [n for n, _ in context.calls] == [4, 4, 2]
    assert encoder.encode(images[:0]).shape == (0, model.descriptor_dim)


def test_info_comes_from_the_sidecar_and_engine(tmp_path, model):
    encoder, _, memory = open_fake(write_engine(tmp_path, model), model)
    info = encoder.info
    assert (info.backend, info.view, info.input_size, info.descriptor_dim) == ("tensorrt", "satellite", (64, 64), 128)
    assert encoder.max_batch == MAX_BATCH and info.model_sha256 == "ab" * 32
    assert info.runtime == "tensorrt 10.7.0 on Fake GPU (CC 8.9)"
    with pytest.raises(CvglError) as excinfo:
        encoder.to_device(np.zeros((5, 3, 64, 64), np.float32))
    one_line(excinfo, "takes batches of 1 to 4, got 5")
    with pytest.raises(CvglError) as excinfo:
        encoder.encode(np.zeros((2, 3, 32, 128), np.float32))
    one_line(excinfo, "satellite encoder expects images (N, 3, 64, 64)")
    encoder.close()
    assert not memory.closed  # injected memory belongs to the caller


def test_plugin_library_from_the_sidecar_is_loaded(tmp_path, model):
    lib = tmp_path / "libcvgl_trt_plugins.so"
    lib.write_bytes(b"\x7fELF")
    encoder, trt, _ = open_fake(write_engine(tmp_path, model, plugin_lib=str(lib)), model)
    assert trt.registry.loaded == [str(lib)]


# -- refusals, one line each ------------------------------------------------------------------
def test_missing_or_broken_sidecar(tmp_path, model):
    engine = write_engine(tmp_path, model)
    Path(str(engine) + ".json").unlink()
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "has no sidecar geossm-nano-satellite.engine.json")
    Path(str(engine) + ".json").write_text("{not json")
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "cannot read the engine sidecar")
    with pytest.raises(CvglError) as excinfo:
        open_fake(tmp_path / "absent.engine", model)
    one_line(excinfo, "engine not found")


def test_replaced_engine_is_refused(tmp_path, model):
    engine = write_engine(tmp_path, model)
    engine.write_bytes(b"FAKE but another engine")
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "is not the engine its sidecar describes")


def test_other_tensorrt_version_or_flavour_is_refused(tmp_path, model):
    engine = write_engine(tmp_path, model, tensorrt={"flavour": "tensorrt", "version": "10.3.0"})
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "engine built with tensorrt 10.3.0, this is tensorrt 10.7.0: "
                      "rebuild it with cvgl-edge export --format engine")
    engine = write_engine(tmp_path, model, tensorrt={"flavour": "tensorrt_rtx", "version": "1.7.1.116"})
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "engine built with tensorrt_rtx 1.7.1.116, this is tensorrt 10.7.0")


def test_installed_tensorrt_rtx_is_compared_by_version():
    trt_rtx = pytest.importorskip("tensorrt_rtx")
    same = {"tensorrt": {"flavour": "tensorrt_rtx", "version": trt_rtx.__version__}}
    assert check_tensorrt(same).flavour == "tensorrt_rtx"
    with pytest.raises(CvglError) as excinfo:
        check_tensorrt({"tensorrt": {"flavour": "tensorrt_rtx", "version": "0.9"}})
    one_line(excinfo, f"engine built with tensorrt_rtx 0.9, this is tensorrt_rtx {trt_rtx.__version__}")


def test_other_gpu_architecture_is_refused(tmp_path, model):
    engine = write_engine(tmp_path, model, gpu={"name": "NVIDIA Jetson Orin", "compute_capability": "8.7"})
    memory = NumpyMemory(cc="8.9")
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model, memory=memory)
    one_line(excinfo, "built for compute capability 8.7 (NVIDIA Jetson Orin), this GPU (Fake GPU) is 8.9")
    # TensorRT-RTX sidecars record no GPU; their default targets also cover later GPUs: nothing to compare.
    open_fake(write_engine(tmp_path, model, gpu=None), model, memory=NumpyMemory(cc="12.0"))
    open_fake(write_engine(tmp_path, model, gpu=None, compute_capabilities=["8.0", "8.6", "8.9", "12.0"],
                           compute_capabilities_default=True), model, memory=NumpyMemory(cc="10.0"))
    # An explicit TensorRT-RTX target list must hold this GPU.
    explicit = write_engine(tmp_path, model, gpu=None, compute_capabilities=["8.6"], compute_capabilities_default=False)
    with pytest.raises(CvglError) as excinfo:
        open_fake(explicit, model, memory=NumpyMemory(cc="8.9"))
    one_line(excinfo, "engine targets compute capability 8.6, this GPU (Fake GPU) is 8.9")
    open_fake(explicit, model, memory=NumpyMemory(cc="8.6"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without GPU")
def test_no_gpu_is_refused(tmp_path, model):
    engine = write_engine(tmp_path, model)
    backend = TrtBackend(FakeTrt(model, "satellite", None), "tensorrt", VERSION)
    with pytest.raises(CvglError) as excinfo:
        TrtEncoder(engine, "cuda", backend=backend)  # real memory strategies: torch CPU build, cuda-python
    one_line(excinfo, NO_GPU)
    with pytest.raises(CvglError) as excinfo:
        TrtEncoder(engine, "cpu", backend=backend)
    one_line(excinfo, "TensorRT engines run on a CUDA GPU")


def test_plugin_library_that_does_not_load(tmp_path, model):
    engine = write_engine(tmp_path, model, plugin_lib=str(tmp_path / "missing.so"))
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "missing.so named in geossm-nano-satellite.engine's sidecar does not exist")
    lib = tmp_path / "libbroken.so"
    lib.write_bytes(b"")
    engine = write_engine(tmp_path, model, plugin_lib=str(lib))
    memory = NumpyMemory()
    trt = FakeTrt(model, "satellite", memory)
    trt.registry.fail = True
    with pytest.raises(CvglError) as excinfo:
        TrtEncoder(engine, backend=TrtBackend(trt, "tensorrt", VERSION), memory=memory)
    one_line(excinfo, "does not load: undefined symbol: getCreators")


def test_deserialisation_failure_and_io_mismatch(tmp_path, model):
    engine = write_engine(tmp_path, model, blob=b"\0" * 64)
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "could not deserialise geossm-nano-satellite.engine: IRuntime::deserializeCudaEngine")
    engine = write_engine(tmp_path, model, input_size=[128, 128])
    with pytest.raises(CvglError) as excinfo:
        open_fake(engine, model)
    one_line(excinfo, "its sidecar says images [N, 3, 128, 128]")


def test_cuda_index():
    assert cuda_index("cuda") == 0 and cuda_index("cuda:1") == 1 and cuda_index("auto") == 0
    for bad in ("cpu", "cuda:x", "mps"):
        with pytest.raises(CvglError):
            cuda_index(bad)


# -- memory strategies -----------------------------------------------------------------------
def test_cuda_python_memory_moves_bytes_on_its_stream():
    rt = FakeCudart()
    memory = CudaPythonMemory(0, cudart=rt)
    assert memory.gpu == GpuInfo(0, "Fake Orin", "8.7") and memory.stream_handle == 77
    buffer = memory.alloc((4, 3), np.float32)
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    memory.upload(host, buffer)
    np.testing.assert_array_equal(memory.download(buffer, (2, 3)), host)
    assert rt.copies == [("cudaMemcpyHostToDevice", 24, 77), ("cudaMemcpyDeviceToHost", 24, 77)]
    with pytest.raises(CvglError) as excinfo:
        memory.alloc((1 << 29,), np.float32)
    one_line(excinfo, "CUDA cudaMalloc failed: error cudaErrorMemoryAllocation")
    memory.close()
    assert rt.freed == [buffer.ptr]
    with pytest.raises(CvglError) as excinfo:
        CudaPythonMemory(0, cudart=FakeCudart(devices=0))
    one_line(excinfo, NO_GPU)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without GPU")
def test_real_memory_strategies_refuse_without_gpu():
    for strategy in (TorchCudaMemory, CudaPythonMemory):
        with pytest.raises(CvglError) as excinfo:
            strategy(0)
        one_line(excinfo, NO_GPU)


# -- a real engine on a real GPU (skipped here) -----------------------------------------------
def _tensorrt_or_none():
    try:
        from cvgl_edge.runtime.tensorrt.backend import load_backend

        return load_backend()
    except CvglError:
        return None


def gpu_with_tensorrt(test):
    """gpu + slow marks; skips (before any fixture runs) without a CUDA GPU or a TensorRT package."""
    for mark in (pytest.mark.gpu, pytest.mark.slow,
                 pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
                 pytest.mark.skipif(_tensorrt_or_none() is None, reason="needs tensorrt or tensorrt-rtx")):
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory, model):
    from cvgl_edge.export.onnx.exporter import export_branch, save_onnx
    from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine

    root = tmp_path_factory.mktemp("trt")
    onnx_path = save_onnx(export_branch(model, "satellite", 18), root / "geossm-nano-satellite.onnx")
    engine = root / "geossm-nano-satellite.engine"
    build_engine(onnx_path, engine, EngineOptions(max_batch=4, opt_batch=2, workspace_mb=512))
    return engine


@gpu_with_tensorrt
@pytest.mark.parametrize("strategy", ["torch", "cuda-python"])
def test_real_engine_matches_pytorch(real_engine, model, strategy):
    from cvgl_edge.runtime.tensorrt.cuda_memory import open_device_memory

    if strategy == "cuda-python":
        pytest.importorskip("cuda.bindings.runtime")
    memory = open_device_memory(0, prefer=strategy)
    images = np.random.default_rng(1).standard_normal((6, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(images), "satellite").numpy()
    with TrtEncoder(real_engine, "cuda", memory=memory) as encoder:
        assert encoder.max_batch == 4
        out = encoder.encode(images)  # 6 > max batch 4: split 4 + 2
    memory.close()
    cosine = (out * expected).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999


@gpu_with_tensorrt
def test_real_engine_through_open_encoder(real_engine, model):
    from cvgl_edge.runtime import open_encoder

    images = np.random.default_rng(2).standard_normal((3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(images), "satellite").numpy()
    with open_encoder(real_engine, "satellite", device="cuda") as encoder:
        assert encoder.info.backend == "tensorrt"
        out = encoder.encode(images)
    assert (out * expected).sum(1).min() >= 0.999
