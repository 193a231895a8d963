"""ONNX Runtime encoder, the factory on export folders, and `cvgl-edge eval --backend onnxruntime`.

One TINY model is exported once (both branches) for the module; everything runs on the CPU.
The CUDA provider is not in this onnxruntime build: its refusal is checked, not its run.
"""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.eval.embed import embed_with_encoders
from cvgl_edge.eval.evaluate import evaluate_source, sized_dataset
from cvgl_edge.export.onnx.exporter import export_branch, save_onnx
from cvgl_edge.export.onnx.validate import cosine_rows
from cvgl_edge.models import build_model, save_checkpoint
from cvgl_edge.runtime import open_encoder
from cvgl_edge.runtime.onnxruntime.encoder import OrtEncoder
from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY

DATA = "synthetic:64"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """(model, checkpoint, export folder with both fp32 branches)."""
    root = tmp_path_factory.mktemp("ort")
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    checkpoint = save_checkpoint(model, root / "tiny.pt", train_config={"data": DATA, "polar": False})
    out = root / "out"
    out.mkdir()
    for view in ("ground", "satellite"):
        save_onnx(export_branch(model, view, 18), out / f"geossm-nano-{view}.onnx")
    return model, checkpoint, out


def images(view, n=5, seed=0):
    size = TINY["ground_size"] if view == "ground" else TINY["satellite_size"]
    return np.random.default_rng(seed).standard_normal((n, 3, *size)).astype(np.float32)


def test_ort_encoder_matches_pytorch(export):
    model, _, out = export
    for view in ("ground", "satellite"):
        with OrtEncoder(out / f"geossm-nano-{view}.onnx", threads=1) as encoder:
            info = encoder.info
            assert (info.backend, info.view, info.precision, info.device) == ("onnxruntime", view, "fp32", "cpu")
            assert info.input_size == tuple(model.config.input_size(view))
            assert info.descriptor_dim == model.descriptor_dim and info.model_name == "geossm-nano"
            assert info.runtime.startswith("onnxruntime ") and info.runtime.endswith(" CPUExecutionProvider")
            x = images(view)
            produced = encoder.encode_batches(x, 2)
        with torch.no_grad():
            expected = model.encode(torch.from_numpy(x), view).numpy()
        assert produced.dtype == np.float32 and cosine_rows(produced, expected).min() > 0.9999
        assert np.abs(produced - expected).max() < 1e-4


def test_io_binding_stages_give_the_same_descriptors(export):
    _, _, out = export
    path = out / "geossm-nano-ground.onnx"
    x = images("ground")
    plain = OrtEncoder(path).encode(x)
    bound = OrtEncoder(path, io_binding=True)
    staged = bound.to_device(x)
    assert type(staged).__name__ == "OrtValue"
    np.testing.assert_array_equal(bound.to_host(bound.forward(staged)), plain)


