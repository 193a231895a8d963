"""The localisation loop: frame -> pre-processing -> encoder -> search -> filter -> fix -> sinks.

Search mode follows the filter (:meth:`Tracker.search_mode`): global (whole index) while
lost or off the map, a window around the predicted position while tracking. Every frame
yields one record (a fix, a predicted position while coasting, or "no fix", with the
filter's state and the reason) with per-stage latency in milliseconds:

    read        getting the frame from the source (decode, render, or waiting for a new one)
    preprocess  crop to the ground footprint, north-up rotation, resize/polar, normalisation
    encode      the encoder (satellite branch), host->device->host included
    search      top-k over the window or the whole index
    filter      Kalman update and gating
    total       frame captured -> record handed to the sinks (includes time the frame waited)

Live sources hand out only the newest frame, so a slow stage makes the loop drop frames
instead of falling behind; ``dropped`` counts them. Frames a source could not read (a corrupt
image in a folder) are skipped and counted (``skipped``) without ending the flight.

Telemetry that is not a finite number (NaN heading from an autopilot without a yaw estimate,
an infinite altitude) is *unknown* for that frame: the loop treats it as absent (north-up,
``--altitude``) and goes on, and the record lists it under ``telemetry_ignored``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvgl_edge import checks
from cvgl_edge.data.aerial import frame_crop_px, north_up_crop
from cvgl_edge.data.geomap import local_to_latlon
from cvgl_edge.errors import CvglError
from cvgl_edge.localize.coverage import MapCoverage
from cvgl_edge.localize.index import TileIndex
from cvgl_edge.localize.search import TileSearcher
from cvgl_edge.localize.tracker import Tracker, TrackerSettings
from cvgl_edge.timing import percentile

STAGES = ("read", "preprocess", "encode", "search", "filter", "total")


@dataclass
class LoopSettings:
    top_k: int = 10
    hfov_deg: float | None = None        # camera horizontal field of view (with altitude: footprint crop)
    altitude_m: float | None = None      # used when frames carry no altitude
    heading_deg: float | None = None     # used when frames carry no heading (None: assume north-up)
    max_frames: int | None = None
    tracker: TrackerSettings | None = None
    min_similarity: float | None = None  # None: the index's ``min_similarity`` (if it stores one)

    def check(self) -> "LoopSettings":
        """Refuse a value out of range, one line naming the option, before any work.

        A NaN or infinite ``--heading`` is refused rather than read as "unknown": typed on the
        command line it is a mistake, and leaving the option out already means unknown. (NaN in
        a frame's telemetry is different: an autopilot without a yaw estimate sends it, so
        there it is unknown for that frame; see :func:`telemetry_ignored`.)
        """
        if self.hfov_deg is not None:
            checks.between(self.hfov_deg, "--hfov", 0.0, 180.0, " degrees")
        if self.altitude_m is not None:
            checks.positive(self.altitude_m, "--altitude", " m")
        if self.heading_deg is not None and checks.known(self.heading_deg) is None:
            raise CvglError(f"--heading {self.heading_deg}: must be a finite number of degrees "
                            "(leave it out when the heading is unknown)")
        if self.min_similarity is not None:
            checks.min_similarity(self.min_similarity)
        if int(self.top_k) < 2:
            raise CvglError(f"--top-k {self.top_k}: need at least 2 candidates (the margin needs a rival)")
        if self.max_frames is not None and int(self.max_frames) < 1:
            raise CvglError(f"--max-frames {self.max_frames}: must be at least 1")
        return self


#: Frame fields that come from telemetry and may be NaN or infinite there.
TELEMETRY_FIELDS = ("heading_deg", "altitude_m")


def telemetry_ignored(frame: Any) -> dict[str, str]:
    """Telemetry values of ``frame`` that are present but not finite numbers: unknown for this frame."""
    ignored = dict(getattr(frame, "ignored", None) or {})
    for name in TELEMETRY_FIELDS:
        value = getattr(frame, name, None)
        if value is not None and checks.known(value) is None:
            ignored[name] = str(value)
    return ignored


def frame_altitude(frame: Any, settings: LoopSettings) -> float | None:
    """Height above ground: the frame's telemetry when it is a finite number, else ``--altitude``."""
    altitude = checks.known(frame.altitude_m)
    return altitude if altitude is not None else settings.altitude_m


def frame_heading(frame: Any, settings: LoopSettings) -> float | None:
    """Camera heading: the frame's telemetry when it is a finite number, else ``--heading`` (None: north-up)."""
    heading = checks.known(frame.heading_deg)
    return heading if heading is not None else settings.heading_deg


def tracker_settings_for(index: TileIndex, min_similarity: float | None = None) -> TrackerSettings:
    """Filter settings scaled to the index's tiles (stride = typical retrieval error).

    ``min_similarity`` None takes the floor stored in the index (see :mod:`cvgl_edge.localize.tracker`).
    """
    tile_m = float(index.meta["tile_size_m"])
    stride_m = float(index.meta["stride_m"])
    floor = min_similarity if min_similarity is not None else index.meta.get("min_similarity")
    return TrackerSettings(meas_sigma_m=max(stride_m, 1.0), exclusion_m=tile_m, min_window_m=2.0 * tile_m,
                           min_similarity=None if floor is None else float(floor))


