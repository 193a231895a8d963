"""CVACT loader on fabricated trees reproducing the release's ACT_data.mat layout."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from cvgl_edge.data import build_dataset
from cvgl_edge.data.cvact import load_cvact
from cvgl_edge.errors import CvglError
from tests.support.fake_datasets import CVACT_IDS as IDS, CVACT_TRAIN as TRAIN, CVACT_VAL as VAL
from tests.support.fake_datasets import make_cvact, write_flat_img


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
    write_flat_img(bad, 48, 40, 10)
    ds = build_dataset(f"cvact:{root}", "train", ground_size=(16, 64), satellite_size=(16, 64), polar=True)
    with pytest.raises(CvglError, match="square"):
        ds[0]
    strict = build_dataset(f"cvact:{root}", "val", ground_size=(16, 64), satellite_size=(48, 48), strict_size=True)
    with pytest.raises(CvglError, match="wrong image size 24x48"):
        strict[0]
