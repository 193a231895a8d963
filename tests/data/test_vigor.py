"""VIGOR on a fabricated tree in the public layout: split files, positives and semi-positives,
same-area vs cross-area cities and galleries, GPS from file names, errors, and evaluation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from cvgl_edge.data import build_dataset, build_protocols, detect_layout
from cvgl_edge.data.vigor import load_vigor, panorama_latlon, satellite_latlon
from cvgl_edge.errors import CvglError
from tests.support.fake_datasets import VIGOR_CITIES, make_vigor, vigor_panos, vigor_tiles

SIZES = dict(ground_size=(16, 64), satellite_size=(32, 32))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_vigor(tmp_path_factory.mktemp("vigor") / "VIGOR")


def test_same_area_splits_use_all_cities_and_one_gallery(root):
    train = load_vigor(root, "train")
    test = load_vigor(root, "val")  # val is an alias of test
    assert train.cities == test.cities == tuple(VIGOR_CITIES) and test.split == "test"
    assert len(train.panoramas) == len(test.panoramas) == 8
    assert len(test.satellites) == 16 and train.satellites == test.satellites
    # Chicago test panorama 2: positive tile 2, semi-positives tiles 0, 1, 3 of Chicago
    assert test.panoramas[0] == root / "Chicago/panorama" / vigor_panos("Chicago")[2]
    assert test.satellites[test.positive[0]] == root / "Chicago/satellite" / vigor_tiles("Chicago")[2]
    assert [test.satellites[i].name for i in test.semi[0]] == [vigor_tiles("Chicago")[t] for t in (0, 1, 3)]
    # NewYork indices are offset past Chicago's four tiles
    assert test.positive[2] == 4 + 2 and test.satellites[test.positive[2]].parent.parent.name == "NewYork"
    assert test.pano_lat[0] == pytest.approx(41.882) and test.pano_lon[0] == pytest.approx(-87.63)
    assert test.sat_lat[1] == pytest.approx(41.881)


def test_cross_area_trains_on_newyork_seattle_and_tests_on_chicago_sanfrancisco(root):
    train = load_vigor(root, "train", cross_area=True)
    test = load_vigor(root, "test", cross_area=True)
    assert train.cities == ("NewYork", "Seattle") and test.cities == ("Chicago", "SanFrancisco")
    assert len(train.panoramas) == 8 and len(test.panoramas) == 8  # every panorama (pano_label_balanced.txt)
    assert {p.parent.parent.name for p in test.satellites} == {"Chicago", "SanFrancisco"} and len(test.satellites) == 8


def test_paired_dataset_and_protocol(root):
    ds = build_dataset(f"vigor:{root}", "train", **SIZES)
    assert len(ds) == 8 and ds.query_view == "ground"
    item = ds[0]
    assert item["ground"].shape == (3, 16, 64) and item["satellite"].shape == (3, 32, 32)
    assert (item["lat"], item["lon"]) == pytest.approx((41.88, -87.63))
    assert ds.source.index.satellite[1].name == vigor_tiles("Chicago")[1]
    assert len(build_dataset(f"vigor-cross:{root}", "val", **SIZES)) == 8
    assert len(build_dataset(str(root), "train", **SIZES)) == 8  # layout detected from a bare path
    [protocol] = build_protocols(f"vigor:{root}", "test", **SIZES)
    assert (protocol.direction, protocol.query_view, protocol.gallery_view) == ("ground->satellite", "ground",
                                                                                 "satellite")
    assert len(protocol.query) == 8 and len(protocol.gallery) == 16
    assert protocol.positives[0].tolist() == [2] and protocol.semi_positives[0].tolist() == [0, 1, 3]
    assert protocol.label.startswith("VIGOR same-area official: ground->satellite, 8 panoramas vs 16 tiles")
    [cross] = build_protocols(f"vigor-cross:{root}", "val", **SIZES)
    assert cross.label.startswith("VIGOR cross-area official") and len(cross.gallery) == 8
    [s4g] = build_protocols(f"vigor:{root}", "test", variant="sample4geo", **SIZES)
    assert s4g.variant == "sample4geo" and s4g.dataset == "vigor" and s4g.label.startswith("VIGOR same-area sample4geo")
    with pytest.raises(CvglError, match="unknown protocol variant"):
        build_protocols(f"vigor:{root}", "test", variant="strict", **SIZES)


def test_names_carry_gps():
    assert panorama_latlon("abc,41.5,-87.25,.jpg") == (41.5, -87.25)
    assert satellite_latlon("satellite_41.5_-87.25.png") == (41.5, -87.25)
    assert np.isnan(panorama_latlon("plain.jpg")[0]) and np.isnan(satellite_latlon("tile.png")[1])


def test_moved_layout_is_accepted(tmp_path):
    root = make_vigor(tmp_path / "V", moved=True)  # ground/<City>/, satellite/<City>/ (as Sample4Geo arranges VIGOR)
    assert detect_layout(root) == "vigor"
    assert load_vigor(root, "test").panoramas[0].parent == root / "ground" / "Chicago"


def test_errors_are_one_line(root, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CvglError, match="does not match the VIGOR layout"):
        load_vigor(tmp_path / "empty", "train")
    partial = make_vigor(tmp_path / "partial", cities=("NewYork", "Seattle"))
    assert len(load_vigor(partial, "train", cross_area=True).panoramas) == 8  # cross-area training needs only these
    with pytest.raises(CvglError, match="needs city Chicago"):
        load_vigor(partial, "test", cross_area=True)
    with pytest.raises(CvglError, match="needs city Chicago"):
        load_vigor(partial, "train")
    broken = shutil.copytree(root, tmp_path / "broken")
    split = broken / "splits" / "Seattle" / "same_area_balanced_test.txt"
    split.write_text(split.read_text() + "only_two fields\n")
    with pytest.raises(CvglError, match="line 3: expected 13 fields"):
        load_vigor(broken, "test")
    split.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CvglError, match="unreadable VIGOR split file"):
        load_vigor(broken, "test")
    shutil.copy(root / "splits" / "Seattle" / "same_area_balanced_test.txt", split)
    (broken / "splits" / "Seattle" / "satellite_list.txt").write_text(vigor_tiles("Seattle")[0] + "\n")
    with pytest.raises(CvglError, match="which satellite_list.txt does not list"):
        load_vigor(broken, "test")
    shutil.copy(root / "splits" / "Seattle" / "satellite_list.txt", broken / "splits" / "Seattle")
    (broken / "Seattle" / "panorama" / vigor_panos("Seattle")[3]).unlink()
    with pytest.raises(CvglError, match="Seattle panorama image listed but not found"):
        load_vigor(broken, "test")
    with pytest.raises(CvglError, match="no 'holdout' split"):
        load_vigor(root, "holdout")


def test_checkpoint_evaluation_reports_hit_rate(root, tmp_path):
    from cvgl_edge.eval.evaluate import evaluate_checkpoint
    from cvgl_edge.eval.report import metrics_table
    from cvgl_edge.models import build_model, save_checkpoint
    from tests.support.tiny import TINY

    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY)
    checkpoint = save_checkpoint(model, tmp_path / "tiny.pt", train_config={"data": f"vigor:{root}", "polar": False})
    record = evaluate_checkpoint(checkpoint, split="test", show_progress=False)
    assert record["headline"] == "ground->satellite" and list(record["directions"]) == ["ground->satellite"]
    metrics = record["directions"]["ground->satellite"]
    assert 0.0 <= metrics["R@1"] <= metrics["hit_rate"] <= 100.0  # a semi-positive hit includes the positive
    assert record["protocol"]["label"].startswith("VIGOR same-area official")
    assert record["queries"] == {"ground->satellite": 8} and record["gallery"] == {"ground->satellite": 16}
    table = metrics_table(record["directions"], "t")
    assert [c.header for c in table.columns][-1] == "hit rate"
