"""Synthetic mission: a large georeferenced map and a drone flight over it, with ground truth.

Why: no real orthophoto and flight log can be downloaded here, and the loop needs both
to be tested and measured. Everything comes from the procedural world of
:mod:`cvgl_edge.data.worldgen` and the drone camera of :mod:`cvgl_edge.data.render`,
and derives from the :class:`MissionSpec` alone (same spec, same bytes).

The world is larger than the published map by ``pad_px`` on every side, so a flight that
leaves the map still sees real (unindexed) terrain, which is what "outside the map" looks
like in the field. The flight is a figure-eight at constant speed, heading along the
track, altitude gently varying; with ``exit_fraction`` > 0 its last part flies straight
off the map by the nearest edge, so that that share of the frames sees only
unindexed terrain. Frames are nadir by default (``tilt_deg`` > 0 renders oblique frames,
whose centre then shows a point ``altitude * tan(tilt)`` ahead of the drone; the truth
files give both the drone position and that viewed point).

Files written by :func:`synthetic_mission`::

    map.tif          GeoTIFF (EPSG:4326) of the published map
    frames/NNNNNN.png  every frame;  flight.mp4: the same frames as a video (mp4v)
    telemetry.csv    frame, t, heading_deg, altitude_m: what the autopilot knows (no position)
    truth.csv        frame, t, lat, lon, view_lat, view_lon, altitude_m, heading_deg
    mission.json     the spec, camera, suggested tile size and the map's bounds
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from cvgl_edge import checks
from cvgl_edge.data.geomap import write_geotiff
from cvgl_edge.data.georef import GeoRef
from cvgl_edge.data.nuisance import photometric, sensor_noise
from cvgl_edge.data.render import render_drone
from cvgl_edge.data.worldgen import generate_world
from cvgl_edge.errors import CvglError
from cvgl_edge.io import atomic_write, atomic_write_json
from cvgl_edge.progress import progress_bar

MISSION_FILE = "mission.json"


@dataclass(frozen=True)
class MissionSpec:
    """Everything that determines a synthetic mission."""

    seed: int = 0
    map_px: int = 1536
    pad_px: int = 384
    metres_per_px: float = 1.0
    origin_latlon: tuple[float, float] = (47.37, 8.54)
    frames: int = 150
    fps: float = 5.0
    speed_mps: float = 12.0
    altitude_m: float = 150.0
    hfov_deg: float = 60.0
    frame_size: tuple[int, int] = (240, 320)
    tilt_deg: float = 0.0
    exit_fraction: float = 0.0
    nuisance: float = 0.5
    urban_bias: float | None = None

    def __post_init__(self) -> None:
        for name in ("origin_latlon", "frame_size"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.map_px < 64 or self.frames < 1 or self.pad_px < 0:
            raise CvglError(f"mission needs --map-px >= 64 and --frames >= 1 (pad_px >= 0): {self.map_px} px, "
                            f"{self.frames} frames")
        checks.positive(self.fps, "--fps", " frames per second")
        checks.positive(self.altitude_m, "--altitude", " m")
        checks.positive(self.metres_per_px, "metres_per_px")
        checks.between(self.hfov_deg, "hfov_deg", 0.0, 180.0, " degrees")
        if checks.known(self.speed_mps) is None or self.speed_mps < 0:
            raise CvglError(f"--speed {self.speed_mps}: must be a finite number >= 0 (m/s)")
        if checks.known(self.exit_fraction) is None or not 0 <= self.exit_fraction < 1:
            raise CvglError(f"--exit-fraction {self.exit_fraction}: must be a share of the flight, 0 <= x < 1")
        self._check_tilt()

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view of the frame (pinhole, square pixels)."""
        h, w = self.frame_size
        return math.degrees(2.0 * math.atan(math.tan(math.radians(self.hfov_deg) / 2.0) * h / w))

    def max_tilt_deg(self) -> float:
        """The largest usable camera tilt from nadir, in degrees (exclusive).

        Two limits: the frame's top edge must look below the horizon (tilt + vfov/2 < 90:
        at or past it the top rows see the ground at infinity, and at 90 the point the frame's
        centre sees, ``altitude * tan(tilt)`` ahead, is 1e16 m away); and that viewed point must
        lie on the rendered world, at most ``pad_px`` beyond the map (``tan(tilt) <= pad / (1.04 *
        altitude)``, 1.04: the flight's altitude variation).
        """
        horizon = 90.0 - self.vfov_deg / 2.0
        world = math.degrees(math.atan(self.pad_px * self.metres_per_px / (1.04 * self.altitude_m)))
        return min(horizon, world)

    def _check_tilt(self) -> None:
        limit = self.max_tilt_deg()
        if checks.known(self.tilt_deg) is None or not 0 <= self.tilt_deg < limit:
            raise CvglError(f"--tilt {self.tilt_deg}: must be >= 0 and below {limit:.1f} degrees for this camera "
                            f"({self.hfov_deg:g} x {self.vfov_deg:.1f} degrees field of view at "
                            f"{self.altitude_m:g} m): the frame must see only the ground, and its centre a point "
                            "of the rendered world")

    @property
    def frame_gsd_m(self) -> float:
        """Ground metres per frame pixel at the nominal altitude (nadir)."""
        return 2.0 * self.altitude_m * math.tan(math.radians(self.hfov_deg) / 2.0) / self.frame_size[1]

    @property
    def suggested_tile_m(self) -> float:
        """The largest square footprint that stays inside the frame at any heading."""
        return float(math.floor(min(self.frame_size) / math.sqrt(2.0) * self.frame_gsd_m * 0.95))


