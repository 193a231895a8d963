"""Hard-negative batches: each sample once, neighbours together, deterministic, resumable, class-safe."""

import numpy as np
import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.hard_negatives import (
    HardNegatives,
    first_epoch_after,
    geographic_neighbours,
    neighbour_order,
    similarity_neighbours,
)
from cvgl_edge.train.loop import Trainer
from cvgl_edge.train.sampler import NeighbourSampler

from tests.support.tiny import TINY


def _clusters(n_clusters=6, per=4, seed=0):
    """Clusters of `per` points ~10 m apart, clusters ~1 km apart, shuffled item order."""
    rng = np.random.default_rng(seed)
    lat = np.repeat(47.0 + 0.01 * np.arange(n_clusters), per) + rng.normal(0, 1e-4, n_clusters * per)
    lon = np.repeat(8.0 + 0.01 * np.arange(n_clusters), per) + rng.normal(0, 1e-4, n_clusters * per)
    perm = rng.permutation(n_clusters * per)
    cluster = np.repeat(np.arange(n_clusters), per)[perm]
    return lat[perm], lon[perm], cluster


def _random_table(n, k, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])


def test_each_sample_at_most_once_and_full_batches():
    batches = neighbour_order(103, 8, seed=1, epoch=0, neighbours=_random_table(103, 5))
    flat = [i for b in batches for i in b]
    assert len(batches) == 103 // 8 and all(len(b) == 8 for b in batches)
    assert len(set(flat)) == len(flat)


def test_geographic_neighbours_are_co_batched():
    lat, lon, cluster = _clusters()
    table = geographic_neighbours(lat, lon, k=3)
    for i in range(len(lat)):  # nearest three are the rest of the cluster
        assert set(cluster[table[i]]) == {cluster[i]}
    for batch in neighbour_order(len(lat), 4, seed=0, epoch=3, neighbours=table):
        assert len(set(cluster[batch])) == 1


def test_items_without_coordinates_have_no_neighbours():
    lat, lon, _ = _clusters()
    lat[0] = np.nan
    table = geographic_neighbours(lat, lon, k=3)
    assert (table[0] == -1).all() and not (table[1:] == 0).any()


