"""Loading official-format Vim checkpoints: pos_embed re-gridding, cls handling, errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model
from cvgl_edge.models.vim import VisionMamba
from cvgl_edge.models.vim_weights import load_vim_weights, resize_pos_embed

from tests.support.vim_shapes import official_shapes

DEPTH = 2  # a 2-layer slice of the official Vim-S layout keeps the file small


def fake_official_state(d: int = 384, depth: int = DEPTH) -> dict[str, torch.Tensor]:
    """Random tensors with the official Vim key names/shapes, plus an ImageNet head."""
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(*s, generator=g) for k, s in official_shapes(d, depth).items()}
    sd["head.weight"] = torch.randn(1000, d, generator=g)
    sd["head.bias"] = torch.randn(1000, generator=g)
    # make the middle (index 98) cls row recognisable
    sd["pos_embed"][0, 98] = 7.0
    return sd


@pytest.fixture(scope="module")
def vim_s_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vim") / "vim_s_midclstok.pth"
    args = argparse.Namespace(model="vim_small_patch16_224", lr=5e-4)
    torch.save({"model": fake_official_state(), "epoch": 300, "args": args}, path)
    return path


@pytest.mark.parametrize("size", [(256, 256), (128, 512)])
@pytest.mark.parametrize("cls", [True, False])
def test_load_official_into_target_grid(vim_s_file: Path, size: tuple[int, int], cls: bool) -> None:
    model = VisionMamba(size, embed_dim=384, depth=DEPTH, cls_token=cls)
    report = load_vim_weights(model, vim_s_file)
    src = fake_official_state()
    assert report.missing == [] and report.unexpected == []
    assert "head.weight" in report.ignored
    assert torch.equal(model.layers[1].mixer.x_proj_b.weight, src["layers.1.mixer.x_proj_b.weight"])
    n = model.num_patches
    assert model.pos_embed.shape == (1, n + int(cls), 384)
    if cls:
        assert torch.equal(model.cls_token, src["cls_token"])
        assert torch.all(model.pos_embed[0, n // 2] == 7.0)  # cls row moved to the new middle
    else:
        assert "cls_token" in report.ignored
    assert not torch.any(model.pos_embed[0, :n // 2] == 7.0)


def test_same_grid_keeps_pos_embed_exactly(vim_s_file: Path) -> None:
    model = VisionMamba((224, 224), embed_dim=384, depth=DEPTH, cls_token=True)
    load_vim_weights(model, vim_s_file)
    assert torch.equal(model.pos_embed, fake_official_state()["pos_embed"])


def test_resize_pos_embed_geometry() -> None:
    # a constant field stays constant; the middle cls row is found at N//2 and re-inserted there
    pos = torch.full((1, 197, 4), 0.5)
    pos[0, 98] = -1.0
    out = resize_pos_embed(pos, (8, 32), dst_cls=True)
    assert out.shape == (1, 257, 4)
    assert torch.all(out[0, 128] == -1.0)
    rest = torch.cat([out[0, :128], out[0, 129:]])
    assert torch.allclose(rest, torch.full_like(rest, 0.5), atol=1e-6)
    # "first" convention (DeiT-style checkpoints) and dropping the cls row
    pos_first = torch.zeros(1, 5, 2)
    pos_first[0, 0] = 3.0
    out = resize_pos_embed(pos_first, (2, 2), dst_cls=False, src_cls_position="first")
    assert torch.equal(out, torch.zeros(1, 4, 2))
    # a row layout that keeps ordering: row-major grid values survive an identity resize
    grid = torch.arange(16.0).reshape(1, 16, 1)
    assert torch.equal(resize_pos_embed(grid, (4, 4), dst_cls=False), grid)


def test_bare_state_dict_and_safetensors(tmp_path: Path) -> None:
    sd = fake_official_state()
    bare = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, bare)
    st = tmp_path / "vim.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    for path in (bare, st):
        model = VisionMamba((256, 256), embed_dim=384, depth=DEPTH)
        report = load_vim_weights(model, path)
        assert report.missing == [] and report.unexpected == []
        assert torch.equal(model.patch_embed.proj.weight, sd["patch_embed.proj.weight"])


def test_tiny_weights_into_small_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "vim_t.pth"
    torch.save({"model": fake_official_state(d=192)}, path)
    model = VisionMamba((256, 256), embed_dim=384, depth=DEPTH)
    with pytest.raises(CvglError, match="width 192, model width 384"):
        load_vim_weights(model, path)


def test_depth_mismatch_is_reported_and_strict_fails(vim_s_file: Path) -> None:
    model = VisionMamba((256, 256), embed_dim=384, depth=1)
    report = load_vim_weights(model, vim_s_file)
    assert any(k.startswith("layers.1.") for k in report.unexpected)
    with pytest.raises(CvglError, match="does not match"):
        load_vim_weights(model, vim_s_file, strict=True)


def test_missing_or_garbage_file(tmp_path: Path) -> None:
    model = VisionMamba((32, 32), embed_dim=16, depth=1)
    with pytest.raises(CvglError, match="not found"):
        load_vim_weights(model, tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CvglError, match="cannot read"):
        load_vim_weights(model, bad)


@pytest.mark.parametrize("share", [False, True])
def test_geossm_load_pretrained(vim_s_file: Path, share: bool) -> None:
    model = build_model("geossm-small", depth=DEPTH, share_weights=share)
    reports = model.load_pretrained(vim_s_file)
    assert all(r.missing == [] and r.unexpected == [] for r in reports.values())
    if share:
        assert torch.all(model.satellite_pos_embed[0, 128] == 7.0)
        assert model.backbone.pos_embed.shape == (1, 257, 384)
    else:
        assert torch.equal(model.ground.layers[0].mixer.D, model.satellite.layers[0].mixer.D)
