"""Temporal filter: following a track, gating outliers, losing track, margin confidence; window search."""

from __future__ import annotations

import math

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
    for t in (-2.0, -1.0):
        assert tr.update(t, _cands(0.0, 0.0), "global").status == "no_fix"      # a chain of three first
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


def test_each_new_track_is_counted_so_the_autopilot_can_reset_to_it():
    tr = Tracker(TrackerSettings(meas_sigma_m=10.0, lost_after=2))
    for t in range(3):
        est = tr.update(float(t), _cands(0.0, 0.0), "global")
    assert est.status == "fix" and est.track == 1 and est.sigma_v > 0
    for t in (3.0, 4.0):                                               # lost: two impossible matches
        est = tr.update(t, _cands(9000.0, 0.0), "window")
    assert est.status == "no_fix" and est.track == 1
    for t in (5.0, 6.0, 7.0):                                          # re-acquired elsewhere: a jump
        est = tr.update(t, _cands(900.0, 0.0), "global")
    assert est.status == "fix" and est.track == 2 and est.east == pytest.approx(900.0)


def test_tracker_needs_a_chain_of_confident_consistent_matches():
    tr = Tracker(TrackerSettings(init_confidence=0.5, init_frames=3))
    est = tr.update(0.0, _cands(0.0, 0.0, best=0.71, rival=0.70), "global")
    assert est.status == "no_fix" and est.reason == "no confident match" and not tr.tracking
    assert tr.update(1.0, _cands(0.0, 0.0, best=0.9, rival=0.5), "global").reason == "1 of 3 consistent matches"
    assert tr.update(2.0, _cands(10.0, 0.0, best=0.9, rival=0.5), "global").reason == "2 of 3 consistent matches"
    jump = tr.update(3.0, _cands(900.0, 0.0, best=0.9, rival=0.5), "global")     # out of reach: a new chain
    assert jump.status == "no_fix" and jump.reason == "1 of 3 consistent matches"
    assert tr.update(4.0, _cands(910.0, 0.0, best=0.9, rival=0.5), "global").status == "no_fix"
    assert tr.update(5.0, _cands(915.0, 0.0, best=0.71, rival=0.70), "global").reason == "no confident match"
    for t in (6.0, 7.0):
        assert tr.update(t, _cands(920.0, 0.0, best=0.9, rival=0.5), "global").status == "no_fix"
    est = tr.update(8.0, _cands(930.0, 0.0, best=0.9, rival=0.5), "global")
    assert est.status == "fix" and est.east == pytest.approx(930.0)


def test_tracking_prefers_the_neighbour_tile_the_motion_predicts():
    """Two neighbouring tiles nearly tie on similarity: the one where the drone must be wins."""
    tr = Tracker(TrackerSettings(meas_sigma_m=10.0, exclusion_m=60.0, init_frames=1))
    tr.update(0.0, _cands(0.0, 0.0), "global")
    for k in range(1, 6):
        tr.update(float(k), _cands(10.0 * k, 0.0), "window")
    c = Candidates(np.array([7, 8, 9]), np.array([0.90, 0.89, 0.5], np.float32), np.array([95.0, 60.0, 600.0]),
                   np.array([0.0, 0.0, 0.0]), 3)                 # prediction ~60 m east
    est = tr.update(6.0, c, "window")
    assert est.status == "fix" and est.tile == 8 and est.east == pytest.approx(60.0, abs=5.0)
    far_rival = Candidates(np.array([7, 8]), np.array([0.92, 0.89], np.float32), np.array([400.0, 70.0]),
                           np.array([0.0, 0.0]), 2)              # a clearly better look-alike elsewhere
    amb = tr.update(7.0, far_rival, "window")
    assert amb.status == "predicted" and amb.reason == "ambiguous match"


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
    for t in (0.0, 1.0, 2.0):
        weak = _cands(10.0 * t, 0.0, best=0.4, rival=0.1)     # margin 0.3: confident for the margin test
        a, b = free.update(t, weak, "global"), floored.update(t, weak, "global")
    assert a.status == "fix" and b.status == "no_fix" and "below 0.5" in b.reason and not floored.tracking
    for t in (3.0, 4.0, 5.0):
        est = floored.update(t, _cands(10.0 * t, 0.0, best=0.8, rival=0.5), "global")
    assert est.status == "fix"                                    # strong matches still start a track
    coast = floored.update(6.0, _cands(60.0, 0.0, best=0.45, rival=0.1), "window")
    assert coast.status == "predicted" and "below" in coast.reason


# A 400 m x 400 m map: tiles of 40 m every 20 m, centres from -180 to 180 m on both axes.
TILE_M, STRIDE_M, HALF_EXTENT = 40.0, 20.0, 180.0


@pytest.fixture(scope="module")
def grid_coverage():
    from cvgl_edge.localize.coverage import MapCoverage
    from cvgl_edge.data.geomap import local_to_latlon
    from cvgl_edge.localize.index import TileIndex, make_faiss
    from cvgl_edge.localize.search import TileSearcher

    axis = np.arange(-HALF_EXTENT, HALF_EXTENT + 1e-6, STRIDE_M)
    east, north = (v.ravel() for v in np.meshgrid(axis, axis))
    lat, lon = local_to_latlon(east, north, (47.0, 8.0))
    desc = np.eye(len(east), 8, dtype=np.float32) + 1e-3
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    index, _ = make_faiss(desc)
    ti = TileIndex(index, {"lat": lat, "lon": lon}, {"kind": "flat", "descriptor_dim": 8, "origin": [47.0, 8.0]})
    return MapCoverage(TileSearcher(ti), TILE_M, STRIDE_M)


