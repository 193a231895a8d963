"""TensorRT backend: one ``<model>-<view>[.<precision>].engine`` built by ``cvgl-edge export``.

Works with the full ``tensorrt`` package (10.x / 11.x) and with ``tensorrt_rtx``, whichever
built the engine (the sidecar says; ``cvgl_edge.runtime.tensorrt.backend.load_backend`` imports
it). Opening runs the sidecar checks of ``engine_checks`` (present, sha256, TensorRT
flavour+version, GPU present, compute capability), loads the plugin library the sidecar
names, deserialises, and checks the engine's I/O against the sidecar. It then uses the
TensorRT 10 name-based I/O API: ``set_input_shape`` / ``set_tensor_address`` /
``execute_async_v3`` on one stream, with input and output buffers allocated once at the
profile's maximum batch (a smaller batch uses their leading rows). Larger batches are split
by ``Encoder.encode`` / ``encode_batches`` (``max_batch``).

What was run here (no GPU, only TensorRT-RTX, which cannot run engines without one): the
whole flow against small fake ``trt`` objects and a numpy-backed fake ``DeviceMemory``
(tests/runtime/test_trt.py), the version check against the installed TensorRT-RTX, and the
real "no CUDA GPU" refusal. What was not run: deserialising and executing a real engine on
a GPU (the ``@pytest.mark.gpu`` tests do, comparing with PyTorch at cosine >= 0.999 in fp32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.runtime.base import Encoder, EncoderInfo
from cvgl_edge.runtime.onnxruntime.session import INPUT_NAME, OUTPUT_NAME
from cvgl_edge.runtime.tensorrt.backend import TrtBackend, collecting_logger
from cvgl_edge.runtime.tensorrt.cuda_memory import DeviceMemory, open_device_memory
from cvgl_edge.runtime.tensorrt.engine_checks import (
    REBUILD,
    built_with,
    check_engine_bytes,
    check_gpu,
    check_tensorrt,
    read_engine_sidecar,
)


def cuda_index(device: str) -> int:
    """'cuda' / 'cuda:N' / 'auto' -> N; anything else cannot run an engine."""
    kind, _, index = str(device).partition(":")
    if kind == "auto" and not index:
        return 0
    if kind != "cuda" or (index and not index.isdigit()):
        raise CvglError(f"TensorRT engines run on a CUDA GPU: use --device cuda (or cuda:N), not {device!r}")
    return int(index or 0)


def _dims(dims: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in dims)


class TrtEncoder(Encoder):
    """One engine on one GPU. ``backend`` / ``memory`` are injectable (tests, or a shared stream)."""

    def __init__(self, engine_path: str | Path, device: str = "cuda", *,
                 backend: TrtBackend | None = None, memory: DeviceMemory | None = None) -> None:
        self.path = Path(engine_path)
        self.sidecar = read_engine_sidecar(self.path)
        blob = check_engine_bytes(self.path, self.sidecar)
        self.backend = check_tensorrt(self.sidecar, backend)
        index = cuda_index(device)
        self._owns_memory = memory is None
        self.memory = memory or open_device_memory(index)
        self.context = self.engine = self.runtime = None
        try:
            check_gpu(self.sidecar, self.memory.gpu)
            self._open(blob)
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------
    def _open(self, blob: bytes) -> None:
        trt = self.backend.trt
        self._logger = collecting_logger(trt)
        self.runtime = trt.Runtime(self._logger)
        if self.sidecar.get("plugin_lib"):
            self._load_plugin(Path(self.sidecar["plugin_lib"]))
        try:
            self.engine = self.runtime.deserialize_cuda_engine(blob)
        except Exception as exc:  # noqa: BLE001 - the bindings raise their own types
            self._logger.log(trt.ILogger.Severity.ERROR, first_line(exc))  # raised, not logged
        if self.engine is None:
            raise CvglError(f"{built_with(self.sidecar)} could not deserialise {self.path.name}: "
                            f"{self._why()}; {REBUILD}")
        self._inspect(trt)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise CvglError(f"could not create an execution context for {self.path.name}: {self._why()}")
        n, h, w = self._max_batch, *self.info.input_size
        self._input = self.memory.alloc((n, 3, h, w), self._in_dtype)
        self._output = self.memory.alloc((n, self.info.descriptor_dim), self._out_dtype)

    def _why(self) -> str:
        errors = self._logger.errors()
        return "; ".join(errors[:2]) if errors else "no message from TensorRT"

    def _load_plugin(self, lib: Path) -> None:
        where = f"plugin library {lib} named in {self.path.name}'s sidecar"
        if not lib.is_file():
            raise CvglError(f"{where} does not exist; build it (export/ CMake) or {REBUILD} without --plugin-lib")
        registry = (self.runtime.get_plugin_registry() if hasattr(self.runtime, "get_plugin_registry")
                    else self.backend.trt.get_plugin_registry())
        try:
            handle = registry.load_library(str(lib))
        except Exception as exc:  # noqa: BLE001 - the bindings raise for a library without entry points
            raise CvglError(f"{where} does not load: {first_line(exc)}") from None
        if handle is None:
            raise CvglError(f"{where} does not load (no getCreators entry point?)")

    def _inspect(self, trt: Any) -> None:
        """Check the engine's tensors against the sidecar and record sizes and dtypes."""
        engine, side = self.engine, self.sidecar
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise CvglError(f"{self.path.name} has inputs {inputs} and outputs {outputs}; a cvgl-edge branch "
                            f"engine has input {INPUT_NAME!r} and output {OUTPUT_NAME!r}")
        in_shape, out_shape = _dims(engine.get_tensor_shape(INPUT_NAME)), _dims(engine.get_tensor_shape(OUTPUT_NAME))
        h, w = (int(v) for v in side["input_size"])
        dim = int(side["descriptor_dim"])
        if len(in_shape) != 4 or in_shape[1:] != (3, h, w) or len(out_shape) != 2 or out_shape[1] != dim:
            raise CvglError(f"{self.path.name} has input {list(in_shape)} and output {list(out_shape)}, its sidecar "
                            f"says images [N, 3, {h}, {w}] and descriptors [N, {dim}]; {REBUILD}")
        profile = [_dims(d) for d in engine.get_tensor_profile_shape(INPUT_NAME, 0)]
        self._max_batch = int(profile[2][0])
        self._min_batch = int(profile[0][0])
        self._in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(INPUT_NAME)))
        self._out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(OUTPUT_NAME)))
        gpu = self.memory.gpu
        self.info = EncoderInfo(
            backend="tensorrt", view=str(side["view"]), input_size=(h, w), descriptor_dim=dim,
            precision=str(side.get("precision", "fp32")), device=f"cuda:{gpu.index}",
            model_name=str(side["model_name"]), model_sha256=str(side["model_sha256"]), source=str(self.path),
            extra={"runtime": f"{built_with(side)} on {gpu.name} (CC {gpu.compute_capability})",
                   "tensorrt": dict(side["tensorrt"]), "gpu": {"name": gpu.name, "compute_capability":
                                                              gpu.compute_capability},
                   "memory": self.memory.name, "batch_profile": {"min": self._min_batch, "max": self._max_batch},
                   "plugin_lib": side.get("plugin_lib"), "metadata": side},
        )

    # -- the three stages ----------------------------------------------------------------
    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    def to_device(self, images: np.ndarray) -> int:
        count = len(images)
        if count and not self._min_batch <= count <= self._max_batch:
            raise CvglError(f"{self.path.name} takes batches of {self._min_batch} to {self._max_batch}, got {count}")
        if count:
            self.memory.upload(np.ascontiguousarray(images, dtype=self._in_dtype), self._input)
        return count

    def forward(self, staged: int) -> int:
        if not staged:
            return 0
        h, w = self.info.input_size
        context = self.context
        if not context.set_input_shape(INPUT_NAME, (staged, 3, h, w)):
            raise CvglError(f"{self.path.name} refused input shape {[staged, 3, h, w]}: {self._why()}")
        for name, buffer in ((INPUT_NAME, self._input), (OUTPUT_NAME, self._output)):
            if context.set_tensor_address(name, buffer.ptr) is False:
                raise CvglError(f"{self.path.name}: could not bind {name!r}: {self._why()}")
        if not context.execute_async_v3(self.memory.stream_handle):
            raise CvglError(f"TensorRT could not run {self.path.name}: {self._why()}")
        return staged

    def to_host(self, result: int) -> np.ndarray:
        if not result:
            return np.zeros((0, self.info.descriptor_dim), dtype=np.float32)
        return self.memory.download(self._output, (result, self.info.descriptor_dim)).astype(np.float32)

    def synchronize(self) -> None:
        self.memory.synchronize()

    def close(self) -> None:
        self.context = self.engine = self.runtime = None
        if self._owns_memory and self.memory is not None:
            self.memory.close()
            self.memory = None
