"""A georeferenced map raster: pixels <-> lat/lon and a local metric frame.

Why one class: tiling, the index, the tracker and the evaluation all need the same
pixel <-> lat/lon transform, whatever the map came as:

* a GeoTIFF (read with rasterio; geographic CRS used as is, a projected CRS such
  as UTM converted to lat/lon through rasterio's PROJ);
* a plain image plus a world file (``.tfw .pgw .jgw .wld`` ... six lines
  A, D, B, E, C, F with x = A*col + B*row + C, y = D*col + E*row + F for pixel
  centres), coordinates in lon/lat degrees unless a CRS is given;
* a plain image plus its corner coordinates (north-west and south-east pixel
  corners in lat/lon, north-up).

Whatever the source, the georeferencing is checked once, where every map is made
(:meth:`GeoMap.__post_init__`): finite numbers, every corner on Earth (|lat| <= 90,
|lon| <= 180) and a positive finite pixel size; the refusal names the world file, the
GeoTIFF or ``--corners``. Why: a NaN or a latitude of 147 degrees otherwise builds an
index of "tiles of nan m" that only fails later, in flight.

Metres: a local east/north tangent frame at the map centre (equirectangular, the
same 111 320 m per degree as :mod:`cvgl_edge.data.georef`), accurate to well under
a metre over the few kilometres a drone flight covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvgl_edge.data.images import read_image
from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.io import atomic_write, file_sha256
from cvgl_edge.quiet import quiet_stderr

M_PER_DEG_LAT = 111_320.0
#: World-file suffixes tried beside an image (``map.png`` -> ``map.pgw``, ``map.pngw``, ``map.wld``).
_WORLD_SUFFIXES = {".tif": (".tfw", ".tifw"), ".tiff": (".tfw", ".tiffw"), ".png": (".pgw", ".pngw"),
                   ".jpg": (".jgw", ".jpgw"), ".jpeg": (".jgw", ".jpegw")}
GEOTIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class Corners:
    """Lat/lon of the outer corners of a north-up image: north-west and south-east."""

    north: float
    west: float
    south: float
    east: float

    @classmethod
    def parse(cls, text: str) -> "Corners":
        """'NORTH,WEST,SOUTH,EAST' (degrees), as typed after ``--corners``."""
        try:
            north, west, south, east = (float(v) for v in text.split(","))
        except ValueError:
            raise CvglError(f"--corners expects NORTH,WEST,SOUTH,EAST in degrees, got {text!r}") from None
        if not all(math.isfinite(v) for v in (north, west, south, east)):
            raise CvglError(f"--corners {text!r}: every value must be a finite number of degrees")
        if not (north > south and east > west and -90 <= south and north <= 90 and -180 <= west and east <= 180):
            raise CvglError(f"--corners {text!r}: need north > south and east > west, latitudes within +-90 "
                            "and longitudes within +-180 (degrees)")
        return cls(north, west, south, east)


@dataclass
class GeoMap:
    """Map image (H, W, 3) uint8 RGB plus an affine pixel -> CRS transform and its CRS.

    ``affine`` = (a, b, c, d, e, f): x = a*col + b*row + c, y = d*col + e*row + f, where
    (col, row) are pixel *corner* coordinates (rasterio convention: the centre of the
    top-left pixel is (0.5, 0.5)). ``crs`` is None for lon/lat degrees, else anything
    rasterio's CRS accepts. ``georef`` says where the georeferencing came from (a world
    file, ``--corners``), for the one-line refusal of one that is not on Earth.
    """

    image: np.ndarray
    affine: tuple[float, float, float, float, float, float]
    crs: str | None = None
    source: str = ""
    sha256: str = ""
    georef: str = ""

    def __post_init__(self) -> None:
        self.origin = self._check_georeferencing()

    def _check_georeferencing(self) -> tuple[float, float]:
        """The map centre (lat, lon), once the georeferencing is finite, on Earth and non-degenerate."""
        where = self.georef or f"map {self.source}"
        if not all(math.isfinite(float(v)) for v in self.affine):
            raise CvglError(f"{where}: georeferencing has non-finite numbers {list(self.affine)}")
        a, b, _, d, e, _ = self.affine
        if abs(a * e - b * d) < 1e-300:
            raise CvglError(f"{where}: georeferencing is degenerate (zero pixel size)")
        h, w = self.shape
        lat, lon = self.pixel_to_latlon(np.array([h / 2.0, 0, 0, h, h]), np.array([w / 2.0, 0, w, 0, w]))
        crs = f" in {self.crs}" if self.crs else " (lon/lat degrees)"
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            raise CvglError(f"{where}: georeferencing{crs} puts the map nowhere on Earth (no finite lat/lon)")
        if (np.abs(lat) > 90).any() or (np.abs(lon) > 180).any():
            raise CvglError(f"{where}: georeferencing{crs} puts the map at lat {lat.min():.6g}..{lat.max():.6g}, "
                            f"lon {lon.min():.6g}..{lon.max():.6g}: not on Earth (|lat| <= 90, |lon| <= 180); "
                            "projected coordinates need --crs")
        self.origin = (float(lat[0]), float(lon[0]))
        gsd = self.gsd_m
        if not (math.isfinite(gsd) and gsd > 0):
            raise CvglError(f"{where}: georeferencing gives a pixel size of {gsd} m (need a positive finite size)")
        return self.origin

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    # --- pixel <-> CRS <-> lat/lon ------------------------------------------------------------
    def _to_crs(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b, c, d, e, f = self.affine
        return a * col + b * row + c, d * col + e * row + f

    def _from_crs(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b, c, d, e, f = self.affine
        det = a * e - b * d
        dx, dy = x - c, y - f
        col = (e * dx - b * dy) / det
        row = (-d * dx + a * dy) / det
        return row, col

    def pixel_to_latlon(self, row, col) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (corner convention, floats) -> (lat, lon) degrees."""
        x, y = self._to_crs(np.asarray(row, np.float64), np.asarray(col, np.float64))
        if self.crs is None:
            return y, x
        lon, lat = _reproject(self.crs, "EPSG:4326", x, y)
        return lat, lon

    def latlon_to_pixel(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) degrees -> pixel (row, col), corner convention."""
        lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        if self.crs is None:
            return self._from_crs(lon, lat)
        x, y = _reproject("EPSG:4326", self.crs, lon, lat)
        return self._from_crs(x, y)

    # --- local metres ---------------------------------------------------------------------------
    def to_local(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) -> (east, north) metres from the map centre."""
        return latlon_to_local(lat, lon, self.origin)

    def from_local(self, east, north) -> tuple[np.ndarray, np.ndarray]:
        """(east, north) metres from the map centre -> (lat, lon)."""
        return local_to_latlon(east, north, self.origin)

    @property
    def gsd_m(self) -> float:
        """Ground sample distance (metres per pixel), averaged over both axes at the centre."""
        h, w = self.shape
        rows = np.array([h / 2.0, h / 2.0 + 1.0, h / 2.0])
        cols = np.array([w / 2.0, w / 2.0, w / 2.0 + 1.0])
        east, north = self.to_local(*self.pixel_to_latlon(rows, cols))
        down = math.hypot(east[1] - east[0], north[1] - north[0])
        right = math.hypot(east[2] - east[0], north[2] - north[0])
        return 0.5 * (down + right)

    def contains(self, lat, lon, margin_px: float = 0.0) -> np.ndarray:
        """Whether (lat, lon) falls on the map (at least ``margin_px`` inside its edge)."""
        row, col = self.latlon_to_pixel(lat, lon)
        h, w = self.shape
        return (row >= margin_px) & (row <= h - margin_px) & (col >= margin_px) & (col <= w - margin_px)

    def bounds_latlon(self) -> dict[str, float]:
        """North/south/west/east extent in degrees (over the four corners)."""
        h, w = self.shape
        lat, lon = self.pixel_to_latlon(np.array([0, 0, h, h]), np.array([0, w, 0, w]))
        return {"north": float(lat.max()), "south": float(lat.min()),
                "west": float(lon.min()), "east": float(lon.max())}