def test_bad_files_are_one_line_errors(export, tmp_path):
    _, _, out = export
    with pytest.raises(CvglError, match="ONNX file not found"):
        OrtEncoder(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf \xff\xfe")
    with pytest.raises(CvglError, match="cannot read .*garbage.onnx as an ONNX file") as excinfo:
        OrtEncoder(garbage)
    assert "\n" not in str(excinfo.value)
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    foreign = tmp_path / "foreign.onnx"
    onnx.save_model(onnx.helper.make_model(graph), str(foreign))
    with pytest.raises(CvglError, match="foreign.onnx: this ONNX file carries no cvgl-edge metadata"):
        OrtEncoder(foreign)
    with pytest.raises(CvglError, match="--threads must be >= 1"):
        OrtEncoder(out / "geossm-nano-ground.onnx", threads=0)
    with pytest.raises(CvglError, match="unknown device 'gpu' for onnxruntime"):
        OrtEncoder(out / "geossm-nano-ground.onnx", device="gpu")


def test_cuda_without_the_cuda_provider_is_refused(export):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(CvglError, match="has no CUDAExecutionProvider; install onnxruntime-gpu"):
        OrtEncoder(export[2] / "geossm-nano-ground.onnx", device="cuda")


def test_open_encoder_on_an_export_folder(export):
    _, _, out = export
    with open_encoder(out, "drone") as encoder:  # drone: the satellite branch
        assert isinstance(encoder, OrtEncoder) and encoder.info.view == "satellite"
    with open_encoder(out / "geossm-nano-ground.onnx", None) as encoder:
        assert encoder.info.view == "ground"
    with pytest.raises(CvglError, match="geossm-nano-ground.onnx is the ground branch, not satellite"):
        open_encoder(out / "geossm-nano-ground.onnx", "satellite")
    with pytest.raises(CvglError, match="no int8 .onnx files"):
        open_encoder(out, "ground", precision="int8")
    with pytest.raises(CvglError, match="is an export folder: say which view"):
        open_encoder(out, None)


def test_eval_through_onnxruntime_matches_pytorch(export):
    model, checkpoint, out = export
    artifact = evaluate_source(out, data=DATA, show_progress=False, device="cpu")
    torch_record = evaluate_source(checkpoint, show_progress=False, device="cpu")
    assert artifact["backend"] == "onnxruntime" and torch_record["backend"] == "torch"
    assert artifact["runtime"].startswith("onnxruntime") and artifact["precision"] == "fp32"
    assert artifact["files"] == {v: str(out / f"geossm-nano-{v}.onnx") for v in ("ground", "satellite")}
    assert artifact["data"] == torch_record["data"] == DATA and artifact["pairs"] == torch_record["pairs"] == 200
    for direction, values in torch_record["directions"].items():
        for key in ("R@1", "R@5", "R@10", "mAP"):
            assert abs(artifact["directions"][direction][key] - values[key]) <= 0.5, (direction, key)

    dataset = sized_dataset(model.input_sizes, DATA, "val", False, pairs=12)
    encoders = {v: open_encoder(out, v) for v in ("ground", "satellite")}
    ground, satellite = embed_with_encoders(encoders, dataset, batch_size=5, show_progress=False)
    assert ground.shape == satellite.shape == (12, model.descriptor_dim) and ground.dtype == np.float32
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(np.stack([dataset[i]["satellite"] for i in range(12)])), "satellite")
    assert cosine_rows(satellite, expected.numpy()).min() > 0.9999


def test_branches_of_different_models_are_refused(export, tmp_path):
    _, _, out = export
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(out / "geossm-nano-ground.onnx", mixed)
    torch.manual_seed(5)
    other = build_model("geossm-nano", **TINY).eval()
    save_onnx(export_branch(other, "satellite", 18), mixed / "geossm-nano-satellite.onnx")
    with pytest.raises(CvglError, match="geossm-nano-ground.onnx and geossm-nano-satellite.onnx come from "
                                        "different models"):
        evaluate_source(mixed, data=DATA, show_progress=False, device="cpu")


def test_eval_cli_with_backend(export, tmp_path):
    _, checkpoint, out = export
    record_path = tmp_path / "ort.json"
    result = cli("eval", str(out / "geossm-nano-satellite.onnx"), "--backend", "onnxruntime", "--data", DATA,
                 "--no-progress", "--device", "cpu", "--json", str(record_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "with onnxruntime" in " ".join((result.stderr + result.stdout).split())  # the table title (wrapped)
    record = json.loads(record_path.read_text())
    assert record["backend"] == "onnxruntime" and record["pairs"] == 200
    assert set(record["directions"]) == {"ground->satellite", "satellite->ground"}
    assert_one_line_error(cli("eval", str(out), "--backend", "tensorrt", "--precision", "int8"),
                           "no int8 .engine files")
    assert_one_line_error(cli("eval", str(checkpoint), "--backend", "onnxruntime"),
                           "--backend onnxruntime needs an exported .onnx file; run cvgl-edge export first")


def test_eval_of_a_polar_models_export_uses_polar_tiles(tmp_path):
    """A polar-trained model's satellite input is panorama-shaped: eval of its export (which
    carries no training config) must polar-transform the tiles, not fail on the size."""
    torch.manual_seed(0)
    model = build_model("geossm-nano", **{**TINY, "satellite_size": (32, 128)}).eval()
    digest = "p" * 64
    for view in ("ground", "satellite"):
        save_onnx(export_branch(model, view, model_sha256=digest), tmp_path / f"geossm-nano-{view}.onnx")
    record = evaluate_source(tmp_path, backend="onnxruntime", data="synthetic:64", show_progress=False)
    assert record["polar"] is True and record["pairs"] > 0
