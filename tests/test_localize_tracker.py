"""Temporal filter: following a track, gating outliers, losing track, margin confidence; window search."""

from __future__ import annotations

import numpy as np
import pytest

from cvgl_edge.localize.search import Candidates
from cvgl_edge.localize.tracker import Tracker, TrackerSettings, margin_confidence, similarity_margin


def _cands(east, north, best=0.9, rival=0.7):
    """Best tile at (east, north), a rival 500 m away."""
    return Candidates(np.array([1, 2]), np.array([best, rival], np.float32), np.array([east, east + 500.0]),
                      np.array([north, north]), 100)


def test_margin_ignores_neighbouring_tiles():
    c = Candidates(np.array([0, 1, 2]), np.array([0.9, 0.89, 0.6], np.float32), np.array([0.0, 20.0, 400.0]),
                   np.array([0.0, 0.0, 0.0]), 3)
    assert similarity_margin(c, exclusion_m=60.0) == pytest.approx(0.3, abs=1e-6)
    assert similarity_margin(c, exclusion_m=10.0) == pytest.approx(0.01, abs=1e-6)
    assert margin_confidence(0.0, 0.02) == 0.0 and margin_confidence(1.0, 0.02) > 0.99


def test_tracker_follows_gates_and_loses():
    tr = Tracker(TrackerSettings(meas_sigma_m=10.0, lost_after=3))
    assert tr.update(-1.0, _cands(0.0, 0.0), "global").status == "no_fix"      # waits for a second match
    est = tr.update(0.0, _cands(0.0, 0.0), "global")
    assert est.status == "fix" and tr.tracking
    for k in range(1, 11):                       # 10 m/s eastwards, one frame per second
        est = tr.update(float(k), _cands(10.0 * k, 0.0), "window")
        assert est.status == "fix"
    assert est.v_east == pytest.approx(10.0, abs=1.5) and abs(est.east - 100.0) < 10.0
    jump = tr.update(11.0, _cands(2000.0, 0.0), "window")          # a confident but impossible match
    assert jump.status == "predicted" and "gated" in jump.reason
    assert jump.east == pytest.approx(110.0, abs=10.0)
    back = tr.update(12.0, _cands(120.0, 0.0), "window")
    assert back.status == "fix" and tr.misses == 0
    for k in range(3):
        est = tr.update(13.0 + k, _cands(5000.0, 0.0), "window")
    assert est.status == "no_fix" and "lost" in est.reason and not tr.tracking


def test_tracker_needs_a_confident_first_fix():
    tr = Tracker(TrackerSettings(init_confidence=0.5))
    est = tr.update(0.0, _cands(0.0, 0.0, best=0.71, rival=0.70), "global")
    assert est.status == "no_fix" and not tr.tracking
    assert tr.update(1.0, _cands(0.0, 0.0, best=0.9, rival=0.5), "global").status == "no_fix"
    assert tr.update(2.0, _cands(900.0, 0.0, best=0.9, rival=0.5), "global").status == "no_fix"   # inconsistent
    assert tr.update(3.0, _cands(910.0, 0.0, best=0.9, rival=0.5), "global").status == "fix"


def test_window_search_matches_brute_force(tmp_path):
    from cvgl_edge.localize.index import TileIndex, make_faiss
    from cvgl_edge.localize.search import TileSearcher

    rng = np.random.default_rng(0)
    n, d = 400, 16
    desc = rng.standard_normal((n, d)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    lat = 47.0 + rng.uniform(-0.01, 0.01, n)
    lon = 8.0 + rng.uniform(-0.01, 0.01, n)
    index, _ = make_faiss(desc)
    ti = TileIndex(index, {"lat": lat, "lon": lon}, {"kind": "flat", "descriptor_dim": d, "origin": [47.0, 8.0]})
    s = TileSearcher(ti)
    q = desc[17]
    g = s.global_search(q, 5)
    assert g.ids[0] == 17 and g.searched == n
    ids = s.window_ids(s.east[17], s.north[17], 300.0)
    brute = np.flatnonzero(np.hypot(s.east - s.east[17], s.north - s.north[17]) <= 300.0)
    assert list(ids) == list(brute)
    w = s.window_search(q, s.east[17], s.north[17], 300.0, k=4)
    order = brute[np.argsort(-(desc[brute] @ q))][:4]
    assert list(w.ids) == list(order) and w.searched == len(brute)
    assert len(s.window_search(q, 1e6, 1e6, 10.0)) == 0


def test_similarity_floor_refuses_weak_but_distinct_matches():
    """Off the map the best tile can stand out (large margin) while being weak: the floor says no."""
    free = Tracker(TrackerSettings(meas_sigma_m=10.0))
    floored = Tracker(TrackerSettings(meas_sigma_m=10.0, min_similarity=0.5))
    for t in (0.0, 1.0):
        weak = _cands(10.0 * t, 0.0, best=0.4, rival=0.1)     # margin 0.3: confident for the margin test
        a, b = free.update(t, weak, "global"), floored.update(t, weak, "global")
    assert a.status == "fix" and b.status == "no_fix" and "below 0.5" in b.reason and not floored.tracking
    for t in (2.0, 3.0):
        est = floored.update(t, _cands(10.0 * t, 0.0, best=0.8, rival=0.5), "global")
    assert est.status == "fix"                                    # strong matches still start a track
    coast = floored.update(4.0, _cands(40.0, 0.0, best=0.45, rival=0.1), "window")
    assert coast.status == "predicted" and "below" in coast.reason
