"""Which file holds which branch, and which backend runs it (names only; no file is opened)."""

from pathlib import Path

import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.artifacts import backend_for, branch_files, parse_artifact_name
from cvgl_edge.runtime.backends import check_backend


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_names():
    name = parse_artifact_name("exports/geossm-nano-ground.int8.onnx")
    assert (name.model, name.view, name.precision, name.ext) == ("geossm-nano", "ground", "int8", "onnx")
    assert name.file_name("satellite") == "geossm-nano-satellite.int8.onnx"
    fp32 = parse_artifact_name("geossm-small-satellite.engine")
    assert fp32.precision == "fp32" and fp32.file_name("ground") == "geossm-small-ground.engine"
    assert parse_artifact_name("m-ground.fp32.onnx").file_name("satellite") == "m-satellite.fp32.onnx"
    assert parse_artifact_name("m-ground.report.json") is None and parse_artifact_name("model.onnx") is None


def test_backend_from_suffix_or_option(tmp_path):
    assert backend_for("a/last.pt") == "torch" and backend_for("m-ground.onnx") == "onnxruntime"
    assert backend_for("m-ground.engine") == "tensorrt" and backend_for(tmp_path) == "onnxruntime"
    assert backend_for(tmp_path, "trt") == "tensorrt" and backend_for("m-ground.onnx", "ORT") == "onnxruntime"
    with pytest.raises(CvglError, match="--backend tensorrt needs a TensorRT .engine file"):
        backend_for("m-ground.onnx", "tensorrt")
    with pytest.raises(CvglError, match="--backend torch needs a checkpoint"):
        backend_for("m-ground.engine", "torch")
    with pytest.raises(CvglError, match="cannot tell the backend of weights.bin"):
        backend_for("weights.bin")
    with pytest.raises(CvglError, match="unknown --backend 'tflite'; choose torch, onnxruntime, tensorrt"):
        check_backend("tflite")


def test_branch_files_from_a_folder(tmp_path):
    out = tmp_path / "exports"
    touch(out, "geossm-nano-ground.onnx", "geossm-nano-satellite.onnx", "geossm-nano-ground.int8.onnx",
          "geossm-nano-satellite.int8.onnx", "geossm-nano-ground.engine", "geossm-nano-satellite.engine",
          "geossm-nano-ground.report.json")
    assert branch_files(out, "onnxruntime") == {"ground": out / "geossm-nano-ground.onnx",
                                                "satellite": out / "geossm-nano-satellite.onnx"}
    assert branch_files(out, "onnxruntime", "int8")["satellite"] == out / "geossm-nano-satellite.int8.onnx"
    assert branch_files(out, "tensorrt")["ground"] == out / "geossm-nano-ground.engine"
    with pytest.raises(CvglError, match=r"no fp16 \.onnx files in .*\(it has fp32, int8: pass --precision\)"):
        branch_files(out, "onnxruntime", "fp16")
    with pytest.raises(CvglError, match="unknown --precision 'fp8'"):
        branch_files(out, "onnxruntime", "fp8")


def test_branch_files_from_one_file(tmp_path):
    touch(tmp_path, "m-ground.int8.onnx", "m-satellite.int8.onnx", "m-ground.onnx")
    assert branch_files(tmp_path / "m-satellite.int8.onnx", "onnxruntime") == {
        "ground": tmp_path / "m-ground.int8.onnx", "satellite": tmp_path / "m-satellite.int8.onnx"}
    with pytest.raises(CvglError, match="no satellite branch m-satellite.onnx in .*--branch both"):
        branch_files(tmp_path / "m-ground.onnx", "onnxruntime")
    with pytest.raises(CvglError, match="m-ground.int8.onnx is int8 but --precision fp32 was asked for"):
        branch_files(tmp_path / "m-ground.int8.onnx", "onnxruntime", "fp32")
    touch(tmp_path, "renamed.onnx")
    with pytest.raises(CvglError, match="renamed.onnx is not named <model>-<ground|satellite>"):
        branch_files(tmp_path / "renamed.onnx", "onnxruntime")
    with pytest.raises(CvglError, match="not found"):
        branch_files(tmp_path / "nothing-ground.onnx", "onnxruntime")


def test_folder_with_two_models(tmp_path):
    touch(tmp_path, "a-ground.onnx", "a-satellite.onnx", "b-ground.onnx", "b-satellite.onnx")
    with pytest.raises(CvglError, match=r"holds several models \(a, b\); pass one of their files"):
        branch_files(tmp_path, "onnxruntime")
