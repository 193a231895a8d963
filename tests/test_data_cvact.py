"""CVACT loader on fabricated trees reproducing the release's ACT_data.mat layout."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.io

from cvgl_edge.data import build_dataset
from cvgl_edge.data.cvact import load_cvact
from cvgl_edge.errors import CvglError

IDS = [f"__-DFIFxvZBCn{k:04d}qkqXA" for k in range(8)]     # 22 characters, like the release
TRAIN, VAL = [1, 2, 3, 5, 7], [4, 6, 8]                       # 1-based, as MATLAB stores them


def _jpg(path, h, w, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def make_cvact(root, cell_ids=False, with_test_set=False, plain_index=False, sat_side=48):
    for k, pid in enumerate(IDS):
        _jpg(root / "ANU_data_small/streetview" / f"{pid}_grdView.jpg", 24, 48, 20 + 10 * k)
        _jpg(root / "ANU_data_small/satview_polish" / f"{pid}_satView_polish.jpg", sat_side, sat_side, 25 + 10 * k)
    for pid in IDS[:3]:
        _jpg(root / "ANU_data_test/streetview" / f"{pid}_grdView.jpg", 24, 48, 90)
        _jpg(root / "ANU_data_test/satview_polish" / f"{pid}_satView_polish.jpg", sat_side, sat_side, 95)
    utm = np.stack([693_000.0 + 10 * np.arange(len(IDS)), 6_091_000.0 + 5 * np.arange(len(IDS))], axis=1)
    # Index lists are integer column vectors in the release (public loaders index numpy arrays
    # with them directly); a double-typed copy is accepted too, so valSet uses doubles here.
    col = lambda v: np.asarray(v, dtype=np.int32).reshape(-1, 1)  # noqa: E731
    dcol = lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1)  # noqa: E731
    mat = {
        "panoIds": np.array(IDS, dtype=object).reshape(-1, 1) if cell_ids else np.array(IDS),
        "utm": utm,
        "trainSet": col(TRAIN) if plain_index else {"trainNum": float(len(TRAIN)), "trainInd": col(TRAIN)},
        "valSet": {"valNum": float(len(VAL)), "valInd": dcol(VAL)},
    }
    if with_test_set:
        mat["testSet"] = {"testNum": 2.0, "testInd": col([2, 3])}
    scipy.io.savemat(str(root / "ACT_data.mat"), mat)
    return root


def test_fabricated_mat_has_the_release_nesting(tmp_path):
    mat = scipy.io.loadmat(str(make_cvact(tmp_path / "CVACT") / "ACT_data.mat"))
    # How public CVACT loaders read it: second field of the 1x1 struct, 1-based.
    train_ids = mat["panoIds"][mat["trainSet"][0][0][1] - 1].squeeze()
    assert [str(i) for i in train_ids] == [IDS[i - 1] for i in TRAIN]


@pytest.mark.parametrize("variant", [{}, {"cell_ids": True}, {"plain_index": True}])
def test_train_and_val_splits(tmp_path, variant):
    root = make_cvact(tmp_path / "CVACT", **variant)
    train = load_cvact(root, "train")
    val = load_cvact(root, "val")
    assert train.ids == [IDS[i - 1] for i in TRAIN]
    assert val.ids == [IDS[i - 1] for i in VAL]
    assert train.ground[0] == root / "ANU_data_small/streetview" / f"{IDS[0]}_grdView.jpg"
    assert val.satellite[0] == root / "ANU_data_small/satview_polish" / f"{IDS[3]}_satView_polish.jpg"
    # UTM zone 55 south: Canberra.
    assert np.all((train.lat > -35.5) & (train.lat < -35.1))
    assert np.all((train.lon > 149.0) & (train.lon < 149.3))


def test_test_split_from_listing_or_test_set(tmp_path):
    root = make_cvact(tmp_path / "a")
    listed = load_cvact(root, "test")
    assert listed.ids == sorted(IDS[:3])
    assert listed.ground[0].parent == root / "ANU_data_test/streetview"
    assert np.isfinite(listed.lat).all()
    root2 = make_cvact(tmp_path / "b", with_test_set=True)
    assert load_cvact(root2, "test").ids == [IDS[1], IDS[2]]


def test_dataset_items_and_polar(tmp_path):
    root = make_cvact(tmp_path / "CVACT")
    ds = build_dataset(f"cvact:{root}", "train", ground_size=(16, 64), satellite_size=(32, 32))
    item = ds[0]
    assert item["ground"].shape == (3, 16, 64) and item["satellite"].shape == (3, 32, 32)
    assert item["lat"] == pytest.approx(float(ds.lat[0]))
    polar = build_dataset(f"cvact:{root}", "val", ground_size=(16, 64), satellite_size=(16, 64), polar=True)
    assert polar[2]["satellite"].shape == (3, 16, 64)


def test_missing_folder_and_mat(tmp_path):
    root = make_cvact(tmp_path / "CVACT")
    (root / "ACT_data.mat").unlink()
    with pytest.raises(CvglError, match="ACT_data.mat"):
        load_cvact(root, "train")
    root2 = make_cvact(tmp_path / "C2")
    for p in (root2 / "ANU_data_small/satview_polish").iterdir():
        p.unlink()
    (root2 / "ANU_data_small/satview_polish").rmdir()
    with pytest.raises(CvglError, match="satview_polish"):
        load_cvact(root2, "val")


def test_malformed_mat(tmp_path):
    root = make_cvact(tmp_path / "CVACT")
    (root / "ACT_data.mat").write_bytes(b"MATLAB? no, just junk" * 10)
    with pytest.raises(CvglError, match="ACT_data.mat"):
        load_cvact(root, "train")


def test_index_out_of_range(tmp_path):
    root = make_cvact(tmp_path / "CVACT")
    mat = scipy.io.loadmat(str(root / "ACT_data.mat"))
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    mat["valSet"] = {"valNum": 1.0, "valInd": np.array([[99.0]])}
    scipy.io.savemat(str(root / "ACT_data.mat"), mat)
    with pytest.raises(CvglError, match="valSet index 99"):
        load_cvact(root, "val")


def test_missing_image_named(tmp_path):
    root = make_cvact(tmp_path / "CVACT")
    (root / "ANU_data_small/streetview" / f"{IDS[5]}_grdView.jpg").unlink()
    with pytest.raises(CvglError, match=f"{IDS[5]}_grdView.jpg"):
        load_cvact(root, "val")


def test_polar_needs_square_and_strict_size(tmp_path):
    root = make_cvact(tmp_path / "CVACT")
    bad = tmp_path / "CVACT/ANU_data_small/satview_polish" / f"{IDS[0]}_satView_polish.jpg"
    _jpg(bad, 48, 40, 10)
    ds = build_dataset(f"cvact:{root}", "train", ground_size=(16, 64), satellite_size=(16, 64), polar=True)
    with pytest.raises(CvglError, match="square"):
        ds[0]
    strict = build_dataset(f"cvact:{root}", "val", ground_size=(16, 64), satellite_size=(48, 48), strict_size=True)
    with pytest.raises(CvglError, match="wrong image size 24x48"):
        strict[0]
