"""Retrieval metrics on hand-made similarity layouts with known ranks."""

import numpy as np
import pytest
import torch

from cvgl_edge.eval.metrics import cross_view_metrics, one_percent_k, retrieval_metrics


def _unit(rows):
    t = torch.tensor(rows, dtype=torch.float32)
    return t / t.norm(dim=1, keepdim=True)


def test_perfect_retrieval_scores_100():
    x = torch.eye(5)
    m = retrieval_metrics(x, x)
    assert m["R@1"] == 100.0 and m["mAP"] == 100.0 and m["median_rank"] == 1.0


def test_known_ranks():
    # query 0 matches gallery 0 exactly (rank 1); query 1's true item (gallery 1) is
    # beaten by gallery 0 and gallery 2 (rank 3).
    gallery = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    query = _unit([[1, 0, 0], [0.8, 0.1, 0.7]])
    m = retrieval_metrics(query, gallery, positives=[[0], [1]], ks=(1, 2, 3))
    assert m["R@1"] == pytest.approx(50.0)
    assert m["R@2"] == pytest.approx(50.0)
    assert m["R@3"] == pytest.approx(100.0)
    assert m["mAP"] == pytest.approx(100 * (1.0 + 1 / 3) / 2)


def test_ties_count_for_the_query():
    gallery = _unit([[1, 0], [1, 0]])
    query = _unit([[1, 0], [1, 0]])
    assert retrieval_metrics(query, gallery)["R@1"] == 100.0


def test_multiple_true_matches_use_the_best():
    gallery = _unit([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]])
    query = _unit([[0.95, 0.05, 0]])
    m = retrieval_metrics(query, gallery, positives=[[1, 2]])
    assert m["R@1"] == 0.0  # gallery 0 is more similar than both true items
    assert m["R@5"] == 100.0
    assert m["mAP"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)


def test_one_percent_k():
    assert one_percent_k(50) == 1
    assert one_percent_k(200) == 2
    assert one_percent_k(8884) == 89


def test_random_descriptors_are_near_chance():
    g = torch.nn.functional.normalize(torch.randn(400, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    s = torch.nn.functional.normalize(torch.randn(400, 64, generator=torch.Generator().manual_seed(1)), dim=1)
    both = cross_view_metrics(g, s)
    assert both["ground->satellite"]["R@1"] < 3.0
    assert both["satellite->ground"]["R@10"] < 6.0  # chance: 10/400 = 2.5%


def test_bool_mask_positives_and_errors():
    q = torch.eye(3)
    mask = np.eye(3, dtype=bool)
    assert retrieval_metrics(q, q, positives=mask)["R@1"] == 100.0
    with pytest.raises(ValueError):
        retrieval_metrics(q, q, positives=[[0], [], [2]])


def test_non_finite_descriptors_are_an_error_not_a_perfect_score():
    from cvgl_edge.errors import CvglError

    good = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    nan = good.clone()
    nan[2, 1] = float("nan")
    with pytest.raises(CvglError, match="1 non-finite values in the query descriptors"):
        retrieval_metrics(nan, good)
    with pytest.raises(CvglError, match="in the gallery descriptors"):
        cross_view_metrics(good, torch.full_like(good, float("inf")))


def test_eval_of_a_checkpoint_with_nan_weights_is_one_line(tmp_path):
    import subprocess
    import sys

    from cvgl_edge.models import build_model, save_checkpoint
    from tests.support.tiny import TINY

    model = build_model("geossm-nano", **TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    ckpt = save_checkpoint(model, tmp_path / "nan.pt")
    run = subprocess.run([sys.executable, "-m", "cvgl_edge.cli", "eval", str(ckpt), "--data", "synthetic:64",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and "non-finite values" in lines[0], run.stderr[-2000:]
