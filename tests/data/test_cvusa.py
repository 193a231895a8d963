"""CVUSA loader on a fabricated tree in the distributed layout."""

from __future__ import annotations

import numpy as np
import pytest

from cvgl_edge.data import build_dataset
from cvgl_edge.data.cvusa import load_cvusa
from cvgl_edge.errors import CvglError
from tests.support.fake_datasets import make_cvusa


def test_loads_ids_and_splits(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    train = load_cvusa(root, "train")
    val = load_cvusa(root, "val")
    assert train.ids == ["0000001", "0000002", "0000003", "0000004"]
    assert val.ids == ["0000100", "0000101", "0000102"]
    assert train.satellite[0] == root / "bingmap/19/0000001.jpg"
    assert train.ground[0] == root / "streetview/panos/0000001.jpg"
    assert np.isnan(train.lat).all()


def test_dataset_items_and_polar_option(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    ds = build_dataset(f"cvusa:{root}", "val", ground_size=(16, 64), satellite_size=(32, 32))
    item = ds[1]
    assert item["ground"].shape == (3, 16, 64) and item["satellite"].shape == (3, 32, 32)
    assert item["index"] == 1 and np.isnan(item["lat"])
    polar = build_dataset(f"cvusa:{root}", "val", ground_size=(16, 64), satellite_size=(16, 64), polar=True)
    assert polar[0]["satellite"].shape == (3, 16, 64)


def test_missing_root_and_split_file(tmp_path):
    with pytest.raises(CvglError, match="nowhere"):
        load_cvusa(tmp_path / "nowhere", "train")
    root = make_cvusa(tmp_path / "CVUSA")
    (root / "splits" / "val-19zl.csv").unlink()
    with pytest.raises(CvglError, match="val-19zl.csv"):
        load_cvusa(root, "val")


def test_no_test_split(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    with pytest.raises(CvglError, match="test"):
        load_cvusa(root, "test")


def test_malformed_csv_names_file_and_line(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    csv_path = root / "splits" / "train-19zl.csv"
    csv_path.write_text(csv_path.read_text() + "only-one-column\n")
    with pytest.raises(CvglError, match=r"train-19zl\.csv line 5"):
        load_cvusa(root, "train")


def test_missing_image_is_named_or_skipped(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    (root / "streetview/panos/0000002.jpg").unlink()
    with pytest.raises(CvglError, match="0000002.jpg"):
        load_cvusa(root, "train")
    kept = load_cvusa(root, "train", skip_missing=True)
    assert kept.ids == ["0000001", "0000003", "0000004"]


def test_corrupt_image_raises_on_load(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    (root / "bingmap/19/0000101.jpg").write_bytes(b"\xff\xd8 truncated")
    ds = build_dataset(f"cvusa:{root}", "val", ground_size=(16, 64), satellite_size=(32, 32))
    ds[0]
    with pytest.raises(CvglError, match="0000101.jpg"):
        ds[1]


def test_strict_size(tmp_path):
    root = make_cvusa(tmp_path / "CVUSA")
    ok = build_dataset(f"cvusa:{root}", "val", ground_size=(20, 80), satellite_size=(40, 40), strict_size=True)
    assert ok[0]["satellite"].shape == (3, 40, 40)
    bad = build_dataset(f"cvusa:{root}", "val", ground_size=(20, 80), satellite_size=(32, 32), strict_size=True)
    with pytest.raises(CvglError, match=r"wrong image size 40x40 \(expected 32x32\).*0000100.jpg"):
        bad[0]
