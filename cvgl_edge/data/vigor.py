"""VIGOR (panorama -> satellite, beyond one-to-one), as distributed, with its official protocols.

Layout (the public release)::

    ROOT/<City>/panorama/<id>,<lat>,<lon>,.jpg
    ROOT/<City>/satellite/satellite_<lat>_<lon>.png
    ROOT/splits/<City>/satellite_list.txt              one tile file name per line
    ROOT/splits/<City>/same_area_balanced_train.txt    split lines (below)
    ROOT/splits/<City>/same_area_balanced_test.txt
    ROOT/splits/<City>/pano_label_balanced.txt         every panorama of the city (cross-area)

Cities: Chicago, NewYork, SanFrancisco, Seattle.  Some tools (e.g. Sample4Geo's loader) move
the images to ``ROOT/ground/<City>/`` and ``ROOT/satellite/<City>/``; that arrangement is
accepted too.

A split line is ``pano positive dx dy semi1 dx dy semi2 dx dy semi3 dx dy`` (whitespace
separated; dx, dy: the panorama's pixel offset inside each tile, unused for retrieval).
The positive tile holds the panorama near its centre; the three semi-positives also cover it.

Protocols: same-area trains and tests on the balanced split files of all four cities, against
the tiles of all four cities; cross-area trains on NewYork + Seattle and tests on Chicago +
SanFrancisco (``pano_label_balanced.txt``), against those two cities' tiles.  R@K counts the
positive only (semi-positives rank as negatives); the hit rate counts a query when no tile
other than its positive and semi-positives scores above the positive (both VIGOR's and
Sample4Geo's scripts; they differ in R@1%'s K: ``eval.scoring``).  Splits: ``train``; ``test``
(``val`` is an alias).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvgl_edge.data.pairs import PairIndex
from cvgl_edge.data.protocol import RetrievalProtocol
from cvgl_edge.errors import CvglError
from cvgl_edge.views import GROUND_TO_SATELLITE

NAME = "VIGOR"
CITIES = ("Chicago", "NewYork", "SanFrancisco", "Seattle")
CROSS_AREA = {"train": ("NewYork", "Seattle"), "test": ("Chicago", "SanFrancisco")}
SAME_AREA_FILES = {"train": "same_area_balanced_train.txt", "test": "same_area_balanced_test.txt"}
CROSS_AREA_FILE = "pano_label_balanced.txt"
SATELLITE_LIST = "satellite_list.txt"
SPLITS = ("train", "test", "val")
LINE_FIELDS = 13  # panorama + 4 x (tile, dx, dy)
EXPECTED = ("<City>/panorama/, <City>/satellite/ and splits/<City>/satellite_list.txt "
            f"for the cities {', '.join(CITIES)}")


def looks_like_vigor(root: Path) -> bool:
    """True when ``root`` has VIGOR's split folders or city image folders."""
    return any((root / "splits" / c / SATELLITE_LIST).is_file() or (root / c / "panorama").is_dir()
               or (root / "ground" / c).is_dir() for c in CITIES)


def split_name(split: str) -> str:
    """``train`` or ``test`` (``val`` maps to ``test``)."""
    if split not in SPLITS:
        raise CvglError(f"{NAME} has no {split!r} split (valid: train, test; val = test)")
    return "test" if split == "val" else split


def image_folders(root: Path, city: str) -> tuple[Path, Path]:
    """(panorama folder, satellite folder) of ``city``: the public layout, else ground/ + satellite/."""
    public = (root / city / "panorama", root / city / "satellite")
    if public[0].is_dir() or public[1].is_dir():
        return public
    moved = (root / "ground" / city, root / "satellite" / city)
    if moved[0].is_dir() or moved[1].is_dir():
        return moved
    return public