@dataclass
class FlightState:
    """Ground truth of one frame."""

    frame: int
    t: float
    lat: float
    lon: float
    view_lat: float
    view_lon: float
    altitude_m: float
    heading_deg: float


class SyntheticMission:
    """The world, the published map and the flight of one :class:`MissionSpec` (frames on demand)."""

    def __init__(self, spec: MissionSpec | None = None) -> None:

        self.spec = spec = spec or MissionSpec()
        lat0, lon0 = spec.origin_latlon
        self.map_georef = GeoRef(lat0, lon0, spec.metres_per_px)       # published map pixel (0, 0)
        world_geo = self.map_georef.shifted(-spec.pad_px, -spec.pad_px)
        side = spec.map_px + 2 * spec.pad_px
        seed = np.random.SeedSequence([spec.seed, 606])
        self.world = generate_world(seed, (side, side), world_geo, urban_bias=spec.urban_bias)
        self._track = self._trajectory()

    # --- map ------------------------------------------------------------------------------------
    @property
    def map_image(self) -> np.ndarray:
        p, n = self.spec.pad_px, self.spec.map_px
        return self.world.rgb[p:p + n, p:p + n]

    def map_affine(self) -> tuple[float, float, float, float, float, float]:
        """Corner-convention lon/lat affine of the published map (for the GeoTIFF)."""
        g = self.map_georef
        dlat = g.metres_per_px / 111_320.0
        dlon = g.metres_per_px / (111_320.0 * math.cos(math.radians(g.lat0)))
        return (dlon, 0.0, g.lon0 - dlon / 2.0, 0.0, -dlat, g.lat0 + dlat / 2.0)

    def _leave_map(self, rows: np.ndarray, cols: np.ndarray, n_exit: int) -> None:
        """Turn the end of the track into a straight leg off the map by the nearest edge, in place.

        The leg starts as late as possible such that the last ``n_exit`` frames see only
        unindexed terrain: their centre lies beyond the edge by half a suggested tile. Why not
        simply fly the last ``n_exit`` frames straight: at low speed or high frame rate such a
        leg never reaches the edge, and an "off-map" flight would have no frame off the map.
        """
        s, n = self.spec, len(rows)
        step = s.speed_mps / s.fps / s.metres_per_px
        beyond = 0.5 * s.suggested_tile_m / s.metres_per_px
        first_off = n - n_exit
        for k in range(first_off, 0, -1):
            r0, c0, side = rows[k - 1], cols[k - 1], s.map_px
            # distance to the nearest edge and the unit step towards it: N, S, W or E
            dist, away = min(((r0, (-1, 0)), (side - r0, (1, 0)), (c0, (0, -1)), (side - c0, (0, 1))))
            if step * (first_off - k + 1) >= dist + beyond:
                break
        else:
            raise CvglError(f"exit_fraction {s.exit_fraction} leaves too few frames to reach the map edge "
                            f"({n} frames at {step * s.metres_per_px:.1f} m per frame); lower it or add frames")
        farthest = step * (n - k + 1) - dist
        if farthest > s.pad_px - beyond:
            raise CvglError(f"the exit leg would fly {farthest * s.metres_per_px:.0f} m past the map edge, beyond "
                            f"the rendered surroundings ({s.pad_px} px); lower exit_fraction or speed, or raise pad_px")
        legs = step * np.arange(1, n - k + 1)
        rows[k:] = r0 + away[0] * legs
        cols[k:] = c0 + away[1] * legs

    # --- flight ---------------------------------------------------------------------------------
    def _trajectory(self) -> dict[str, np.ndarray]:
        """Per-frame map-pixel position (row, col), heading (rad, clockwise from north), altitude."""
        s = self.spec
        n = s.frames
        t = np.arange(n) / s.fps
        dist_px = s.speed_mps * t / s.metres_per_px
        # Figure-eight through the map centre, sampled densely and walked at constant speed.
        margin = 0.18 * s.map_px
        half = s.map_px / 2.0 - margin
        u = np.linspace(0.0, 2.0 * np.pi, 4001)
        col = s.map_px / 2.0 + half * np.sin(u)
        row = s.map_px / 2.0 + 0.8 * half * np.sin(2.0 * u) / 2.0 * 1.6
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(col), np.diff(row)))])
        phase = np.random.default_rng([s.seed, 1]).uniform(0.0, arc[-1])
        along = np.mod(dist_px + phase, arc[-1])
        rows, cols = np.interp(along, arc, row), np.interp(along, arc, col)
        n_exit = int(round(n * s.exit_fraction))
        if n_exit:
            self._leave_map(rows, cols, n_exit)
        d_row, d_col = np.gradient(rows), np.gradient(cols)
        heading = np.mod(np.arctan2(d_col, -d_row), 2 * np.pi) if n > 1 else np.zeros(1)
        alt = s.altitude_m * (1.0 + 0.04 * np.sin(2 * np.pi * t / 30.0))
        return {"t": t, "row": rows, "col": cols, "heading": heading, "altitude": alt}

    def __len__(self) -> int:
        return self.spec.frames

    def state(self, i: int) -> FlightState:
        tr, s = self._track, self.spec
        row, col, heading, alt = tr["row"][i], tr["col"][i], tr["heading"][i], tr["altitude"][i]
        ahead_px = alt * math.tan(math.radians(s.tilt_deg)) / s.metres_per_px
        v_row, v_col = row - ahead_px * math.cos(heading), col + ahead_px * math.sin(heading)
        lat, lon = self.map_georef.to_latlon(row, col)
        vlat, vlon = self.map_georef.to_latlon(v_row, v_col)
        return FlightState(i, float(tr["t"][i]), float(lat), float(lon), float(vlat), float(vlon), float(alt),
                           float(math.degrees(heading)))

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as RGB uint8 (frame_size), the camera's top facing the heading."""

        s, tr = self.spec, self._track
        st = self.state(i)
        row, col = self.map_georef.to_pixel(st.view_lat, st.view_lon)
        p = s.pad_px
        tilt = max(math.radians(s.tilt_deg), 1e-4)      # exactly 0 leaves the camera's "right" undefined
        img = render_drone(self.world, float(row) + p, float(col) + p, s.frame_size,
                           float(tr["altitude"][i]) / s.metres_per_px, tilt, float(tr["heading"][i]),
                           fov=math.radians(s.hfov_deg))
        rng = np.random.default_rng([s.seed, 2, i])
        img = photometric(img, rng, 0.5 * s.nuisance)
        return sensor_noise(img, rng, 2.0 * s.nuisance)

    def frames(self) -> Iterator[tuple[np.ndarray, FlightState]]:
        for i in range(len(self)):
            yield self.frame(i), self.state(i)

    def inside_map(self, i: int, margin_px: float = 0.0) -> bool:
        st = self.state(i)
        row, col = self.map_georef.to_pixel(st.view_lat, st.view_lon)
        n = self.spec.map_px
        return bool(margin_px <= row <= n - margin_px and margin_px <= col <= n - margin_px)

    def record(self) -> dict[str, Any]:
        s = self.spec
        lat_n, lon_w = self.map_georef.to_latlon(-0.5, -0.5)
        lat_s, lon_e = self.map_georef.to_latlon(s.map_px - 0.5, s.map_px - 0.5)
        return {"spec": asdict(s), "frame_gsd_m": s.frame_gsd_m, "suggested_tile_m": s.suggested_tile_m,
                "map_bounds": {"north": float(lat_n), "south": float(lat_s), "west": float(lon_w),
                               "east": float(lon_e)},
                "files": {"map": "map.tif", "frames": "frames", "video": "flight.mp4",
                          "telemetry": "telemetry.csv", "truth": "truth.csv"}}


