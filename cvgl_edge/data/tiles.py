"""Tiling plan: where the square tiles of a map are, in pixels and lat/lon.

Why a plan separate from the pixels: the index stores the plan (centres, bounds, GSD)
so the loop can turn a tile id into a position without the map, and a resumed build
can check that it cuts the same tiles as the interrupted one.

Size and overlap are given in metres (converted with the map's GSD) or in pixels.
Tiles never leave the map: the last row and column are shifted to end on its edge.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from cvgl_edge import checks
from cvgl_edge.data.geomap import GeoMap
from cvgl_edge.errors import CvglError

UNITS = ("m", "px")


@dataclass
class TilePlan:
    """Tile grid over one map. Arrays are indexed by tile id (row-major over the grid)."""

    size_px: int
    stride_px: int
    rows: np.ndarray        # (N,) int64 top pixel row of each tile
    cols: np.ndarray        # (N,) int64 left pixel column
    lat: np.ndarray         # (N,) centre latitude
    lon: np.ndarray         # (N,) centre longitude
    bounds: np.ndarray      # (N, 4) north, south, west, east in degrees
    gsd_m: float
    size_m: float

    def __len__(self) -> int:
        return int(len(self.rows))

    def fingerprint(self) -> str:
        """Short hash of the tile layout (a resumed build must cut the same tiles)."""
        digest = hashlib.sha256(f"{self.size_px}|{self.stride_px}|".encode())
        digest.update(np.ascontiguousarray(self.rows, np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.cols, np.int64).tobytes())
        return digest.hexdigest()[:16]

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-tile arrays, as stored in the index."""
        return {"rows": self.rows, "cols": self.cols, "lat": self.lat, "lon": self.lon, "bounds": self.bounds}


def _positions(length: int, size: int, stride: int) -> np.ndarray:
    """Start offsets covering ``length`` with windows of ``size`` every ``stride`` (last one flush)."""
    if length < size:
        return np.zeros(0, np.int64)
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return np.asarray(starts, np.int64)


def check_tiling(size: float, overlap: float, unit: str) -> None:
    """The tiling options alone (no map needed): ``index build`` checks them before opening the model."""
    if unit not in UNITS:
        raise CvglError(f"unknown tile unit {unit!r}; choose m or px")
    checks.positive(size, "--tile-size", f" {unit}")
    if checks.known(overlap) is None or overlap < 0:
        raise CvglError(f"--overlap {overlap}: must be a finite number >= 0 (< 1: a fraction of the tile)")


def plan_tiles(geomap: GeoMap, size: float, overlap: float = 0.5, unit: str = "m") -> TilePlan:
    """Square tiles of ``size`` (metres or pixels) overlapping by ``overlap``.

    ``overlap`` < 1 is a fraction of the tile size; >= 1 is an absolute overlap in ``unit``.
    """
    check_tiling(size, overlap, unit)
    gsd = geomap.gsd_m
    size_px = int(round(size / gsd)) if unit == "m" else int(round(size))
    overlap_px = overlap * size_px if overlap < 1 else (overlap / gsd if unit == "m" else overlap)
    stride_px = int(round(size_px - overlap_px))
    if overlap < 0 or stride_px < 1:
        raise CvglError(f"tile overlap {overlap} {unit} leaves no stride for {size_px}-px tiles")
    if size_px < 8:
        raise CvglError(f"tiles of {size} {unit} are {size_px} px on this map (GSD {gsd:.2f} m): too small")
    h, w = geomap.shape
    r, c = _positions(h, size_px, stride_px), _positions(w, size_px, stride_px)
    if len(r) == 0 or len(c) == 0:
        raise CvglError(f"map {h}x{w} px is smaller than one {size_px}-px tile ({size} {unit})")
    rr, cc = (a.ravel() for a in np.meshgrid(r, c, indexing="ij"))
    lat, lon = geomap.pixel_to_latlon(rr + size_px / 2.0, cc + size_px / 2.0)
    corner_lat = np.stack([geomap.pixel_to_latlon(rr + dr, cc + dc)[0] for dr in (0, size_px) for dc in (0, size_px)])
    corner_lon = np.stack([geomap.pixel_to_latlon(rr + dr, cc + dc)[1] for dr in (0, size_px) for dc in (0, size_px)])
    bounds = np.stack([corner_lat.max(0), corner_lat.min(0), corner_lon.min(0), corner_lon.max(0)], axis=1)
    return TilePlan(size_px, stride_px, rr.astype(np.int64), cc.astype(np.int64), lat, lon, bounds,
                    gsd, size_px * gsd)


def cut_tile(image: np.ndarray, row: int, col: int, size_px: int) -> np.ndarray:
    """The (size_px, size_px, 3) crop at (row, col) (a view: copy before changing it)."""
    return image[int(row):int(row) + size_px, int(col):int(col) + size_px]


def tile_count(height_px: int, width_px: int, size_px: int, stride_px: int) -> int:
    """How many tiles a plan would hold (for sizing a build before running it)."""
    def n(length: int) -> int:
        return 0 if length < size_px else math.ceil((length - size_px) / stride_px) + 1
    return n(height_px) * n(width_px)