@dataclass
class LoopSummary:
    frames: int = 0
    fixes: int = 0
    predicted: int = 0
    no_fix: int = 0
    dropped: int = 0
    skipped: int = 0
    telemetry_ignored: int = 0
    seconds: float = 0.0
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def to_dict(self) -> dict[str, Any]:
        lat = {s: {"p50": round(percentile(v, 50), 3), "p90": round(percentile(v, 90), 3),
                   "mean": round(float(np.mean(v)), 3)} for s, v in self.latency_ms.items() if v}
        return {"frames": self.frames, "fixes": self.fixes, "predicted": self.predicted, "no_fix": self.no_fix,
                "dropped": self.dropped, "skipped": self.skipped, "telemetry_ignored": self.telemetry_ignored,
                "seconds": round(self.seconds, 3),
                "fps": round(self.frames / self.seconds, 3) if self.seconds > 0 else None, "latency_ms": lat}


class Localizer:
    """State of one loop run over an index and an encoder; ``step(frame)`` -> record."""

    def __init__(self, index: TileIndex, encoder: Any, settings: LoopSettings | None = None) -> None:
        index.check_encoder(encoder.info)
        self.index, self.encoder = index, encoder
        self.settings = (settings or LoopSettings()).check()
        self._last_t = 0.0
        self.searcher = TileSearcher(index)
        self.tile_m = float(index.meta["tile_size_m"])
        coverage = MapCoverage(self.searcher, self.tile_m, float(index.meta["stride_m"]))
        self.tracker = Tracker(self.settings.tracker or tracker_settings_for(index, self.settings.min_similarity),
                               coverage)
        self.prep = index.preprocess

    def _square(self, frame: Any) -> np.ndarray:
        s = self.settings
        alt = frame_altitude(frame, s)
        heading = frame_heading(frame, s)
        side = frame_crop_px(frame.image.shape[1], self.tile_m, alt, s.hfov_deg)
        if side is None:
            side = int(min(frame.image.shape[:2]) / (math.sqrt(2.0) if heading else 1.0))
        return north_up_crop(frame.image, side, heading)

    def step(self, frame: Any, read_ms: float = 0.0) -> dict[str, Any]:
        """Localise one frame; returns its record (see the module docstring)."""
        ignored = telemetry_ignored(frame)
        t = checks.known(frame.t)
        if t is None:  # a source without a clock: the filter stands still rather than turning NaN
            ignored["t"], t = str(frame.t), self._last_t
        self._last_t = t
        t0 = time.perf_counter()
        batch = self.prep(self._square(frame))[None]
        t1 = time.perf_counter()
        query = np.asarray(self.encoder.encode(batch), np.float32)[0]
        t2 = time.perf_counter()
        self.tracker.predict(t)
        k = self.settings.top_k
        mode = self.tracker.search_mode()
        if mode == "global":
            cands = self.searcher.global_search(query, k)
        else:
            cands = self.searcher.window_search(query, *self.tracker.window(), k=k)
        t3 = time.perf_counter()
        est = self.tracker.update(t, cands, mode)
        t4 = time.perf_counter()
        status, reason = est.status, est.reason
        lat = lon = None
        if status != "no_fix":
            la, lo = local_to_latlon(est.east, est.north, self.index.origin)
            lat, lon = float(la), float(lo)
        captured = min(frame.captured or t0, t0)
        lat_ms = {"read": read_ms, "preprocess": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3,
                  "search": (t3 - t2) * 1e3, "filter": (t4 - t3) * 1e3,
                  "total": (time.perf_counter() - captured) * 1e3}

        def num(v: float) -> float | None:
            return round(float(v), 6) if v is not None and math.isfinite(v) else None

        return {
            "frame": frame.index, "t": round(t, 4), "wall_time": round(time.time(), 4),
            "captured_unix": round(time.time() - (time.perf_counter() - captured), 4), "status": status,
            "lat": lat, "lon": lon, "confidence": round(est.confidence, 4), "mode": mode,
            "sigma_m": num(est.sigma_m) if lat is not None else None,
            "v_east": num(est.v_east) if lat is not None else None,
            "v_north": num(est.v_north) if lat is not None else None,
            "sigma_v_mps": num(est.sigma_v) if lat is not None else None, "track": est.track,
            "similarity": num(est.similarity), "margin": num(est.margin), "tile": est.tile,
            "searched": cands.searched, "dropped": frame.dropped, "reason": reason, "state": est.state,
            "altitude_m": frame_altitude(frame, self.settings), "heading_deg": checks.known(frame.heading_deg),
            "telemetry_ignored": ignored, "latency_ms": {k2: round(v, 3) for k2, v in lat_ms.items()},
        }


def run_loop(index: TileIndex, encoder: Any, source: Iterable[Any], sinks: list[Any] = (),
             settings: LoopSettings | None = None,
             on_record: Callable[[dict[str, Any]], None] | None = None) -> LoopSummary:
    """Run the loop over ``source`` until it ends (or ``max_frames``); every record goes to every sink."""
    loc = Localizer(index, encoder, settings)
    summary = LoopSummary()
    limit = loc.settings.max_frames
    start = time.perf_counter()
    frames = iter(source)
    while limit is None or summary.frames < limit:
        r0 = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            break
        record = loc.step(frame, (time.perf_counter() - r0) * 1e3)
        for sink in sinks:
            sink.emit(record)
        summary.frames += 1
        summary.dropped += int(frame.dropped)
        summary.telemetry_ignored += bool(record["telemetry_ignored"])
        key = {"fix": "fixes", "predicted": "predicted"}.get(record["status"], "no_fix")
        setattr(summary, key, getattr(summary, key) + 1)
        for stage, value in record["latency_ms"].items():
            summary.latency_ms[stage].append(value)
        if on_record is not None:
            on_record(record)
    summary.seconds = time.perf_counter() - start
    summary.skipped = int(getattr(source, "skipped", 0))
    if summary.frames == 0:
        unreadable = f": all {summary.skipped} were unreadable" if summary.skipped else ""
        raise CvglError(f"the frame source gave no frames{unreadable}")
    return summary