def check_city(root: Path, city: str, area: str) -> tuple[Path, Path, Path]:
    """(panorama folder, satellite folder, split folder) of ``city``, each checked to exist."""
    pano_dir, sat_dir = image_folders(root, city)
    split_dir = root / "splits" / city
    for folder, what in ((pano_dir, "panorama"), (sat_dir, "satellite"), (split_dir, "split")):
        if not folder.is_dir():
            raise CvglError(f"{NAME} {area} needs city {city}: {what} folder not found: {folder}")
    return pano_dir, sat_dir, split_dir


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CvglError(f"{NAME} split file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CvglError(f"unreadable {NAME} split file (not UTF-8 text): {path}") from None
    except OSError as exc:
        raise CvglError(f"unreadable {NAME} split file {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines()]


def read_satellite_list(path: Path) -> list[str]:
    """Tile file names of one city, in file order."""
    names = [line for line in _lines(path) if line]
    if not names:
        raise CvglError(f"{NAME} satellite list is empty: {path}")
    return names


def read_split_lines(path: Path, tile_index: dict[str, int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(panorama names, positive tile index (N,), semi-positive tile indices (N, 3)) of one split file.

    Tile indices refer to ``tile_index`` (the city's satellite list, offset into the gallery).
    """
    names: list[str] = []
    positive: list[int] = []
    semi: list[list[int]] = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line:
            continue
        fields = line.split()
        if len(fields) != LINE_FIELDS:
            raise CvglError(f"malformed {NAME} split file {path} line {lineno}: expected {LINE_FIELDS} fields "
                            f"'pano positive dx dy' + 3 x 'semi dx dy', got {len(fields)}")
        tiles = fields[1::3]
        for tile in tiles:
            if tile not in tile_index:
                raise CvglError(f"{NAME} split file {path} line {lineno} names tile {tile}, "
                                f"which {SATELLITE_LIST} does not list")
        names.append(fields[0])
        positive.append(tile_index[tiles[0]])
        semi.append([tile_index[t] for t in tiles[1:]])
    if not names:
        raise CvglError(f"{NAME} split file lists no panoramas: {path}")
    return names, np.asarray(positive, dtype=np.int64), np.asarray(semi, dtype=np.int64).reshape(-1, 3)


def panorama_latlon(name: str) -> tuple[float, float]:
    """GPS from ``<id>,<lat>,<lon>,.jpg``; NaN when the name does not carry it."""
    parts = name.split(",")
    return _floats(parts[1:3]) if len(parts) >= 3 else (float("nan"), float("nan"))


def satellite_latlon(name: str) -> tuple[float, float]:
    """Tile centre from ``satellite_<lat>_<lon>.png``; NaN when the name does not carry it."""
    parts = Path(name).stem.split("_")
    return _floats(parts[1:3]) if len(parts) >= 3 else (float("nan"), float("nan"))


def _floats(values: list[str]) -> tuple[float, float]:
    try:
        return float(values[0]), float(values[1])
    except ValueError:
        return float("nan"), float("nan")


def _require_files(folder: Path, names: list[str], what: str) -> None:
    """CvglError naming the first listed file missing from ``folder`` (one directory listing)."""
    try:
        present = {e.name for e in os.scandir(folder) if e.is_file()}
    except OSError as exc:
        raise CvglError(f"cannot list {NAME} folder {folder}: {exc.strerror or exc}") from None
    missing = [n for n in names if n not in present]
    if missing:
        raise CvglError(f"{NAME} {what} image listed but not found: {folder / missing[0]} "
                        f"({len(missing)} missing in {folder})")


@dataclass
class VigorSplit:
    """Panoramas of a split with their positive / semi-positive tiles, and the tile gallery."""

    area: str
    split: str
    cities: tuple[str, ...]
    panoramas: list[Path]
    pano_lat: np.ndarray
    pano_lon: np.ndarray
    satellites: list[Path]
    sat_lat: np.ndarray
    sat_lon: np.ndarray
    positive: np.ndarray
    semi: np.ndarray

    @property
    def name(self) -> str:
        return f"{NAME} {self.area}"


def load_vigor(root: str | Path, split: str, cross_area: bool = False) -> VigorSplit:
    """Parse and check one split; the gallery holds every tile of the split's cities."""
    root = Path(root)
    split = split_name(split)
    area = "cross-area" if cross_area else "same-area"
    if not root.is_dir():
        raise CvglError(f"{NAME} dataset folder not found: {root}")
    if not looks_like_vigor(root):
        raise CvglError(f"{root} does not match the {NAME} layout: expected {EXPECTED}")
    cities = CROSS_AREA[split] if cross_area else CITIES
    split_file = CROSS_AREA_FILE if cross_area else SAME_AREA_FILES[split]
    panoramas: list[Path] = []
    satellites: list[Path] = []
    positive, semi = [], []
    for city in cities:
        pano_dir, sat_dir, split_dir = check_city(root, city, area)
        tiles = read_satellite_list(split_dir / SATELLITE_LIST)
        offset = len(satellites)
        tile_index = {name: offset + i for i, name in enumerate(tiles)}
        names, pos, near = read_split_lines(split_dir / split_file, tile_index)
        _require_files(sat_dir, tiles, f"{city} satellite")
        _require_files(pano_dir, names, f"{city} panorama")
        satellites.extend(sat_dir / t for t in tiles)
        panoramas.extend(pano_dir / n for n in names)
        positive.append(pos)
        semi.append(near)
    pano_ll = np.array([panorama_latlon(p.name) for p in panoramas], dtype=np.float64).reshape(-1, 2)
    sat_ll = np.array([satellite_latlon(s.name) for s in satellites], dtype=np.float64).reshape(-1, 2)
    return VigorSplit(area, split, tuple(cities), panoramas, pano_ll[:, 0], pano_ll[:, 1], satellites,
                      sat_ll[:, 0], sat_ll[:, 1], np.concatenate(positive), np.concatenate(semi))


def paired_index(data: VigorSplit) -> PairIndex:
    """(panorama, positive tile) pairs with the panoramas' GPS: training and paired checks."""
    ids = [p.name.split(",")[0] for p in data.panoramas]
    return PairIndex(data.name, data.split, list(data.panoramas), [data.satellites[i] for i in data.positive],
                     ids, data.pano_lat.copy(), data.pano_lon.copy())


def vigor_protocols(root: Path, split: str, cross_area: bool = False, variant: str = "official",
                    **sizes) -> list[RetrievalProtocol]:
    """The ground->satellite protocol of the split (``val`` = ``test``); ``variant`` picks the
    scoring script (official: VIGOR's, sample4geo: Sample4Geo's)."""
    data = load_vigor(root, split, cross_area)
    semi = [row[row != pos] for row, pos in zip(data.semi, data.positive)]
    label = (f"{NAME} {data.area} {variant}: ground->satellite, {len(data.panoramas)} panoramas vs "
             f"{len(data.satellites)} tiles of {', '.join(data.cities)} (R@K: positive only; "
             "hit: no tile but the semi-positives above the positive)")
    details = {"cities": len(data.cities)}
    return [RetrievalProtocol(f"vigor-{data.area}", GROUND_TO_SATELLITE, variant, label, list(data.panoramas),
                              "ground", list(data.satellites), "satellite",
                              [np.array([p]) for p in data.positive], semi, details=details, dataset="vigor", **sizes)]
