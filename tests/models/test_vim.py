"""Vision Mamba backbone: official key/shape layout, param counts, bidirectional mixer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cvgl_edge import ops
from cvgl_edge.models.mixer import BiMambaMixer, depthwise_conv1d, inverse_softplus
from cvgl_edge.models.vim import VisionMamba
from cvgl_edge.ops.reference import selective_scan_reference
from tests.support.vim_shapes import official_layer_shapes, official_shapes


def test_vim_small_keys_and_shapes_match_official() -> None:
    model = VisionMamba((224, 224), embed_dim=384, depth=2, cls_token=True)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == official_shapes(384, 2)
    # official Vim-S shapes for D=384: d_inner 768, dt_rank 24, x_proj out 24 + 2*16
    assert got["layers.0.mixer.in_proj.weight"] == (1536, 384)
    assert got["layers.0.mixer.x_proj.weight"] == (56, 768)
    assert got["layers.0.mixer.dt_proj.weight"] == (768, 24)


def test_vim_small_per_layer_params() -> None:
    layer_params = sum(math.prod(s) for s in official_layer_shapes(384).values())
    model = VisionMamba((32, 32), embed_dim=384, depth=1, cls_token=False)
    assert sum(p.numel() for p in model.layers[0].parameters()) == layer_params == 1_043_328


def test_init_values() -> None:
    m = BiMambaMixer(32, n_layers=4)
    for a_log in (m.A_log, m.A_b_log):
        assert torch.allclose(a_log[0], torch.log(torch.arange(1, 17, dtype=torch.float32)))
    assert torch.all(m.D == 1) and torch.all(m.D_b == 1)
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    assert torch.allclose(F.softplus(inverse_softplus(torch.tensor([1e-3, 0.05]))),
                          torch.tensor([1e-3, 0.05]), rtol=1e-4)


def test_init_follows_the_official_vim_code_parameter_by_parameter() -> None:
    """Vim (mamba_simple.Mamba + models_mamba._init_weights): every Linear bias is zeroed except the
    forward dt_proj.bias (marked no-reinit), so dt_proj_b.bias starts at 0 (softplus 0.693)."""
    torch.manual_seed(0)
    model = VisionMamba((32, 32), embed_dim=32, depth=3, cls_token=True)
    dt_rank = math.ceil(32 / 16)
    for layer in model.layers:
        m = layer.mixer
        assert torch.all(m.dt_proj_b.bias == 0)
        assert torch.allclose(F.softplus(m.dt_proj_b.bias), torch.full((64,), math.log(2.0)))
        dt = F.softplus(m.dt_proj.bias)
        assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6 and dt.std() > 0  # log-uniform dt
        for proj in (m.dt_proj, m.dt_proj_b):  # U(+-dt_rank^-0.5): Mamba's and nn.Linear's default alike
            assert proj.weight.abs().max() <= dt_rank**-0.5
        for a_log in (m.A_log, m.A_b_log):
            assert torch.allclose(a_log, torch.log(torch.arange(1, 17.0)).expand(64, -1))
        assert torch.all(m.D == 1) and torch.all(m.D_b == 1)
        # out_proj: kaiming-uniform(a=sqrt 5) bound 1/sqrt(fan_in), divided by sqrt(depth)
        assert m.out_proj.weight.abs().max() <= 1 / math.sqrt(64) / math.sqrt(3) + 1e-7
        assert m.in_proj.bias is None and m.x_proj.bias is None and m.out_proj.bias is None
        assert torch.all(layer.norm.weight == 1)
    assert torch.all(model.patch_embed.proj.bias == 0) and torch.all(model.norm_f.weight == 1)
    assert float(model.pos_embed.detach().std()) == pytest.approx(0.02, rel=0.2)
    assert 0 < float(model.cls_token.abs().max()) < 0.2  # trunc-normal(0.02), cut at +-2 (absolute, as timm)


def test_backward_dt_bias_dt_range_reproduces_the_earlier_init() -> None:
    m = BiMambaMixer(32, n_layers=4, backward_dt_bias="dt-range")
    dt = F.softplus(m.dt_proj_b.bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="backward_dt_bias must be one of"):
        BiMambaMixer(32, backward_dt_bias="forward")


def test_anticausal_conv_equals_flip_conv_flip() -> None:
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 6, 11), torch.randn(6, 1, 4), torch.randn(6)
    causal = F.conv1d(x, w, b, padding=3, groups=6)[..., :11]
    assert torch.allclose(depthwise_conv1d(x, w, b), causal, atol=1e-6)
    flipped = F.conv1d(x.flip(-1), w, b, padding=3, groups=6)[..., :11].flip(-1)
    assert torch.allclose(depthwise_conv1d(x, w, b, reverse=True), flipped, atol=1e-6)


def _branch_on(mixer: BiMambaMixer, x, z, conv, x_proj, dt_proj, a_log, d_skip):
    """Forward-branch math written out independently of the mixer (no reverse flags)."""
    length, r, n = x.shape[-1], mixer.dt_rank, mixer.d_state
    u = F.silu(F.conv1d(x, conv.weight, conv.bias, padding=3, groups=x.shape[1])[..., :length])
    dbl = x_proj(u.transpose(1, 2))
    dt, b_ssm, c_ssm = dbl[..., :r], dbl[..., r:r + n], dbl[..., r + n:]
    delta = (dt @ dt_proj.weight.t()).transpose(1, 2)
    return selective_scan_reference(
        u, delta, -torch.exp(a_log), b_ssm.transpose(1, 2), c_ssm.transpose(1, 2), D=d_skip,
        z=z, delta_bias=dt_proj.bias, delta_softplus=True,
    )


def test_backward_branch_is_forward_math_on_flipped_sequence() -> None:
    torch.manual_seed(0)
    m = BiMambaMixer(16, n_layers=2)
    with torch.no_grad():  # make the two directions clearly different
        for p in (m.A_b_log, m.D_b, m.conv1d_b.weight, m.x_proj_b.weight):
            p.add_(0.3 * torch.randn_like(p))
    h = torch.randn(2, 9, 16)
    with torch.no_grad():
        x, z = m.in_proj(h).transpose(1, 2).chunk(2, dim=1)
        y_f = _branch_on(m, x, z, m.conv1d, m.x_proj, m.dt_proj, m.A_log, m.D)
        y_b = _branch_on(m, x.flip(-1), z.flip(-1), m.conv1d_b, m.x_proj_b, m.dt_proj_b,
                         m.A_b_log, m.D_b).flip(-1)
        expected = m.out_proj(((y_f + y_b) / 2).transpose(1, 2))
        got = m(h)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_mixer_looks_up_scan_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    original = ops.selective_scan

    def spy(*args, **kwargs):
        calls.append(kwargs["reverse"])
        return original(*args, **kwargs)

    monkeypatch.setattr(ops, "selective_scan", spy)
    BiMambaMixer(8)(torch.randn(1, 5, 8))
    assert calls == [False, True]


def test_forward_shapes_and_middle_cls() -> None:
    torch.manual_seed(0)
    model = VisionMamba((32, 64), embed_dim=32, depth=2, cls_token=True).eval()
    images = torch.randn(2, 3, 32, 64)
    patches, cls = model(images)
    assert patches.shape == (2, 8, 32) and cls.shape == (2, 32)
    assert patches.dtype == torch.float32
    no_cls = VisionMamba((32, 64), embed_dim=32, depth=2, cls_token=False)
    p2, c2 = no_cls(images)
    assert p2.shape == (2, 8, 32) and c2 is None


def test_cls_token_inserted_at_middle_before_pos_embed() -> None:
    torch.manual_seed(0)
    model = VisionMamba((32, 64), embed_dim=16, depth=0, cls_token=True)  # no layers: norm only
    images = torch.randn(1, 3, 32, 64)
    patches, cls = model(images)
    n = model.num_patches
    assert n // 2 == 4
    expected_cls = model.norm_f(model.cls_token[0, 0] + model.pos_embed[0, n // 2])
    assert torch.allclose(cls[0], expected_cls, atol=1e-6)
    tokens = model.patch_embed(images) + torch.cat(
        [model.pos_embed[:, : n // 2], model.pos_embed[:, n // 2 + 1:]], dim=1)
    assert torch.allclose(patches, model.norm_f(tokens), atol=1e-6)


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    model = VisionMamba((32, 32), embed_dim=16, depth=3, cls_token=False, drop_path=0.5)
    assert [layer.drop_path.p for layer in model.layers] == [0.0, 0.0, 0.25]
    x = torch.randn(1, 3, 32, 32)
    model.eval()
    a, _ = model(x)
    b, _ = model(x)
    assert torch.equal(a, b)
