"""File lists of cross-view pairs, as read from a dataset's own index files.

Loaders (:mod:`cvusa`, :mod:`cvact`) turn a dataset layout into a
:class:`PairIndex`; :mod:`datasets` turns that into tensors.  Checking every
file exists up front (one directory listing per folder, not one stat per file)
turns a half-downloaded dataset into a clear error before training starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvgl_edge.errors import CvglError


@dataclass
class PairIndex:
    """Paths of matching (ground, satellite) images with ids and lat/lon (NaN when unknown)."""

    name: str
    split: str
    ground: list[Path]
    satellite: list[Path]
    ids: list[str]
    lat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lon: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.ground) != n or len(self.satellite) != n:
            raise ValueError("PairIndex lists must have equal length")
        if self.lat.size == 0:
            self.lat = np.full(n, np.nan)
        if self.lon.size == 0:
            self.lon = np.full(n, np.nan)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep: np.ndarray) -> "PairIndex":
        """The pairs where ``keep`` (bool, one per pair) is true."""
        idx = np.nonzero(keep)[0]
        return PairIndex(self.name, self.split, [self.ground[i] for i in idx], [self.satellite[i] for i in idx],
                         [self.ids[i] for i in idx], self.lat[idx], self.lon[idx])


def require_dir(path: Path, what: str) -> None:
    """CvglError naming ``path`` if it is not a directory."""
    if not path.is_dir():
        raise CvglError(f"{what} folder not found: {path}")


def require_file(path: Path, what: str) -> None:
    """CvglError naming ``path`` if it is not a file."""
    if not path.is_file():
        raise CvglError(f"{what} not found: {path}")


def _listing(folder: Path, cache: dict[Path, set[str]]) -> set[str]:
    if folder not in cache:
        try:
            cache[folder] = {e.name for e in os.scandir(folder) if e.is_file()}
        except OSError:
            cache[folder] = set()
    return cache[folder]


def check_pairs_exist(index: PairIndex, skip_missing: bool = False) -> PairIndex:
    """Raise CvglError naming the first missing image, or drop incomplete pairs if ``skip_missing``."""
    cache: dict[Path, set[str]] = {}
    present = np.ones(len(index), dtype=bool)
    for i, (g, s) in enumerate(zip(index.ground, index.satellite)):
        for p in (g, s):
            if p.name not in _listing(p.parent, cache):
                if not skip_missing:
                    if not p.parent.is_dir():
                        raise CvglError(f"{index.name}: image folder not found: {p.parent}")
                    raise CvglError(f"{index.name}: image listed for {index.split} split not found: {p}")
                present[i] = False
    if skip_missing and not present.all():
        index = index.subset(present)
    if len(index) == 0:
        raise CvglError(f"{index.name}: no image pairs found for the {index.split} split")
    return index
