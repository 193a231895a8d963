"""A stand-in for the ``tensorrt`` module: the builder, parser and plugin registry parts export.tensorrt.build uses.

Why: this machine has no GPU and no TensorRT 10.x (only tensorrt_rtx, which has no implicit INT8
and cannot run custom plugins), so the TensorRT 10.x/11.x build paths run against this fake. It
behaves like the documented API in the parts used: it creates weakly/strongly typed networks,
maps each ONNX node to a layer named after it, and at build time calls an INT8 calibrator like
TensorRT does (read cache -> else get_batch until None -> write cache). Device memory is a numpy
fake, so the images TensorRT would read can be compared with the recipe's.

The parser imports a ``cvgl.SelectiveScan`` node the way onnx-tensorrt's ModelImporter does, by
the fake's version:
  * < 10.7 (JetPack 6 ships 10.3): through the model's SelectiveScan local function when it has
    one (a TensorRT loop: TRIP_LIMIT / ITERATOR / RECURRENCE / LOOP_OUTPUT plus the ``node_of_*``
    layers of the inlined body), otherwise through a registered plugin creator (a PLUGIN_V3
    layer), otherwise it fails (with the real parser's error: ``PLUGIN_NOT_FOUND``);
  * >= 10.7: a registered plugin creator first, then the local function, otherwise it fails.
A fake plugin library is a text file listing the creators it registers (``write_plugin_lib``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
from onnx import helper

from cvgl_edge.export.scan import contract
from cvgl_edge.export.scan.function import build_scan_function
from cvgl_edge.runtime.tensorrt.backend import TrtBackend

#: The fake parser prefers a registered plugin over the local function from this version on.
PLUGIN_FIRST = (10, 7)
#: First line of a fake plugin library; a file without it does not load (like a .so without getCreators).
LIBRARY_MAGIC = "fake-tensorrt-plugin-library"
#: The creator the cvgl_trt_plugins library registers: (name, version, namespace).
SELECTIVE_SCAN_CREATOR = (contract.OP_TYPE, contract.PLUGIN_VERSION, contract.PLUGIN_NAMESPACE)
LOOP_TYPES = ("TRIP_LIMIT", "ITERATOR", "RECURRENCE", "LOOP_OUTPUT")
#: The parser's error for an op with no importer, no local function and no plugin creator (its fallback
#: plugin importer's assertion; measured with tensorrt_rtx 1.7 on a SelectiveScan node without the function).
PLUGIN_NOT_FOUND = 'creator && "Plugin not found, are the plugin name, version, and namespace correct?"'


class _Member:
    def __init__(self, enum: str, name: str, value: int) -> None:
        self.name, self.value, self._enum = name, value, enum

    def __str__(self) -> str:
        return f"{self._enum}.{self.name}"

    __repr__ = __str__

    def __int__(self) -> int:
        return self.value


def make_enum(enum: str, *names: str) -> SimpleNamespace:
    return SimpleNamespace(**{n: _Member(enum, n, i) for i, n in enumerate(names)})


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as "10.3.0"."""
    major, minor = (str(version).split(".") + ["0"])[:2]
    return int(major), int(minor)


# ----------------------------------------------------------------------------- ONNX test files
def scan_node(name: str, x: str, y: str, reverse: bool = False) -> onnx.NodeProto:
    """A ``cvgl.SelectiveScan`` node as the exporter writes it (every input fed from ``x``: nothing runs it)."""
    attrs = contract.scan_attributes(reverse=reverse, delta_softplus=True, has_D=True, has_z=True,
                                     has_delta_bias=True)
    return helper.make_node(contract.OP_TYPE, [x] * len(contract.INPUTS), [y], name=name, domain=contract.DOMAIN,
                            **attrs)


def scan_model(graph: onnx.GraphProto, function: bool = True, opset: int = 18) -> onnx.ModelProto:
    """``graph`` as a model importing the cvgl domain, with the SelectiveScan local function if ``function``."""
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid(contract.DOMAIN, contract.DOMAIN_VERSION)],
                             functions=[build_scan_function(opset)] if function else [])


def write_plugin_lib(path: Path, creators: tuple[tuple[str, str, str], ...] = (SELECTIVE_SCAN_CREATOR,)) -> Path:
    """A fake plugin library registering ``creators`` (name, version, namespace) when loaded."""
    path.write_text("\n".join([LIBRARY_MAGIC, *(" ".join(c) for c in creators)]) + "\n")
    return path


# ----------------------------------------------------------------------------- network and parser
class FakeTensor:
    def __init__(self, name: str, dtype: object, shape: tuple = (-1,)) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape


class FakeLayer:
    def __init__(self, trt: "FakeTrt", name: str, kind: str, outputs: list[object]) -> None:
        self.name, self.type = name, getattr(trt.LayerType, kind)
        self.precision = None
        self.output_types: dict[int, object] = {}
        self._outputs = [FakeTensor(f"{name}:{i}", d) for i, d in enumerate(outputs)]

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, i: int) -> FakeTensor:
        return self._outputs[i]

    def set_output_type(self, i: int, dtype: object) -> None:
        self.output_types[i] = dtype


