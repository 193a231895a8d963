"""Georeferencing helpers: map pixels <-> lat/lon, and UTM -> lat/lon.

The synthetic world uses a local equirectangular frame (good to centimetres over
the few kilometres a synthetic map spans).  CVACT stores UTM coordinates, which
:func:`utm_to_latlon` converts (Krueger series on WGS84, sub-millimetre inside a
zone) so every dataset can report lat/lon without pyproj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class GeoRef:
    """North-up raster georeference: pixel (row 0, col 0) centre at (lat0, lon0)."""

    lat0: float
    lon0: float
    metres_per_px: float

    def to_latlon(self, row: np.ndarray | float, col: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Pixel (row, col) -> (lat, lon) in degrees; rows grow southwards, cols eastwards."""
        row = np.asarray(row, dtype=np.float64)
        col = np.asarray(col, dtype=np.float64)
        lat = self.lat0 - row * self.metres_per_px / _M_PER_DEG_LAT
        lon = self.lon0 + col * self.metres_per_px / (_M_PER_DEG_LAT * math.cos(math.radians(self.lat0)))
        return lat, lon

    def to_pixel(self, lat: np.ndarray | float, lon: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) -> pixel (row, col), the inverse of :meth:`to_latlon`."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        row = (self.lat0 - lat) * _M_PER_DEG_LAT / self.metres_per_px
        col = (lon - self.lon0) * _M_PER_DEG_LAT * math.cos(math.radians(self.lat0)) / self.metres_per_px
        return row, col

    def shifted(self, d_row: float, d_col: float) -> "GeoRef":
        """Georeference of a sub-raster whose pixel (0, 0) is this raster's (d_row, d_col)."""
        lat, lon = self.to_latlon(d_row, d_col)
        return GeoRef(float(lat), float(lon), self.metres_per_px)


def utm_to_latlon(easting: np.ndarray | float, northing: np.ndarray | float, zone: int,
                  south: bool) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 UTM -> (lat, lon) degrees (Krueger series, 6th order)."""
    a = 6378137.0
    f = 1.0 / 298.257223563
    k0 = 0.9996
    n = f / (2.0 - f)
    big_a = a / (1.0 + n) * (1.0 + n**2 / 4.0 + n**4 / 64.0)
    beta = (n / 2.0 - 2.0 * n**2 / 3.0 + 37.0 * n**3 / 96.0,
            n**2 / 48.0 + n**3 / 15.0,
            17.0 * n**3 / 480.0)
    delta = (2.0 * n - 2.0 * n**2 / 3.0 - 2.0 * n**3,
             7.0 * n**2 / 3.0 - 8.0 * n**3 / 5.0,
             56.0 * n**3 / 15.0)
    x = np.asarray(easting, dtype=np.float64) - 500_000.0
    y = np.asarray(northing, dtype=np.float64) - (10_000_000.0 if south else 0.0)
    xi = y / (k0 * big_a)
    eta = x / (k0 * big_a)
    xi_p = xi.copy() if isinstance(xi, np.ndarray) else xi
    eta_p = eta.copy() if isinstance(eta, np.ndarray) else eta
    for j, b in enumerate(beta, start=1):
        xi_p = xi_p - b * np.sin(2 * j * xi) * np.cosh(2 * j * eta)
        eta_p = eta_p - b * np.cos(2 * j * xi) * np.sinh(2 * j * eta)
    chi = np.arcsin(np.sin(xi_p) / np.cosh(eta_p))
    lat = chi.copy() if isinstance(chi, np.ndarray) else chi
    for j, d in enumerate(delta, start=1):
        lat = lat + d * np.sin(2 * j * chi)
    lon0 = math.radians(zone * 6 - 183)
    lon = lon0 + np.arctan2(np.sinh(eta_p), np.cos(xi_p))
    return np.degrees(lat), np.degrees(lon)
