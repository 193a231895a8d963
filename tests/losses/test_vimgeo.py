"""VimGeo's Dice and KL losses, LRFR's semi-hard soft-margin triplet, and combined losses:
values on hand-made inputs, gradient directions, parsing errors, state_dict round trips."""

import math

import pytest
import torch
import torch.nn.functional as F

from cvgl_edge.errors import CvglError
from cvgl_edge.losses import CombinedLoss, build_loss, list_losses
from cvgl_edge.losses.dice import dice_from_similarity
from cvgl_edge.losses.kl import KLLoss
from cvgl_edge.losses.triplet import semihard_negatives, semihard_triplet_from_similarity


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_dice_value_on_orthogonal_pairs():
    a = _unit([1, 0], [0, 1])  # sim = identity
    s = 2.0
    p, q = math.exp(s) / (math.exp(s) + 1), 1 / (math.exp(s) + 1)
    expected = 1 - 2 * p / (p * p + q * q + 1)
    assert build_loss("dice", scale=s)(a, a).item() == pytest.approx(expected, rel=1e-6)
    # a perfect, confident match approaches 0; a uniform prediction over B=2 gives 1 - 2*0.5/1.5
    assert build_loss("dice", scale=200.0)(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert build_loss("dice", scale=0.0)(a, a).item() == pytest.approx(1 - 1 / 1.5, rel=1e-6)


def test_dice_gradient_directions():
    sim = torch.tensor([[0.5, 0.2, 0.1], [0.3, 0.4, 0.0], [0.1, 0.2, 0.6]], requires_grad=True)
    dice_from_similarity(sim, 10.0).backward()
    grad = sim.grad
    assert (grad.diagonal() < 0).all()  # raising the positive lowers the loss
    off = grad[~torch.eye(3, dtype=torch.bool)]
    assert (off > 0).all()  # raising a negative raises it


def test_kl_zero_for_symmetric_similarity_and_known_value():
    a = _unit([1, 0], [0, 1], [1, 1])
    assert build_loss("kl")(a, a).item() == pytest.approx(0.0, abs=1e-7)  # s = a a^T is symmetric
    # hand computation for B=2: rows of s vs columns of s
    a2, b2 = _unit([1, 0], [0, 1]), _unit([1, 0], [1, 1])
    s = (a2 @ b2.t()).tolist()  # [[1, c], [0, c]], c = 1/sqrt(2)
    scale = 3.0

    def softmax(v):
        e = [math.exp(scale * x) for x in v]
        return [x / sum(e) for x in e]

    total = 0.0
    for i in range(2):
        p, q = softmax([s[i][0], s[i][1]]), softmax([s[0][i], s[1][i]])
        total += 0.5 * sum(pi * math.log(pi / qi) + qi * math.log(qi / pi) for pi, qi in zip(p, q))
    assert KLLoss(scale=scale)(a2, b2).item() == pytest.approx(total / 2, rel=1e-5)


def test_semihard_mining_choices_and_value():
    sim = torch.tensor([[0.9, 0.5, 0.8],   # both negatives below 0.9: the closer one, 0.8 (col 2)
                        [0.95, 0.6, 0.1],  # 0.95 beats the positive; 0.1 is the one below (col 2)
                        [0.7, 0.3, 0.2]])  # both beat the positive: the least similar, 0.3 (col 1)
    assert semihard_negatives(sim).tolist() == [2, 2, 1]
    alpha = 10.0
    chosen = [(0.8, 0.9), (0.1, 0.6), (0.3, 0.2)]
    expected = sum(math.log1p(math.exp(alpha * (n - p))) for n, p in chosen) / 3
    assert semihard_triplet_from_similarity(sim, alpha).item() == pytest.approx(expected, rel=1e-5)
    sim.requires_grad_(True)
    semihard_triplet_from_similarity(sim, alpha).backward()
    assert sim.grad[0, 2] > 0 and sim.grad[0, 0] < 0 and sim.grad[0, 1] == 0  # only the mined pair


def test_semihard_loss_is_bidirectional():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(6, 8), dim=1), F.normalize(torch.randn(6, 8), dim=1)
    sim = a @ b.t()
    both = 0.5 * (semihard_triplet_from_similarity(sim) + semihard_triplet_from_similarity(sim.t()))
    assert build_loss("triplet-semihard")(a, b).item() == pytest.approx(both.item(), rel=1e-6)
    assert build_loss("triplet", mining="semihard")(a, b).item() == pytest.approx(both.item(), rel=1e-6)
    with pytest.raises(CvglError, match="mining"):
        build_loss("triplet", mining="hardest")


def test_existing_names_still_work():
    assert {"ddal", "infonce", "triplet", "dice", "kl", "triplet-semihard"} <= set(list_losses())
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(4, 8), dim=1)
    for name in ("ddal", "infonce", "triplet"):
        assert torch.isfinite(build_loss(name)(a, b))


def test_combined_value_weights_and_state_dict():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(5, 8), dim=1), F.normalize(torch.randn(5, 8), dim=1)
    loss = build_loss("infonce+dice+kl", **{"dice.weight": 0.5, "infonce.label_smoothing": 0.0, "kl.scale": 5.0})
    assert isinstance(loss, CombinedLoss) and loss.weights == {"infonce": 1.0, "dice": 0.5, "kl": 1.0}
    parts = (build_loss("infonce", label_smoothing=0.0)(a, b) + 0.5 * build_loss("dice")(a, b)
             + build_loss("kl", scale=5.0)(a, b))
    assert loss(a, b).item() == pytest.approx(parts.item(), rel=1e-6)
    assert set(loss.last_terms) == {"infonce", "dice", "kl"}
    # the learnable temperature is a parameter of the combination and round-trips
    assert [n for n, _ in loss.named_parameters()] == ["parts.infonce.log_scale"]
    with torch.no_grad():
        loss.parts["infonce"].log_scale.fill_(1.5)
    fresh = build_loss("infonce+dice+kl")
    fresh.load_state_dict(loss.state_dict())
    assert fresh.parts["infonce"].log_scale.item() == 1.5


@pytest.mark.parametrize("name,params,fragment", [
    ("infonce+", {}, "empty component"),
    ("dice+dice", {}, "twice"),
    ("infonce+dice", {"weight": 1}, "COMPONENT.PARAM"),
    ("infonce+dice", {"kl.scale": 1}, "not a component"),
    ("infonce+dice", {"dice.weight": -1}, "weight must be a number >= 0"),
    ("infonce+dice", {"dice.temperature": 1}, "unknown option(s) for loss dice"),
    ("infonce+focal", {}, "unknown loss 'focal'"),
    ("dice", {"weight": 2}, "unknown option(s) for loss dice"),
])
def test_combined_errors(name, params, fragment):
    with pytest.raises(CvglError) as info:
        build_loss(name, **params)
    assert fragment in str(info.value) and "\n" not in str(info.value)