def test_similarity_neighbours_exclude_self():
    sat = torch.nn.functional.normalize(torch.randn(10, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    query = sat.clone()
    query[0] = sat[5]  # query 0 looks exactly like reference 5
    table = similarity_neighbours(query, sat, k=3)
    assert table.shape == (10, 3) and table[0, 0] == 5
    assert all(i not in table[i] for i in range(10))


def test_order_is_deterministic_per_seed_and_epoch():
    table = _random_table(64, 4)
    a = neighbour_order(64, 8, seed=2, epoch=1, neighbours=table)
    assert a == neighbour_order(64, 8, seed=2, epoch=1, neighbours=table)
    assert a != neighbour_order(64, 8, seed=2, epoch=2, neighbours=table)


def test_resume_mid_epoch_and_shards():
    table = _random_table(70, 6)
    full = list(NeighbourSampler(70, 8, seed=0, epoch=4, neighbours=table))
    resumed = list(NeighbourSampler(70, 8, seed=0, epoch=4, neighbours=table, start_batch=3))
    assert resumed == full[3 * 8:]
    ranks = [list(NeighbourSampler(70, 4, 0, 4, table, rank=r, world_size=2)) for r in (0, 1)]
    for step in range(len(ranks[0]) // 4):  # the two ranks' batches make one global batch of 8
        assert ranks[0][step * 4:(step + 1) * 4] + ranks[1][step * 4:(step + 1) * 4] == full[step * 8:(step + 1) * 8]


def test_class_ids_never_share_a_batch():
    n, group = 60, 6
    classes = np.arange(n) // 3  # three items per class, listed as each other's nearest neighbours
    table = np.stack([np.r_[np.flatnonzero((classes == classes[i]) & (np.arange(n) != i)),
                            _random_table(n, 6, seed=1)[i]] for i in range(n)])
    batches = neighbour_order(n, group, seed=0, epoch=0, neighbours=table, class_ids=list(classes))
    assert len(batches) == n // group
    for batch in batches:
        assert len(batch) == group and len(set(classes[batch])) == group


def test_too_few_classes_for_a_batch_is_a_user_error():
    with pytest.raises(CvglError, match="distinct classes"):
        neighbour_order(12, 6, seed=0, epoch=0, neighbours=None, class_ids=[i % 3 for i in range(12)])


class _NoCoordinates:
    lat = np.full(16, np.nan)
    lon = np.full(16, np.nan)


def test_no_coordinates_falls_back_to_random_batches():
    notes = []
    state = HardNegatives("gps", 4, _NoCoordinates(), log=notes.append)
    assert state.gps is None and state.table_for_epoch(0) is None
    assert notes and "no coordinates" in notes[0]
    batches = NeighbourSampler(16, 4, 0, 0, state.table_for_epoch(0)).batches
    assert sorted(i for b in batches for i in b) == list(range(16))


def test_refreshed_table_waits_for_the_next_epoch():
    state = HardNegatives("similarity", 2, _NoCoordinates())
    table = _random_table(16, 2)
    state.set_similarity(table, first_epoch_after(step=5, batches_per_epoch=4))  # mid-epoch 1
    assert state.table_for_epoch(1) is None
    assert state.table_for_epoch(2) is table or (state.table_for_epoch(2) == table).all()
    restored = HardNegatives("similarity", 2, _NoCoordinates())
    restored.load_state_dict(state.state_dict())
    assert (restored.table_for_epoch(2) == table).all()


def test_unknown_mode_is_a_user_error():
    with pytest.raises(CvglError, match="--hard-negatives"):
        HardNegatives("hardest", 4, _NoCoordinates())


def _cfg(out, **kw):
    base = dict(model="geossm-nano", model_overrides={**TINY, "depth": 1}, data="synthetic:8", out=str(out),
                max_steps=4, batch_size=4, lr=1e-3, warmup_steps=1, save_every=0, log_every=1, show_progress=False,
                device="cpu", hard_negatives="gps+similarity", neighbours=2, eval_every=1, augment=False)
    base.update(kw)
    return TrainConfig(**base)


def _trainer(cfg, resume=False):
    trainer = Trainer(cfg, resume=resume)
    trainer.evaluate = lambda: None  # the val split is not what this test is about (and costs seconds)
    return trainer


def _checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_training_refreshes_neighbours_and_resumes_exactly(tmp_path):
    # 2 batches per epoch; evaluations after steps 1, 2 (tables for epoch 1) and 3 (for epoch 2)
    straight = _trainer(_cfg(tmp_path / "a"))
    assert straight.hard_negatives.gps is not None  # synthetic pairs have coordinates
    straight.run()
    first = _trainer(_cfg(tmp_path / "b"))
    first.run(stop_at=3)  # mid-epoch 1, with the step-3 table waiting for epoch 2
    saved = _checkpoint(tmp_path / "b" / "last.pt")
    assert saved["hard_negatives"]["active"] is not None and saved["hard_negatives"]["pending_epoch"] == 2
    assert saved["train_config"]["hard_negatives"] == "gps+similarity"
    second = _trainer(_cfg(tmp_path / "b"), resume=True)
    assert second.step == 3
    second.run()
    a, b = _checkpoint(tmp_path / "a" / "last.pt"), _checkpoint(tmp_path / "b" / "last.pt")
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=0, atol=1e-6, msg=key)
    assert torch.equal(a["hard_negatives"]["active"], b["hard_negatives"]["active"])
    log = [line for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines() if "hard_negatives" in line]
    assert len(log) == 3


def test_train_option_rejects_unknown_mode(tmp_path, monkeypatch, capsys):
    import sys

    from cvgl_edge.cli import main

    monkeypatch.setattr(sys, "argv", ["cvgl-edge", "train", "--hard-negatives", "hardest", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as stop:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and "--hard-negatives 'hardest'" in lines[0]
