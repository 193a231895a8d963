"""End-to-end training on tiny synthetic data: exact resume, NaN stop, checkpoints."""

import json

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import load_checkpoint
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.loop import Trainer

from tests.support.tiny import TINY


def _cfg(out, **kw):
    base = dict(
        model="geossm-nano", model_overrides=dict(TINY), data="synthetic:64", out=str(out),
        max_steps=4, batch_size=8, lr=1e-3, warmup_steps=1, save_every=0, log_every=1,
        show_progress=False, device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    straight = Trainer(_cfg(tmp_path / "a")).run()
    first = Trainer(_cfg(tmp_path / "b")).run(stop_at=2)
    assert first.interrupted and first.steps == 2
    resumed = Trainer(_cfg(tmp_path / "b"), resume=True)
    assert resumed.step == 2
    second = resumed.run()
    assert second.steps == 4 and not second.interrupted
    a, b = _state(straight.last_checkpoint), _state(second.last_checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    log = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]
    assert any("eval" in r for r in log)


@pytest.mark.slow
def test_checkpoint_rebuilds_model(tmp_path):
    result = Trainer(_cfg(tmp_path, max_steps=1)).run()
    model = load_checkpoint(result.last_checkpoint)
    h, w = TINY["ground_size"]
    out = model.encode(torch.zeros(2, 3, h, w), "ground")
    assert out.shape[0] == 2
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_nan_loss_stops_without_overwriting(tmp_path):
    trainer = Trainer(_cfg(tmp_path, max_steps=3, lr=1e-3))
    trainer.run(stop_at=1)
    last = tmp_path / "last.pt"
    before = last.read_bytes()
    trainer = Trainer(_cfg(tmp_path, max_steps=3), resume=True)
    trainer.loss_fn.forward = lambda g, s: (g * s).sum() * float("nan")
    with pytest.raises(CvglError, match="loss became nan"):
        trainer.run()
    assert last.read_bytes() == before


def test_resume_with_other_config_is_refused(tmp_path):
    Trainer(_cfg(tmp_path, max_steps=1)).run()
    with pytest.raises(CvglError, match="batch_size"):
        Trainer(_cfg(tmp_path, batch_size=4), resume=True)


def test_batch_larger_than_split_is_a_user_error(tmp_path):
    with pytest.raises(CvglError, match="lower --batch-size"):
        Trainer(_cfg(tmp_path, batch_size=128))
