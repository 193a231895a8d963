"""TensorRT engine building (``--format engine``): with tensorrt-rtx (CPU-only AOT build) an
fp32 and an int8 engine build from the exported ONNX with the standard-op scan body and the
sidecar describes them (incl. the compute-capability targets); a missing package, a corrupt
ONNX and bad options are one-line errors. Engines are not run (no GPU here; deserialising
needs a CUDA driver). Implicit INT8 (TensorRT 10.x only) is tested in test_int8.py beside this file."""

import builtins
import json

import onnx
import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.tensorrt import backend as trt_backend
from cvgl_edge.export.pipeline import ExportRequest, run_export
from cvgl_edge.export.tensorrt.build import EngineOptions, build_engine, read_sidecar
from cvgl_edge.models import build_model, save_checkpoint
from tests.support.tiny import TINY
from tests.support.trt_available import has_tensorrt

RECIPE = {"name": "test", "dataset": "synthetic:48", "split": "train", "count": 16, "batch_size": 8, "seed": 3}


needs_trt = pytest.mark.skipif(not has_tensorrt(), reason="neither tensorrt nor tensorrt-rtx installed "
                               "(pip install cvgl-edge[trt-rtx])")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("engine")
    return save_checkpoint(build_model("geossm-nano", **TINY).eval(), root / "tiny.pt")


@pytest.fixture(scope="module")
def fp32(checkpoint):
    request = ExportRequest(checkpoint=checkpoint, out=checkpoint.parent / "fp32", branch="ground",
                            format="engine", check_images=2, max_batch=4, opt_batch=2, workspace_mb=256,
                            verify_pairs=16)
    (report,) = run_export(request)
    return report


@needs_trt
def test_fp32_engine_and_sidecar(fp32):
    side = fp32["engine"]
    engine = fp32["file"].replace(".onnx", ".engine")
    assert side["engine"] == engine and side == read_sidecar(engine)
    data = open(engine, "rb").read()
    assert len(data) == side["engine_bytes"] > 100_000
    meta = {p.key: p.value for p in onnx.load(fp32["file"]).metadata_props}
    assert side["model_sha256"] == meta["model_sha256"] and side["descriptor_dim"] == 128
    assert side["precision"] == "fp32" and side["strongly_typed"] and side["calibration"] is None
    assert side["inputs"] == [{"name": "images", "shape": [-1, 3, 32, 128], "dtype": "FLOAT"}]
    assert side["outputs"] == [{"name": "descriptors", "shape": [-1, 128], "dtype": "FLOAT"}]
    assert side["batch_profile"] == {"min": 1, "opt": 2, "max": 4}
    # No plugin given: the SelectiveScan local function is imported (Scan -> TensorRT loop).
    assert side["plugin_lib"] is None and side["network_layers"]["plugin_layers"] == 0
    assert side["network_layers"]["loop_layers"] > 0 and side["selective_scan"].startswith("standard-op body")
    assert "not run here" in side["run_check"] and side["tensorrt"]["flavour"] in trt_backend.FLAVOURS
    assert side["int8_mode"] is None
    if side["tensorrt"]["flavour"] == "tensorrt_rtx":
        # Built on the CPU for TensorRT-RTX's default targets: no build GPU, a list of compute capabilities.
        assert side["target"].startswith("AOT, CPU-built") and side["gpu"] is None
        assert side["compute_capabilities"] == ["8.0", "8.6", "8.9", "12.0"] and side["compute_capabilities_default"]


@needs_trt
def test_engine_does_not_deserialize_without_gpu(fp32):
    """Documents why engines are not checked by running them here."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    backend = trt_backend.load_backend()
    runtime = backend.trt.Runtime(backend.trt.Logger(backend.trt.Logger.INTERNAL_ERROR))
    engine = open(fp32["file"].replace(".onnx", ".engine"), "rb").read()
    assert runtime.deserialize_cuda_engine(engine) is None


@needs_trt
def test_int8_qdq_engine_builds(checkpoint):
    recipe = checkpoint.parent / "recipe.json"
    recipe.write_text(json.dumps(RECIPE))
    request = ExportRequest(checkpoint=checkpoint, out=checkpoint.parent / "int8", branch="ground",
                            format="engine", precision="int8", check_images=2, calibration=recipe, eval_pairs=0)
    (report,) = run_export(request)
    side = report["engine"]
    assert side["engine"].endswith("geossm-nano-ground.int8.engine") and side["engine_bytes"] > 100_000
    assert side["precision"] == "int8" and side["calibration"]["recipe"]["name"] == "test"
    assert side["int8_mode"] == "explicit" and side["strongly_typed"]
    assert side["network_layers"]["plugin_layers"] == 0


@needs_trt
def test_corrupt_onnx_is_one_line_parser_error(fp32, tmp_path):
    model = onnx.load(fp32["file"])
    node = next(n for n in model.graph.node if n.op_type == "MatMul")
    node.input[1] = "no_such_tensor"
    bad = tmp_path / "bad.onnx"
    onnx.save_model(model, str(bad))
    with pytest.raises(CvglError, match=r"could not parse bad\.onnx: .*Node input was not registered.*MatMul") as info:
        build_engine(bad, tmp_path / "bad.engine", EngineOptions())
    assert "\n" not in str(info.value) and not (tmp_path / "bad.engine").exists()


def test_missing_tensorrt_is_one_line_error(monkeypatch, checkpoint):
    real_import = builtins.__import__

    def no_trt(name, *args, **kwargs):
        if name.split(".")[0] in trt_backend.FLAVOURS:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trt)
    monkeypatch.setattr(trt_backend.importlib, "import_module", lambda name: no_trt(name))
    request = ExportRequest(checkpoint=checkpoint, out=checkpoint.parent / "none", format="engine")
    with pytest.raises(CvglError, match=r"pip install tensorrt` \(GPU machine\) or `pip install tensorrt-rtx`"):
        run_export(request)
    assert not (checkpoint.parent / "none").exists()  # failed before any export work


@pytest.mark.parametrize("options, message", [
    (dict(max_batch=2, opt_batch=4), "--opt-batch"),
    (dict(workspace_mb=0), "--workspace-mb"),
    (dict(plugin_lib="/no/such/libcvgl_trt_plugins.so"), "no such file"),
])
def test_bad_engine_options(checkpoint, options, message):
    with pytest.raises(CvglError, match=message):
        run_export(ExportRequest(checkpoint=checkpoint, out=checkpoint.parent / "bad", format="engine", **options))


def test_plugin_lib_needs_engine_format(checkpoint):
    with pytest.raises(CvglError, match="--format engine only"):
        run_export(ExportRequest(checkpoint=checkpoint, out=checkpoint.parent / "bad", plugin_lib=checkpoint))


@needs_trt
def test_implicit_int8_refused_before_export_with_tensorrt_rtx(checkpoint):
    """TensorRT-RTX is strongly typed only: --int8-mode implicit fails in a second, before any export work."""
    if trt_backend.load_backend().flavour != "tensorrt_rtx":
        pytest.skip("the installed TensorRT is not TensorRT-RTX")
    request = ExportRequest(checkpoint=checkpoint, out=checkpoint.parent / "implicit", format="engine", precision="int8")
    request.int8_mode = "implicit"  # set like this until ExportRequest has the field (the engine step reads getattr)
    with pytest.raises(CvglError, match=r"^implicit INT8 needs TensorRT 10\.x; TensorRT 11 and TensorRT-RTX take the "
                                        r"explicit QDQ file: --int8-mode explicit \(found tensorrt_rtx "):
        run_export(request)
    assert not (checkpoint.parent / "implicit").exists()
