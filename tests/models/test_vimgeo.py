"""VimGeo: the shared-trunk Vim presets, the descriptor_dim projection, checkpoints,
Vim weight loading through GeoSSM's loader, and 2 training steps through the CLI."""

import json

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model, load_checkpoint, model_config, save_checkpoint
from cvgl_edge.models.checkpoint import checkpoint_payload, model_from_payload
from tests.support.cli import train_cli

NANO = dict(embed_dim=32, depth=1, ground_size=(32, 32), satellite_size=(32, 32), descriptor_dim=32)


def test_paper_preset():
    cfg = model_config("vimgeo-small")
    assert cfg["embed_dim"] == 384 and cfg["depth"] == 24 and cfg["share_weights"] is True
    assert cfg["ground_size"] == [384, 384] == cfg["satellite_size"] and cfg["descriptor_dim"] == 384
    model = build_model("vimgeo-small")
    assert model.descriptor_dim == 384 and not hasattr(model, "head")
    assert model.backbone.grid == (24, 24) and not hasattr(model, "satellite_pos_embed")
    params = sum(p.numel() for p in model.parameters())
    assert 25.0e6 < params < 26.5e6  # paper: 26.0M


@pytest.mark.parametrize("dim", [16, 32, 64])
def test_descriptor_dim_projection(dim):
    torch.manual_seed(0)
    model = build_model("vimgeo-nano", **{**NANO, "descriptor_dim": dim}).eval()
    x = torch.randn(2, 3, 32, 32)
    g, s = model(x, x)
    assert g.shape == (2, dim) and torch.allclose(g.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(g, s)  # one shared trunk, same images
    assert hasattr(model, "head") == (dim != 32)
    assert torch.equal(model.encode(x, "drone"), s)


def test_mean_readout_separate_weights_and_errors():
    model = build_model("vimgeo-nano", **NANO, readout="mean", share_weights=False)
    assert model.branch("ground") is not model.branch("satellite")
    assert model.encode(torch.randn(1, 3, 32, 32), "ground").shape == (1, 32)
    with pytest.raises(CvglError, match="descriptor_dim"):
        build_model("vimgeo-nano", descriptor_dim=0)
    with pytest.raises(CvglError, match="32x32"):
        build_model("vimgeo-nano", **NANO).encode(torch.randn(1, 3, 64, 64), "satellite")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("vimgeo-nano", **{**NANO, "descriptor_dim": 16}).eval()
    back = load_checkpoint(save_checkpoint(model, tmp_path / "v.pt"))
    x = torch.randn(2, 3, 32, 32)
    assert type(back).__name__ == "VimGeo" and back.config.to_dict() == model.config.to_dict()
    assert torch.equal(back.encode(x, "satellite"), model.encode(x, "satellite"))
    again = model_from_payload(checkpoint_payload(model), "memory")
    assert torch.equal(again.encode(x, "ground"), model.encode(x, "ground"))


def test_load_pretrained_vim_weights(tmp_path):
    torch.manual_seed(0)
    source = build_model("geossm-nano", embed_dim=32, depth=1, cga_groups=8)  # 14x14 Vim-like file
    state = {k.removeprefix("ground."): v for k, v in source.state_dict().items() if k.startswith("ground.")}
    torch.save({"model": state}, tmp_path / "vim.pth")
    model = build_model("vimgeo-nano", **NANO)
    reports = model.load_pretrained(tmp_path / "vim.pth")
    assert set(reports) == {"shared"}
    assert torch.equal(model.backbone.layers[0].mixer.in_proj.weight, state["layers.0.mixer.in_proj.weight"])


def test_cli_trains_vimgeo_nano_two_steps(tmp_path):
    result = train_cli("--model", "vimgeo-nano", "--data", "synthetic:64", "--max-steps", "2", "--batch-size", "8",
                       "--loss", "infonce+dice+kl", "--loss-param", "dice.weight=0.5",
                       "--out", str(tmp_path / "run"), "--no-progress", "--json", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["model"] == "vimgeo-nano" and record["steps"] == 2
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert set(state["loss_state"]) == {"parts.infonce.log_scale"}
    assert state["train_config"]["loss"] == "infonce+dice+kl"
