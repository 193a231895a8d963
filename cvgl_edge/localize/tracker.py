"""Temporal filter: constant-velocity Kalman filter in local metres, outlier gating, confidence.

Why: single-frame retrieval is noisy (repetitive fields and roofs give confident wrong
tiles). The filter predicts where the drone must be from its recent motion, accepts a
retrieved tile only when it falls inside the prediction's gate (Mahalanobis distance,
chi-square with 2 degrees of freedom), and tells the loop how wide a search window the
next frame needs. Confidence comes from the similarity *margin*: the best tile's cosine
minus the best cosine of any candidate at a clearly different place (at least
``exclusion_m`` away; neighbouring tiles overlap, so they are naturally similar).

An absolute floor, ``min_similarity`` (cosine of the best candidate), turns a weak best
match into "no match" whatever its margin. Why: off the map every tile is wrong, yet the
best of them can still stand out from the others (a large margin), so a margin-only test
re-acquires on edge tiles. The right value depends on the model; measure it with
``cvgl-edge localize --eval`` (it reports the similarity of correct and wrong matches and
a suggested floor) and store it in the index (``index build --min-similarity``).

States: ``lost`` (no estimate: the loop searches globally and a fix needs
``init_confidence`` on two consecutive frames at consistent places), ``tracking`` (window search, gated updates). After ``lost_after``
frames without an accepted measurement the filter gives up and goes back to ``lost``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cvgl_edge.localize.search import Candidates


@dataclass
class TrackerSettings:
    meas_sigma_m: float = 30.0       # 1-sigma position error of a confident retrieval (~ tile stride)
    accel_sigma: float = 3.0         # m/s^2, white-acceleration process noise
    max_speed: float = 25.0          # m/s, initial velocity uncertainty and window growth
    gate_chi2: float = 13.8          # 99.9 % of a 2-dof chi-square
    init_confidence: float = 0.75    # needed to (re)start tracking from a global search
    min_confidence: float = 0.05     # below: the frame gives no measurement
    margin_scale: float = 0.02       # cosine margin giving confidence 1 - 1/e
    exclusion_m: float = 60.0        # candidates closer than this to the best are "the same place"
    lost_after: int = 8              # frames without an accepted measurement before going global
    window_sigmas: float = 3.0       # window radius = this many position sigmas (+ min_window_m)
    min_window_m: float = 80.0
    min_similarity: float | None = None  # best cosine below this: no measurement (None: no floor)


@dataclass
class Estimate:
    """The filter's answer for one frame."""

    status: str                   # "fix" (measurement accepted), "predicted" (coasting) or "no_fix"
    mode: str                     # search mode used for this frame: "global" or "window"
    east: float = math.nan
    north: float = math.nan
    v_east: float = math.nan
    v_north: float = math.nan
    sigma_m: float = math.nan     # 1-sigma horizontal position uncertainty
    confidence: float = 0.0
    similarity: float = math.nan
    margin: float = math.nan
    tile: int = -1
    reason: str = ""


def similarity_margin(cands: Candidates, exclusion_m: float, best: int = 0) -> float:
    """Cosine of candidate ``best`` minus the best cosine of candidates >= ``exclusion_m`` away.

    With no such rival among the candidates, the last (lowest) candidate stands in, so the
    margin is a lower bound; a lone candidate gets margin 0.
    """
    if len(cands) == 0:
        return 0.0
    d = np.hypot(cands.east - cands.east[best], cands.north - cands.north[best])
    rivals = cands.sims[d >= exclusion_m]
    rival = float(rivals.max()) if len(rivals) else float(cands.sims[-1])
    return float(cands.sims[best]) - rival


def margin_confidence(margin: float, scale: float) -> float:
    """Map a similarity margin to 0..1 (saturating)."""
    return float(1.0 - math.exp(-max(margin, 0.0) / max(scale, 1e-9)))