def _png_bytes(img_rgb: np.ndarray) -> bytes:

    ok, buf = cv2.imencode(".png", cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise CvglError("cannot encode a frame as PNG")
    return buf.tobytes()


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def synthetic_mission(out: str | Path, spec: MissionSpec | None = None, video: bool = True,
                      images: bool = True, show_progress: bool = True) -> SyntheticMission:
    """Write map, frames, video, telemetry, truth and mission.json to ``out`` (each file atomically)."""


    out = Path(out)
    mission = SyntheticMission(spec)
    s = mission.spec
    out.mkdir(parents=True, exist_ok=True)
    write_geotiff(out / "map.tif", mission.map_image, mission.map_affine())
    if images:
        (out / "frames").mkdir(exist_ok=True)
    states: list[FlightState] = []

    def write_video(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), s.fps,
                                 (s.frame_size[1], s.frame_size[0]))
        if not writer.isOpened():
            raise CvglError("OpenCV cannot write mp4v video here; pass video=False")
        try:
            render_all(writer)
        finally:
            writer.release()

    def render_all(writer: Any | None) -> None:
        with progress_bar(f"rendering {len(mission)} frames", len(mission), show_progress) as advance:
            for img, st in mission.frames():
                states.append(st)
                if images:
                    path = out / "frames" / f"{st.frame:06d}.png"
                    atomic_write(path, lambda tmp, im=img: tmp.write_bytes(_png_bytes(im)))
                if writer is not None:
                    writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                advance(1)

    if video:
        # OpenCV picks the container from the file name, so the temp file needs the .mp4 suffix.
        def video_to(tmp: Path) -> None:
            named = tmp.with_suffix(".mp4")
            write_video(named)
            named.replace(tmp)

        atomic_write(out / "flight.mp4", video_to)
    else:
        render_all(None)
    tel = [[st.frame, f"{st.t:.3f}", f"{st.heading_deg:.3f}", f"{st.altitude_m:.2f}"] for st in states]
    atomic_write(out / "telemetry.csv", lambda tmp: tmp.write_text(
        _csv_text(["frame", "t", "heading_deg", "altitude_m"], tel)))
    truth = [[st.frame, f"{st.t:.3f}", f"{st.lat:.8f}", f"{st.lon:.8f}", f"{st.view_lat:.8f}",
              f"{st.view_lon:.8f}", f"{st.altitude_m:.2f}", f"{st.heading_deg:.3f}"] for st in states]
    atomic_write(out / "truth.csv", lambda tmp: tmp.write_text(_csv_text(
        ["frame", "t", "lat", "lon", "view_lat", "view_lon", "altitude_m", "heading_deg"], truth)))
    atomic_write_json(mission.record(), out / MISSION_FILE)
    return mission


