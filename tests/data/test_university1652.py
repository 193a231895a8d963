"""University-1652 on a fabricated tree in the public layout: parsing, training pairs, the official
protocol (distractors kept) and the Sample4Geo variant, layout errors, and `cvgl-edge train/eval`."""

from __future__ import annotations

import json
import shutil

import pytest

from cvgl_edge.data import build_dataset, build_protocols, detect_layout
from cvgl_edge.eval.scoring import scoring_for
from cvgl_edge.data.university1652 import load_train
from cvgl_edge.errors import CvglError
from tests.support.fake_datasets import (
    U1652_DRONE_DISTRACTORS, U1652_QUERY, U1652_SAT_DISTRACTORS, U1652_TRAIN, make_university1652,
)
from tests.support.cli import assert_one_line_error, cli

SIZES = dict(ground_size=(32, 128), satellite_size=(32, 32))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_university1652(tmp_path_factory.mktemp("u1652") / "University-Release")


def test_train_split_is_one_drone_satellite_pair_per_class(root):
    ds = build_dataset(f"university1652:{root}", "train", seed=3, **SIZES)
    assert len(ds) == len(U1652_TRAIN) and ds.ids == U1652_TRAIN and ds.query_view == "drone"
    item = ds[1]
    assert item["ground"].shape == (3, 32, 32) and item["satellite"].shape == (3, 32, 32)  # drone at the aerial size
    source = ds.source
    assert source.train.satellite[1] == root / "train/satellite/0002/0002.jpg"
    picks = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        photo = source.drone_path(2)
        assert photo.parent == root / "train/drone/0003" and source.drone_path(2) == photo  # deterministic
        picks.append(photo.name)
    assert len(set(picks)) > 1  # a different photo of the class across epochs
    other = build_dataset(f"university1652:{root}", "train", seed=3, **SIZES)
    other.set_epoch(5)
    ds.set_epoch(5)
    assert [other.source.drone_path(i) for i in range(4)] == [source.drone_path(i) for i in range(4)]


def test_paired_test_view_pairs_each_query_class_with_its_tile(root):
    for split in ("val", "test"):
        ds = build_dataset(f"university1652:{root}", split, **SIZES)
        index = ds.source.index
        assert ds.query_view == "drone" and index.ids == U1652_QUERY
        assert index.ground[0] == root / "test/query_drone/0101/image-01.jpeg"
        assert index.satellite[2] == root / "test/gallery_satellite/0103/0103.jpg"
        assert ds[0]["ground"].shape == (3, 32, 32)


def _class(path):
    return path.parent.name


def test_official_protocol_keeps_distractors(root):
    d2s, s2d = build_protocols(f"university1652:{root}", "test", **SIZES)
    assert (d2s.direction, d2s.query_view, d2s.gallery_view) == ("drone->satellite", "drone", "satellite")
    assert (s2d.direction, s2d.query_view, s2d.gallery_view) == ("satellite->drone", "satellite", "drone")
    assert len(d2s.query) == 2 * len(U1652_QUERY)
    assert sorted({_class(p) for p in d2s.gallery}) == sorted(U1652_QUERY + U1652_SAT_DISTRACTORS)
    assert sorted({_class(p) for p in s2d.gallery}) == sorted(U1652_QUERY + U1652_DRONE_DISTRACTORS)
    for protocol, per_class in ((d2s, 1), (s2d, 2)):
        for q, positives in zip(protocol.query, protocol.positives):
            assert len(positives) == per_class
            assert {_class(protocol.gallery[g]) for g in positives} == {_class(q)}
            others = set(range(len(protocol.gallery))) - set(positives.tolist())
            assert all(_class(protocol.gallery[g]) != _class(q) for g in others)
    assert d2s.label == "University-1652 official: drone->satellite, 5 gallery classes incl. 2 distractors"
    assert d2s.details == {"query_classes": 3, "gallery_classes": 5, "distractor_classes": 2,
                           "queries_without_match": 0}
    assert d2s.dataset == "university1652" and d2s.gallery_total is None
    assert d2s.images("query")[0]["image"].shape == (3, 32, 32)


