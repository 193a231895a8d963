"""LRFR: GSRA and SALAD pieces, the lrfr / lrfr-nano presets, ImageNet ConvNeXt loading,
checkpoints, and 2 training steps through the CLI."""

import json
import math

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model, load_checkpoint, model_config, save_checkpoint
from cvgl_edge.models.checkpoint import checkpoint_payload, model_from_payload
from cvgl_edge.models.convnext import convnext_state_dict_template
from cvgl_edge.models.gsra import GSRA
from cvgl_edge.models.salad import SALAD, log_sinkhorn
from tests.support.cli import train_cli

TINY_LRFR = dict(convnext_dims=(8, 16, 32), convnext_depths=(1, 1, 1), gsra_groups=4, salad_clusters=4,
                 salad_dim=4, salad_hidden=16)


def test_paper_preset_sizes():
    cfg = model_config("lrfr")
    assert cfg["convnext_dims"] == [96, 192, 384] and cfg["convnext_depths"] == [3, 3, 9]
    assert cfg["salad_clusters"] == 128 and cfg["salad_dim"] == 64 and cfg["salad_iterations"] == 3
    assert cfg["ground_size"] == [384, 384] and cfg["share_weights"] is True
    with torch.device("meta"):
        model = build_model("lrfr")
        cvusa = build_model("lrfr", ground_size=(256, 512), satellite_size=(256, 512))
    assert model.descriptor_dim == 8192
    assert model.backbone.gsra.grid == (24, 24) and cvusa.backbone.gsra.grid == (16, 32)
    # ConvNeXt-Tiny to stage 3 (~12.3M) + GSRA + SALAD: the paper's Table II gives 13.1M
    assert 12.5e6 < sum(p.numel() for p in model.parameters()) < 13.5e6


def test_gsra_shape_and_gradient():
    torch.manual_seed(0)
    gsra = GSRA(16, (3, 5), groups=4)
    x = torch.randn(2, 16, 3, 5, requires_grad=True)
    y = gsra(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gsra.parameters())
    # every output is the input times gates in (0, 1)
    ratio = (y / x).detach()
    assert ((ratio > 0) & (ratio < 1)).all()
    with pytest.raises(CvglError, match="must divide"):
        GSRA(16, (3, 5), groups=3)
    with pytest.raises(CvglError, match="built for"):
        gsra(torch.randn(1, 16, 4, 4))


def test_sinkhorn_marginals():
    torch.manual_seed(0)
    n, m = 12, 5
    scores = torch.randn(3, n, m + 1) * 3
    log_mu = torch.zeros(n)
    log_kappa = torch.cat([torch.zeros(m), torch.tensor([math.log(n - m)])])
    p3 = log_sinkhorn(scores, log_mu, log_kappa, 3).exp()
    assert torch.allclose(p3.sum(2), torch.ones(3, n), atol=1e-5)  # rows exact after any count
    p = log_sinkhorn(scores, log_mu, log_kappa, 300).exp()
    assert torch.allclose(p.sum(1), log_kappa.exp().expand(3, -1), atol=1e-3)  # columns -> [1_m, n - m]
    assert torch.allclose(p.sum(2), torch.ones(3, n), atol=1e-5)


def test_salad_assignment_and_descriptor():
    torch.manual_seed(0)
    salad = SALAD(16, clusters=4, cluster_dim=3, hidden=8, iterations=3).eval()
    x = torch.randn(2, 16, 3, 4)
    p = salad.assignment(x)
    assert p.shape == (2, 12, 5) and p.dtype == torch.float32
    assert torch.allclose(p.sum(2), torch.ones(2, 12), atol=1e-5)
    v = salad(x)
    assert v.shape == (2, 12)
    norms = v.reshape(2, 3, 4).norm(dim=1)  # intra-normalised clusters; feature-major: entry k * m + j
    assert torch.allclose(norms, torch.ones(2, 4), atol=1e-5)
    with pytest.raises(CvglError, match="more feature positions"):
        salad.assignment(torch.randn(1, 16, 2, 2))


def test_encode_views_and_shared_branch():
    torch.manual_seed(0)
    model = build_model("lrfr-nano", **TINY_LRFR).eval()
    x = torch.randn(2, 3, 64, 64)
    g, s = model(x, x)
    assert g.shape == (2, 16) and torch.allclose(g.norm(dim=1), torch.ones(2))
    assert torch.allclose(g, s)  # one shared branch, same images
    assert torch.equal(model.encode(x, "drone"), s)
    assert model.branch("ground") is model.branch("satellite")
    with pytest.raises(CvglError, match="64x64"):
        model.encode(torch.randn(1, 3, 32, 64), "ground")
    sep = build_model("lrfr-nano", **TINY_LRFR, share_weights=False, ground_size=(64, 128))
    assert sep.branch("ground") is not sep.branch("satellite")
    assert sep.encode(torch.randn(1, 3, 64, 128), "ground").shape == (1, 16)