def latlon_to_local(lat, lon, origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) -> (east, north) metres in the tangent frame at ``origin`` (lat0, lon0)."""
    lat0, lon0 = origin
    north = (np.asarray(lat, np.float64) - lat0) * M_PER_DEG_LAT
    east = (np.asarray(lon, np.float64) - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0))
    return east, north


def local_to_latlon(east, north, origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`latlon_to_local`."""
    lat0, lon0 = origin
    lat = lat0 + np.asarray(north, np.float64) / M_PER_DEG_LAT
    lon = lon0 + np.asarray(east, np.float64) / (M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return lat, lon


def _reproject(src: str, dst: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from rasterio.errors import CRSError
    from rasterio.warp import transform

    shape = np.shape(x)
    try:
        xs, ys = transform(src, dst, np.ravel(x).tolist(), np.ravel(y).tolist())
    except CRSError as exc:
        raise CvglError(f"cannot convert map coordinates from {src} to {dst}: {first_line(exc)}") from exc
    return np.asarray(xs, np.float64).reshape(shape), np.asarray(ys, np.float64).reshape(shape)


def check_crs(crs: str | None, name: str = "--crs") -> str | None:
    """``crs`` as given, once PROJ knows it (one line naming the option otherwise)."""
    if crs is None:
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError


    try:
        with quiet_stderr():  # PROJ prints its own "ERROR 1: ..." line for an unknown EPSG code
            CRS.from_user_input(crs)
    except CRSError as exc:
        raise CvglError(f"{name} {crs}: unknown coordinate reference system ({first_line(exc)})") from exc
    return crs


def find_world_file(path: Path) -> Path | None:
    """The world file beside an image, if any (``.pgw``, ``.pngw``, ``.wld`` ...)."""
    suffixes = _WORLD_SUFFIXES.get(path.suffix.lower(), ()) + (".wld",)
    for suffix in suffixes:
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def read_world_file(path: Path) -> tuple[float, float, float, float, float, float]:
    """World file (A, D, B, E, C, F; pixel centres) -> corner-convention affine (a, b, c, d, e, f)."""
    try:
        values = [float(line) for line in path.read_text().split()]
    except (OSError, ValueError) as exc:
        raise CvglError(f"cannot read world file {path}: {first_line(exc)}") from exc
    if len(values) != 6:
        raise CvglError(f"world file {path} must hold 6 numbers, found {len(values)}")
    a, d, b, e, c, f = values
    # The world file names the centre of pixel (0, 0); shift by half a pixel to its corner.
    return (a, b, c - 0.5 * a - 0.5 * b, d, e, f - 0.5 * d - 0.5 * e)


def corners_affine(corners: Corners, shape: tuple[int, int]) -> tuple[float, float, float, float, float, float]:
    """North-up affine in degrees from the outer corner coordinates of an (H, W) image."""
    h, w = shape
    return ((corners.east - corners.west) / w, 0.0, corners.west, 0.0, -(corners.north - corners.south) / h,
            corners.north)


def read_map(path: str | Path, corners: Corners | str | None = None, crs: str | None = None) -> GeoMap:
    """Read a georeferenced map: GeoTIFF, or image + world file, or image + corners.

    Priority: explicit ``corners``; the GeoTIFF's own georeferencing; a world file
    beside the image. A map with none of these is refused (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise CvglError(f"map not found: {path}")
    if isinstance(corners, str):
        corners = Corners.parse(corners)
    check_crs(crs)
    image, affine, file_crs = _read_raster(path)
    georef = f"GeoTIFF {path}"
    if corners is not None:
        affine, file_crs = corners_affine(corners, image.shape[:2]), None
        georef = f"--corners of {path}"
    elif affine is None:
        world = find_world_file(path)
        if world is None:
            raise CvglError(f"map has no georeferencing: {path} (use a GeoTIFF, a world file beside it, "
                            "or --corners NORTH,WEST,SOUTH,EAST)")
        affine = read_world_file(world)
        file_crs = crs
        georef = f"world file {world}"
    elif crs is not None:
        file_crs = crs
    if crs is not None and corners is None:
        georef += f" with --crs {crs}"

    return GeoMap(image, affine, file_crs, str(path), file_sha256(path), georef)


def _read_raster(path: Path) -> tuple[np.ndarray, tuple | None, str | None]:
    """(RGB uint8 image, affine or None, CRS or None). GeoTIFFs through rasterio, others through OpenCV."""
    if path.suffix.lower() not in GEOTIFF_SUFFIXES:

        return read_image(path), None, None
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read()
                transform, crs = src.transform, src.crs
    except RasterioIOError as exc:
        raise CvglError(f"cannot read map {path}: {first_line(exc)}") from exc
    image = _to_rgb_uint8(data, path)
    if transform.is_identity:
        return image, None, None
    affine = (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
    if crs is None or crs.is_geographic:
        return image, affine, None
    return image, affine, crs.to_string()


def _to_rgb_uint8(data: np.ndarray, path: Path) -> np.ndarray:
    """(bands, H, W) raster -> (H, W, 3) uint8 RGB (grey repeated, alpha dropped, 16-bit scaled)."""
    if data.ndim != 3 or data.shape[0] == 0:
        raise CvglError(f"map {path} has no raster bands")
    bands = data[:3] if data.shape[0] >= 3 else np.repeat(data[:1], 3, axis=0)
    if bands.dtype == np.uint16:
        bands = (bands // 257).astype(np.uint8)
    elif bands.dtype != np.uint8:
        bands = np.clip(bands, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(bands.transpose(1, 2, 0))


def write_geotiff(path: str | Path, image: np.ndarray, affine: tuple[float, ...], crs: str = "EPSG:4326") -> Path:
    """Write an RGB uint8 GeoTIFF atomically (synthetic maps, tests)."""
    import rasterio
    from rasterio.transform import Affine


    h, w = image.shape[:2]

    def write(tmp: Path) -> None:
        with rasterio.open(tmp, "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8",
                           crs=crs, transform=Affine(*affine)) as dst:
            dst.write(np.ascontiguousarray(image.transpose(2, 0, 1)))

    return atomic_write(path, write)
