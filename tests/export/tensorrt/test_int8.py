"""TensorRT 10.x implicit INT8 (entropy calibrator + cache) and the engine sidecar's GPU facts.

Nothing here runs real TensorRT 10.x: this machine has no GPU and only tensorrt_rtx (which is
strongly typed only). The build logic runs against ``FakeTrt`` (tests/support/fake_tensorrt.py), a small
stand-in for the ``tensorrt`` module that behaves like the documented builder in the parts used:
it maps each ONNX node to a layer named after it (the SelectiveScan node to the loop and
``node_of_*`` layers the parser makes from the scan function), and at build time calls the
calibrator like TensorRT does (read cache -> else get_batch until None -> write cache).
Device memory is a numpy fake, so the images TensorRT would read can be compared with the
recipe's. The real build is ``test_real_tensorrt10_implicit_int8`` (``@pytest.mark.gpu``).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cvgl_edge.errors import CvglError
from cvgl_edge.export.tensorrt import engine_step as trt_engine_step
from cvgl_edge.export.tensorrt import gpu_facts as trt_gpu_facts
from cvgl_edge.export.tensorrt import implicit_int8 as trt_implicit_int8
from cvgl_edge.export.int8.calibration import calibration_images, recipe_from_dict
from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine, read_sidecar
from cvgl_edge.export.tensorrt.calibration_cache import parse_trt_cache
from cvgl_edge.export.tensorrt.calibrator import CacheKey, cache_status, key_path, padded_batches
from tests.support.fake_tensorrt import fake_backend, scan_model, scan_node
from tests.support.fake_tensorrt import make_enum as _enum

H, W = 32, 128
RECIPE = dict(name="test", dataset="synthetic:48", split="train", count=16, batch_size=8, seed=3, polar=False)
SIZES = {"ground": (H, W), "satellite": (64, 64)}


# ----------------------------------------------------------------------------- fixtures
def _fp32_onnx(path: Path, model_sha: str = "w" * 64, precision: str = "fp32") -> Path:
    """A small FP32 file with cvgl-edge metadata; node names/ops as the exporter writes them
    (one SelectiveScan node and the scan's local function)."""
    nodes = [helper.make_node("Shape", ["images"], ["shp"], name="node_Shape_0"),
             helper.make_node("MatMul", ["images", "w"], ["xl"], name="node_linear"),
             scan_node("node_selective_scan", "xl", "x"),
             helper.make_node("Pow", ["x", "two"], ["x2"], name="node_pow_1"),
             helper.make_node("ReduceMean", ["x2"], ["ms"], name="node_mean"),
             helper.make_node("Sqrt", ["ms"], ["rms"], name="node_Sqrt_60"),
             helper.make_node("Div", ["x", "rms"], ["xn"], name="node_div"),
             helper.make_node("Sigmoid", ["xn"], ["descriptors"], name="node_Sigmoid_64")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, H, W])],
                              [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", 8])])
    model = scan_model(graph)
    helper.set_model_props(model, {"model_name": "geossm-nano", "view": "ground", "input_size": json.dumps([H, W]),
                                   "model_config": json.dumps({"ground_size": [H, W], "satellite_size": [64, 64]}),
                                   "model_sha256": model_sha, "descriptor_dim": "8", "precision": precision})
    onnx.save_model(model, str(path))
    return path


@pytest.fixture()
def fake(monkeypatch):
    backend = fake_backend()
    monkeypatch.setattr(trt_implicit_int8, "_open_memory", lambda: backend.trt.memory)
    return backend


def _options(**kw) -> EngineOptions:
    return EngineOptions(int8_mode="implicit", recipe=recipe_from_dict({**RECIPE, **kw}), max_batch=4)


# ----------------------------------------------------------------------------- the build
def test_implicit_build_calibrates_on_recipe_images_and_writes_cache(fake, tmp_path):
    onnx_path = _fp32_onnx(tmp_path / "geossm-nano-ground.onnx")
    engine = tmp_path / "geossm-nano-ground.int8.engine"
    side = build_engine(onnx_path, engine, _options(), fake)
    trt, config, network = fake.trt, fake.trt.last_config, fake.trt.last_network

    assert engine.read_bytes() == b"fake-engine:FP16,INT8,PREFER_PRECISION_CONSTRAINTS" and side == read_sidecar(engine)
    assert network.flags == 0 and not side["strongly_typed"]  # weakly typed: the flags choose precisions
    assert side["precision"] == "int8" and side["int8_mode"] == "implicit"
    assert config.calibration_profile.shapes["images"] == ((8, 3, H, W),) * 3
    assert config.profiles[0].shapes["images"] == ((1, 3, H, W), (1, 3, H, W), (4, 3, H, W))
    # Exactly the recipe's images, in its order (the same images the QDQ path calibrates on).
    recipe = recipe_from_dict(RECIPE)
    expected = list(calibration_images(recipe, "ground", SIZES, False).batches())
    (seen,) = trt.calibration_batches
    assert len(seen) == 2 and all(np.array_equal(a, b) for a, b in zip(seen, expected))
    assert trt.memory.closed  # device buffer released at end of data
    cal = side["calibration"]
    assert cal["recipe_sha256"] == recipe.sha256() and cal["images"] == 16 and cal["batches"] == 2
    assert not cal["reused_cache"] and cal["cache_written"] and cal["padded_images"] == 0
    cache = tmp_path / "geossm-nano-ground.int8.entropy.cache"
    assert cal["cache"] == str(cache)
    header, scales = parse_trt_cache(cache.read_text())
    assert header == "TRT-100300-EntropyCalibration2" and list(scales) == ["images"]
    key = json.loads(key_path(cache).read_text())
    assert key["recipe_sha256"] == recipe.sha256() and key["tensorrt"] == "10.3.0" and key["model_sha256"] == "w" * 64
    assert cal["indices"] == calibration_images(recipe, "ground", SIZES, False).indices


def test_scan_and_norm_layers_pinned_to_fp32(fake, tmp_path):
    side = build_engine(_fp32_onnx(tmp_path / "m.onnx"), tmp_path / "m.int8.engine", _options(), fake)
    layers = {layer.name: layer for layer in fake.trt.last_network.layers}
    pinned = {n for n, layer in layers.items() if layer.precision == "DataType.FLOAT"}
    assert pinned == {"node_pow_1", "node_mean", "node_Sqrt_60", "node_div",  # RMSNorm
                      "(Unnamed Layer* 91) [Iterator]", "node_of_h_last", "node_of_dA",  # scan loop
                      "(Unnamed Layer* 95) [LoopOutput]"}
    assert all(layers[n].output_types == {0: "DataType.FLOAT"} for n in pinned)
    # MatMul / activation left to TensorRT; shapes, casts, int tensors and output-less layers untouched.
    for name in ("node_linear", "node_Sigmoid_64", "node_Shape_0", "node_of_delta_f", "node_of_idx",
                 "(Unnamed Layer* 90) [TripLimit]"):
        assert layers[name].precision is None and not layers[name].output_types
    constraints = side["calibration"]["precision_constraints"]
    assert constraints["scan_layers_fp32"] == 4 and constraints["norm_layers_fp32"] == 4
    assert constraints["flag"] == "PREFER_PRECISION_CONSTRAINTS"


def test_cache_reused_without_images_then_stale_cache_recalibrates(fake, tmp_path, monkeypatch):
    onnx_path = _fp32_onnx(tmp_path / "geossm-nano-ground.onnx")
    engine = tmp_path / "geossm-nano-ground.int8.engine"
    build_engine(onnx_path, engine, _options(), fake)
    cache = tmp_path / "geossm-nano-ground.int8.entropy.cache"
    first = cache.read_bytes()

    def no_images(*args, **kwargs):
        raise AssertionError("a matching cache must not load calibration images")

    monkeypatch.setattr(trt_implicit_int8, "calibration_images", no_images)
    side = build_engine(onnx_path, engine, _options(), fake)
    assert side["calibration"]["reused_cache"] and side["calibration"]["batches"] == 0
    assert side["calibration"]["cache_note"] is None and len(fake.trt.calibration_batches) == 1
    monkeypatch.undo()
    monkeypatch.setattr(trt_implicit_int8, "_open_memory", lambda: fake.trt.memory)

    side = build_engine(onnx_path, engine, _options(seed=4), fake)  # other images: the cache is stale
    cal = side["calibration"]
    assert cal["cache_note"] == ("geossm-nano-ground.int8.entropy.cache is stale (calibration recipe changed): "
                                 "recalibrating")
    assert not cal["reused_cache"] and cal["batches"] == 2 and len(fake.trt.calibration_batches) == 2
    assert json.loads(key_path(cache).read_text())["recipe_sha256"] == recipe_from_dict({**RECIPE, "seed": 4}).sha256()
    assert cache.read_bytes() != first


@pytest.mark.parametrize("change, reason", [
    ("model", "model weights changed"), ("tensorrt", "built with another TensorRT version"),
    ("onnx", "FP32 ONNX file changed"), ("nokey", "has no readable key file"), ("garbage", "unreadable"),
])
def test_cache_status_reasons(tmp_path, change, reason):
    cache = tmp_path / "m-ground.int8.entropy.cache"
    key = CacheKey("r" * 64, "o" * 64, "w" * 64, "10.3.0")
    cache.write_text("TRT-100300-EntropyCalibration2\nimages: 3c010a14\n")
    key_path(cache).write_text(json.dumps(key.to_dict()))
    assert cache_status(cache, key) == (True, None)
    other = {"model": CacheKey("r" * 64, "o" * 64, "v" * 64, "10.3.0"),
             "tensorrt": CacheKey("r" * 64, "o" * 64, "w" * 64, "10.7.0"),
             "onnx": CacheKey("r" * 64, "p" * 64, "w" * 64, "10.3.0")}.get(change, key)
    if change == "nokey":
        key_path(cache).unlink()
    if change == "garbage":
        cache.write_text("not a cache\n")
    reusable, why = cache_status(cache, other)
    assert not reusable and reason in why
    assert cache_status(tmp_path / "absent.cache", key) == (False, None)


def test_short_last_batch_is_filled_with_repeats(fake, tmp_path):
    side = build_engine(_fp32_onnx(tmp_path / "m.onnx"), tmp_path / "m.int8.engine", _options(count=20), fake)
    cal = side["calibration"]
    assert cal["batches"] == 3 and cal["images"] == 20 and cal["padded_images"] == 4
    last = fake.trt.calibration_batches[0][-1]
    assert np.array_equal(last[4:], last[:4])  # the 4 real images, then the same 4 again

    batches = list(padded_batches([np.ones((3, 3, 2, 2)), np.zeros((1, 3, 2, 2))], 3, (3, 2, 2)))
    assert [b.shape for b, _ in batches] == [(3, 3, 2, 2)] * 2 and [p for _, p in batches] == [0, 2]
    with pytest.raises(CvglError, match=r"calibration batch has shape \(2, 3, 4, 4\)"):
        list(padded_batches([np.ones((2, 3, 4, 4))], 2, (3, 2, 2)))


# ----------------------------------------------------------------------------- one-line errors
@pytest.mark.parametrize("backend, found", [
    (lambda: fake_backend("11.1.0"), "tensorrt 11.1.0"),
    (lambda: fake_backend("1.7.1.116", flavour="tensorrt_rtx"), "tensorrt_rtx 1.7.1.116"),
    (lambda: fake_backend("10.3.0", calibrators=False), "tensorrt 10.3.0"),
])
def test_implicit_needs_tensorrt10(tmp_path, backend, found):
    with pytest.raises(CvglError) as info:
        build_engine(_fp32_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", _options(), backend())
    assert str(info.value) == ("implicit INT8 needs TensorRT 10.x; TensorRT 11 and TensorRT-RTX take the explicit "
                               f"QDQ file: --int8-mode explicit (found {found})")


def test_implicit_with_installed_tensorrt_rtx_is_refused(tmp_path):
    pytest.importorskip("tensorrt_rtx")
    from cvgl_edge.runtime.tensorrt.backend import load_backend

    backend = load_backend(prefer="tensorrt_rtx")
    with pytest.raises(CvglError, match=r"needs TensorRT 10\.x.*\(found tensorrt_rtx "):
        build_engine(_fp32_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", _options(), backend)


def test_missing_recipe_data_and_wrong_inputs(fake, tmp_path):
    onnx_path = _fp32_onnx(tmp_path / "m.onnx")
    with pytest.raises(CvglError, match="implicit INT8 needs calibration images: give a calibration recipe"):
        build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(int8_mode="implicit"), fake)
    with pytest.raises(CvglError, match=r"^calibration recipe test: .*no-such-dir") as info:
        build_engine(onnx_path, tmp_path / "m.engine", _options(dataset="cvusa:/no-such-dir"), fake)
    assert "\n" not in str(info.value) and fake.trt.builds == 0  # refused before building
    qdq = _fp32_onnx(tmp_path / "m.int8.onnx", precision="int8")
    with pytest.raises(CvglError, match=r"implicit INT8 builds from the FP32 ONNX file; m\.int8\.onnx is int8"):
        build_engine(qdq, tmp_path / "m.engine", _options(), fake)
    with pytest.raises(CvglError, match="unknown --int8-mode 'qdq'; choose explicit, implicit"):
        build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(int8_mode="qdq"), fake)
    assert not list(tmp_path.glob("*.engine"))


def test_no_gpu_for_calibration_is_one_line_error(tmp_path, monkeypatch):
    """The real device-memory path (runtime/tensorrt/cuda_memory.py) on a machine without a GPU."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    backend = fake_backend()
    with pytest.raises(CvglError, match=r"^INT8 calibration failed: no CUDA GPU available") as info:
        build_engine(_fp32_onnx(tmp_path / "m.onnx"), tmp_path / "m.int8.engine", _options(), backend)
    assert "\n" not in str(info.value) and not (tmp_path / "m.int8.engine").exists()
    assert not (tmp_path / "m.int8.entropy.cache").exists()


# ----------------------------------------------------------------------------- the export step
def _request(tmp_path: Path, **kw) -> SimpleNamespace:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(RECIPE))
    base = dict(out=tmp_path, max_batch=4, opt_batch=1, workspace_mb=64, plugin_lib=None, use_plugin=True, precision="int8",
                int8_mode="implicit", calibration=recipe, checkpoint=tmp_path / "unused.pt", trusted=False)
    return SimpleNamespace(**{**base, **kw})


def test_engine_step_builds_int8_engine_from_fp32_file(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: fake)
    _fp32_onnx(tmp_path / "geossm-nano-ground.onnx")
    # Either report kind: the QDQ report (file .int8.onnx) or an fp32 one; both build from the fp32 file.
    for file in ("geossm-nano-ground.int8.onnx", "geossm-nano-ground.onnx"):
        reports = [{"file": str(tmp_path / file), "calibration": None}]
        trt_engine_step.build_engines(_request(tmp_path), reports)
        side = reports[0]["engine"]
        assert side["engine"] == str(tmp_path / "geossm-nano-ground.int8.engine")
        assert side["onnx"] == str(tmp_path / "geossm-nano-ground.onnx") and side["int8_mode"] == "implicit"
    assert len(fake.trt.calibration_batches) == 1  # the second build reused the cache

    (tmp_path / "geossm-nano-ground.onnx").unlink()
    with pytest.raises(CvglError, match=r"builds from the FP32 ONNX file .*geossm-nano-ground\.onnx, which this "
                                        r"export did not write"):
        trt_engine_step.build_engines(_request(tmp_path), [{"file": str(tmp_path / "geossm-nano-ground.int8.onnx")}])


def test_engine_step_request_checks(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: fake)
    trt_engine_step.check_engine_request(_request(tmp_path))
    with pytest.raises(CvglError, match="--int8-mode implicit applies to --precision int8"):
        trt_engine_step.check_engine_request(_request(tmp_path, precision="fp32"))
    with pytest.raises(CvglError, match="unknown --int8-mode"):
        trt_engine_step.check_engine_request(_request(tmp_path, int8_mode="dynamic"))
    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: fake_backend("11.0.0"))
    with pytest.raises(CvglError, match=r"needs TensorRT 10\.x.*--int8-mode explicit \(found tensorrt 11\.0\.0\)"):
        trt_engine_step.check_engine_request(_request(tmp_path))
    # A request without the field (the pipeline before --int8-mode exists) means explicit.
    plain = _request(tmp_path)
    del plain.int8_mode
    assert trt_engine_step.request_int8_mode(plain) == "explicit"


# ----------------------------------------------------------------------------- GPU facts
def test_cuda_and_capability_text():
    assert trt_gpu_facts.cuda_version_text(12040) == "12.4" and trt_gpu_facts.cuda_version_text(13000) == "13.0"
    assert trt_gpu_facts.cuda_version_text(0) is None
    cc = _enum("ComputeCapability", "NONE", "CURRENT", "SM75", "SM89", "SM120")
    assert [trt_gpu_facts.capability_text(v) for v in (cc.SM75, cc.SM89, cc.SM120, cc.CURRENT)] == \
        ["7.5", "8.9", "12.0", "current"]
    config = SimpleNamespace(num_compute_capabilities=2, get_compute_capability=[cc.SM89, cc.SM120].__getitem__)
    assert trt_gpu_facts.rtx_capabilities(config) == (["8.9", "12.0"], False)
    assert trt_gpu_facts.rtx_capabilities(SimpleNamespace(num_compute_capabilities=0)) == \
        (["8.0", "8.6", "8.9", "12.0"], True)


class _FakeCudart:
    """cuda.bindings.runtime's calling convention: (error, *values)."""

    cudaError_t = SimpleNamespace(cudaSuccess=0)

    def __init__(self, count: int) -> None:
        self.count = count

    def cudaGetDeviceCount(self):
        return (0, self.count) if self.count else (35, None)

    def cudaGetDevice(self):
        return 0, 0

    def cudaGetDeviceProperties(self, index):
        return 0, SimpleNamespace(name=b"NVIDIA GeForce RTX 4090\x00\x00", major=8, minor=9)

    def cudaDriverGetVersion(self):
        return 0, 12080

    def cudaRuntimeGetVersion(self):
        return 0, 12060


def test_gpu_facts_from_cuda_python(monkeypatch):
    monkeypatch.setattr(trt_gpu_facts, "_torch_facts", lambda: None)
    monkeypatch.setattr(trt_gpu_facts, "_cudart", lambda: _FakeCudart(1))
    assert trt_gpu_facts.gpu_facts() == {"name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9",
                                         "driver": "12.8", "cuda_runtime": "12.6", "device_index": 0,
                                         "source": "cuda-python"}
    monkeypatch.setattr(trt_gpu_facts, "_cudart", lambda: _FakeCudart(0))
    assert trt_gpu_facts.gpu_facts() is None


def test_full_tensorrt_sidecar_records_build_gpu(fake, tmp_path, monkeypatch):
    facts = {"name": "Orin", "compute_capability": "8.7", "driver": "12.6", "cuda_runtime": "12.6"}
    monkeypatch.setattr("cvgl_edge.export.tensorrt.build.gpu_facts", lambda: facts)
    side = build_engine(_fp32_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine", EngineOptions(), fake)
    assert side["gpu"] == facts and side["compute_capabilities"] == ["8.7"] and side["strongly_typed"]
    assert side["precision"] == "fp32" and side["int8_mode"] is None and fake.trt.last_network.flags == 2


def test_gpu_facts_none_without_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert trt_gpu_facts.gpu_facts() is None


# ----------------------------------------------------------------------------- real TensorRT 10.x
def _tensorrt10() -> bool:
    try:
        import tensorrt
        import torch
    except ImportError:
        return False
    return str(tensorrt.__version__).startswith("10.") and torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _tensorrt10(), reason="needs the full tensorrt 10.x package and a CUDA GPU")
def test_real_tensorrt10_implicit_int8(tmp_path):
    """Real TensorRT 10.x: export the tiny model, calibrate, build; the rebuild reuses the cache."""
    import torch

    from cvgl_edge.export.onnx.exporter import export_branch
    from cvgl_edge.runtime.tensorrt.backend import load_backend
    from cvgl_edge.models import build_model
    from tests.support.tiny import TINY

    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    onnx_path = tmp_path / "geossm-nano-ground.onnx"
    onnx.save_model(export_branch(model, "ground", 18), str(onnx_path))
    backend = load_backend(prefer="tensorrt")
    engine = tmp_path / "geossm-nano-ground.int8.engine"
    side = build_engine(onnx_path, engine, _options(), backend)
    assert side["precision"] == "int8" and side["calibration"]["batches"] == 2 and side["gpu"]["compute_capability"]
    header, scales = parse_trt_cache(Path(side["calibration"]["cache"]).read_text())
    assert "EntropyCalibration2" in header and "images" in scales
    again = build_engine(onnx_path, engine, _options(), backend)
    assert again["calibration"]["reused_cache"]


def test_export_pipeline_implicit_int8_writes_fp32_file_and_int8_engine(fake, tmp_path, monkeypatch):
    """``export --format engine --precision int8 --int8-mode implicit``: the verified FP32 ONNX
    file is written (TensorRT calibrates it), and the INT8 engine is built from it."""
    import torch

    from cvgl_edge.export.pipeline import ExportRequest, run_export
    from cvgl_edge.models import build_model
    from cvgl_edge.models.checkpoint import save_checkpoint
    from tests.support.tiny import TINY

    monkeypatch.setattr(trt_engine_step, "load_backend", lambda: fake)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("geossm-nano", **TINY).eval(), tmp_path / "tiny.pt")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({**RECIPE, "count": 4, "batch_size": 2}))
    (report,) = run_export(ExportRequest(checkpoint=checkpoint, out=tmp_path / "out", branch="ground",
                                         format="engine", precision="int8", int8_mode="implicit",
                                         calibration=recipe, check_images=2, verify_pairs=8, max_batch=2))
    assert report["precision"] == "fp32" and Path(report["file"]).name == "geossm-nano-ground.onnx"
    assert report["verification"]["status"] == "passed"
    assert report["engine"]["int8_mode"] == "implicit"
    assert Path(report["engine"]["engine"]).name == "geossm-nano-ground.int8.engine"
    assert report["engine_verification"]["status"] == "not run"
