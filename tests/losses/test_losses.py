"""Retrieval losses: DDAL, symmetric InfoNCE, soft-margin triplet (values checked by numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvgl_edge.errors import CvglError
from cvgl_edge.losses import (
    DDALoss,
    InfoNCELoss,
    SoftTripletLoss,
    build_loss,
    ddal_loss,
    ddal_weights,
    list_losses,
)
from cvgl_edge.losses.ddal import ddal_from_similarity

SIM = np.array([[0.9, 0.2, 0.5],
                [0.1, 0.6, -0.3],
                [0.4, 0.7, 0.8]])


def unit(batch: int, dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(batch, dim, generator=g), dim=-1)


def ddal_numpy(sim: np.ndarray, gamma: float, margin: float, alpha: float) -> float:
    """The paper formula, written literally, one direction (rows are anchors)."""
    losses = []
    for i in range(sim.shape[0]):
        neg = np.array([sim[i, j] for j in range(sim.shape[1]) if j != i])
        w = np.exp(gamma * neg) / np.exp(gamma * neg).sum()
        losses.append(np.log(1 + np.sum(w * np.exp(alpha * (neg - sim[i, i] + margin)))))
    return float(np.mean(losses))


def test_ddal_weights_sum_to_one_and_favour_hard_negatives() -> None:
    sim = torch.tensor(SIM, dtype=torch.float32)
    w = ddal_weights(sim, gamma=10.0)
    assert torch.allclose(w.sum(dim=1), torch.ones(3))
    assert torch.all(w.diagonal() == 0)
    assert w[0, 2] > w[0, 1]  # s=0.5 is harder than s=0.2
    assert w[2, 1] > w[2, 0]
    uniform = ddal_weights(sim, gamma=0.0)
    assert torch.allclose(uniform + torch.eye(3) * 0.5, torch.full((3, 3), 0.5))


@pytest.mark.parametrize(
    ("gamma", "margin", "alpha"), [(10.0, 0.1, 10.0), (1.0, 0.0, 1.0), (5.0, 0.3, 4.0)]
)
def test_ddal_known_value(gamma: float, margin: float, alpha: float) -> None:
    got = ddal_from_similarity(torch.tensor(SIM), gamma=gamma, margin=margin, alpha=alpha)
    assert got.item() == pytest.approx(ddal_numpy(SIM, gamma, margin, alpha), rel=1e-6)


def test_ddal_symmetric_on_descriptors() -> None:
    a, b = unit(4, 8, 0), unit(4, 8, 1)
    sim = (a @ b.t()).double().numpy()
    expected = 0.5 * (ddal_numpy(sim, 10, 0.1, 10) + ddal_numpy(sim.T, 10, 0.1, 10))
    assert ddal_loss(a, b).item() == pytest.approx(expected, rel=1e-5)
    assert DDALoss()(a, b).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("detach", [True, False])
def test_ddal_gradients_finite_even_with_large_alpha(detach: bool) -> None:
    a = unit(5, 16, 2).requires_grad_()
    b = unit(5, 16, 3).requires_grad_()
    loss = DDALoss(alpha=200.0, detach_weights=detach)(a, b)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0


def test_ddal_detach_changes_gradient_not_value() -> None:
    sim = torch.tensor(SIM, requires_grad=True)
    v1 = ddal_from_similarity(sim, detach_weights=True)
    (g1,) = torch.autograd.grad(v1, sim)
    v2 = ddal_from_similarity(sim, detach_weights=False)
    (g2,) = torch.autograd.grad(v2, sim)
    assert v1.item() == pytest.approx(v2.item())
    assert not torch.allclose(g1, g2)
    # with detached weights every negative is pushed away, every positive pulled in
    off = ~torch.eye(3, dtype=torch.bool)
    assert torch.all(g1[off] >= 0) and torch.all(g1.diagonal() < 0)
    # differentiating through the softmax pulls some easy negative towards its anchor
    assert g2[off].min() < 0


def test_ddal_decreases_as_positive_similarity_rises() -> None:
    values = []
    for pos in (0.2, 0.5, 0.8, 0.95):
        sim = torch.tensor(SIM)
        sim.fill_diagonal_(pos)
        values.append(ddal_from_similarity(sim).item())
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


def test_infonce_equals_cross_entropy() -> None:
    a, b = unit(3, 4, 4), unit(3, 4, 5)
    loss = InfoNCELoss(label_smoothing=0.1)
    assert loss.scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    assert any(p is loss.log_scale for p in loss.parameters())
    logits = (a @ b.t()).double().numpy() / 0.07

    def smoothed_ce(lg: np.ndarray, eps: float) -> float:
        logp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
        k = lg.shape[1]
        per_row = [-(1 - eps) * logp[i, i] - eps / k * logp[i].sum() for i in range(k)]
        return float(np.mean(per_row))

    expected = 0.5 * (smoothed_ce(logits, 0.1) + smoothed_ce(logits.T, 0.1))
    assert loss(a, b).item() == pytest.approx(expected, rel=1e-5)


def test_infonce_scale_clamped_and_learnable() -> None:
    loss = InfoNCELoss()
    with torch.no_grad():
        loss.log_scale.fill_(10.0)
    assert loss.scale.item() == pytest.approx(100.0)
    fixed = InfoNCELoss(learnable=False)
    assert list(fixed.parameters()) == []
    a, b = unit(4, 8, 6), unit(4, 8, 7)
    fresh = InfoNCELoss()
    fresh(a, b).backward()
    assert fresh.log_scale.grad is not None and torch.isfinite(fresh.log_scale.grad)


def test_infonce_normalises_its_inputs_and_can_leave_the_scale_unclamped() -> None:
    """Sample4Geo's loss normalises inside and does not clamp; ours normalises and clamps at
    max_scale unless max_scale=0."""
    a, b = unit(5, 6, 8), unit(5, 6, 9)
    loss = InfoNCELoss()
    assert loss(3.0 * a, 0.5 * b).item() == pytest.approx(loss(a, b).item(), rel=1e-6)
    unclamped = InfoNCELoss(max_scale=0)
    with torch.no_grad():
        unclamped.log_scale.fill_(math.log(250.0))
    assert unclamped.scale.item() == pytest.approx(250.0, rel=1e-5)
    assert build_loss("infonce", max_scale=0).max_scale == 0


def test_triplet_known_value() -> None:
    sim = SIM
    per_dir = []
    for s in (sim, sim.T):
        per_dir.append(np.mean([np.log1p(np.exp(10 * (s[i, j] - s[i, i])))
                                for i in range(3) for j in range(3) if i != j]))
    expected = float(np.mean(per_dir))
    # build descriptors whose similarity matrix is SIM: a = identity rows, b = SIM^T rows
    a = torch.eye(3, dtype=torch.float64)
    b = torch.tensor(sim.T)
    assert SoftTripletLoss(alpha=10.0)(a, b).item() == pytest.approx(expected, rel=1e-6)


def test_build_loss_registry() -> None:
    assert {"ddal", "infonce", "triplet"} <= set(list_losses())
    assert isinstance(build_loss("ddal", gamma=5.0), DDALoss)
    assert build_loss("ddal", gamma=5.0).gamma == 5.0
    assert isinstance(build_loss("infonce"), InfoNCELoss)
    assert isinstance(build_loss("triplet", alpha=5.0), SoftTripletLoss)
    with pytest.raises(CvglError, match="unknown loss 'arcface'; available: ddal, dice, infonce"):
        build_loss("arcface")
    with pytest.raises(CvglError, match="unknown option.*temperature.*valid"):
        build_loss("ddal", temperature=0.1)


@pytest.mark.parametrize("name", ["ddal", "infonce", "triplet"])
def test_bad_inputs(name: str) -> None:
    loss = build_loss(name)
    with pytest.raises(CvglError, match="equal shape"):
        loss(unit(3, 4, 0), unit(2, 4, 0))
    with pytest.raises(CvglError, match="at least 2"):
        loss(unit(1, 4, 0), unit(1, 4, 1))
