"""Scoring retrieval protocols: hit rate and AP on hand-made descriptors with known answers,
distractors in or out of the gallery, and exported (ONNX) branches on University-1652."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cvgl_edge.data import build_protocols
from cvgl_edge.eval.metrics import retrieval_metrics
from cvgl_edge.eval.protocol_eval import protocol_metrics
from tests.support.fake_datasets import make_university1652, make_vigor

SIZES = dict(ground_size=(32, 128), satellite_size=(64, 64))  # TINY's


def _unit(rows):
    t = torch.tensor(rows, dtype=torch.float32)
    return t / t.norm(dim=1, keepdim=True)


def test_hit_rate_counts_semi_positives_and_recall_does_not():
    gallery = torch.eye(4)
    # q0 is closest to its positive; q1 to a semi-positive (g2); q2 to g3, neither positive nor semi
    query = _unit([[1, 0.1, 0, 0], [0.1, 0.2, 1, 0], [0.2, 0, 0, 1]])
    m = retrieval_metrics(query, gallery, positives=[[0], [1], [2]], semi_positives=[[1], [2, 3], []])
    assert m["R@1"] == pytest.approx(100 / 3) and m["hit_rate"] == pytest.approx(200 / 3)
    # ranks of the positives: 1, 2 (behind g2), 3 (behind g3 and g0); one true match: AP = 1 / rank
    assert m["mAP"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 3) / 3) and m["median_rank"] == 2.0
    assert "hit_rate" not in retrieval_metrics(query, gallery, positives=[[0], [1], [2]])


def test_average_precision_over_several_true_matches():
    gallery = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.7, 0.7, 0], [0, 0, 1]])
    query = _unit([[1, 0, 0], [0, 0, 1]])
    # q0 ranks g0, g1, g3, g2, g4: true {1, 3} at positions 2 and 3 -> AP = (1/2 + 2/3) / 2
    # q1 ranks g4 first: true {4} at position 1 -> AP = 1
    positives = [[1, 3], [4]]
    m = retrieval_metrics(query, gallery, positives=positives)
    assert m["mAP"] == pytest.approx(100 * ((1 / 2 + 2 / 3) / 2 + 1) / 2)
    assert m["R@1"] == 50.0 and m["R@5"] == 100.0
    assert retrieval_metrics(query, gallery, positives=positives, chunk=1) == m


def _one_hot_embedder(code_of, dim):
    """Descriptors from file paths: a one-hot of code_of(path) (a known, hand-made answer)."""
    def embed(dataset, description):
        out = torch.zeros(len(dataset.paths), dim)
        for i, path in enumerate(dataset.paths):
            out[i, code_of(path)] = 1.0
        return out
    return embed


def test_university1652_distractors_stay_in_the_official_ranking(tmp_path):
    root = make_university1652(tmp_path / "U")
    classes = ["0101", "0102", "0103", "0201", "0202", "0301"]
    official = build_protocols(f"university1652:{root}", "test", **SIZES)
    sample4geo = build_protocols(f"university1652:{root}", "test", variant="sample4geo", **SIZES)
    exact = _one_hot_embedder(lambda p: classes.index(p.parent.name), len(classes))
    for protocols in (official, sample4geo):
        metrics = protocol_metrics(protocols, exact)
        assert list(metrics) == ["drone->satellite", "satellite->drone"]
        for values in metrics.values():
            assert values["R@1"] == 100.0 and values["mAP"] == 100.0
    # drone photos of class 0101 look exactly like the distractor tile 0201
    fooled = _one_hot_embedder(lambda p: 3 if "query_drone/0101" in p.as_posix() else classes.index(p.parent.name),
                               len(classes))
    d2s_official = protocol_metrics(official[:1], fooled)["drone->satellite"]
    d2s_sample4geo = protocol_metrics(sample4geo[:1], fooled)["drone->satellite"]
    assert d2s_official["R@1"] == pytest.approx(400 / 6)  # 2 of 6 queries lose to the distractor
    # the true tile ties with the other zero-similarity tiles; ties go to the query: it ranks 2nd,
    # AP 1/4 by the trapezoid rule of University-1652's script ((0 + 1/2) / 2)
    assert d2s_official["mAP"] == pytest.approx(100 * (4 + 2 * 1 / 4) / 6)
    assert d2s_sample4geo["R@1"] == 100.0  # no distractor left: ties count in the query's favour


def test_vigor_semi_positive_retrievals_are_hits_not_recalls(tmp_path):
    root = make_vigor(tmp_path / "V")
    [protocol] = build_protocols(f"vigor:{root}", "test", **SIZES)
    tile = {p: i for i, p in enumerate(protocol.gallery)}
    target = {}
    for q, path in enumerate(protocol.query):
        target[path] = protocol.semi_positives[q][0]  # each panorama looks like a semi-positive tile
    embed = _one_hot_embedder(lambda p: target[p] if p in target else tile[p], len(protocol.gallery))
    metrics = protocol_metrics([protocol], embed)["ground->satellite"]
    assert metrics["R@1"] == 0.0 and metrics["hit_rate"] == 100.0
    exact = _one_hot_embedder(lambda p: int(protocol.positives[protocol.query.index(p)][0]) if p in target
                              else tile[p], len(protocol.gallery))
    assert protocol_metrics([protocol], exact)["ground->satellite"]["R@1"] == 100.0


def test_exported_branches_score_the_protocol_like_the_checkpoint(tmp_path, monkeypatch):
    """evaluate_artifacts routes drone images to the satellite branch (protocol and paired data).

    The "exported" branches are TorchEncoders of the same model (ONNX export itself is tested in
    test_runtime_ort): a drone image sent to the ground branch would fail its 32x128 input check.
    """
    import cvgl_edge.eval.evaluate as evaluate
    import cvgl_edge.runtime as runtime
    from cvgl_edge.eval.evaluate import evaluate_artifacts, evaluate_checkpoint
    from cvgl_edge.models import build_model, save_checkpoint
    from tests.support.tiny import TINY

    root = make_university1652(tmp_path / "U")
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    data = f"university1652:{root}"
    checkpoint = save_checkpoint(model, tmp_path / "tiny.pt", train_config={"data": data, "polar": False})
    opened = []

    def open_encoder(path, view, backend=None, device="cpu"):
        opened.append(view)
        return runtime.model_encoder(model, view)

    monkeypatch.setattr(evaluate, "branch_files", lambda source, backend, precision: {"ground": "g.onnx",
                                                                                       "satellite": "s.onnx"})
    monkeypatch.setattr(evaluate, "open_encoder", open_encoder)
    artifact = evaluate_artifacts(tmp_path, "onnxruntime", data=data, split="test", show_progress=False)
    reference = evaluate_checkpoint(checkpoint, split="test", show_progress=False)
    assert opened == ["ground", "satellite"]
    assert artifact["protocol"] == reference["protocol"] and artifact["headline"] == "drone->satellite"
    for direction, values in reference["directions"].items():
        for key in ("R@1", "R@5", "mAP"):
            assert artifact["directions"][direction][key] == pytest.approx(values[key], abs=1e-6)
    first_pairs = evaluate.sized_dataset
    monkeypatch.setattr(evaluate, "sized_dataset", lambda *args: first_pairs(*args, pairs=8))
    paired = evaluate_artifacts(tmp_path, "onnxruntime", data="synthetic-drone:8", split="val", show_progress=False)
    assert paired["query_view"] == "drone" and paired["pairs"] == 8 and np.isfinite(paired["R@1"])
