"""One table of runtime backends: a new backend is its opener plus one registration, and every
command (backend choice from a suffix, export folders, eval, bench planning, verify, help) takes it.

The new backend here ("mirror") runs ONNX files saved under another suffix through ONNX Runtime:
a real model, so the figures can be compared with the onnxruntime backend's.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cvgl_edge.bench.plan import Environment, Variant, skip_reason
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.evaluate import evaluate_source
from cvgl_edge.export.onnx.exporter import export_branch, save_onnx
from cvgl_edge.models import build_model
from cvgl_edge.runtime import open_encoder
from cvgl_edge.runtime.artifacts import backend_for, branch_files
from cvgl_edge.runtime.backends import BACKENDS, Backend, backend_named, backends_help, register_backend
from tests.support.tiny import TINY

DATA = "synthetic:16"


def _open_mirror(path: Path, device: str, threads: int | None):
    from cvgl_edge.runtime.onnxruntime.encoder import OrtEncoder

    encoder = OrtEncoder(path, device="cpu", threads=threads)
    encoder.info = replace(encoder.info, backend="mirror")
    return encoder


MIRROR = Backend("mirror", "ONNX files under another suffix (a test backend)", ("mir",), (".mirror",), "mirror",
                 "--backend mirror needs a .mirror file", needs_gpu=False,
                 unavailable=lambda precision, on_gpu, facts: "mirror runs on the CPU only" if on_gpu else None,
                 open=_open_mirror)


@pytest.fixture
def mirror():
    register_backend(MIRROR)
    yield MIRROR
    BACKENDS.pop(MIRROR.name)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(onnx folder, mirror folder) holding the same TINY model's two branches."""
    root = tmp_path_factory.mktemp("registry")
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    onnx_folder, mirror_folder = root / "onnx", root / "mirror"
    onnx_folder.mkdir()
    mirror_folder.mkdir()
    for view in ("ground", "satellite"):
        path = save_onnx(export_branch(model, view, 18), onnx_folder / f"geossm-nano-{view}.onnx")
        shutil.copyfile(path, mirror_folder / f"geossm-nano-{view}.mirror")
    return onnx_folder, mirror_folder


def test_a_registered_backend_is_taken_by_every_command(mirror, exports):
    onnx_folder, mirror_folder = exports
    assert backend_named("MIR") is mirror and "mirror" in backends_help()
    assert backend_for(mirror_folder / "geossm-nano-ground.mirror") == "mirror"
    assert branch_files(mirror_folder, "mirror")["satellite"].name == "geossm-nano-satellite.mirror"
    encoder = open_encoder(mirror_folder, "ground", "mirror")
    assert encoder.info.backend == "mirror" and encoder.info.view == "ground"
    encoder.close()
    facts = Environment(cuda=True)
    assert skip_reason(Variant("mirror", "fp32"), "cpu", facts) is None
    assert skip_reason(Variant("mirror", "fp32"), "cuda", facts) == "mirror runs on the CPU only"
    mirrored = evaluate_source(mirror_folder, "mirror", DATA, show_progress=False, device="cpu")
    reference = evaluate_source(onnx_folder, "onnxruntime", DATA, show_progress=False, device="cpu")
    assert mirrored["backend"] == "mirror"
    assert mirrored["directions"] == reference["directions"]


def test_an_unregistered_backend_is_one_line(exports):
    _, mirror_folder = exports
    with pytest.raises(CvglError, match="unknown --backend 'mirror'; choose torch, onnxruntime, tensorrt"):
        backend_named("mirror")
    with pytest.raises(CvglError, match=r"cannot tell the backend of geossm-nano-ground.mirror from its suffix"):
        backend_for(mirror_folder / "geossm-nano-ground.mirror")
    with pytest.raises(ValueError, match="already registered"):
        register_backend(BACKENDS["onnxruntime"])


def test_every_backend_answers_the_table_questions():
    for backend in BACKENDS.values():
        assert backend.suffixes and all(s.startswith(".") for s in backend.suffixes)
        assert backend.needs.startswith(f"--backend {backend.name} needs")
        assert (backend.open is None) == (backend.export_format is None)  # checkpoints open in the factory
        assert backend.unavailable("fp32", False, Environment()) is None or backend.needs_gpu