@pytest.mark.parametrize("override,fragment", [
    ({"ground_size": (64, 128)}, "one input size for both views"),
    ({"ground_size": (60, 64)}, "multiple of the backbone stride 16"),
    ({"salad_clusters": 16}, "more than salad_clusters"),
    ({"gsra_groups": 5}, "must divide"),
    ({"convnext_depths": (1, 1)}, "one entry per stage"),
    ({"nonsense": 1}, "unknown option"),
])
def test_config_errors(override, fragment):
    with pytest.raises(CvglError, match=fragment):
        build_model("lrfr-nano", **override)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("lrfr-nano", **TINY_LRFR).eval()
    path = save_checkpoint(model, tmp_path / "lrfr.pt")
    back = load_checkpoint(path)
    x = torch.randn(2, 3, 64, 64)
    assert type(back).__name__ == "LRFR" and back.config.to_dict() == model.config.to_dict()
    assert torch.equal(back.encode(x, "satellite"), model.encode(x, "satellite"))
    again = model_from_payload(checkpoint_payload(model), "memory")
    assert torch.equal(again.encode(x, "ground"), model.encode(x, "ground"))


def test_load_pretrained_from_torchvision_keyed_file(tmp_path):
    model = build_model("lrfr-nano")  # ConvNeXt 16/32/64, depths 1, 1, 2
    template = convnext_state_dict_template(dims=(16, 32, 64, 128), depths=(1, 1, 2, 1), num_classes=10)
    state = {k: torch.randn(*shape) for k, shape in template.items()}
    torch.save(state, tmp_path / "convnext.pth")
    reports = model.load_pretrained(tmp_path / "convnext.pth")
    report = reports["shared"]
    assert report.loaded == len(model.backbone.trunk.state_dict()) and not report.missing
    assert torch.equal(model.backbone.trunk.features[5][1].layer_scale, state["features.5.1.layer_scale"])
    sep = build_model("lrfr-nano", share_weights=False)
    assert set(sep.load_pretrained(tmp_path / "convnext.pth")) == {"ground", "satellite"}
    with pytest.raises(CvglError, match="shape"):
        build_model("lrfr-nano", convnext_dims=(8, 16, 32)).load_pretrained(tmp_path / "convnext.pth")


def test_cli_trains_lrfr_nano_two_steps(tmp_path):
    result = train_cli("--model", "lrfr-nano", "--data", "synthetic:64", "--max-steps", "2", "--batch-size", "8",
                 "--loss", "triplet-semihard", "--out", str(tmp_path / "run"), "--no-progress",
                 "--json", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["model"] == "lrfr-nano" and record["steps"] == 2
    model = load_checkpoint(tmp_path / "run" / "last.pt")
    assert model.model_name == "lrfr-nano"


def test_salad_flattens_feature_major_like_the_reference_and_keeps_the_old_order_on_request():
    torch.manual_seed(0)
    salad = SALAD(16, clusters=4, cluster_dim=3, hidden=8, iterations=3).eval()
    x = torch.randn(2, 16, 3, 4)
    p = salad.assignment(x)[:, :, :-1]                     # (B, n, m)
    f = salad.features(x).flatten(2)                       # (B, d, n)
    # V[k, j] = sum_i F(t_i)[k] P[i, j]; normalised over k; flattened with k outer, j inner
    v = torch.nn.functional.normalize(torch.einsum("bdn,bnm->bdm", f, p), dim=1)
    expected = torch.stack([torch.stack([v[b, k, j] for k in range(3) for j in range(4)]) for b in range(2)])
    assert torch.allclose(salad(x), expected, atol=1e-6)
    old = SALAD(16, clusters=4, cluster_dim=3, hidden=8, iterations=3, order="cluster-major").eval()
    old.load_state_dict(salad.state_dict())
    assert torch.allclose(old(x), v.transpose(1, 2).flatten(1), atol=1e-6)
    with pytest.raises(CvglError, match="SALAD order must be one of"):
        SALAD(16, clusters=4, order="cluster-first")


def test_checkpoints_written_before_salad_order_keep_their_descriptors(tmp_path):
    from cvgl_edge.models.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build_model("lrfr-nano", **TINY_LRFR, salad_order="cluster-major").eval()
    path = tmp_path / "old.pt"
    save_checkpoint(model, path)
    payload = torch.load(path, weights_only=False)
    del payload["model_config"]["salad_order"]  # as written by cvgl-edge before the option existed
    torch.save(payload, path)
    loaded = load_checkpoint(path)
    assert loaded.config.salad_order == "cluster-major"
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(loaded.encode(x, "satellite"), model.encode(x, "satellite"), atol=1e-6)
