"""cvgl-edge checkpoint format: round trip and clear errors."""

from __future__ import annotations

from pathlib import Path

import random

import numpy as np
import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model, checkpoint_payload, load_checkpoint, save_checkpoint

TINY = dict(ground_size=(32, 128), satellite_size=(64, 64), embed_dim=32, depth=1, cga_groups=4)


def test_round_trip(tmp_path: Path) -> None:
    model = build_model("geossm-nano", **TINY).eval()
    rng = {"python": random.getstate(), "numpy": np.random.get_state(),
           "torch": torch.get_rng_state()}
    path = save_checkpoint(model, tmp_path / "ckpt" / "model.pt", epoch=3, rng=rng)
    payload = torch.load(path, weights_only=False)
    assert payload["format"] == "cvgl-edge" and payload["format_version"] == 1
    assert payload["model_name"] == "geossm-nano" and payload["epoch"] == 3
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    x = torch.randn(1, 3, 32, 128)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x, "ground"), model.encode(x, "ground"))


def test_payload_needs_a_registry_model() -> None:
    with pytest.raises(CvglError, match="build_model"):
        checkpoint_payload(torch.nn.Linear(2, 2))


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CvglError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CvglError, match="not a cvgl-edge checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00junk")
    with pytest.raises(CvglError, match="cannot read checkpoint"):
        load_checkpoint(garbage)


def test_unknown_model_name(tmp_path: Path) -> None:
    payload = checkpoint_payload(build_model("geossm-nano", **TINY))
    payload["model_name"] = "vimgeo-xl"
    torch.save(payload, tmp_path / "x.pt")
    with pytest.raises(CvglError, match="unknown model 'vimgeo-xl'"):
        load_checkpoint(tmp_path / "x.pt")


def test_state_dict_for_another_config(tmp_path: Path) -> None:
    payload = checkpoint_payload(build_model("geossm-nano", **TINY))
    payload["state_dict"] = build_model("geossm-nano", **{**TINY, "embed_dim": 48}).state_dict()
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CvglError, match="does not match its model config: .*shape mismatches"):
        load_checkpoint(tmp_path / "mismatch.pt")
    payload["state_dict"] = build_model("geossm-nano", **TINY, share_weights=True).state_dict()
    torch.save(payload, tmp_path / "shared.pt")
    with pytest.raises(CvglError, match="missing.*unexpected .*backbone"):
        load_checkpoint(tmp_path / "shared.pt")