OP_LAYERS = {"MatMul": "MATRIX_MULTIPLY", "Pow": "ELEMENTWISE", "ReduceMean": "REDUCE", "Sqrt": "UNARY",
             "Div": "ELEMENTWISE", "Shape": "SHAPE", "Sigmoid": "ACTIVATION", "ReduceL2": "REDUCE"}


class FakeNetwork:
    def __init__(self, trt: "FakeTrt", flags: int) -> None:
        h, w = trt.input_hw
        self.trt, self.flags, self.layers = trt, flags, []
        self.inputs = [FakeTensor("images", "DataType.FLOAT", (-1, 3, h, w))]
        self.outputs = [FakeTensor("descriptors", "DataType.FLOAT", (-1, 8))]

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))
    num_outputs = property(lambda self: len(self.outputs))

    def get_layer(self, i: int) -> FakeLayer:
        return self.layers[i]

    def get_input(self, i: int) -> FakeTensor:
        return self.inputs[i]

    def get_output(self, i: int) -> FakeTensor:
        return self.outputs[i]


class FakeParserError:
    def __init__(self, desc: str, node: int, node_name: str, node_operator: str) -> None:
        self._desc, self._node, self._name, self._op = desc, node, node_name, node_operator

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op


class FakeRegistry:
    """The plugin registry: ``load_library`` registers the creators a fake library file lists."""

    def __init__(self) -> None:
        self.creators: set[tuple[str, str, str]] = set()
        self.libraries: list[str] = []

    def load_library(self, path: str) -> object | None:
        lines = Path(path).read_text().splitlines() if Path(path).is_file() else []
        if not lines or lines[0] != LIBRARY_MAGIC:
            return None
        self.creators.update(tuple(line.split()) for line in lines[1:] if line.strip())
        self.libraries.append(str(path))
        return SimpleNamespace(path=str(path))

    def has_creator(self, node: onnx.NodeProto) -> bool:
        """A creator for the node's op_type, plugin_version and namespace (plugin_namespace, else its domain)."""
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        version = attrs.get("plugin_version", b"1").decode()
        namespace = attrs.get("plugin_namespace", node.domain.encode()).decode()
        return (node.op_type, version, namespace) in self.creators


class FakeParser:
    def __init__(self, network: FakeNetwork, logger: object) -> None:
        self.network, self.errors = network, []

    num_errors = property(lambda self: len(self.errors))

    def get_error(self, i: int) -> FakeParserError:
        return self.errors[i]

    def parse_from_file(self, path: str) -> bool:
        self.network.trt.parsed.append(("parse_from_file", path))
        return self._import(onnx.load(path, load_external_data=False))

    def parse(self, model: bytes, path: str | None = None) -> bool:
        self.network.trt.parsed.append(("parse", path))
        return self._import(onnx.load_from_string(bytes(model)))

    def _import(self, model: onnx.ModelProto) -> bool:
        trt = self.network.trt
        has_function = any(contract.is_scan_function(f) for f in model.functions)
        scans = 0
        for index, node in enumerate(model.graph.node):
            if not contract.is_scan_node(node):
                kind = OP_LAYERS.get(node.op_type, "ELEMENTWISE")  # ops the small test graphs lack
                self.network.layers.append(FakeLayer(trt, node.name, kind, [trt.int32 if kind == "SHAPE" else
                                                                            trt.float32]))
                continue
            layers = self._scan(node, has_function, scans)
            if layers is None:
                self.errors.append(FakeParserError(PLUGIN_NOT_FOUND, index, node.name, node.op_type))
                return False
            self.network.layers.extend(layers)
            scans += 1
        return True

    def _scan(self, node: onnx.NodeProto, has_function: bool, k: int) -> list[FakeLayer] | None:
        """Plugin layer, loop layers, or None (no importer), by the fake's version (module docstring)."""
        trt = self.network.trt
        plugin = trt.registry.has_creator(node)
        if plugin and (version_tuple(trt.__version__) >= PLUGIN_FIRST or not has_function):
            return [FakeLayer(trt, node.name, "PLUGIN_V3", [trt.float32])]
        return self._loop(k) if has_function else None

    def _loop(self, k: int) -> list[FakeLayer]:
        """What the real parser makes of the k-th inlined SelectiveScan function (a TensorRT loop)."""
        trt, n, tag = self.network.trt, 90 + 10 * k, f"_{k}" if k else ""
        return [FakeLayer(trt, name, kind, outs) for name, kind, outs in [
            (f"(Unnamed Layer* {n}) [TripLimit]", "TRIP_LIMIT", []),
            (f"(Unnamed Layer* {n + 1}) [Iterator]", "ITERATOR", [trt.float32]),
            (f"node_of_h_last{tag}", "RECURRENCE", [trt.float32]),
            (f"node_of_dA{tag}", "ELEMENTWISE", [trt.float32]),
            (f"node_of_delta_f{tag}", "CAST", [trt.float32]),
            (f"node_of_idx{tag}", "ELEMENTWISE", [trt.int32]),
            (f"(Unnamed Layer* {n + 5}) [LoopOutput]", "LOOP_OUTPUT", [trt.float32])]]


