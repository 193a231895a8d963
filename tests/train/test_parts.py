"""Schedule, sampler, optimiser and atomic-write pieces of training."""

import os

import pytest
import torch

from cvgl_edge.io import atomic_torch_save, atomic_write
from cvgl_edge.train.optim import SharpnessAware, build_optimizer, closure_step, parameter_groups
from cvgl_edge.train.sampler import ResumableSampler
from cvgl_edge.train.schedule import warmup_cosine_factor


def test_warmup_then_cosine():
    f = [warmup_cosine_factor(s, 10, 110, 0.0) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert warmup_cosine_factor(500, 10, 110, 0.05) == pytest.approx(0.05)


def test_sampler_resume_offset_and_sharding():
    full = list(ResumableSampler(100, 8, seed=3, epoch=2))
    assert len(full) == 96 and len(set(full)) == 96
    resumed = list(ResumableSampler(100, 8, seed=3, epoch=2, start_batch=5))
    assert resumed == full[40:]
    assert list(ResumableSampler(100, 8, seed=3, epoch=3)) != full
    r0 = list(ResumableSampler(100, 8, seed=3, epoch=2, rank=0, world_size=2))
    r1 = list(ResumableSampler(100, 8, seed=3, epoch=2, rank=1, world_size=2))
    assert len(r0) == len(r1) == 48 and not set(r0) & set(r1)


def _toy():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(32, 4)
    y = torch.sin(x @ torch.tensor([[1.0], [-2.0], [0.5], [1.5]]))
    return model, lambda: torch.nn.functional.mse_loss(model(x), y)


def test_parameter_groups_skip_biases():
    model, _ = _toy()
    decay, no_decay = parameter_groups([model], 0.1)
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])


@pytest.mark.parametrize("name", ["adamw", "sam", "asam"])
def test_optimizers_reduce_loss(name):
    model, loss_fn = _toy()
    opt = build_optimizer(name, [model], lr=1e-2, weight_decay=0.0, rho=0.05)
    params = list(model.parameters())
    first = float(loss_fn().detach())
    for _ in range(100):
        closure_step(opt, loss_fn, clip_norm=1.0, parameters=params)
    assert float(loss_fn().detach()) < 0.3 * first


def test_sharpness_aware_restores_weights():
    model, loss_fn = _toy()
    opt = build_optimizer("asam", [model], lr=0.0, weight_decay=0.0)
    assert isinstance(opt, SharpnessAware)
    before = [p.detach().clone() for p in model.parameters()]
    closure_step(opt, loss_fn, clip_norm=None, parameters=list(model.parameters()))
    for b, p in zip(before, model.parameters()):
        assert torch.allclose(b, p, atol=1e-6)  # lr 0: the perturbation is undone


def test_nan_loss_skips_update():
    model, _ = _toy()
    opt = build_optimizer("adamw", [model], lr=1e-2, weight_decay=0.0)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _ = closure_step(opt, lambda: model[0].weight.sum() * float("nan"), None, list(model.parameters()))
    assert not torch.isfinite(loss)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"a": 1}, target)

    def broken(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert torch.load(target) == {"a": 1}
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_atomic_write_gives_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_torch_save({"a": 1}, tmp_path / "x.pt")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