def test_sample4geo_variant_drops_gallery_classes_without_queries(root):
    d2s, s2d = build_protocols(f"university1652:{root}", "val", variant="sample4geo", **SIZES)
    assert sorted({_class(p) for p in d2s.gallery}) == U1652_QUERY
    assert sorted({_class(p) for p in s2d.gallery}) == U1652_QUERY and len(s2d.gallery) == 6
    assert d2s.variant == "sample4geo" and "sample4geo (distractors removed as junk)" in d2s.label
    assert (d2s.gallery_total, s2d.gallery_total) == (5, 8)  # R@1%'s G counts the junk images
    for q, positives in zip(s2d.query, s2d.positives):
        assert {_class(s2d.gallery[g]) for g in positives} == {_class(q)}
    with pytest.raises(CvglError, match="unknown protocol variant"):
        build_protocols(f"university1652:{root}", "test", variant="strict", **SIZES)
    with pytest.raises(CvglError, match="the sample4geo protocol applies to cvact, cvusa, university1652, vigor"):
        scoring_for("synthetic:8", "sample4geo")
    assert build_protocols("synthetic:8", "val", **SIZES) == []


def test_layout_detection_and_one_line_errors(root, tmp_path):
    assert detect_layout(root) == "university1652"
    assert len(build_dataset(str(root), "train", **SIZES)) == 4  # a bare folder path: layout detected
    (tmp_path / "photos").mkdir()
    with pytest.raises(CvglError, match="matches no known dataset layout"):
        build_dataset(str(tmp_path / "photos"), "train", **SIZES)
    with pytest.raises(CvglError, match="does not match the University-1652 layout: expected train/"):
        build_dataset(f"university1652:{tmp_path / 'photos'}", "train", **SIZES)
    with pytest.raises(CvglError, match="no 'holdout' split"):
        build_dataset(f"university1652:{root}", "holdout", **SIZES)
    broken = shutil.copytree(root, tmp_path / "broken")
    shutil.rmtree(broken / "test" / "query_satellite")
    with pytest.raises(CvglError, match="test folder not found: .*query_satellite"):
        build_protocols(f"university1652:{broken}", "test", **SIZES)
    shutil.rmtree(broken / "train" / "satellite" / "0003")
    with pytest.raises(CvglError, match="train class 0003 has no satellite images"):
        load_train(broken)
    (broken / "train" / "satellite" / "0003").mkdir()
    with pytest.raises(CvglError, match="class folder holds no images: .*0003"):
        load_train(broken)


def test_cli_train_then_eval_with_both_protocols(root, tmp_path):
    """`cvgl-edge train` and `eval` run in-process (typer's runner: no second torch start-up);
    the wrong-layout error goes through the real entry point for its exit code and one line."""
    from typer.testing import CliRunner

    from cvgl_edge.cli import app
    from cvgl_edge.eval.evaluate import evaluate_checkpoint

    runner = CliRunner()
    # TINY sizes
    sizes = ["--ground-size", "32x128", "--satellite-size", "64x64", "--set", "depth=2", "--set", "embed_dim=32"]
    common = ["--no-progress", "--device", "cpu"]
    run = runner.invoke(app, ["train", "--data", f"university1652:{root}", *sizes, *common, "--batch-size", "2",
                              "--max-steps", "2", "--out", str(tmp_path / "run"),
                              "--json", str(tmp_path / "train.json")])
    assert run.exit_code == 0, run.output[-2000:]
    checkpoint = tmp_path / "run" / "last.pt"
    assert checkpoint.is_file()
    trained = json.loads((tmp_path / "train.json").read_text())
    assert trained["steps"] == 2 and trained["headline"] == "drone->satellite"
    assert set(trained["directions"]) == {"drone->satellite", "satellite->drone"}
    ev = runner.invoke(app, ["eval", str(checkpoint), *common, "--json", str(tmp_path / "eval.json")])
    assert ev.exit_code == 0, ev.output[-2000:]
    assert "protocol: University-1652 official: drone->satellite, 5 gallery classes incl. 2 distractors" in ev.output
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["protocol"]["variant"] == "official" and record["queries"]["drone->satellite"] == 6
    assert record["R@1"] == record["directions"]["drone->satellite"]["R@1"] and "mAP" in record
    s4g = evaluate_checkpoint(checkpoint, split="test", variant="sample4geo", show_progress=False)
    assert s4g["protocol"]["label"].startswith("University-1652 sample4geo (distractors removed as junk): drone->satellite")
    assert s4g["gallery"] == {"drone->satellite": 3, "satellite->drone": 6}
    # the record names the script followed and its R@1% K: round(0.01 * G) + 1 with G incl. junk
    assert s4g["scoring"]["drone->satellite"]["name"] == "university1652-sample4geo"
    assert s4g["scoring"]["satellite->drone"]["one_percent_k"] == 1 and record["scoring"]["drone->satellite"][
        "ap_rule"] == "trapezoid"
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("eval", str(checkpoint), *common, "--data", str(tmp_path / "empty")),
                           "matches no known dataset layout")
