"""Temporal filter: constant-velocity Kalman filter in local metres, outlier gating, confidence.

Why: single-frame retrieval is noisy (repetitive fields and roofs give confident wrong
tiles). The filter predicts where the drone must be from its recent motion, accepts a
retrieved tile only when it falls inside the prediction's gate (Mahalanobis distance,
chi-square), and tells the loop how wide a search window the next frame needs. Confidence
comes from the similarity *margin*: the best tile's cosine minus the best cosine of any
candidate at a clearly different place (at least ``exclusion_m`` away; neighbouring tiles
overlap, so they are naturally similar).

An absolute floor, ``min_similarity`` (cosine of the best candidate), turns a weak best
match into "no match" whatever its margin. The right value depends on the model; measure
it with ``cvgl-edge localize --eval`` (it reports the similarity of correct and wrong
matches and a suggested floor) and store it in the index (``index build --min-similarity``).

Starting a track takes a *chain*: ``init_frames`` consecutive global best matches, each
confident (``init_confidence``) and within reach of the one before. Why: look-alike places
give confident wrong matches, and consecutive frames are nearly the same image, so two
agreeing matches are cheap. Over six synthetic flights with the demo's drone model, runs of
two were right 90 times and wrong 61 times (38 on the map, 23 off it); runs of three, 69
against 23 (measured while choosing the default; the loop's end-to-end figures are in
``benchmarks/results/localize_flights_*.md``).

The map's edge (given a :class:`~cvgl_edge.localize.coverage.MapCoverage`): a match on an
edge tile while the prediction lies beyond it is a *bound*, not a position (retrieval
cannot answer with a tile that does not exist), so it updates only the axes along which
the tile has neighbours. A drone flying off the map therefore keeps its predicted course
off the map instead of being pinned to the edge tile, and the filter reports "no fix:
outside the map" from the moment its prediction leaves the imagery. Outside, missing
matches are expected and do not count towards losing the track; the search is global,
and coming back onto the map takes a chain like a first fix, every match of it a position
(not the edge tile left behind) inside the gate of the dead-reckoned prediction.

States: ``lost`` (no estimate; global search), ``tracking`` (window search, gated
updates) and ``off_map`` (predicted position beyond the map; global search). After
``lost_after`` frames on the map without an accepted measurement the filter gives up and
goes back to ``lost``. Speed is capped at ``max_speed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from cvgl_edge.localize.search import Candidates

if TYPE_CHECKING:
    from cvgl_edge.localize.coverage import MapCoverage


@dataclass
class TrackerSettings:
    meas_sigma_m: float = 30.0       # 1-sigma position error of a confident retrieval (~ tile stride)
    accel_sigma: float = 3.0         # m/s^2, white-acceleration process noise
    max_speed: float = 25.0          # m/s, initial velocity uncertainty and window growth
    gate_chi2: float = 13.8          # 99.9 % of a 2-dof chi-square
    init_confidence: float = 0.75    # needed to (re)start tracking from a global search
    init_frames: int = 3             # consecutive confident, mutually reachable global matches to (re)start
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
    east: float = math.nan        # the filter's position (also while off the map: dead reckoning)
    north: float = math.nan
    v_east: float = math.nan
    v_north: float = math.nan
    sigma_m: float = math.nan     # 1-sigma horizontal position uncertainty
    sigma_v: float = math.nan     # 1-sigma horizontal velocity uncertainty (m/s, largest axis)
    confidence: float = 0.0
    similarity: float = math.nan
    margin: float = math.nan
    tile: int = -1
    reason: str = ""
    state: str = "lost"           # "lost", "tracking" or "off_map" after this frame
    track: int = 0                # tracks started so far (a new one may jump: MAVLink's reset_counter)


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


def chi2_quantile_1dof(chi2_2dof: float) -> float:
    """The 1-dof chi-square value with the same tail probability as ``chi2_2dof`` has for 2 dof."""
    tail = math.exp(-chi2_2dof / 2.0)
    return NormalDist().inv_cdf(1.0 - tail / 2.0) ** 2


@dataclass
class Tracker:
    """Constant-velocity Kalman filter over (east, north, v_east, v_north)."""

    settings: TrackerSettings = field(default_factory=TrackerSettings)
    coverage: "MapCoverage | None" = None

    def __post_init__(self) -> None:
        self.tracks = 0   # tracks started (first acquisitions and re-acquisitions); never reset
        self.reset()

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.p: np.ndarray | None = None
        self.t: float | None = None
        self.misses = 0
        self._chain: list[tuple[float, float, float]] = []   # (t, east, north) of the current chain

    @property
    def tracking(self) -> bool:
        return self.x is not None

    @property
    def off_map(self) -> bool:
        """True while tracking with the position beyond the map's imagery."""
        return self.x is not None and self.coverage is not None and not self.coverage.contains(self.x[0], self.x[1])

    @property
    def state(self) -> str:
        return "lost" if self.x is None else "off_map" if self.off_map else "tracking"

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
        return self._sigma_of(slice(0, 2))

    def velocity_sigma(self) -> float:
        """1-sigma velocity uncertainty in m/s (largest axis)."""
        return self._sigma_of(slice(2, 4))

    def _sigma_of(self, block: slice) -> float:
        if self.p is None:
            return math.inf
        return float(math.sqrt(max(np.linalg.eigvalsh(self.p[block, block]).max(), 0.0)))

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
        self.tracks += 1

    def _measured_axes(self, tile: int) -> np.ndarray:
        """Rows of the position (0 east, 1 north) that a match on ``tile`` measures; see the module docstring."""
        if self.coverage is None or tile < 0:
            return np.array([0, 1])
        open_east, open_north = self.coverage.open_sides(tile, float(self.x[0]), float(self.x[1]))
        return np.array([axis for axis, bounded in ((0, open_east), (1, open_north)) if not bounded], int)

    def _gate(self, east: float, north: float, sigma: float,
              axes: np.ndarray) -> tuple[bool, float, np.ndarray, np.ndarray, np.ndarray]:
        """(inside the gate, Mahalanobis d^2, innovation, its covariance, H) of one match."""
        h = np.zeros((len(axes), 4))
        h[np.arange(len(axes)), axes] = 1.0
        innov = np.array([east, north])[axes] - h @ self.x
        s_mat = h @ self.p @ h.T + np.eye(len(axes)) * sigma ** 2
        d2 = float(innov @ np.linalg.solve(s_mat, innov))
        limit = self.settings.gate_chi2 if len(axes) == 2 else chi2_quantile_1dof(self.settings.gate_chi2)
        return d2 <= limit, d2, innov, s_mat, h

    def _associate(self, cands: Candidates) -> tuple[int, np.ndarray]:
        """The candidate to use while tracking, and the axes a match on it measures.

        Why not simply the most similar tile: with a small model the right tile is often
        second or third by similarity, next to a look-alike far away. Each gated candidate is
        scored ``cosine / margin_scale - d^2 / 2`` (a log likelihood with the margin scale as
        the cosine's unit); the most similar tile is used when none is inside the gate (and
        the gate then refuses it). Its confidence is still its margin over every candidate,
        so a pick that a clearly better tile elsewhere outshines counts as ambiguous.
        """
        s = self.settings
        axes = [self._measured_axes(int(tile)) for tile in cands.ids]
        best, best_score = 0, -math.inf
        for i, measured in enumerate(axes):
            if len(measured) == 0:
                continue
            ok, d2, *_ = self._gate(float(cands.east[i]), float(cands.north[i]), s.meas_sigma_m, measured)
            score = float(cands.sims[i]) / s.margin_scale - 0.5 * d2
            if ok and score > best_score:
                best, best_score = i, score
        return best, axes[best]

    def _extend_chain(self, t: float, east: float, north: float, conf: float) -> bool:
        """Feed one frame's global best match; True once ``init_frames`` confident best matches in a row
        lie at places a drone can link (each within reach of the one before).

        Why a chain: one confident match, or two on consecutive, nearly identical frames, is
        what a look-alike place produces too; a run of them that moves like a drone is not.
        """
        s = self.settings
        if conf < s.init_confidence:
            self._chain = []
            return False
        if self._chain:
            t0, e0, n0 = self._chain[-1]
            if math.hypot(east - e0, north - n0) > 3 * s.meas_sigma_m + s.max_speed * max(t - t0, 0.0):
                self._chain = []
        self._chain.append((t, east, north))
        return len(self._chain) >= s.init_frames

    def update(self, t: float, cands: Candidates, mode: str) -> Estimate:
        """Fold one frame's candidates (best first, from the search :meth:`search_mode` asked for)
        into the filter; return the frame's estimate."""
        s = self.settings
        self.predict(t)
        if self.x is None or self.off_map:
            return self._acquire(t, mode, cands)
        if len(cands) == 0:
            return self._miss(mode, "no tiles in the search window")
        pick, axes = self._associate(cands)
        seen = self._seen(cands, pick)
        if s.min_similarity is not None and seen["sim"] < s.min_similarity:
            return self._miss(mode, f"best similarity {seen['sim']:.3f} below {s.min_similarity:g}", **seen)
        if seen["conf"] < s.min_confidence:
            return self._miss(mode, "ambiguous match", **seen)
        if len(axes) == 0:
            return self._miss(mode, "match on a corner tile (a bound only)", **seen)
        east, north = float(cands.east[pick]), float(cands.north[pick])
        ok, _, innov, s_mat, h = self._gate(east, north, self._sigma(seen["conf"]), axes)
        if not ok:
            return self._miss(mode, "outlier (gated)", **seen)
        gain = self.p @ h.T @ np.linalg.inv(s_mat)
        self.x = self.x + gain @ innov
        self.p = (np.eye(4) - gain @ h) @ self.p
        self._clamp_speed()
        self.misses = 0
        if self.off_map:
            return self._outside(mode, "left the map past the edge tile", **seen)
        return self._estimate("fix", mode, **seen)

    def search_mode(self) -> str:
        """"global" while lost or off the map (a chain of global matches brings the track back), else "window"."""
        return "global" if self.x is None or self.off_map else "window"

    def _sigma(self, conf: float) -> float:
        return self.settings.meas_sigma_m / math.sqrt(max(conf, 0.05))

    def _seen(self, cands: Candidates, pick: int = 0) -> dict:
        """What the estimate reports about candidate ``pick``: confidence, cosine, margin, tile."""
        margin = similarity_margin(cands, self.settings.exclusion_m, pick)
        return dict(conf=margin_confidence(margin, self.settings.margin_scale), sim=float(cands.sims[pick]),
                    margin=margin, tile=int(cands.ids[pick]))

    def _clamp_speed(self) -> None:
        """No faster than ``max_speed``: a wrong match must not launch the prediction off at 50 m/s."""
        speed = math.hypot(self.x[2], self.x[3])
        if speed > self.settings.max_speed:
            self.x[2:] *= self.settings.max_speed / speed

    def _acquire(self, t: float, mode: str, cands: Candidates) -> Estimate:
        """A first fix (lost), or the way back onto the map (off the map: dead reckoning meanwhile).

        Both need a chain of ``init_frames`` global matches (:meth:`_extend_chain`). Off the
        map each of them must also be a position (not the edge tile the drone flew past) and
        inside the dead-reckoning gate: the drone comes back from where it left, not from
        wherever a look-alike is.
        """
        if len(cands) == 0:
            self._chain = []
            return self._miss(mode, "no tiles to search")
        seen = self._seen(cands)
        s = self.settings
        if s.min_similarity is not None and seen["sim"] < s.min_similarity:
            self._chain = []
            return self._miss(mode, f"best similarity {seen['sim']:.3f} below {s.min_similarity:g}", **seen)
        east, north = float(cands.east[0]), float(cands.north[0])
        if self.x is not None:
            if len(self._measured_axes(seen["tile"])) < 2:
                self._chain = []
                return self._outside(mode, "match on the edge tile left behind", **seen)
            if not self._gate(east, north, s.meas_sigma_m, np.array([0, 1]))[0]:
                self._chain = []
                return self._outside(mode, "match out of reach", **seen)
        if not self._extend_chain(t, east, north, seen["conf"]):
            reason = "no confident match" if not self._chain else \
                f"{len(self._chain)} of {s.init_frames} consistent matches"
            return self._miss(mode, reason, **seen)
        self._start(t, east, north, self._sigma(seen["conf"]))
        return self._estimate("fix", mode, **seen)

    def _miss(self, mode: str, reason: str, conf: float = 0.0, sim: float = math.nan,
              margin: float = math.nan, tile: int = -1) -> Estimate:
        if self.x is None:
            return Estimate("no_fix", mode, confidence=conf, similarity=sim, margin=margin, tile=tile, reason=reason,
                            track=self.tracks)
        if self.off_map:
            # The prediction explains the missing match: no count towards losing the track.
            return self._outside(mode, reason, conf, sim, margin, tile)
        self.misses += 1
        if self.misses >= self.settings.lost_after:
            self.reset()
            return Estimate("no_fix", mode, confidence=conf, similarity=sim, margin=margin, tile=tile,
                            reason=f"lost track ({reason})", track=self.tracks)
        # Coasting: report the prediction with a confidence that decays with each missed frame.
        coast = 0.5 ** self.misses
        est = self._estimate("predicted", mode, 0.0, sim, margin, tile)
        est.confidence = float(coast * max(0.0, 1.0 - self.position_sigma() / (10 * self.settings.meas_sigma_m)))
        est.reason = reason
        return est

    def _outside(self, mode: str, reason: str, conf: float = 0.0, sim: float = math.nan,
                 margin: float = math.nan, tile: int = -1) -> Estimate:
        est = self._estimate("no_fix", mode, conf, sim, margin, tile)
        est.reason = f"outside the map; {reason}"
        return est

    def _estimate(self, status: str, mode: str, conf: float, sim: float, margin: float, tile: int) -> Estimate:
        e, n, ve, vn = (float(v) for v in self.x)
        return Estimate(status, mode, e, n, ve, vn, self.position_sigma(), self.velocity_sigma(), conf, sim, margin,
                        tile, state=self.state, track=self.tracks)
