"""What the autopilot is told about one position: the loop's record, calibrated and timed.

Why a separate record: the MAVLink messages need more than the loop's estimate, each with a
meaning the autopilot relies on. The position holds at one instant (``unix_s``: the frame's
capture, or the send time for a prediction), its uncertainty is an honest per-axis 1-sigma
(the filter's sigma times ``SIGMA_SCALE``, calibrated on synthetic flights), the height is
above the ground, and ``reset_counter`` changes exactly when the filter starts a new track
(a re-acquisition may jump: the autopilot resets to it instead of rejecting it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from cvgl_edge.checks import known
from cvgl_edge.data.geomap import M_PER_DEG_LAT

#: The filter's position sigma times this is the per-axis 1-sigma the autopilots read. Measured
#: on six synthetic flights with the demo's drone model (970 positions, benchmarks/results/
#: sigma_calibration_vm_20261201.md): 69.2 % of |north| and |east| errors lie within the
#: filter's sigma (68.3 % would be exact), so no scaling is needed. (A radial error compared
#: with this per-axis sigma looks 1.2x worse for a Gaussian, which is what an earlier reading
#: of "optimistic" was.) The tail is heavier than Gaussian: 95 % lie within 6.7 sigma, not 2.
SIGMA_SCALE = 1.0


@dataclass(frozen=True)
class PositionSample:
    """One position to send. Velocities and their sigma are NaN when unknown."""

    lat: float
    lon: float
    sigma_m: float            # per-axis 1-sigma horizontal position error, calibrated (m)
    v_north: float            # m/s
    v_east: float
    sigma_v: float            # per-axis 1-sigma velocity error (m/s)
    height_agl_m: float       # height above the ground under the map
    unix_s: float             # the instant the position holds for
    reset_counter: int        # tracks started before this one: 0 for the first (wraps at 256 on the wire)
    quality: int              # 1..100 from the match confidence

    def propagated(self, unix_s: float) -> "PositionSample":
        """Dead-reckoned to ``unix_s`` with the velocity; the sigma grows with the velocity's."""
        age = max(0.0, unix_s - self.unix_s)
        if not (math.isfinite(self.v_north) and math.isfinite(self.v_east)) or age == 0.0:
            return replace(self, unix_s=unix_s)
        lat = self.lat + self.v_north * age / M_PER_DEG_LAT
        lon = self.lon + self.v_east * age / (M_PER_DEG_LAT * math.cos(math.radians(self.lat)))
        sigma_v = self.sigma_v if math.isfinite(self.sigma_v) else 0.0
        return replace(self, lat=lat, lon=lon, unix_s=unix_s, sigma_m=math.hypot(self.sigma_m, sigma_v * age))


def _finite(value: Any) -> float:
    """:func:`checks.known` with NaN for unknown, the convention of :class:`PositionSample`'s fields."""
    number = known(value)
    return math.nan if number is None else number


def sample_from_record(record: dict[str, Any]) -> PositionSample | None:
    """The loop record's position as a sample; None when it has none (no fix, or no height above ground).

    A record without a height cannot become a 3-D position: the caller refuses MAVLink output
    without ``--altitude`` before the loop starts, so this only happens for a source whose
    telemetry lacks it on some frames, which then count as "no fix" for the autopilot.
    """
    if record.get("lat") is None or record.get("status") == "no_fix":
        return None
    height, sigma = _finite(record.get("altitude_m")), _finite(record.get("sigma_m"))
    if math.isnan(height) or math.isnan(sigma):
        return None
    confidence = _finite(record.get("confidence"))
    return PositionSample(
        lat=float(record["lat"]), lon=float(record["lon"]), sigma_m=sigma * SIGMA_SCALE,
        v_north=_finite(record.get("v_north")), v_east=_finite(record.get("v_east")),
        sigma_v=_finite(record.get("sigma_v_mps")), height_agl_m=height,
        unix_s=float(record.get("captured_unix") or record.get("wall_time")),
        reset_counter=max(0, int(record.get("track") or 0) - 1),
        quality=max(1, min(100, round(100 * confidence))) if math.isfinite(confidence) else 1)