@dataclass
class Tracker:
    """Constant-velocity Kalman filter over (east, north, v_east, v_north)."""

    settings: TrackerSettings = field(default_factory=TrackerSettings)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.p: np.ndarray | None = None
        self.t: float | None = None
        self.misses = 0
        self._pending: tuple[float, float, float] | None = None

    @property
    def tracking(self) -> bool:
        return self.x is not None

    def predict(self, t: float) -> None:
        """Advance the state to time ``t`` (seconds)."""
        if self.x is None:
            return
        dt = max(0.0, t - (self.t if self.t is not None else t))
        f = np.eye(4)
        f[0, 2] = f[1, 3] = dt
        q = self.settings.accel_sigma ** 2
        g = np.array([[dt ** 4 / 4, dt ** 3 / 2], [dt ** 3 / 2, dt ** 2]]) * q
        qm = np.zeros((4, 4))
        qm[np.ix_([0, 2], [0, 2])] = g
        qm[np.ix_([1, 3], [1, 3])] = g
        self.x = f @ self.x
        self.p = f @ self.p @ f.T + qm
        self.t = t

    def position_sigma(self) -> float:
        """1-sigma radius of the position uncertainty (largest axis)."""
        if self.p is None:
            return math.inf
        return float(math.sqrt(max(np.linalg.eigvalsh(self.p[:2, :2]).max(), 0.0)))

    def window(self) -> tuple[float, float, float] | None:
        """(east, north, radius_m) to search next, or None for a global search."""
        if self.x is None:
            return None
        s = self.settings
        radius = s.window_sigmas * self.position_sigma() + s.min_window_m
        return float(self.x[0]), float(self.x[1]), radius

    def _start(self, t: float, east: float, north: float, sigma: float) -> None:
        s = self.settings
        self.x = np.array([east, north, 0.0, 0.0])
        self.p = np.diag([sigma ** 2, sigma ** 2, s.max_speed ** 2, s.max_speed ** 2])
        self.t = t
        self.misses = 0

    def _gate(self, east: float, north: float, sigma: float) -> tuple[bool, np.ndarray, np.ndarray]:
        r = np.eye(2) * sigma ** 2
        innov = np.array([east, north]) - self.x[:2]
        s_mat = self.p[:2, :2] + r
        d2 = float(innov @ np.linalg.solve(s_mat, innov))
        return d2 <= self.settings.gate_chi2, innov, s_mat

    def update(self, t: float, cands: Candidates, mode: str) -> Estimate:
        """Fold one frame's candidates (best first) into the filter; return the frame's estimate."""
        s = self.settings
        self.predict(t)
        if len(cands) == 0:
            return self._miss(mode, "no tiles in the search window")
        margin = similarity_margin(cands, s.exclusion_m)
        conf = margin_confidence(margin, s.margin_scale)
        east, north = float(cands.east[0]), float(cands.north[0])
        sim, tile = float(cands.sims[0]), int(cands.ids[0])
        sigma = s.meas_sigma_m / math.sqrt(max(conf, 0.05))
        if s.min_similarity is not None and sim < s.min_similarity:
            if self.x is None:
                self._pending = None
            return self._miss(mode, f"best similarity {sim:.3f} below {s.min_similarity:g}", conf, sim, margin, tile)
        if self.x is None:
            if conf < s.init_confidence:
                self._pending = None
                return Estimate("no_fix", mode, confidence=conf, similarity=sim, margin=margin, tile=tile,
                                reason="no confident match")
            # (Re)start only when two consecutive global matches agree with a plausible motion.
            pending, self._pending = self._pending, (t, east, north)
            if pending is None or math.hypot(east - pending[1], north - pending[2]) > \
                    3 * s.meas_sigma_m + s.max_speed * max(t - pending[0], 0.0):
                return Estimate("no_fix", mode, confidence=conf, similarity=sim, margin=margin, tile=tile,
                                reason="waiting for a second, consistent match")
            self._start(t, east, north, sigma)
            return self._estimate("fix", mode, conf, sim, margin, tile)
        if conf < s.min_confidence:
            return self._miss(mode, "ambiguous match", conf, sim, margin, tile)
        ok, innov, s_mat = self._gate(east, north, sigma)
        if not ok:
            return self._miss(mode, "outlier (gated)", conf, sim, margin, tile)
        h = np.zeros((2, 4))
        h[0, 0] = h[1, 1] = 1.0
        gain = self.p @ h.T @ np.linalg.inv(s_mat)
        self.x = self.x + gain @ innov
        self.p = (np.eye(4) - gain @ h) @ self.p
        self.misses = 0
        return self._estimate("fix", mode, conf, sim, margin, tile)

    def _miss(self, mode: str, reason: str, conf: float = 0.0, sim: float = math.nan,
              margin: float = math.nan, tile: int = -1) -> Estimate:
        if self.x is None:
            return Estimate("no_fix", mode, confidence=conf, similarity=sim, margin=margin, tile=tile, reason=reason)
        self.misses += 1
        if self.misses >= self.settings.lost_after:
            self.reset()
            return Estimate("no_fix", mode, confidence=conf, similarity=sim, margin=margin, tile=tile,
                            reason=f"lost track ({reason})")
        # Coasting: report the prediction with a confidence that decays with each missed frame.
        coast = 0.5 ** self.misses
        est = self._estimate("predicted", mode, 0.0, sim, margin, tile)
        est.confidence = float(coast * max(0.0, 1.0 - self.position_sigma() / (10 * self.settings.meas_sigma_m)))
        est.reason = reason
        return est

    def _estimate(self, status: str, mode: str, conf: float, sim: float, margin: float, tile: int) -> Estimate:
        e, n, ve, vn = (float(v) for v in self.x)
        return Estimate(status, mode, e, n, ve, vn, self.position_sigma(), conf, sim, margin, tile)
