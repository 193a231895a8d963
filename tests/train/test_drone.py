"""`train --data synthetic-drone`: drone frames go through the aerial branch in training and eval."""

import numpy as np
import pytest
import torch

from cvgl_edge.data import build_dataset
from cvgl_edge.errors import CvglError
from cvgl_edge.eval.evaluate import evaluate_checkpoint
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.loop import Trainer

from tests.support.cli import assert_one_line_error, cli
from tests.support.tiny import TINY


def _cfg(out, **kw):
    base = dict(
        model="geossm-nano", model_overrides=dict(TINY), data="synthetic-drone:32", out=str(out),
        max_steps=2, batch_size=8, lr=1e-3, warmup_steps=1, save_every=0, log_every=1,
        show_progress=False, device="cpu", eval_batch_size=100,
    )
    base.update(kw)
    return TrainConfig(**base)


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_drone_dataset_has_aerial_queries():
    data = build_dataset("synthetic-drone:8", "train", ground_size=(32, 128), satellite_size=(64, 64),
                         val_size=4, test_size=4, offset=0.0)  # tiles centred on the frames (default: offset)
    assert data.query_view == "drone" and len(data) == 8
    item = data[0]
    assert item["ground"].shape == item["satellite"].shape == (3, 64, 64)
    # the frame shows the tile's footprint north-up: it matches its own tile better than the others
    q = torch.stack([torch.from_numpy(data[i]["ground"]).flatten() for i in range(8)])  # items are numpy arrays
    t = torch.stack([torch.from_numpy(data[i]["satellite"]).flatten() for i in range(8)])
    q, t = q - q.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    sims = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(t, dim=1).T
    assert (sims.argmax(1) == torch.arange(8)).float().mean() >= 0.75
    ground = build_dataset("synthetic:8", "train", ground_size=(32, 128), satellite_size=(64, 64),
                           val_size=4, test_size=4)
    assert ground.query_view == "ground" and ground[0]["ground"].shape == (3, 32, 128)


def test_drone_augmentation_keeps_pairs_aligned():
    data = build_dataset("synthetic-drone:4", "train", ground_size=(32, 128), satellite_size=(64, 64),
                         augment=True, val_size=4, test_size=4, nuisance=0.0, offset=0.0)
    data.augment.photometric = 0.0
    for i in range(4):
        item = data[i]
        diff = np.abs(item["ground"] - item["satellite"]).mean()
        assert diff < 0.5 * item["satellite"].std(ddof=1), i  # same flip / turn on frame and tile


def test_train_drone_uses_aerial_branch_and_eval_reuses_it(tmp_path):
    trainer = Trainer(_cfg(tmp_path))
    model = trainer.model
    assert not model.config.share_weights  # otherwise both views share one backbone
    ground_calls, satellite_calls = _count_calls(model.ground), _count_calls(model.satellite)
    result = trainer.run()
    assert result.steps == 2 and result.query_view == "drone"
    assert ground_calls[0] == 0 and satellite_calls[0] > 0
    payload = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)
    assert payload["train_config"]["data"] == "synthetic-drone:32"
    assert payload["train_config"]["query_view"] == "drone"

    record = evaluate_checkpoint(result.last_checkpoint, show_progress=False, batch_size=100)
    assert record["data"] == "synthetic-drone:32" and record["query_view"] == "drone"
    assert record["pairs"] == 200
    # the same drone val pairs, the same weights: the numbers the run reported
    for key, value in result.final_metrics["ground->satellite"].items():
        assert record[key] == pytest.approx(value, abs=1e-6), key


def test_bad_drone_specs(tmp_path):
    with pytest.raises(CvglError, match="synthetic-drone:N"):
        build_dataset("synthetic-drone:zero", "train", ground_size=(32, 128), satellite_size=(64, 64))
    with pytest.raises(CvglError, match="nadir"):
        build_dataset("synthetic-drone:4", "train", ground_size=(32, 128), satellite_size=(64, 64), query="ground")
    assert_one_line_error(cli("train", "--data", "synthetic-drone:-3", "--out", str(tmp_path)),
                           "synthetic-drone:N")
