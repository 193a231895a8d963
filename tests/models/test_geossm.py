"""GeoSSM dual encoder: shapes, unit-norm descriptors, readouts, views, input checks.

Sizes are tiny because the reference scan is a Python loop; the fast scan backends make
real sizes cheap, but the tests do not depend on them.
"""

from __future__ import annotations

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import GeoSSM, GeoSSMConfig, build_model, model_config

TINY = dict(ground_size=(32, 128), satellite_size=(64, 64), embed_dim=32, depth=2, cga_groups=4)


def images(batch: int, size: tuple[int, int]) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(batch))


def test_nano_preset_sizes() -> None:
    cfg = GeoSSMConfig.from_dict(model_config("geossm-nano"))
    assert cfg.num_patches("ground") == cfg.num_patches("satellite") == 64
    assert cfg.descriptor_dim == 512


def test_small_preset_is_the_paper_model() -> None:
    cfg = GeoSSMConfig.from_dict(model_config("geossm-small"))
    assert (cfg.embed_dim, cfg.depth, cfg.cls_token, cfg.readout) == (384, 24, True, "cga")
    assert cfg.grid("ground") == (8, 32) and cfg.grid("satellite") == (16, 16)
    assert cfg.descriptor_dim == 256 * 24 == 6144
    assert GeoSSMConfig.from_dict(model_config("geossm-tiny")).descriptor_dim == 3072


def test_small_one_layer_forward_gives_6144() -> None:
    model = build_model("geossm-small", depth=1).eval()
    with torch.no_grad():
        g, s = model(images(1, (128, 512)), images(1, (256, 256)))
    assert g.shape == s.shape == (1, 6144)


@pytest.mark.parametrize("share", [False, True])
def test_forward_shapes_unit_norm(share: bool) -> None:
    model = build_model("geossm-nano", **TINY, share_weights=share)
    assert model.descriptor_dim == 16 * 4
    assert model.input_sizes == {"ground": (32, 128), "satellite": (64, 64)}
    g, s = model(images(2, (32, 128)), images(2, (64, 64)))
    for d in (g, s):
        assert d.shape == (2, 64) and d.dtype == torch.float32
        assert torch.allclose(d.norm(dim=-1), torch.ones(2), atol=1e-5)
    (g * s).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


def test_shared_weights_structure() -> None:
    sep = build_model("geossm-nano", **TINY)
    shared = build_model("geossm-nano", **TINY, share_weights=True)
    n_sep = sum(p.numel() for p in sep.parameters())
    n_shared = sum(p.numel() for p in shared.parameters())
    branch = sum(p.numel() for p in sep.ground.parameters())
    # shared = one branch + the satellite view's own position embedding (17 rows x 32)
    assert n_shared == branch + 17 * 32 and n_sep == 2 * branch
    assert shared.branch("ground") is shared.branch("satellite") is shared.backbone
    assert sep.branch("drone") is sep.satellite and sep.branch("ground") is sep.ground
    same_grid = build_model("geossm-nano", **{**TINY, "ground_size": (64, 64)}, share_weights=True)
    assert not hasattr(same_grid, "satellite_pos_embed")


@pytest.mark.parametrize(("readout", "dim"), [("cls", 32), ("mean", 32)])
def test_alternative_readouts(readout: str, dim: int) -> None:
    model = build_model("geossm-nano", **{**TINY, "depth": 1}, readout=readout)
    d = model.encode(images(2, (64, 64)), "satellite")
    assert d.shape == (2, dim) == (2, model.descriptor_dim)


def test_cga_readout_values() -> None:
    from cvgl_edge.models.readout import CGAReadout

    tokens = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    out = CGAReadout(groups=2)(tokens, None)
    assert out.shape == (2, 6)
    assert torch.equal(out[0, :2], torch.tensor([1.5, 5.5]))  # means of 0..3 and 4..7


def test_drone_alias_and_unknown_view() -> None:
    model = build_model("geossm-nano", **{**TINY, "depth": 1}).eval()
    x = images(1, (64, 64))
    with torch.no_grad():
        assert torch.equal(model.encode(x, "drone"), model.encode(x, "satellite"))
    with pytest.raises(CvglError, match="unknown view 'street'.*ground, satellite, drone"):
        model.encode(x, "street")


def test_wrong_image_size_names_expected_and_got() -> None:
    model = build_model("geossm-nano", **{**TINY, "depth": 1})
    with pytest.raises(CvglError, match="ground images must be 32x128 \\(HxW\\), got 64x64"):
        model.encode(images(1, (64, 64)), "ground")
    with pytest.raises(CvglError, match="satellite images must be"):
        model.encode(torch.randn(3, 64, 64), "satellite")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ground_size": (30, 128)}, "not a multiple of patch_size"),
        ({"cga_groups": 5}, "must divide embed_dim"),
        ({"satellite_size": (32, 32)}, "same number of patches"),
        ({"readout": "cls", "cls_token": False}, "needs cls_token"),
        ({"readout": "gem"}, "unknown readout"),
    ],
)
def test_bad_configs(overrides: dict, message: str) -> None:
    with pytest.raises(CvglError, match=message):
        GeoSSM({**TINY, **overrides})


def test_config_round_trip_is_plain() -> None:
    cfg = GeoSSMConfig(**TINY)
    d = cfg.to_dict()
    assert d["ground_size"] == [32, 128]
    assert all(isinstance(v, (int, float, str, bool, list)) for v in d.values())
    assert GeoSSMConfig.from_dict(d) == cfg