# ----------------------------------------------------------------------------- builder
class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class FakeConfig:
    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.int8_calibrator = None
        self.profiles: list[FakeProfile] = []
        self.calibration_profile: FakeProfile | None = None
        self.plugins_to_serialize: list[str] = []

    def set_memory_pool_limit(self, pool: object, size: int) -> None:
        self.workspace = size

    def set_flag(self, flag: _Member) -> None:
        self.flags.add(flag.name)

    def add_optimization_profile(self, profile: FakeProfile) -> None:
        self.profiles.append(profile)

    def set_calibration_profile(self, profile: FakeProfile) -> None:
        self.calibration_profile = profile


class FakeMemory:
    """``DeviceMemory`` stand-in: "device" buffers are numpy arrays found by address."""

    def __init__(self) -> None:
        self.buffers: dict[int, np.ndarray] = {}
        self.closed = False

    def alloc(self, shape: tuple, dtype: object) -> SimpleNamespace:
        array = np.zeros(shape, dtype)
        self.buffers[array.ctypes.data] = array
        return SimpleNamespace(ptr=array.ctypes.data, shape=shape, dtype=np.dtype(dtype), owner=array)

    def upload(self, host: np.ndarray, dst: SimpleNamespace) -> None:
        dst.owner[...] = host

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakeBuilder:
    def __init__(self, trt: "FakeTrt", logger: object) -> None:
        self.trt, self.logger = trt, logger

    def get_plugin_registry(self) -> FakeRegistry:
        return self.trt.registry

    def create_network(self, flags: int) -> FakeNetwork:
        self.trt.last_network = FakeNetwork(self.trt, flags)
        return self.trt.last_network

    def create_builder_config(self) -> FakeConfig:
        self.trt.last_config = FakeConfig()
        return self.trt.last_config

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile()

    def build_serialized_network(self, network: FakeNetwork, config: FakeConfig) -> bytes | None:
        """Like TensorRT with INT8 + a calibrator: read the cache, else calibrate, then write the cache."""
        trt, cal = self.trt, config.int8_calibrator
        trt.builds += 1
        if "INT8" in config.flags and cal is not None:
            cached = cal.read_calibration_cache()
            if cached is None:
                batch_shape = config.calibration_profile.shapes["images"][1]
                assert cal.get_batch_size() == batch_shape[0]
                seen = []
                while (ptrs := cal.get_batch(["images"])):
                    image = trt.memory.buffers[ptrs[0]]
                    assert image.shape == batch_shape
                    seen.append(image.copy())
                trt.calibration_batches.append(seen)
                if not seen:
                    self.logger.log(trt.ILogger.Severity.ERROR, "Calibration failure: no scaling factors detected")
                    return None
                scale = np.float32(np.abs(np.stack(seen)).mean() / 127)  # any statistic of the data seen
                text = f"TRT-100300-EntropyCalibration2\nimages: {int(scale.view(np.uint32)):08x}\n"
                cal.write_calibration_cache(memoryview(text.encode()))
        return b"fake-engine:" + ",".join(sorted(config.flags)).encode()


class FakeTrt(SimpleNamespace):
    """The parts of ``tensorrt`` 10.x/11.x that export.tensorrt.build / .implicit_int8 touch."""

    def __init__(self, version: str = "10.3.0", calibrators: bool = True,
                 input_hw: tuple[int, int] = (32, 128)) -> None:
        super().__init__()
        self.__version__ = version
        self.input_hw = input_hw
        self.float32, self.float16, self.int32 = "DataType.FLOAT", "DataType.HALF", "DataType.INT32"
        self.LayerType = make_enum("LayerType", *sorted(set(OP_LAYERS.values()) | {
            *LOOP_TYPES, "CAST", "CONSTANT", "PLUGIN_V3"}))
        self.BuilderFlag = make_enum("BuilderFlag", "FP16", "INT8", "PREFER_PRECISION_CONSTRAINTS",
                                     "OBEY_PRECISION_CONSTRAINTS")
        if not calibrators:
            del self.BuilderFlag.INT8
        self.NetworkDefinitionCreationFlag = make_enum("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH",
                                                       "STRONGLY_TYPED")
        self.MemoryPoolType = make_enum("MemoryPoolType", "WORKSPACE")
        self.memory = FakeMemory()
        self.registry = FakeRegistry()
        self.builds, self.calibration_batches, self.parsed = 0, [], []
        self.last_network = self.last_config = None

        class Severity:
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        class ILogger:
            def __init__(self) -> None:
                pass

        ILogger.Severity = Severity
        self.ILogger = ILogger
        if calibrators:
            class IInt8EntropyCalibrator2:
                def __init__(self) -> None:
                    self.base_initialised = True

            self.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
        self.Builder = lambda logger: FakeBuilder(self, logger)
        self.OnnxParser = FakeParser
        self.get_plugin_registry = lambda: self.registry


def fake_backend(version: str = "10.3.0", flavour: str = "tensorrt", **kw) -> TrtBackend:
    return TrtBackend(FakeTrt(version, **kw), flavour, version)
