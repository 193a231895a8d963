"""build_dataset specs and the common item interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cvgl_edge.data import build_dataset, collate_pairs
from cvgl_edge.data.normalize import from_tensor
from cvgl_edge.errors import CvglError

SMALL = dict(ground_size=(32, 128), satellite_size=(64, 64), chunk_px=640)


def test_synthetic_train_size_and_item_dict():
    ds = build_dataset("synthetic:12", "train", **SMALL)
    assert len(ds) == 12
    item = ds[3]
    assert set(item) == {"ground", "satellite", "index", "lat", "lon"}
    assert isinstance(item["ground"], np.ndarray)  # numpy: the deployment install has no PyTorch
    assert item["ground"].shape == (3, 32, 128) and item["ground"].dtype == np.float32
    assert item["satellite"].shape == (3, 64, 64)
    assert item["index"] == 3 and math.isfinite(item["lat"]) and math.isfinite(item["lon"])
    with pytest.raises(IndexError):
        ds[12]


def test_synthetic_val_defaults_to_200_pairs():
    ds = build_dataset("synthetic:8", "val", ground_size=(16, 64), satellite_size=(32, 32), chunk_px=640,
                       footprint_px=96, spacing_px=96)
    assert len(ds) == 200


def test_synthetic_polar_and_drone_query():
    polar = build_dataset("synthetic:4", "train", ground_size=(32, 128), satellite_size=(32, 128), polar=True,
                          chunk_px=640)
    assert polar[0]["satellite"].shape == (3, 32, 128)
    drone = build_dataset("synthetic:4", "test", ground_size=(48, 48), satellite_size=(64, 64),
                          query="drone", test_size=4, chunk_px=640)
    assert drone[1]["ground"].shape == (3, 48, 48)


def test_augmentation_switch_and_determinism():
    ds = build_dataset("synthetic:6", "train", augment=True, seed=3, **SMALL)
    a, b = ds[2], ds[2]
    assert np.array_equal(a["ground"], b["ground"])         # seeded by (seed, epoch, index)
    plain = ds.raw(2)[0]
    ds.eval()
    assert np.array_equal(from_tensor(ds[2]["ground"]), plain)
    ds.train()
    changed = [not np.array_equal(from_tensor(ds[i]["ground"]), ds.raw(i)[0]) for i in range(6)]
    assert any(changed)


def test_dataloader_batches():
    ds = build_dataset("synthetic:6", "train", **SMALL)
    batch = next(iter(DataLoader(ds, batch_size=4)))  # default collate: numpy items -> tensors
    assert batch["ground"].shape == (4, 3, 32, 128) and batch["index"].tolist() == [0, 1, 2, 3]
    assert batch["ground"].dtype == torch.float32 and torch.equal(batch["ground"][1], torch.from_numpy(ds[1]["ground"]))
    mine = collate_pairs([ds[0], ds[1]])
    assert mine["lat"].dtype == torch.float64 and mine["satellite"].shape == (2, 3, 64, 64)
    assert torch.equal(mine["ground"], batch["ground"][:2]) and mine["index"].dtype == torch.long


@pytest.mark.parametrize("spec", ["imagenet", "kitti:/data", "ftp://x"])
def test_unknown_scheme_lists_valid_ones(spec):
    with pytest.raises(CvglError, match="synthetic.*cvusa:PATH.*cvact:PATH"):
        build_dataset(spec, "train")


@pytest.mark.parametrize("spec", ["synthetic:0", "synthetic:abc", "synthetic:-3"])
def test_bad_synthetic_size(spec):
    with pytest.raises(CvglError, match="synthetic:N"):
        build_dataset(spec, "train", **SMALL)


def test_bad_split_and_options(tmp_path):
    with pytest.raises(CvglError, match="split"):
        build_dataset("synthetic:4", "holdout", **SMALL)
    with pytest.raises(CvglError, match="frobnicate"):
        build_dataset("synthetic:4", "train", frobnicate=1, **SMALL)
    with pytest.raises(CvglError, match="square"):
        build_dataset("synthetic:4", "train", ground_size=(32, 128), satellite_size=(32, 128))
    with pytest.raises(CvglError, match="needs a path"):
        build_dataset("cvusa", "train")
    with pytest.raises(CvglError, match="not found"):
        build_dataset(f"cvact:{tmp_path / 'missing'}", "train")


def test_data_seed_fixes_the_world_independently_of_the_training_seed():
    a = build_dataset("synthetic:3", "train", seed=1, data_seed=7, **SMALL)
    b = build_dataset("synthetic:3", "train", seed=2, data_seed=7, **SMALL)
    c = build_dataset("synthetic:3", "train", seed=7, **SMALL)
    assert np.array_equal(a.raw(0)[1], b.raw(0)[1]) and np.array_equal(a.raw(0)[1], c.raw(0)[1])
    d = build_dataset("synthetic:3", "train", seed=1, **SMALL)
    assert not np.array_equal(a.raw(0)[1], d.raw(0)[1])