def _nearest_tile(cov, east, north, sim=0.9, rival=0.5):
    """What a good descriptor returns: the map tile nearest to the true position (never one off the map)."""
    s = cov.searcher
    best = int(np.argmin(np.hypot(s.east - east, s.north - north)))
    return Candidates(np.array([best, (best + 7) % len(s.east)]), np.array([sim, rival], np.float32),
                      np.array([s.east[best], s.east[best] + 300.0]), np.array([s.north[best], s.north[best]]), 2)


def test_coverage_knows_the_map_and_its_edge_tiles(grid_coverage):
    cov = grid_coverage
    assert cov.contains(0.0, 0.0) and cov.contains(199.0, -199.0)
    assert not cov.contains(0.0, 201.0) and not cov.contains(-230.0, 0.0)
    s = cov.searcher
    edge = int(np.argmin(np.hypot(s.east - 0.0, s.north - HALF_EXTENT)))       # on the north edge
    inner = int(np.argmin(np.hypot(s.east - 0.0, s.north - 100.0)))
    assert cov.open_sides(edge, 0.0, HALF_EXTENT + 30.0) == (False, True)      # nothing further north
    assert cov.open_sides(edge, 0.0, HALF_EXTENT - 5.0) == (False, False)      # the point is in its cell
    assert cov.open_sides(inner, 0.0, 130.0) == (False, False)                 # more tiles northwards
    corner = int(np.argmin(np.hypot(s.east - HALF_EXTENT, s.north - HALF_EXTENT)))
    assert cov.open_sides(corner, HALF_EXTENT + 40.0, HALF_EXTENT + 40.0) == (True, True)


def _fly(tracker, cov, path):
    """Feed the tracker one nearest-tile match per (t, east, north); returns the estimates."""
    return [tracker.update(t, _nearest_tile(cov, e, n), "window" if tracker.tracking else "global")
            for t, e, n in path]


def test_leaving_the_map_gives_no_fix_instead_of_the_edge_tile(grid_coverage):
    """North at 10 m/s across the north edge (at 200 m), 30 s outside, then back south."""
    out = [(float(k), 0.0, 10.0 * k) for k in range(0, 36)]                      # north to 350 m
    back = [(36.0 + k, 0.0, 350.0 - 10.0 * k) for k in range(1, 31)]            # back south to 50 m
    settings = TrackerSettings(meas_sigma_m=STRIDE_M, exclusion_m=TILE_M, min_window_m=2 * TILE_M)
    aware = _fly(Tracker(settings, grid_coverage), grid_coverage, out + back)
    blind = _fly(Tracker(settings), grid_coverage, out + back)
    away = [i for i, (_, _, n) in enumerate(out + back) if n > 200.0 + TILE_M / 2]  # clearly off the map
    assert len(away) >= 20
    assert all(aware[i].status == "no_fix" and aware[i].reason.startswith("outside the map") for i in away)
    assert all(aware[i].state == "off_map" for i in away)          # the track is kept: no reset while away
    assert sum(blind[i].status == "fix" for i in away) >= len(away) - 2        # pinned to the edge tile
    assert all(abs(blind[i].north - HALF_EXTENT) < STRIDE_M for i in away[-5:] if blind[i].status == "fix")
    on_map_again = [i for i in range(len(out), len(out + back)) if (out + back)[i][2] < 200.0 - TILE_M]
    late = on_map_again[4:]
    assert late and all(aware[i].status == "fix" for i in late)
    assert all(abs(aware[i].north - (out + back)[i][2]) < 2 * STRIDE_M for i in late)


def test_off_the_map_a_far_match_does_not_bring_the_track_back(grid_coverage):
    """Confident, self-consistent matches far from where the drone left are refused."""
    cov = grid_coverage
    tr = Tracker(TrackerSettings(meas_sigma_m=STRIDE_M, exclusion_m=TILE_M, min_window_m=2 * TILE_M), cov)
    _fly(tr, cov, [(float(k), 0.0, 10.0 * k) for k in range(0, 26)])              # off the north edge at 250 m
    assert tr.off_map
    far = [tr.update(26.0 + k, _nearest_tile(cov, -160.0, -160.0), "window") for k in range(6)]
    assert all(e.status == "no_fix" and e.state == "off_map" for e in far)


def test_speed_is_capped():
    """Matches that imply 60 m/s do not launch the prediction faster than max_speed."""
    tr = Tracker(TrackerSettings(meas_sigma_m=5.0, max_speed=20.0, gate_chi2=1e9, init_frames=1))
    tr.update(0.0, _cands(0.0, 0.0), "global")
    for k in range(1, 8):
        est = tr.update(float(k), _cands(60.0 * k, 0.0), "window")
    assert est.status == "fix" and math.hypot(est.v_east, est.v_north) <= 20.0 + 1e-6