def read_mission_spec(folder: str | Path) -> MissionSpec:
    """The spec saved in ``folder/mission.json`` (to regenerate the same frames on the fly)."""
    path = Path(folder) / MISSION_FILE
    if not path.is_file():
        raise CvglError(f"no synthetic mission here: {path} not found (write one with `cvgl-edge index mission`)")
    try:
        record = json.loads(path.read_text())
        return MissionSpec(**record["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CvglError(f"cannot read {path}: {exc}") from exc


TRUTH_COLUMNS = ("frame", "lat", "lon")


def read_truth(path: str | Path) -> dict[int, dict[str, float]]:
    """truth.csv -> {frame: {t, lat, lon, view_lat, view_lon, altitude_m, heading_deg}}.

    Needs the columns ``frame, lat, lon`` (``view_lat, view_lon`` optional, as a pair) with
    numbers; anything else is one line naming what is missing or where, read before the run
    so that ``--eval`` never ends a flight with "median None m".
    """
    path = Path(path)
    if not path.is_file():
        raise CvglError(f"ground truth not found: {path}")
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            _check_truth_columns(path, columns)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CvglError(f"cannot read ground truth {path}: {exc}") from exc
    truth: dict[int, dict[str, float]] = {}
    for line, row in enumerate(rows, start=2):
        row = {k.strip(): v for k, v in row.items() if k is not None}
        try:
            values = {k: float(v) for k, v in row.items() if k != "frame" and v not in ("", None)}
            truth[int(row["frame"])] = values
        except (TypeError, ValueError):
            raise CvglError(f"ground truth {path} line {line}: not a number in {dict(row)}") from None
        if any(k not in values for k in TRUTH_COLUMNS[1:]):
            raise CvglError(f"ground truth {path} line {line}: empty lat or lon")
    if not truth:
        raise CvglError(f"ground truth {path} has no rows")
    return truth


def _check_truth_columns(path: Path, columns: list[str]) -> None:
    missing = [c for c in TRUTH_COLUMNS if c not in columns]
    if ("view_lat" in columns) != ("view_lon" in columns):
        missing.append("view_lon" if "view_lat" in columns else "view_lat")
    if missing:
        has = ", ".join(columns) or "none"
        raise CvglError(f"ground truth {path} lacks column(s) {', '.join(missing)} (has {has}): need frame, lat, lon")
